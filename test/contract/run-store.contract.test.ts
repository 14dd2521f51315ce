import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { DynamoDbRunStore, runListQuery, runPageToken } from '#adapters/aws/dynamodb-run-store.ts';
import { SqliteRunStore, runPageToken as sqlitePageToken } from '#adapters/local/sqlite-run-store.ts';
import { ValidationError } from '#domain/errors.ts';
import type { RunFilter, RunStore } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { createRunTable } from '#test/support/aws-resources.ts';
import { aRun } from '#test/support/runs.ts';
import { describeRunStoreContract, TOKEN_REFUSED } from './run-store.contract.ts';

describeRunStoreContract('SQLite (local mode)', async () => new SqliteRunStore(':memory:'));

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
describeRunStoreContract('DynamoDB (AWS)', async () => new DynamoDbRunStore(dynamo, await createRunTable()), {
  losesConcurrentTransactionWrites: inject('awsEndpointIsOwnMoto'),
});

async function expectRefused(store: RunStore, filter: RunFilter, token: string, what: string): Promise<void> {
  const outcome = await store.list(filter, 2, token).then(
    (page) => page,
    (error: unknown) => error,
  );
  expect(outcome, what).toBeInstanceOf(ValidationError);
  expect((outcome as ValidationError).reasons, what).toEqual([TOKEN_REFUSED]);
}

async function insertRuns(store: RunStore, overrides: Partial<Run>, count: number): Promise<Run[]> {
  const runs = Array.from({ length: count }, (_, i) => aRun({ node: `i-${i}`, ...overrides }));
  for (const run of runs) await store.insertRunning(run);
  return runs;
}

/**
 * Beyond the contract: tokens forged with a correct digest (anyone who reads the code can compute it; there is no
 * secret), so only each store's own shape and partition checks stand between them and the query.
 */
describe('DynamoDB page tokens are checked before DynamoDB sees them', () => {
  it('refuses a well-formed token, digest and all, whose start key this query never hands out', async () => {
    const store = new DynamoDbRunStore(dynamo, await createRunTable());
    const prod = await insertRuns(store, {}, 3);
    const [staging] = await insertRuns(store, { cluster: 'staging' }, 1);
    const keyOf = (run: Run) => ({
      pk: `RUN#${run.id}`,
      sk: 'RUN',
      runSortKey: `${String(run.triggerTime).padStart(15, '0')}#${run.id}`,
    });
    const query = runListQuery({ cluster: 'prod' });
    const middle = { ...keyOf(prod[1] as Run), clusterKey: 'prod' };
    // The same key a real page would end on: accepted, and pages on from there.
    expect((await store.list({ cluster: 'prod' }, 2, runPageToken(query, middle))).runs.map((r) => r.id)).toEqual([
      prod[0]?.id,
    ]);
    const { sk: _sk, ...withoutSk } = middle;
    const forgeries: Record<string, Record<string, unknown>> = {
      // DynamoDB answers these two with a ValidationException; moto reads on from them.
      'a run of another partition': { ...keyOf(staging as Run), clusterKey: 'staging' },
      'this run, moved to another partition': { ...middle, clusterKey: 'staging' },
      "another index's key attribute": { ...keyOf(prod[1] as Run), allKey: 'ALL' },
      'an extra attribute': { ...middle, status: 'RUNNING' },
      'a missing attribute': withoutSk,
      'a number for a string': { ...middle, runSortKey: 1 },
      'a lock item, not a run': { ...middle, pk: 'TARGET#prod#taskmanager#i-1', sk: 'RUNNING' },
      'a sort key other than RUN': { ...middle, sk: 'RUNNING' },
      'a sort key without 15 digits': { ...middle, runSortKey: `${prod[1]?.triggerTime}#${prod[1]?.id}` },
      'ids that differ': { ...middle, pk: `RUN#${prod[2]?.id}` },
    };
    for (const [what, key] of Object.entries(forgeries)) {
      await expectRefused(store, { cluster: 'prod' }, runPageToken(query, key), what);
    }
  });
});

describe('SQLite page tokens are checked before they are read', () => {
  it('refuses a well-formed token, digest and all, whose position is not one a page ends on', async () => {
    const store = new SqliteRunStore(':memory:');
    const runs = await insertRuns(store, {}, 3);
    const run = runs[1] as Run;
    const filter = { cluster: 'prod' };
    const real = sqlitePageToken(filter, { t: run.triggerTime, id: run.id });
    expect((await store.list(filter, 2, real)).runs.map((r) => r.id)).toEqual([runs[0]?.id]);
    const fields = JSON.parse(Buffer.from(real, 'base64url').toString('utf8'));
    const forgeries: Record<string, string> = {
      'a fraction for a time': sqlitePageToken(filter, { t: run.triggerTime + 0.5, id: run.id }),
      'a negative time': sqlitePageToken(filter, { t: -1, id: run.id }),
      'a string for a time': sqlitePageToken(filter, { t: String(run.triggerTime) as unknown as number, id: run.id }),
      'an empty id': sqlitePageToken(filter, { t: run.triggerTime, id: '' }),
      'a number for an id': sqlitePageToken(filter, { t: run.triggerTime, id: 7 as unknown as string }),
      'an extra field': Buffer.from(JSON.stringify({ ...fields, teams: ['any'] })).toString('base64url'),
    };
    for (const [what, token] of Object.entries(forgeries)) await expectRefused(store, filter, token, what);
  });
});
