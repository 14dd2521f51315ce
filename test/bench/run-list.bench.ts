/**
 * `npx tsx test/bench/run-list.bench.ts`: the fleet-wide run list on DynamoDB (moto), 10,000 runs.
 *
 * Starts a moto_server on a free loopback port as the integration tier does (or uses AWS_ENDPOINT_URL), creates
 * the run table as the stack does, and writes 10,000 runs spread over 30 days, 6 clusters and both roles, some
 * sharing a millisecond; a tenth are written as the store wrote them before the fleet-wide index was sharded
 * (`allKey = ALL`, no day item), to read them back through the migration path. Then reads `/runs` (the store's
 * `list`, as the API calls it for an admin) in pages of 50 newest first to the end, and a few filtered
 * listings (their first BENCH_FILTERED_PAGES pages), and prints: write throughput, per-page read latency p50/p99 and DynamoDB queries per page, pages,
 * runs read (checked: 10,000, newest first, no duplicates), and how the writes spread over partition keys.
 *
 * Writes go in BatchWriteItem calls (25 items, BENCH_WRITE_CONCURRENCY at a time) of the very items
 * `insertRunning` writes (`runItem`, `runDayItem`): moto deep-copies the whole table on every TransactWriteItems
 * and is not thread-safe there, so 10,000 real inserts would measure moto, not the store.
 */

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TestProject } from 'vitest/node';
import { DynamoDbRunStore, runDay, runDayItem, runItem } from '#adapters/aws/dynamodb-run-store.ts';
import { RUN_TABLE } from '#adapters/aws/run-table.ts';
import type { RunFilter } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { createRunTable } from '#test/support/aws-resources.ts';
import startMoto from '#test/support/moto-global-setup.ts';
import { seeded } from '#test/support/seeded.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 10_000);
const DAYS = Number(process.env.BENCH_DAYS ?? 30);
const CLUSTERS = 6;
const PAGE = 50;
const LEGACY_SHARE = 0.1;
const WRITE_CONCURRENCY = Number(process.env.BENCH_WRITE_CONCURRENCY ?? 4);
/** Pages read of each filtered listing (moto reads its whole table for every query, so a full walk is slow). */
const FILTERED_PAGES = Number(process.env.BENCH_FILTERED_PAGES ?? 4);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function report(name: string, samples: number[], extra = ''): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const fmt = (ms: number) => `${ms.toFixed(2)} ms`.padStart(10);
  console.log(
    `${name.padEnd(40)} n=${String(samples.length).padStart(4)}  p50 ${fmt(percentile(sorted, 50))}  p99 ${fmt(percentile(sorted, 99))}  max ${fmt(sorted[sorted.length - 1] ?? Number.NaN)}${extra}`,
  );
}

/** RUNS runs over the DAYS days before a fixed end, every 20th in the same millisecond as the one before. */
function makeRuns(): Run[] {
  const random = seeded(14);
  const end = Date.UTC(2026, 10, 30);
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const previous = runs[i - 1];
    const triggerTime =
      previous && i % 20 === 0 ? previous.triggerTime : end - Math.floor(random() * DAYS * 86_400_000);
    const status = random() < 0.1 ? 'FAILED' : 'FINISHED';
    runs.push({
      id: `run-${String(i).padStart(5, '0')}-${Math.floor(random() * 1e9).toString(36)}`,
      cluster: `cluster-${i % CLUSTERS}`,
      node: `i-${(i % 97).toString(16).padStart(17, '0')}`,
      role: i % 5 === 0 ? 'jobmanager' : 'taskmanager',
      mode: 'ITIMER',
      duration: 30,
      status,
      triggerTime,
      finishedTime: triggerTime + 31_000,
      message: status === 'FINISHED' ? 'Profiling Successful' : 'the JVM exited',
      outputFile: null,
      commandId: null,
      artifactKey: null,
      requestedBy: 'bench',
      ruleId: null,
      teams: [`team-${i % 3}`],
    });
  }
  return runs;
}

/** The item of a run as the store wrote it before `byTime` was sharded. */
function legacyItem(run: Run): Record<string, unknown> {
  const { [RUN_TABLE.indexes.byTime]: _sharded, ...item } = runItem(run);
  return { ...item, [RUN_TABLE.indexes.byTimeLegacy]: 'ALL' };
}

/** A finished run's item: what a run's item holds once `finish` has run (no RUNNING index entry). */
function finishedItem(item: Record<string, unknown>): Record<string, unknown> {
  const { [RUN_TABLE.indexes.running]: _running, ...rest } = item;
  return rest;
}

async function writeAll(
  dynamo: DynamoDBDocumentClient,
  table: string,
  items: Array<Record<string, unknown>>,
): Promise<void> {
  const batches: Array<Array<Record<string, unknown>>> = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITE_CONCURRENCY }, async () => {
      for (let batch = batches[next++]; batch; batch = batches[next++]) {
        let requests = batch.map((Item) => ({ PutRequest: { Item } }));
        while (requests.length > 0) {
          const { UnprocessedItems } = await dynamo.send(
            new BatchWriteCommand({ RequestItems: { [table]: requests } }),
          );
          requests = (UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }
    }),
  );
}

const provided = new Map<string, unknown>();
// The integration tier's own start of moto (a free port, stopped afterwards), handed what it provides.
const motoProject = {
  provide: (key: string, value: unknown) => {
    provided.set(key, value);
  },
};
const stopMoto = await startMoto(motoProject as unknown as TestProject);
Object.assign(process.env, {
  AWS_ENDPOINT_URL: String(provided.get('awsEndpoint')),
  AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'bench',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'bench',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});
const client = new DynamoDBClient({});
let queries = 0;
client.middlewareStack.add(
  (next, context) => async (args) => {
    if (context.commandName === 'QueryCommand') queries += 1;
    return next(args);
  },
  { step: 'initialize', name: 'countQueries' },
);
const dynamo = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
try {
  const table = await createRunTable();
  const store = new DynamoDbRunStore(dynamo, table);
  const runs = makeRuns();
  const legacyCount = Math.round(RUNS * LEGACY_SHARE);
  const items = runs.map((run, i) => finishedItem(i % RUNS < legacyCount ? legacyItem(run) : runItem(run)));
  const days = [...new Set(runs.slice(legacyCount).map(runDay))].map(runDayItem);

  const writeStart = performance.now();
  await writeAll(dynamo, table, [...days, ...items]);
  const writeMs = performance.now() - writeStart;

  console.log(
    `run list: ${RUNS} runs over ${DAYS} days, ${CLUSTERS} clusters, ${legacyCount} written before sharding; moto ${provided.get('awsEndpoint')}, Node ${process.version}`,
  );
  console.log(
    `${'writes (BatchWriteItem of 25)'.padEnd(40)} ${RUNS} runs + ${days.length} day items in ${(writeMs / 1000).toFixed(1)} s: ${((RUNS + days.length) / (writeMs / 1000)).toFixed(0)} items/s (concurrency ${WRITE_CONCURRENCY})`,
  );

  // How writes spread over the fleet-wide index's partitions: the sharded keys, and the one legacy key.
  const perKey = new Map<string, number>();
  for (const item of items) {
    const key = String(item[RUN_TABLE.indexes.byTime] ?? `${item[RUN_TABLE.indexes.byTimeLegacy]} (legacy)`);
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
  }
  const sharded = [...perKey].filter(([key]) => !key.endsWith('(legacy)'));
  const counts = sharded.map(([, count]) => count).sort((a, b) => a - b);
  const busiest = sharded.reduce((a, b) => (b[1] > a[1] ? b : a));
  console.log(
    `${'byTime partition keys (sharded runs)'.padEnd(40)} ${sharded.length} keys (${DAYS + 1} days x ${RUN_TABLE.timeShards} shards at most); runs per key min ${counts[0]}, p50 ${percentile(counts, 50)}, max ${counts[counts.length - 1]} (${busiest[0]}: ${((100 * busiest[1]) / (RUNS - legacyCount)).toFixed(2)}% of sharded writes; one key before: 100%)`,
  );
  const perShard = Array.from({ length: RUN_TABLE.timeShards }, (_, shard) =>
    sharded.filter(([key]) => key.endsWith(`#${shard}`)).reduce((sum, [, count]) => sum + count, 0),
  );
  console.log(`${'runs per shard, all days'.padEnd(40)} ${perShard.join(' ')}`);
  const perDay = new Map<string, number>();
  for (const [key, count] of sharded) perDay.set(key.slice(0, 10), (perDay.get(key.slice(0, 10)) ?? 0) + count);
  const [busiestDay] = [...perDay].reduce((a, b) => (b[1] > a[1] ? b : a));
  const busiestDayShards = sharded.filter(([key]) => key.startsWith(busiestDay)).sort(([a], [b]) => (a < b ? -1 : 1));
  console.log(
    `${`busiest day ${busiestDay}, runs per shard`.padEnd(40)} ${busiestDayShards.map(([key, count]) => `${key.slice(11)}:${count}`).join(' ')}`,
  );
  console.log(`${'legacy partition ALL'.padEnd(40)} ${perKey.get('ALL (legacy)') ?? 0} runs (read as one more source)`);

  // Every page of /runs, newest first, to the end.
  const expected = [...runs]
    .sort((a, b) => b.triggerTime - a.triggerTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((run) => run.id);
  const pageMs: number[] = [];
  const pageQueries: number[] = [];
  const read: string[] = [];
  let token: string | undefined;
  do {
    const before = queries;
    const start = performance.now();
    const page = await store.list({}, PAGE, token);
    pageMs.push(performance.now() - start);
    pageQueries.push(queries - before);
    read.push(...page.runs.map((run) => run.id));
    token = page.nextToken;
  } while (token);
  const sortedQueries = [...pageQueries].sort((a, b) => a - b);
  report(
    `GET /runs?limit=${PAGE}, every page`,
    pageMs,
    `  queries/page p50 ${percentile(sortedQueries, 50)} max ${sortedQueries[sortedQueries.length - 1]}`,
  );
  const unique = new Set(read).size;
  const inOrder = read.length === expected.length && read.every((id, i) => id === expected[i]);
  console.log(
    `${'pages read'.padEnd(40)} ${pageMs.length} pages, ${read.length} runs, ${unique} distinct, ${read.length - unique} duplicates, newest first: ${inOrder ? 'yes' : 'NO'}`,
  );

  const filters: Array<[string, RunFilter]> = [
    ['cluster=cluster-2 (byCluster)', { cluster: 'cluster-2' }],
    ['status=FAILED (fleet, filtered)', { status: 'FAILED' }],
    ['role=jobmanager (fleet, filtered)', { role: 'jobmanager' }],
    ['teams=[team-1] (a member, fleet)', { teams: ['team-1'] }],
  ];
  const byId = new Map(runs.map((run) => [run.id, run]));
  let filteredOk = true;
  for (const [name, filter] of filters) {
    const ms: number[] = [];
    const seen: string[] = [];
    let next: string | undefined;
    do {
      const start = performance.now();
      const page = await store.list(filter, PAGE, next);
      ms.push(performance.now() - start);
      seen.push(...page.runs.map((run) => run.id));
      next = page.nextToken;
    } while (next && ms.length < FILTERED_PAGES);
    const matching = expected.filter((id) => {
      const run = byId.get(id) as Run;
      return (
        (filter.cluster === undefined || run.cluster === filter.cluster) &&
        (filter.status === undefined || run.status === filter.status) &&
        (filter.role === undefined || run.role === filter.role) &&
        (filter.teams === undefined || filter.teams.some((team) => run.teams?.includes(team)))
      );
    });
    // The pages read are the newest runs of the filter, in order (all of them when the listing ended).
    const want = next ? matching.slice(0, seen.length) : matching;
    const ok = seen.length === want.length && seen.every((id, i) => id === want[i]);
    filteredOk &&= ok;
    const of = next ? `the newest ${seen.length} of ${matching.length}` : `all ${seen.length}`;
    report(`GET /runs?${name}`, ms, `  ${of} runs, ${ok ? 'in order' : 'WRONG'}`);
  }
  if (!inOrder || read.length !== RUNS || unique !== RUNS || !filteredOk) {
    console.error('run list: the listing did not read every run exactly once, newest first');
    process.exitCode = 1;
  }
} finally {
  dynamo.destroy();
  await stopMoto();
}
