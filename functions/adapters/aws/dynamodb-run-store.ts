import { createHash } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { isProfileFormat, type ProfileFormat } from '#domain/artifacts.ts';
import { ValidationError } from '#domain/errors.ts';
import type { InsertResult, RunFilter, RunOutcome, RunPage, RunStore, TargetSelector } from '#domain/ports.ts';
import type { Run, Target } from '#domain/run.ts';
import { RUN_DAY_ITEM, RUN_TABLE } from './run-table.ts';

type IndexName = keyof typeof RUN_TABLE.indexes;

type WhereField = 'cluster' | 'node' | 'role' | 'status' | 'ruleId' | 'groupId' | 'requestedBy' | 'outputFile';

/** One read of an index: its partition, the filters applied to it, and the teams the caller may see. */
export interface RunQuery {
  index: IndexName;
  /** The value of the index's key attribute: the one partition read. */
  key: string;
  /** Only runs whose fields equal these (left out or undefined: any). */
  where: Partial<Record<WhereField, string>>;
  /** Keep only runs whose `teams` list holds one of these. */
  teams?: readonly string[];
}

const RUN_SK = 'RUN';
const LOCK_SK = 'RUNNING';
/** The one partition of the legacy `byTimeLegacy` index. */
const ALL = 'ALL';
/** The `key` of the fleet-wide query, which reads every shard of every day (and the legacy partition). */
const FLEET = '*';

const runPk = (id: string) => `RUN#${id}`;
const targetKey = (t: Target) => `${t.cluster}#${t.role}#${t.node}`;
const lockPk = (t: Target) => `TARGET#${targetKey(t)}`;
const commandKey = (commandId: string, node: string) => `${commandId}#${node}`;
const sortKeyOfTime = (time: number) => String(time).padStart(15, '0');
const runSortKey = (run: Pick<Run, 'triggerTime' | 'id'>) => `${sortKeyOfTime(run.triggerTime)}#${run.id}`;

/*
 * The fleet-wide listing (`byTime`). One partition for every run made every write of the service land on one
 * partition, so runs are spread over `<day>#<shard>` partitions (the UTC day of the trigger time, and a hash of
 * the id below RUN_TABLE.timeShards), sorted as every index is, by `<triggerTime>#<id>`. A listing merges them
 * newest first: all of a day's runs sort above every older day's, so it opens one day at a time, querying that
 * day's shards in parallel. It walks only the days that hold runs: before a day's first run, a store writes a
 * RUN_DAY_ITEM for it (a base-table partition of one small item per day, read with one query per 32 days), so
 * empty days cost nothing and the walk ends, soundly, where the recorded days and the legacy partition end; no
 * lookback limit is needed, and runs with a trigger time in the future (clock skew) are still found.
 *
 * Migration: the sharded index is a new GSI on a new attribute (DynamoDB adds one GSI per table update); runs
 * written before it carry only `allKey = ALL`, in the legacy index, which nothing writes any more. Listings read
 * that partition as one more source of the same merge, so old runs stay listed, in place, until trimming has
 * taken them all out of it; a later release can then drop the legacy index (or backfill `timeShardKey` first).
 */
const DAY_MS = 86_400_000;
/** The UTC day of a time, `yyyy-mm-dd`: the first half of a `byTime` partition key. */
const dayOf = (time: number) => new Date(time).toISOString().slice(0, 10);
/** Every sort key of a day's runs is below this one (the first millisecond of the next day). */
const dayEndSortKey = (day: string) => sortKeyOfTime(Date.parse(`${day}T00:00:00Z`) + DAY_MS);
/** The `byTime` partition of a run: its day and a hash of its id, so one day's writes spread over the shards. */
export const timeShardKey = (run: Pick<Run, 'triggerTime' | 'id'>) =>
  `${dayOf(run.triggerTime)}#${createHash('sha256').update(run.id).digest().readUInt32BE(0) % RUN_TABLE.timeShards}`;

type RunItem = Run & Record<string, unknown>;

const RUN_FIELDS = [
  'id',
  'cluster',
  'node',
  'role',
  'mode',
  'duration',
  'status',
  'triggerTime',
  'finishedTime',
  'message',
  'outputFile',
  'commandId',
  'artifactKey',
  'requestedBy',
  'ruleId',
] as const satisfies ReadonlyArray<keyof Run>;

function toRun(item: Record<string, unknown>): Run {
  const run = Object.fromEntries(RUN_FIELDS.map((field) => [field, item[field] ?? null])) as unknown as Run;
  // Only the runs of a fan-out have a group; runs stored before teams existed have no teams.
  if (typeof item.groupId === 'string') run.groupId = item.groupId;
  if (Array.isArray(item.teams)) run.teams = item.teams.filter((team): team is string => typeof team === 'string');
  if (Array.isArray(item.formats) && item.formats.length > 0) {
    run.formats = item.formats.filter((format): format is ProfileFormat => isProfileFormat(String(format)));
  }
  return run;
}

function isConditionFailure(error: unknown, index: number): boolean {
  return (
    error instanceof TransactionCanceledException &&
    error.CancellationReasons?.[index]?.Code === 'ConditionalCheckFailed'
  );
}

/**
 * The item of a new run, with every index attribute it starts with (exported for the benchmark, which
 * bulk-loads runs). Runs written before `byTime` was sharded carry `allKey` instead of `timeShardKey`.
 */
export function runItem(run: Run): RunItem {
  return {
    ...run,
    [RUN_TABLE.partitionKey]: runPk(run.id),
    [RUN_TABLE.sortKey]: RUN_SK,
    [RUN_TABLE.indexSortKey]: runSortKey(run),
    [RUN_TABLE.indexes.byTarget]: targetKey(run),
    [RUN_TABLE.indexes.byCluster]: run.cluster,
    [RUN_TABLE.indexes.byTime]: timeShardKey(run),
    [RUN_TABLE.indexes.running]: LOCK_SK,
    ...(run.ruleId ? { [RUN_TABLE.indexes.byRule]: run.ruleId } : {}),
    ...(run.groupId ? { [RUN_TABLE.indexes.byGroup]: run.groupId } : {}),
  };
}

/** The item saying that runs of `day` (`yyyy-mm-dd`, UTC) may exist; see RUN_DAY_ITEM. */
export function runDayItem(day: string): Record<string, string> {
  return { [RUN_TABLE.partitionKey]: RUN_DAY_ITEM.pk, [RUN_TABLE.sortKey]: day };
}

/** The day of a run, as RUN_DAY_ITEM lists it. */
export const runDay = (run: Pick<Run, 'triggerTime'>) => dayOf(run.triggerTime);

/**
 * RunStore on one DynamoDB table. A RUNNING run holds its target through a lock item written in the same
 * transaction as the run (`attribute_not_exists`), so a busy target is refused by DynamoDB itself. Trimmed
 * runs leave every index at once and expire through TTL; reads ignore them in the meantime, as TTL deletes
 * late.
 */
export class DynamoDbRunStore implements RunStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The write of each day's RUN_DAY_ITEM, once per day and process (concurrent inserts share one). */
  private readonly daysRecorded = new Map<string, Promise<void>>();

  async insertRunning(run: Run): Promise<InsertResult> {
    const item = runItem(run);
    await this.recordDay(runDay(run));
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: lockPk(run), sk: LOCK_SK, runId: run.id },
                // Free, or held only by a run that ended early and whose JVM session is over by now.
                ConditionExpression: 'attribute_not_exists(pk) OR busyUntil < :now',
                ExpressionAttributeValues: { ':now': run.triggerTime },
              },
            },
            { Put: { TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      return { inserted: true };
    } catch (error) {
      // The run item exists: an earlier try of the same rule firing stored it (its id is derived, not random).
      if (isConditionFailure(error, 1)) {
        const existing = await this.get(run.id);
        if (existing) return { inserted: false, existing };
      }
      if (!isConditionFailure(error, 0)) throw error;
      const lock = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { pk: lockPk(run), sk: LOCK_SK }, ConsistentRead: true }),
      );
      const runningRunId = String(lock.Item?.runId ?? 'unknown');
      const busyUntil = lock.Item?.busyUntil;
      return typeof busyUntil === 'number'
        ? { inserted: false, runningRunId, busyUntil }
        : { inserted: false, runningRunId };
    }
  }

  /**
   * Writes the item saying that runs of `day` may exist, before the first run of the day is written (so a listed
   * run's day is always listed too). A plain idempotent put, outside the run's transaction: transactions on one
   * item conflict with each other, puts do not. One per day and process keeps the RUNDAYS partition cold; an
   * insert that fails after it leaves a day listed with no run, which costs a listing one empty look.
   */
  private recordDay(day: string): Promise<void> {
    let recorded = this.daysRecorded.get(day);
    if (!recorded) {
      recorded = this.client
        .send(new PutCommand({ TableName: this.tableName, Item: runDayItem(day) }))
        .then(() => undefined)
        .catch((error: unknown) => {
          this.daysRecorded.delete(day);
          throw error;
        });
      this.daysRecorded.set(day, recorded);
    }
    return recorded;
  }

  async get(id: string): Promise<Run | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: runPk(id), sk: RUN_SK }, ConsistentRead: true }),
    );
    return Item && !this.isExpired(Item) ? toRun(Item) : undefined;
  }

  async setCommandId(id: string, commandId: string): Promise<void> {
    const run = await this.get(id);
    if (!run) return;
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: runPk(id), sk: RUN_SK },
        UpdateExpression: 'SET commandId = :commandId, #commandKey = :commandKey',
        ExpressionAttributeNames: { '#commandKey': RUN_TABLE.indexes.byCommand },
        ExpressionAttributeValues: { ':commandId': commandId, ':commandKey': commandKey(commandId, run.node) },
      }),
    );
  }

  async finish(id: string, outcome: RunOutcome): Promise<Run | undefined> {
    const run = await this.get(id);
    if (run?.status !== 'RUNNING') return undefined;
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: this.tableName,
                Key: { pk: runPk(id), sk: RUN_SK },
                UpdateExpression:
                  'SET #status = :status, finishedTime = :finishedTime, message = :message, outputFile = :outputFile, artifactKey = :artifactKey, formats = :formats REMOVE #running',
                ConditionExpression: '#status = :running',
                ExpressionAttributeNames: { '#status': 'status', '#running': RUN_TABLE.indexes.running },
                ExpressionAttributeValues: {
                  ':status': outcome.status,
                  ':finishedTime': outcome.finishedTime,
                  ':message': outcome.message,
                  ':outputFile': outcome.outputFile,
                  ':artifactKey': outcome.artifactKey,
                  ':formats': outcome.formats ?? [],
                  ':running': 'RUNNING',
                },
              },
            },
            outcome.busyUntil
              ? {
                  // The JVM may still be profiled: the lock stays, saying until when (insertRunning takes it after).
                  Update: {
                    TableName: this.tableName,
                    Key: { pk: lockPk(run), sk: LOCK_SK },
                    UpdateExpression: 'SET busyUntil = :until, runId = :id',
                    ConditionExpression: 'attribute_not_exists(pk) OR runId = :id',
                    ExpressionAttributeValues: { ':id': id, ':until': outcome.busyUntil },
                  },
                }
              : {
                  // Free the target, unless another run holds it by now (which cannot happen while this one runs).
                  Delete: {
                    TableName: this.tableName,
                    Key: { pk: lockPk(run), sk: LOCK_SK },
                    ConditionExpression: 'attribute_not_exists(pk) OR runId = :id',
                    ExpressionAttributeValues: { ':id': id },
                  },
                },
          ],
        }),
      );
    } catch (error) {
      if (isConditionFailure(error, 0)) return undefined;
      throw error;
    }
    return this.get(id);
  }

  async listForTarget(target: Target, limit: number): Promise<Run[]> {
    return (await this.query({ index: 'byTarget', key: targetKey(target), where: {} }, limit)).runs;
  }

  async list(filter: RunFilter, limit: number, nextToken?: string): Promise<RunPage> {
    // Visible to none of no teams: nothing to read.
    if (filter.teams?.length === 0) return { runs: [] };
    const query = runListQuery(filter);
    return query.index === 'byTime' ? this.listFleet(query, limit, nextToken) : this.query(query, limit, nextToken);
  }

  async findByOutputFile(target: TargetSelector, outputFile: string): Promise<Run | undefined> {
    const { cluster, role, node } = target;
    const { runs } =
      node === undefined
        ? await this.query({ index: 'byCluster', key: cluster, where: { role, outputFile } }, 1)
        : await this.query({ index: 'byTarget', key: targetKey({ cluster, role, node }), where: { outputFile } }, 1);
    return runs[0];
  }

  async findByCommand(commandId: string, node: string): Promise<Run | undefined> {
    return (await this.query({ index: 'byCommand', key: commandKey(commandId, node), where: {} }, 1)).runs[0];
  }

  async listRunning(): Promise<Run[]> {
    const runs: Run[] = [];
    let token: string | undefined;
    do {
      const page = await this.query({ index: 'running', key: LOCK_SK, where: {} }, 100, token);
      runs.push(...page.runs);
      token = page.nextToken;
    } while (token);
    return runs.reverse();
  }

  async trimTarget(target: Target, keep: number): Promise<Run[]> {
    const history = (await this.query({ index: 'byTarget', key: targetKey(target), where: {} }, 1000)).runs;
    const trimmed = history.slice(keep).filter((run) => run.status !== 'RUNNING');
    const expiresAt = Math.floor(this.now() / 1000);
    // Leave every listing index now; TTL deletes the item later.
    const { byTarget, byCluster, byTime, byTimeLegacy, byRule, byGroup, byCommand } = RUN_TABLE.indexes;
    const listings = [byTarget, byCluster, byTime, byTimeLegacy, byRule, byGroup, byCommand];
    for (const run of trimmed) {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: runPk(run.id), sk: RUN_SK },
          UpdateExpression: `SET #ttl = :expiresAt REMOVE ${listings.join(', ')}`,
          ExpressionAttributeNames: { '#ttl': RUN_TABLE.ttlAttribute },
          ExpressionAttributeValues: { ':expiresAt': expiresAt },
        }),
      );
    }
    return trimmed;
  }

  private isExpired(item: Record<string, unknown>): boolean {
    const expiresAt = item[RUN_TABLE.ttlAttribute];
    return typeof expiresAt === 'number' && expiresAt * 1000 <= this.now();
  }

  /** The FilterExpression of a query's `where` and `teams`, expired runs left out, with its names and values. */
  private filterOf(query: RunQuery): {
    expression: string;
    names: Record<string, string>;
    values: Record<string, unknown>;
  } {
    const { where, teams } = query;
    const conditions = Object.entries(where).filter(([, value]) => value !== undefined);
    const teamValues = Object.fromEntries((teams ?? []).map((team, i) => [`:team${i}`, team]));
    const teamCondition = teams
      ? [
          `(${Object.keys(teamValues)
            .map((value) => `contains(#teams, ${value})`)
            .join(' OR ')})`,
        ]
      : [];
    return {
      names: {
        '#ttl': RUN_TABLE.ttlAttribute,
        ...(teams ? { '#teams': 'teams' } : {}),
        ...Object.fromEntries(conditions.map(([field]) => [`#${field}`, field])),
      },
      values: {
        ':now': Math.floor(this.now() / 1000),
        ...Object.fromEntries(conditions.map(([field, value]) => [`:${field}`, value])),
        ...teamValues,
      },
      expression: [
        '(attribute_not_exists(#ttl) OR #ttl > :now)',
        ...conditions.map(([field]) => `#${field} = :${field}`),
        ...teamCondition,
      ].join(' AND '),
    };
  }

  /**
   * Reads an index newest first, keeping the items that match `where`, until `limit` runs are found. The
   * page token is the index key of the last run returned, so the next page starts right after it; a token
   * is checked against this very query before DynamoDB sees it (see `readPageToken`).
   */
  private async query(query: RunQuery, limit: number, nextToken?: string): Promise<RunPage> {
    const { index, key } = query;
    const indexName = RUN_TABLE.indexes[index];
    const filter = this.filterOf(query);
    const input: QueryCommandInput = {
      TableName: this.tableName,
      IndexName: indexName,
      KeyConditionExpression: '#key = :key',
      FilterExpression: filter.expression,
      ExpressionAttributeNames: { '#key': indexName, ...filter.names },
      ExpressionAttributeValues: { ':key': key, ...filter.values },
      ScanIndexForward: false,
      ExclusiveStartKey: nextToken ? readPageToken(nextToken, query) : undefined,
    };
    // Read one match beyond the page: only then is there surely a next page.
    const items: Array<Record<string, unknown>> = [];
    let fromClient = nextToken !== undefined;
    do {
      const page = await this.client.send(new QueryCommand(input)).catch((error: unknown) => {
        // Second line of defence: DynamoDB's own refusal of a start key that came from the client.
        throw fromClient && isStartKeyRefusal(error) ? new ValidationError(TOKEN_REFUSED, { cause: error }) : error;
      });
      fromClient = false;
      items.push(...(page.Items ?? []));
      input.ExclusiveStartKey = page.LastEvaluatedKey;
    } while (items.length <= limit && input.ExclusiveStartKey);
    const runs = items.slice(0, limit).map(toRun);
    const lastItem = items[limit - 1];
    if (items.length <= limit || !lastItem) return { runs };
    const lastKey = Object.fromEntries(startKeyAttributes(index).map((name) => [name, lastItem[name]]));
    return { runs, nextToken: runPageToken(query, lastKey) };
  }

  /**
   * The fleet-wide listing: every shard of every day in `byTime`, and the legacy partition, merged newest first
   * (see `mergeNewestFirst`). Each source is queried below the sort key of the last run handed out, which is
   * all the page token holds: sort keys are unique (they end in the run id), so the next page starts exactly
   * after that run, whatever other runs share its millisecond.
   */
  private async listFleet(query: RunQuery, limit: number, nextToken?: string): Promise<RunPage> {
    const below = nextToken ? readFleetPageToken(nextToken, query) : undefined;
    const filter = this.filterOf(query);
    const source = (index: IndexName, key: string, firstLimit: number) =>
      new IndexSource(async (startKey, want) => {
        const name = RUN_TABLE.indexes[index];
        const page = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: name,
            KeyConditionExpression: below ? '#key = :key AND #sort < :below' : '#key = :key',
            FilterExpression: filter.expression,
            ExpressionAttributeNames: {
              '#key': name,
              ...(below ? { '#sort': RUN_TABLE.indexSortKey } : {}),
              ...filter.names,
            },
            ExpressionAttributeValues: {
              ':key': key,
              ...(below ? { ':below': below } : {}),
              ...filter.values,
            },
            ScanIndexForward: false,
            ExclusiveStartKey: startKey,
            Limit: startKey ? want : firstLimit,
          }),
        );
        return { items: page.Items ?? [], lastKey: page.LastEvaluatedKey };
      });
    const want = limit + 1;
    // A shard holds about 1/timeShards of a day: its first read asks for twice its share, so a page costs
    // about twice the runs it returns and rarely waits for a second read of a shard.
    const shardLimit = Math.ceil((2 * want) / RUN_TABLE.timeShards) + 1;
    const days = this.recordedDays(below === undefined ? undefined : dayOf(Number(below.slice(0, 15))));
    const items = await mergeNewestFirst({
      sources: [source('byTimeLegacy', ALL, want)],
      nextDay: async () => {
        const day = await days.next();
        if (day.done) return undefined;
        const shards = Array.from({ length: RUN_TABLE.timeShards }, (_, shard) =>
          source('byTime', `${day.value}#${shard}`, shardLimit),
        );
        return { below: dayEndSortKey(day.value), sources: shards };
      },
      count: want,
    });
    const runs = items.slice(0, limit).map(toRun);
    const last = items[limit - 1];
    if (items.length <= limit || !last) return { runs };
    return { runs, nextToken: fleetPageToken(query, String(last[RUN_TABLE.indexSortKey])) };
  }

  /** The days listed by RUN_DAY_ITEM, newest first, from `from` (itself included) or from the newest. */
  private async *recordedDays(from: string | undefined): AsyncGenerator<string> {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: from ? '#pk = :pk AND #sk <= :from' : '#pk = :pk',
          ExpressionAttributeNames: { '#pk': RUN_TABLE.partitionKey, ...(from ? { '#sk': RUN_TABLE.sortKey } : {}) },
          ExpressionAttributeValues: { ':pk': RUN_DAY_ITEM.pk, ...(from ? { ':from': from } : {}) },
          ScanIndexForward: false,
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
          Limit: 32,
        }),
      );
      for (const item of page.Items ?? []) yield String(item[RUN_TABLE.sortKey]);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }
}

type Item = Record<string, unknown>;

/** A source of items sorted by `runSortKey`, newest first, read a page at a time as the merge needs them. */
export interface SortedSource {
  /** The newest item not yet taken (`want`: how many more the merge may take), or undefined when there is none. */
  head(want: number): Promise<Item | undefined>;
  /** Takes the head. */
  take(): void;
}

/** One partition of an index as a SortedSource: `read` gets the page after `startKey`, of about `want` items. */
export class IndexSource implements SortedSource {
  private buffer: Item[] = [];
  private startKey: Record<string, unknown> | undefined;
  private exhausted = false;

  constructor(
    private readonly read: (
      startKey: Record<string, unknown> | undefined,
      want: number,
    ) => Promise<{ items: Item[]; lastKey?: Record<string, unknown> | undefined }>,
  ) {}

  async head(want: number): Promise<Item | undefined> {
    // A filtered page may hold no match and still not be the last one: read on.
    while (this.buffer.length === 0 && !this.exhausted) {
      const page = await this.read(this.startKey, want);
      this.buffer = [...page.items];
      this.startKey = page.lastKey;
      this.exhausted = page.lastKey === undefined;
    }
    return this.buffer[0];
  }

  take(): void {
    this.buffer.shift();
  }
}

/** The sources of one older day, and the sort key that every one of its items is below. */
export interface DaySources {
  below: string;
  sources: SortedSource[];
}

/**
 * Merges sorted sources newest first, up to `count` items. `sources` are read from the start; `nextDay` hands
 * out each older day's sources in turn (newest day first, every item of a day below its `below` and above
 * every item of the days after it), opened only once the newest item left might be of that day: a page of
 * today's runs never reads yesterday's shards. Sources of days already open stay in the merge, so the legacy
 * partition, which spans every day, interleaves where its runs belong.
 */
export async function mergeNewestFirst(options: {
  sources: SortedSource[];
  nextDay: () => Promise<DaySources | undefined>;
  count: number;
}): Promise<Item[]> {
  const sortKey = (item: Item) => String(item[RUN_TABLE.indexSortKey]);
  let open = [...options.sources];
  let next = await options.nextDay();
  const merged: Item[] = [];
  while (merged.length < options.count) {
    const want = options.count - merged.length;
    // Sources read in parallel: a newly opened day queries all its shards at once.
    const heads = await Promise.all(open.map((source) => source.head(want)));
    const live = open.flatMap((source, i) => {
      const head = heads[i];
      return head === undefined ? [] : [{ source, head }];
    });
    open = live.map(({ source }) => source);
    const newest = live.reduce<(typeof live)[number] | undefined>(
      (best, candidate) => (best === undefined || sortKey(candidate.head) > sortKey(best.head) ? candidate : best),
      undefined,
    );
    // The next day's runs may be newer than anything open: open it before handing anything out.
    if (next && (newest === undefined || sortKey(newest.head) < next.below)) {
      open.push(...next.sources);
      next = await options.nextDay();
      continue;
    }
    if (newest === undefined) break;
    merged.push(newest.head);
    newest.source.take();
  }
  return merged;
}

/** The runs that `list` reads for a filter: the narrowest index the filter allows, the rest as filters. */
export function runListQuery(filter: RunFilter): RunQuery {
  const { groupId, ruleId, cluster, node, role, status, requestedBy, teams } = filter;
  const [index, key] =
    groupId !== undefined
      ? (['byGroup', groupId] as const)
      : ruleId !== undefined
        ? (['byRule', ruleId] as const)
        : cluster !== undefined && node !== undefined && role !== undefined
          ? (['byTarget', targetKey({ cluster, node, role })] as const)
          : cluster !== undefined
            ? (['byCluster', cluster] as const)
            : (['byTime', FLEET] as const);
  return {
    index,
    key,
    where: { cluster, node, role, status, ruleId, groupId, requestedBy },
    ...(teams ? { teams } : {}),
  };
}

const TOKEN_REFUSED = 'nextToken: is not a token this service handed out for this query';

/** A DynamoDB key as the start of an index query: the table's key and the index's key, nothing else. */
const startKeyAttributes = (index: IndexName) =>
  [RUN_TABLE.partitionKey, RUN_TABLE.sortKey, RUN_TABLE.indexes[index], RUN_TABLE.indexSortKey] as const;

/**
 * A short digest of a query and a start key. It is a checksum, not a signature (there is no secret to sign
 * with): it catches a token edited by hand or passed back with another query, and the shape checks in
 * `readPageToken` keep a well-formed forgery inside the query's own partition, where it can only move the
 * place the listing starts among runs the caller may read anyway.
 */
function pageDigest(query: RunQuery, startKey: Record<string, unknown>): string {
  const where = Object.entries(query.where)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const teams = query.teams ? [...new Set(query.teams)].sort() : null;
  const key = Object.keys(startKey)
    .sort()
    .map((name) => [name, startKey[name]]);
  return createHash('sha256')
    .update(JSON.stringify([query.index, query.key, where, teams, key]))
    .digest('base64url')
    .slice(0, 22);
}

/** The page token for a query that goes on after `startKey` (exported so tests can build well-formed forgeries). */
export function runPageToken(query: RunQuery, startKey: Record<string, unknown>): string {
  const token = { after: startKey, check: pageDigest(query, startKey) };
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const hasExactly = (value: Record<string, unknown>, names: readonly string[]) =>
  Object.keys(value).length === names.length && names.every((name) => Object.hasOwn(value, name));

/** A page token's two fields, if it is base64url JSON of that shape at all. */
function decodePageToken(token: string): { after: unknown; check: unknown } {
  let decoded: unknown;
  try {
    decoded = /^[A-Za-z0-9_-]+$/.test(token) ? JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) : null;
  } catch {
    decoded = null;
  }
  if (!isRecord(decoded) || !hasExactly(decoded, ['after', 'check'])) throw new ValidationError(TOKEN_REFUSED);
  return { after: decoded.after, check: decoded.check };
}

/**
 * The start key in a page token, if the token is one this store handed out for this very query: exactly the
 * table's and the index's key attributes, all strings of the shapes this store writes (`RUN#<id>`, `RUN`,
 * `<15 digits>#<id>` of the same id), in the query's own partition, with the digest of the query and key.
 * DynamoDB refuses a start key from another partition with a ValidationException (a 500 to the caller);
 * moto accepts it; so the check is ours.
 */
function readPageToken(token: string, query: RunQuery): Record<string, string> {
  const names = startKeyAttributes(query.index);
  const { after, check } = decodePageToken(token);
  if (!isRecord(after) || !hasExactly(after, names) || !names.every((name) => typeof after[name] === 'string')) {
    throw new ValidationError(TOKEN_REFUSED);
  }
  const key = after as Record<string, string>;
  const [pk, sk, indexKey, sortKey] = names.map((name) => key[name] as string);
  const id = /^RUN#(.+)$/s.exec(pk ?? '')?.[1];
  const sortId = /^\d{15}#(.+)$/s.exec(sortKey ?? '')?.[1];
  if (
    id === undefined ||
    sortId !== id ||
    sk !== RUN_SK ||
    indexKey !== query.key ||
    typeof check !== 'string' ||
    check !== pageDigest(query, key)
  ) {
    throw new ValidationError(TOKEN_REFUSED);
  }
  return key;
}

const FLEET_SORT_KEY = /^\d{15}#.+$/s;

/** The page token of the fleet-wide query going on below `sortKey`, the sort key of the last run handed out. */
export function fleetPageToken(query: RunQuery, sortKey: string): string {
  return runPageToken(query, { [RUN_TABLE.indexSortKey]: sortKey });
}

/**
 * The sort key in a fleet-wide page token, if the token is one this store handed out for this very query: one
 * attribute, `runSortKey`, of the shape this store writes (`<15 digits>#<id>`), with the digest of the query and
 * key. A forgery with a correct digest can only move where the listing starts, as for `readPageToken`.
 */
function readFleetPageToken(token: string, query: RunQuery): string {
  const { after, check } = decodePageToken(token);
  const name = RUN_TABLE.indexSortKey;
  if (!isRecord(after) || !hasExactly(after, [name])) throw new ValidationError(TOKEN_REFUSED);
  const sortKey = after[name];
  if (
    typeof sortKey !== 'string' ||
    !FLEET_SORT_KEY.test(sortKey) ||
    typeof check !== 'string' ||
    check !== pageDigest(query, { [name]: sortKey })
  ) {
    throw new ValidationError(TOKEN_REFUSED);
  }
  return sortKey;
}

/** DynamoDB's ValidationException about the start key of a query (wrong partition, wrong attributes). */
function isStartKeyRefusal(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.name === 'ValidationException' &&
    /ExclusiveStartKey|start(ing)? key/i.test(error.message)
  );
}
