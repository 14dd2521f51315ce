import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import { createRunTable } from '#test/support/aws-resources.ts';
import { describeRunStoreContract } from './run-store.contract.ts';

describeRunStoreContract('SQLite (local mode)', async () => new SqliteRunStore(':memory:'));

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
describeRunStoreContract('DynamoDB (AWS)', async () => new DynamoDbRunStore(dynamo, await createRunTable()), {
  losesConcurrentTransactionWrites: inject('awsEndpointIsOwnMoto'),
});
