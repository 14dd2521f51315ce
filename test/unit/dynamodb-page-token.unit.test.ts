import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoDbRunStore,
  fleetPageToken,
  IndexSource,
  mergeNewestFirst,
  runListQuery,
  runPageToken,
  type SortedSource,
  timeShardKey,
} from '#adapters/aws/dynamodb-run-store.ts';
import { RUN_DAY_ITEM, RUN_TABLE } from '#adapters/aws/run-table.ts';
import { ValidationError } from '#domain/errors.ts';

/**
 * Also: the fleet-wide listing's merge and tokens, without DynamoDB (sources faked, or the client mocked).
 *
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

type Item = Record<string, unknown>;
const keyAt = (time: number, id: string) => `${String(time).padStart(15, '0')}#${id}`;
const itemAt = (time: number, id: string): Item => ({ runSortKey: keyAt(time, id), id });

/** A source over fixed items (newest first), counting its reads, handing out at most `want` per read. */
function fixedSource(items: Item[]): SortedSource & { reads: number } {
  const counted = Object.assign(
    new IndexSource(async (startKey, want) => {
      counted.reads += 1;
      const from = startKey ? Number(startKey.at) : 0;
      const page = items.slice(from, from + want);
      return { items: page, lastKey: from + want < items.length ? { at: from + want } : undefined };
    }),
    { reads: 0 },
  );
  return counted;
}

const DAY = 86_400_000;
const day0 = Date.UTC(2027, 0, 20);

describe('mergeNewestFirst: the fleet-wide listing across days and shards', () => {
  it('merges shards of each day and a source that spans every day, newest first, ties broken by id', async () => {
    const today = [
      [itemAt(day0 + 500, 'b'), itemAt(day0 + 100, 'a')],
      [itemAt(day0 + 500, 'c'), itemAt(day0 + 500, 'a')],
      [],
    ];
    const yesterday = [[itemAt(day0 - 1, 'z')], [itemAt(day0 - DAY, 'y')]];
    const legacy = [itemAt(day0 + 300, 'L1'), itemAt(day0 - 10, 'L2'), itemAt(day0 - 5 * DAY, 'L3')];
    const days = [
      { below: keyAt(day0 + DAY, ''), sources: today.map(fixedSource) },
      { below: keyAt(day0, ''), sources: yesterday.map(fixedSource) },
    ];
    const merged = await mergeNewestFirst({
      sources: [fixedSource(legacy)],
      nextDay: async () => days.shift(),
      count: 100,
    });
    expect(merged.map((item) => item.runSortKey)).toEqual([
      keyAt(day0 + 500, 'c'),
      keyAt(day0 + 500, 'b'),
      keyAt(day0 + 500, 'a'),
      keyAt(day0 + 300, 'L1'),
      keyAt(day0 + 100, 'a'),
      keyAt(day0 - 1, 'z'),
      keyAt(day0 - 10, 'L2'),
      keyAt(day0 - DAY, 'y'),
      keyAt(day0 - 5 * DAY, 'L3'),
    ]);
  });

  it("opens an older day only when the page may need it: a page of today's runs reads no other day", async () => {
    const todayShards = [0, 1, 2].map((shard) =>
      fixedSource([itemAt(day0 + 900 - shard, `t${shard}`), itemAt(day0 + 800 - shard, `u${shard}`)]),
    );
    const older = fixedSource([itemAt(day0 - 7 * DAY, 'old')]);
    let opened = 0;
    const days = [
      { below: keyAt(day0 + DAY, ''), sources: todayShards },
      { below: keyAt(day0 - 6 * DAY, ''), sources: [older] },
    ];
    const nextDay = async () => {
      opened += 1;
      return days.shift();
    };
    const merged = await mergeNewestFirst({ sources: [], nextDay, count: 4 });
    expect(merged.map((item) => item.id)).toEqual(['t0', 't1', 't2', 'u0']);
    // The second day was asked for (to know its bound), its shards were never read.
    expect(opened).toBe(2);
    expect(older.reads).toBe(0);
    expect(todayShards.map((s) => s.reads)).toEqual([1, 1, 1]);
  });

  it('reads a source on through pages that hold no match (a filtered query) until it has one or ends', async () => {
    const pages = [{ items: [], lastKey: { at: 1 } }, { items: [], lastKey: { at: 2 } }, { items: [itemAt(5, 'x')] }];
    const source = new IndexSource(async () => pages.shift() ?? { items: [] });
    expect((await source.head(10))?.id).toBe('x');
    source.take();
    expect(await source.head(10)).toBeUndefined();
    expect(pages).toEqual([]);
  });

  it('stops with what there is when every source and day is spent', async () => {
    const merged = await mergeNewestFirst({
      sources: [fixedSource([itemAt(3, 'a')])],
      nextDay: async () => undefined,
      count: 10,
    });
    expect(merged.map((item) => item.id)).toEqual(['a']);
  });
});

describe('timeShardKey: where a run goes in the fleet-wide index', () => {
  it("names the run's UTC day and one of the shards, the same for the same run every time", () => {
    const run = { id: 'run-1', triggerTime: Date.UTC(2027, 0, 20, 23, 59, 59, 999) };
    expect(timeShardKey(run)).toMatch(new RegExp(`^2027-01-20#[0-${RUN_TABLE.timeShards - 1}]$`));
    expect(timeShardKey(run)).toBe(timeShardKey({ ...run }));
    expect(timeShardKey({ ...run, triggerTime: run.triggerTime + 1 })).toMatch(/^2027-01-21#/);
  });

  it('spreads the runs of a day evenly over the shards', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 8000; i++) {
      const key = timeShardKey({ id: crypto.randomUUID(), triggerTime: day0 });
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(RUN_TABLE.timeShards);
    for (const count of counts.values()) {
      expect(count).toBeGreaterThan(700);
      expect(count).toBeLessThan(1300);
    }
  });
});

describe('DynamoDbRunStore: fleet-wide page tokens', () => {
  const sortKey = keyAt(day0 + 1234, id);
  const fleetToken = fleetPageToken(runListQuery({}), sortKey);

  it('reads every source below the sort key in the token, from its day back', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [] });
    expect(await store().list({}, 2, fleetToken)).toEqual({ runs: [] });
    const inputs = dynamo.commandCalls(QueryCommand).map((call) => call.args[0].input);
    const days = inputs.find((input) => input.IndexName === undefined);
    expect(days?.KeyConditionExpression).toBe('#pk = :pk AND #sk <= :from');
    expect(days?.ExpressionAttributeValues).toMatchObject({ ':pk': RUN_DAY_ITEM.pk, ':from': '2027-01-20' });
    const legacy = inputs.find((input) => input.IndexName === RUN_TABLE.indexes.byTimeLegacy);
    expect(legacy?.KeyConditionExpression).toBe('#key = :key AND #sort < :below');
    expect(legacy?.ExpressionAttributeValues).toMatchObject({ ':key': 'ALL', ':below': sortKey });
  });

  it('sends no query for a fleet token it refuses: edited, of another shape, or for another query', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [] });
    const forgeries: Record<string, string> = {
      'a sort key without 15 digits': fleetPageToken(runListQuery({}), `1234#${id}`),
      'a sort key without an id': fleetPageToken(runListQuery({}), '001800000001000#'),
      'a start key of a one-partition index': runPageToken(runListQuery({}), {
        pk: `RUN#${id}`,
        sk: 'RUN',
        allKey: 'ALL',
        runSortKey: sortKey,
      }),
      'a token for another filter': fleetPageToken(runListQuery({ status: 'RUNNING' }), sortKey),
      'a token of a cluster listing': token,
    };
    for (const [what, forged] of Object.entries(forgeries)) {
      const outcome = await store()
        .list({}, 2, forged)
        .catch((error: unknown) => error);
      expect(outcome, what).toBeInstanceOf(ValidationError);
    }
    expect(dynamo.commandCalls(QueryCommand)).toHaveLength(0);
  });
});
