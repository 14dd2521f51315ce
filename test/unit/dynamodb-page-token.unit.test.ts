import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbRunStore, runListQuery, runPageToken } from '#adapters/aws/dynamodb-run-store.ts';
import { ValidationError } from '#domain/errors.ts';

/**
 * DynamoDB's own refusal of a start key, which moto never gives (it accepts a key from another partition): the
 * document client mocked (aws-sdk-client-mock) to answer as DynamoDB does. The second line of defence behind the
 * store's own token checks, which the contract suite covers against moto.
 */

const dynamo = mockClient(DynamoDBDocumentClient);
const store = () => new DynamoDbRunStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), 'runs');

const id = 'run-0001';
const token = runPageToken(runListQuery({ cluster: 'prod' }), {
  pk: `RUN#${id}`,
  sk: 'RUN',
  clusterKey: 'prod',
  runSortKey: `001800000001000#${id}`,
});

const dynamoError = (message: string) => Object.assign(new Error(message), { name: 'ValidationException' });

beforeEach(() => dynamo.reset());

describe('DynamoDbRunStore: DynamoDB refusing a page token', () => {
  it("answers DynamoDB's ValidationException about the start key with the ValidationError naming nextToken", async () => {
    // Messages DynamoDB gives (its own wording, as reported by its users).
    for (const message of [
      'The provided starting key is invalid: The provided key element does not match the schema',
      'The provided starting key does not match the range key predicate',
      "Exclusive Start Key must have same size as table's key schema",
      // A start key from another partition.
      'The provided starting key is outside query boundaries based on provided condition',
    ]) {
      dynamo.on(QueryCommand).rejects(dynamoError(message));
      const outcome = await store()
        .list({ cluster: 'prod' }, 2, token)
        .catch((error: unknown) => error);
      expect(outcome, message).toBeInstanceOf(ValidationError);
      expect((outcome as ValidationError).reasons).toEqual([
        'nextToken: is not a token this service handed out for this query',
      ]);
    }
  });

  it('leaves any other error, and a start key DynamoDB handed out itself, as the error it is', async () => {
    dynamo.on(QueryCommand).rejects(dynamoError('Invalid FilterExpression: syntax error'));
    const other = await store()
      .list({ cluster: 'prod' }, 2, token)
      .catch((error: unknown) => error);
    expect(other).not.toBeInstanceOf(ValidationError);
    // No client token: a refused start key is DynamoDB's own LastEvaluatedKey, not the caller's fault.
    dynamo
      .on(QueryCommand)
      .resolvesOnce({ Items: [], LastEvaluatedKey: { pk: 'RUN#x' } })
      .rejects(dynamoError('The provided starting key is invalid'));
    const own = await store()
      .list({ cluster: 'prod' }, 2)
      .catch((error: unknown) => error);
    expect(own).toBeInstanceOf(Error);
    expect(own).not.toBeInstanceOf(ValidationError);
  });

  it('sends no query at all for a token it refuses itself', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [] });
    const outcome = await store()
      .list({ cluster: 'staging' }, 2, token)
      .catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ValidationError);
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
  });
});
