import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ValidationError } from '#domain/errors.ts';
import type { RunFilter, RunOutcome, RunPage, RunStore, TargetSelector } from '#domain/ports.ts';
import type { Run, Target } from '#domain/run.ts';
import { RUN_TABLE } from './run-table.ts';

type IndexName = keyof typeof RUN_TABLE.indexes;

const RUN_SK = 'RUN';
const LOCK_SK = 'RUNNING';
const ALL = 'ALL';

const runPk = (id: string) => `RUN#${id}`;
const targetKey = (t: Target) => `${t.cluster}#${t.role}#${t.node}`;
const lockPk = (t: Target) => `TARGET#${targetKey(t)}`;
const commandKey = (commandId: string, node: string) => `${commandId}#${node}`;
const runSortKey = (run: Pick<Run, 'triggerTime' | 'id'>) => `${String(run.triggerTime).padStart(15, '0')}#${run.id}`;

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
  return run;
}

function isConditionFailure(error: unknown, index: number): boolean {
  return (
    error instanceof TransactionCanceledException &&
    error.CancellationReasons?.[index]?.Code === 'ConditionalCheckFailed'
  );
}

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

  async insertRunning(run: Run): Promise<{ inserted: true } | { inserted: false; runningRunId: string }> {
    const item: RunItem = {
      ...run,
      [RUN_TABLE.partitionKey]: runPk(run.id),
      [RUN_TABLE.sortKey]: RUN_SK,
      [RUN_TABLE.indexSortKey]: runSortKey(run),
      [RUN_TABLE.indexes.byTarget]: targetKey(run),
      [RUN_TABLE.indexes.byCluster]: run.cluster,
      [RUN_TABLE.indexes.byTime]: ALL,
      [RUN_TABLE.indexes.running]: LOCK_SK,
      ...(run.ruleId ? { [RUN_TABLE.indexes.byRule]: run.ruleId } : {}),
    };
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: lockPk(run), sk: LOCK_SK, runId: run.id },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            { Put: { TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } },
          ],
        }),
      );
      return { inserted: true };
    } catch (error) {
      if (!isConditionFailure(error, 0)) throw error;
      const lock = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { pk: lockPk(run), sk: LOCK_SK }, ConsistentRead: true }),
      );
      return { inserted: false, runningRunId: String(lock.Item?.runId ?? 'unknown') };
    }
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
                  'SET #status = :status, finishedTime = :finishedTime, message = :message, outputFile = :outputFile, artifactKey = :artifactKey REMOVE #running',
                ConditionExpression: '#status = :running',
                ExpressionAttributeNames: { '#status': 'status', '#running': RUN_TABLE.indexes.running },
                ExpressionAttributeValues: {
                  ':status': outcome.status,
                  ':finishedTime': outcome.finishedTime,
                  ':message': outcome.message,
                  ':outputFile': outcome.outputFile,
                  ':artifactKey': outcome.artifactKey,
                  ':running': 'RUNNING',
                },
              },
            },
            {
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
    return (await this.query('byTarget', targetKey(target), {}, limit)).runs;
  }

  async list(filter: RunFilter, limit: number, nextToken?: string): Promise<RunPage> {
    const { ruleId, cluster, node, role, status, requestedBy, teams } = filter;
    // Visible to none of no teams: nothing to read.
    if (teams?.length === 0) return { runs: [] };
    const [index, key] =
      ruleId !== undefined
        ? (['byRule', ruleId] as const)
        : cluster !== undefined && node !== undefined && role !== undefined
          ? (['byTarget', targetKey({ cluster, node, role })] as const)
          : cluster !== undefined
            ? (['byCluster', cluster] as const)
            : (['byTime', ALL] as const);
    return this.query(index, key, { cluster, node, role, status, ruleId, requestedBy }, limit, nextToken, teams);
  }

  async findByOutputFile(target: TargetSelector, outputFile: string): Promise<Run | undefined> {
    const { cluster, role, node } = target;
    const { runs } =
      node === undefined
        ? await this.query('byCluster', cluster, { role, outputFile }, 1)
        : await this.query('byTarget', targetKey({ cluster, role, node }), { outputFile }, 1);
    return runs[0];
  }

  async findByCommand(commandId: string, node: string): Promise<Run | undefined> {
    return (await this.query('byCommand', commandKey(commandId, node), {}, 1)).runs[0];
  }

  async listRunning(): Promise<Run[]> {
    const runs: Run[] = [];
    let token: string | undefined;
    do {
      const page = await this.query('running', LOCK_SK, {}, 100, token);
      runs.push(...page.runs);
      token = page.nextToken;
    } while (token);
    return runs.reverse();
  }

  async trimTarget(target: Target, keep: number): Promise<Run[]> {
    const history = (await this.query('byTarget', targetKey(target), {}, 1000)).runs;
    const trimmed = history.slice(keep).filter((run) => run.status !== 'RUNNING');
    const expiresAt = Math.floor(this.now() / 1000);
    // Leave every listing index now; TTL deletes the item later.
    const { byTarget, byCluster, byTime, byRule, byCommand } = RUN_TABLE.indexes;
    for (const run of trimmed) {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: runPk(run.id), sk: RUN_SK },
          UpdateExpression: `SET #ttl = :expiresAt REMOVE ${[byTarget, byCluster, byTime, byRule, byCommand].join(', ')}`,
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

  /**
   * Reads an index newest first, keeping the items that match `where`, until `limit` runs are found. The
   * page token is the index key of the last run returned, so the next page starts right after it.
   */
  private async query(
    index: IndexName,
    key: string,
    where: Partial<Record<'cluster' | 'node' | 'role' | 'status' | 'ruleId' | 'requestedBy' | 'outputFile', string>>,
    limit: number,
    nextToken?: string,
    /** Keep only runs whose `teams` list holds one of these. */
    teams?: readonly string[],
  ): Promise<RunPage> {
    const indexName = RUN_TABLE.indexes[index];
    const conditions = Object.entries(where).filter(([, value]) => value !== undefined);
    const teamValues = Object.fromEntries((teams ?? []).map((team, i) => [`:team${i}`, team]));
    const teamCondition = teams
      ? [
          `(${Object.keys(teamValues)
            .map((value) => `contains(#teams, ${value})`)
            .join(' OR ')})`,
        ]
      : [];
    const input: QueryCommandInput = {
      TableName: this.tableName,
      IndexName: indexName,
      KeyConditionExpression: '#key = :key',
      ExpressionAttributeNames: {
        '#key': indexName,
        '#ttl': RUN_TABLE.ttlAttribute,
        ...(teams ? { '#teams': 'teams' } : {}),
        ...Object.fromEntries(conditions.map(([field]) => [`#${field}`, field])),
      },
      ExpressionAttributeValues: {
        ':key': key,
        ':now': Math.floor(this.now() / 1000),
        ...Object.fromEntries(conditions.map(([field, value]) => [`:${field}`, value])),
        ...teamValues,
      },
      FilterExpression: [
        '(attribute_not_exists(#ttl) OR #ttl > :now)',
        ...conditions.map(([field]) => `#${field} = :${field}`),
        ...teamCondition,
      ].join(' AND '),
      ScanIndexForward: false,
      ExclusiveStartKey: nextToken ? decodeToken(nextToken) : undefined,
    };
    // Read one match beyond the page: only then is there surely a next page.
    const items: Array<Record<string, unknown>> = [];
    do {
      const page = await this.client.send(new QueryCommand(input));
      items.push(...(page.Items ?? []));
      input.ExclusiveStartKey = page.LastEvaluatedKey;
    } while (items.length <= limit && input.ExclusiveStartKey);
    const runs = items.slice(0, limit).map(toRun);
    const lastItem = items[limit - 1];
    if (items.length <= limit || !lastItem) return { runs };
    const lastKey = {
      pk: lastItem.pk,
      sk: lastItem.sk,
      [indexName]: lastItem[indexName],
      [RUN_TABLE.indexSortKey]: lastItem[RUN_TABLE.indexSortKey],
    };
    return { runs, nextToken: Buffer.from(JSON.stringify(lastKey)).toString('base64url') };
  }
}

function decodeToken(token: string): Record<string, unknown> {
  try {
    const key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (key && typeof key === 'object' && typeof key.pk === 'string') return key;
  } catch {
    // fall through
  }
  throw new ValidationError('nextToken: is not a token this service handed out');
}
