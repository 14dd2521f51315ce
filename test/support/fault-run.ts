import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CreateScheduleGroupCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import type { Command } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { vi } from 'vitest';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { runArtifactKeys } from '#domain/artifacts.ts';
import { runDeadline } from '#domain/deadline.ts';
import type { Run } from '#domain/run.ts';
import { ENV } from '#shared/config.ts';
import { launchFlinkInstance, provisionFunctionEnvironment, uniqueName } from '#test/support/aws-resources.ts';
import { startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { installS3AsAws } from '#test/support/s3-as-aws.ts';
import { seeded } from '#test/support/seeded.ts';
import { runAsSsmAgent } from '#test/support/ssm-agent-stand-in.ts';
import { type EventDelivery, installSsmAsAws, statusChangeEvents } from '#test/support/ssm-as-aws.ts';

/**
 * The fault run: runs driven through the real Lambda handlers (API, completion, reconciler, tick) against moto, with
 * AWS's behaviour where moto is friendlier (test/support/ssm-as-aws.ts, s3-as-aws.ts) and a seeded mix of every fault
 * the lifecycle must survive. What the SSM agent does on a node is the stand-in's (moto runs no command): the script
 * runs for real once, against a real JVM with the real async-profiler, and its output is given back for the others.
 *
 * Faults, per fan-out: the API function dies between SendCommand and recording the command ids; a rule's tick dies
 * the same way and is retried by Lambda. Per node: not a managed node (InvalidInstanceId fails its batch); the agent
 * ends in each terminal StatusDetails SSM has (both spellings), or fails; Success but the upload failed silently;
 * the status-change events in order, duplicated, reordered, never sent, or sent before the output reached S3; the
 * completion function failing on its first tries. S3 answers 403 for every missing key (no s3:ListBucket on it).
 */

const invocations = JSON.parse(
  readFileSync(new URL('../fixtures/ssm/get-command-invocation.json', import.meta.url), 'utf8'),
) as { terminal: Array<{ Status: string; StatusDetails: string; ResponseCode: number }> };

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

export interface FaultRunOptions {
  runs: number;
  /** Nodes per cluster: one fan-out per cluster, one of them by a rule's tick. */
  clusterSize: number;
  seed: number;
  asprof: string;
}

export interface FaultRunFigures {
  created: number;
  finished: number;
  failed: number;
  /** RUNNING once every deadline has passed and the reconciler has run. */
  stuck: number;
  /** Runs whose agent's profile reached S3 but that did not end FINISHED with their flame graph stored. */
  lost: number;
  /** Flame graphs beyond one per FINISHED run (a second copy, or one no run names). */
  duplicates: number;
  /** How many nodes got each fault. */
  faults: Record<string, number>;
  /** Runs whose outcome differs from what their fault must give (FINISHED for a profile that reached S3). */
  wrongOutcome: Array<{ runId: string; fault: string; status: string; message: string | null }>;
  seconds: number;
  /** Seconds per phase: the fleet's set-up, the dispatches, the agents and events, the reconciler's passes. */
  phases: Record<string, number>;
}

type NodeFault =
  | { kind: 'healthy'; delivery: EventDelivery | 'before-upload' | 'function-errors' }
  | { kind: 'unmanaged' }
  | { kind: 'status'; StatusDetails: string }
  | { kind: 'agent-failed' }
  | { kind: 'upload-fails-silently' };

const DELIVERIES = ['in-order', 'duplicated', 'reordered', 'never', 'before-upload', 'function-errors'] as const;

/**
 * Every fault, in the proportions of the mix: healthy agents twice per way of delivering their events, each terminal
 * StatusDetails SSM has once (both spellings), and the other faults. Dealt round the fleet in turn and shuffled, so
 * that from 30 nodes on each fault is drawn at least once, whatever the seed.
 */
const FAULT_DECK: NodeFault[] = [
  ...DELIVERIES.flatMap((delivery) => [0, 1].map(() => ({ kind: 'healthy', delivery }) as const)),
  ...invocations.terminal.map(({ StatusDetails }) => ({ kind: 'status', StatusDetails }) as const),
  { kind: 'unmanaged' },
  { kind: 'agent-failed' },
  { kind: 'upload-fails-silently' },
  { kind: 'upload-fails-silently' },
];

function dealFaults(count: number, random: () => number): NodeFault[] {
  const dealt = Array.from({ length: count }, (_, i) => FAULT_DECK[i % FAULT_DECK.length] as NodeFault);
  for (let i = dealt.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [dealt[i], dealt[j]] = [dealt[j] as NodeFault, dealt[i] as NodeFault];
  }
  return dealt;
}

const label = (fault: NodeFault) =>
  fault.kind === 'healthy'
    ? `healthy, events ${fault.delivery}`
    : fault.kind === 'status'
      ? `status ${fault.StatusDetails}`
      : fault.kind;

/**
 * Hooks on every DynamoDB call the functions make. `dieAfterNextSendCommand` makes the next write of a command id
 * fail, as when the sending function dies right after SendCommand. Transactions go to moto one at a time: its
 * TransactWriteItems is not thread-safe (concurrent ones fail with "RuntimeError: dictionary changed size during
 * iteration", an HTML 500), which DynamoDB itself never does to a fan-out's concurrent inserts.
 */
function hookDynamoDb(): { dieAfterNextSendCommand: () => void } {
  const send = DynamoDBDocumentClient.prototype.send as (...args: unknown[]) => Promise<unknown>;
  let dies = false;
  let transactions: Promise<unknown> = Promise.resolve();
  vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (
    this: DynamoDBDocumentClient,
    command: unknown,
    ...rest: unknown[]
  ) {
    if (
      dies &&
      command instanceof UpdateCommand &&
      command.input.UpdateExpression?.includes('commandId = :commandId')
    ) {
      // Dead, not failed: nothing after this point of the invocation runs, not even its catch blocks.
      dies = false;
      return new Promise(() => {});
    }
    if (command instanceof TransactWriteCommand) {
      const result = transactions.then(() => send.call(this, command, ...rest));
      transactions = result.catch(() => undefined);
      return result;
    }
    return send.call(this, command, ...rest);
  } as typeof DynamoDBDocumentClient.prototype.send);
  return {
    dieAfterNextSendCommand: () => {
      dies = true;
    },
  };
}

/** Waits for an invocation to end, or for as long as a dead one is given before Lambda times it out. */
async function untilDeadOrDone(invocation: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const dead = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 2_000);
  });
  await Promise.race([invocation.catch(() => undefined), dead]);
  clearTimeout(timer);
}

/** Lambda's asynchronous invoke: the first try and 2 retries (EventInvokeConfig), then the event is given up. */
async function invokeAsync(handler: Handler, event: unknown, failFirst = 0): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      if (attempt < failFirst) throw new Error('Runtime exited with error: signal: killed');
      await handler(event, lambdaContext);
      return;
    } catch {
      // retried, or given up to the failed-invocations queue after the last try
    }
  }
}

/**
 * Runs the fault run. Call with fake timers for Date installed before anything imported the handlers (the functions
 * keep the clock they were built with), and with AWS_ENDPOINT_URL pointing at moto.
 */
export async function runFaultRun(options: FaultRunOptions): Promise<FaultRunFigures> {
  const started = performance.now();
  const phases: Record<string, number> = {};
  let phaseStart = started;
  const phase = (name: string) => {
    phases[name] = (performance.now() - phaseStart) / 1000;
    phaseStart = performance.now();
  };
  const random = seeded(options.seed);
  const scheduleGroup = uniqueName('fault-run');
  await new SchedulerClient({}).send(new CreateScheduleGroupCommand({ Name: scheduleGroup }));
  const { table, bucket } = await provisionFunctionEnvironment({
    [ENV.graceSeconds]: '30',
    [ENV.deliveryTimeout]: '60',
    [ENV.scheduleGroup]: scheduleGroup,
  });
  const ssm = installSsmAsAws({ beforeAgentReports: 'InProgress' });
  const dynamo = hookDynamoDb();
  installS3AsAws();
  const api = (await import('#lambda/api.lambda.ts')).handler as Handler;
  const completion = (await import('#lambda/completion.lambda.ts')).handler as Handler;
  const reconciler = (await import('#lambda/reconciler.lambda.ts')).handler as Handler;
  const tick = (await import('#lambda/tick.lambda.ts')).handler as Handler;
  const call = async (method: string, path: string, body?: unknown) => {
    const result = await api(httpApiEvent(method, path, { body }), lambdaContext);
    return { status: result.statusCode as number, body: result.body ? JSON.parse(result.body) : undefined };
  };

  // The fleet: clusters of TaskManagers, each node with its fault.
  const clusters = Array.from({ length: Math.ceil(options.runs / options.clusterSize) }, (_, i) => `fault-${i}`);
  const faults = new Map<string, NodeFault>();
  const deck = dealFaults(options.runs, random);
  for (const [i, cluster] of clusters.entries()) {
    const size = Math.min(options.clusterSize, options.runs - i * options.clusterSize);
    const ids = await Promise.all(Array.from({ length: size }, () => launchFlinkInstance(cluster, 'taskmanager')));
    for (const id of ids) {
      const fault = deck.pop() as NodeFault;
      faults.set(id, fault);
      // An unmanaged node: listed by discovery, gone from SSM by the time its command is sent.
      ssm.register(id, {}, { leavesBeforeFirstCommand: fault.kind === 'unmanaged' });
    }
  }

  phase('fleet');
  // One real run of the agent script; its output stands for every healthy node's.
  const jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
  const agentTmp = mkdtempSync(join(tmpdir(), 'ffp-agent-'));
  let replay: { code: number | null; stdout: string; stderr: string } | undefined;

  try {
    // Fan-outs: the second dies after SendCommand; the last comes from a rule whose first tick dies the same way.
    for (const [i, cluster] of clusters.entries()) {
      if (i === clusters.length - 1) {
        const rule = await call('POST', '/api/v1/rules', {
          name: 'fault run',
          cluster,
          target: { role: 'taskmanager' },
          mode: 'ITIMER',
          duration: 1,
          schedule: 'cron(0 3 * * ? *)',
          timezone: 'UTC',
          enabled: true,
        });
        if (rule.status !== 201) throw new Error(`rule not created: ${JSON.stringify(rule.body)}`);
        const event = { ruleId: rule.body.id, version: 1, scheduledTime: new Date(Date.now()).toISOString() };
        dynamo.dieAfterNextSendCommand();
        await untilDeadOrDone(tick(event, lambdaContext));
        // Lambda's retry of the same event: the claimed firing resumes, creating and sending nothing twice.
        await tick(event, lambdaContext);
        continue;
      }
      if (i === 1) dynamo.dieAfterNextSendCommand();
      await untilDeadOrDone(
        call('POST', `/api/v1/clusters/${cluster}/profiler`, { role: 'taskmanager', mode: 'ITIMER', duration: 1 }),
      );
    }

    phase('dispatch');
    // Each node's agent, and the events SSM sends of it.
    for (const [instanceId, fault] of faults) {
      if (fault.kind === 'unmanaged') continue;
      let command: Command;
      try {
        command = ssm.commandTo(instanceId);
      } catch {
        continue; // never sent (its run failed at dispatch, or was not created)
      }
      const endsWith =
        fault.kind === 'status'
          ? invocations.terminal.find((t) => t.StatusDetails === fault.StatusDetails)
          : fault.kind === 'agent-failed'
            ? { Status: 'Failed', StatusDetails: 'Failed' }
            : undefined;
      const delivery = fault.kind === 'healthy' ? fault.delivery : 'in-order';
      const runAgent = async () => {
        const result = await runAsSsmAgent(command, instanceId, {
          asprof: options.asprof,
          tmpDir: agentTmp,
          pid: jvm.pid,
          ...(fault.kind === 'upload-fails-silently' ? { upload: 'fails-silently' as const } : {}),
          ...(endsWith ? { endsWith } : {}),
          ...(fault.kind === 'agent-failed'
            ? { replay: { code: 5, stdout: AGENT_FAILED_STDOUT, stderr: '[ERROR] Profiler already started\n' } }
            : replay && fault.kind !== 'status'
              ? { replay }
              : {}),
        });
        if (!replay && fault.kind === 'healthy') {
          if (result.code !== 0) throw new Error(`the real agent run failed: ${result.stderr}`);
          replay = { code: result.code, stdout: result.stdout, stderr: result.stderr };
        }
      };
      if (delivery === 'before-upload') {
        // The event comes before the agent's output is in S3: the completion throws and Lambda retries it later.
        await runAgent();
        const events = statusChangeEvents(command.CommandId as string, instanceId);
        const objects = await outputObjects(bucket, command.CommandId as string, instanceId);
        // The first try fails (nothing in S3 yet); Lambda's retry comes after the upload.
        await hideObjectsWhile(bucket, objects, async () => {
          await completion(events.at(-1), lambdaContext).catch(() => undefined);
        });
        for (const event of events) await invokeAsync(completion, event);
        continue;
      }
      await runAgent();
      const events =
        delivery === 'function-errors'
          ? statusChangeEvents(command.CommandId as string, instanceId)
          : statusChangeEvents(command.CommandId as string, instanceId, delivery);
      for (const event of events) await invokeAsync(completion, event, delivery === 'function-errors' ? 2 : 0);
    }

    phase('agents and events');
    // The reconciler's minute passes, then the moment every run's deadline is over.
    await reconciler({}, lambdaContext);
    const store = new DynamoDbRunStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), table);
    const runs = await allRuns(store, clusters);
    const lastDeadline = Math.max(
      ...runs.map((run) => runDeadline(run, { deliveryTimeoutSeconds: 60, settleMarginSeconds: 30 })),
    );
    vi.setSystemTime(lastDeadline + 1_000);
    await reconciler({}, lambdaContext);

    phase('reconciler');
    return { ...(await figures(store, bucket, clusters, faults, started)), phases };
  } finally {
    await jvm.stop();
    rmSync(agentTmp, { recursive: true, force: true });
  }
}

const AGENT_FAILED_STDOUT =
  'FLINK_PROFILER_RESULT status=FAILED pid=4242 mode=ITIMER message=Another profiling session is already running in process 4242\n';

async function allRuns(store: DynamoDbRunStore, clusters: string[]): Promise<Run[]> {
  const runs: Run[] = [];
  for (const cluster of clusters) {
    let token: string | undefined;
    do {
      const page = await store.list({ cluster }, 100, token);
      runs.push(...page.runs);
      token = page.nextToken;
    } while (token);
  }
  return runs;
}

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const s3 = new S3Client({});
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key as string));
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

const outputObjects = (bucket: string, commandId: string, instanceId: string) =>
  listKeys(bucket, `ssm-output/${commandId}/${instanceId}/`);

/** Runs `action` while the objects are not in S3 yet (they are read back and written again after). */
async function hideObjectsWhile(bucket: string, keys: string[], action: () => Promise<void>): Promise<void> {
  const { GetObjectCommand, PutObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({});
  const bodies = await Promise.all(
    keys.map(async (Key) => ({
      Key,
      Body: await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body?.transformToString(),
    })),
  );
  for (const { Key } of bodies) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
  await action();
  for (const { Key, Body } of bodies) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
}

async function figures(
  store: DynamoDbRunStore,
  bucket: string,
  clusters: string[],
  faults: Map<string, NodeFault>,
  started: number,
): Promise<Omit<FaultRunFigures, 'phases'>> {
  const runs = await allRuns(store, clusters);
  const artifacts = new Set(await listKeys(bucket, 'profiles/'));
  const finished = runs.filter((run) => run.status === 'FINISHED');
  // A finished run keeps its flame graph and, from a node that converts its recording, the files beside it.
  const named = new Set(finished.flatMap((run) => (run.artifactKey ? runArtifactKeys(run.artifactKey) : [])));
  const wrongOutcome: FaultRunFigures['wrongOutcome'] = [];
  let lost = 0;
  for (const run of runs) {
    const fault = faults.get(run.node) as NodeFault;
    const profileReachedS3 = fault.kind === 'healthy';
    const kept = run.status === 'FINISHED' && run.artifactKey !== null && artifacts.has(run.artifactKey);
    if (profileReachedS3 && !kept) lost++;
    if (profileReachedS3 !== (run.status === 'FINISHED')) {
      wrongOutcome.push({ runId: run.id, fault: label(fault), status: run.status, message: run.message });
    }
  }
  const byLabel: Record<string, number> = {};
  for (const fault of faults.values()) byLabel[label(fault)] = (byLabel[label(fault)] ?? 0) + 1;
  return {
    created: runs.length,
    finished: finished.length,
    failed: runs.filter((run) => run.status === 'FAILED').length,
    stuck: runs.filter((run) => run.status === 'RUNNING').length,
    lost,
    duplicates: [...artifacts].filter((key) => !named.has(key)).length,
    faults: byLabel,
    wrongOutcome,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The figures as a table for the log. */
export function printFigures(figures: FaultRunFigures): string {
  const rows = [
    ['runs created', figures.created],
    ['settled FINISHED', figures.finished],
    ['settled FAILED', figures.failed],
    ['left RUNNING past the deadline (must be 0)', figures.stuck],
    ['artifacts lost (must be 0)', figures.lost],
    ['duplicate artifacts (must be 0)', figures.duplicates],
  ];
  const faults = Object.entries(figures.faults)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `  ${name}: ${count}`);
  return [
    'fault run',
    ...rows.map(([name, value]) => `  ${String(name).padEnd(44)} ${value}`),
    'faults (nodes)',
    ...faults,
    `seconds: ${figures.seconds.toFixed(1)} (${Object.entries(figures.phases)
      .map(([name, seconds]) => `${name} ${seconds.toFixed(1)}`)
      .join(', ')})`,
  ].join('\n');
}
