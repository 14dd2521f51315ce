/**
 * `npm run bench`: one firing of a scheduled rule over 1,000 TaskManagers on the AWS path, with SSM throttling.
 *
 * The rule service, the profiler and the real SsmDispatcher with the SSM client exactly as the Lambda functions
 * build it (ssmClientConfig: the SDK's adaptive retry, one rate limiter for the client) fire one rule whose target is
 * every TaskManager of a cluster of 1,000 simulated nodes (a fake Discovery; runs and rules in SQLite in memory).
 * SendCommand goes to a stub SSM endpoint on loopback that answers a share of the calls with SSM's
 * ThrottlingException (seeded, so runs are comparable) and the rest with a command id, and records every instance id
 * it accepted. Prints, per throttling rate, the SendCommand calls made (accepted and throttled), the most calls in
 * flight at once, the time from the firing to every run dispatched, and checks that no run was sent twice and that
 * every run has the command id of a command the stub accepted for its node (the process exits 1 if not).
 */

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAwsClients } from '#adapters/aws/clients.ts';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import { LOCAL_CALLER } from '#domain/access.ts';
import type { Discovery, FlinkNode, Logger } from '#domain/ports.ts';
import { DEFAULT_SETTINGS, ProfilerService } from '#domain/profiler-service.ts';
import { RuleService } from '#domain/rule-service.ts';
import { seeded } from '#test/support/seeded.ts';

const NODES = Number(process.env.BENCH_RULE_NODES ?? 1000);
const THROTTLE_RATES = (process.env.BENCH_THROTTLE_RATES ?? '0,0.3,0.6').split(',').map(Number);
/** What issue 14 asks of a firing over 1,000 nodes, by throttling rate: every run dispatched within this many ms. */
const AIMS_MS = new Map([
  [0.3, 10_000],
  [0.6, 30_000],
]);
const LATENCY_MS = Number(process.env.BENCH_SSM_LATENCY_MS ?? 20);

interface StubCounts {
  calls: number;
  throttled: number;
  accepted: number;
  instances: number;
  inFlight: number;
  maxInFlight: number;
  /** Every command the stub accepted, by command id: the instance ids it named. */
  commands: Map<string, string[]>;
  /** How many accepted commands named each instance. */
  sentTo: Map<string, number>;
  first?: number;
  last?: number;
}

/** A stand-in for SSM's endpoint (JSON 1.1 protocol): SendCommand only, throttled at `rate`. */
async function startStubSsm(rate: number): Promise<{ url: string; counts: StubCounts; close(): Promise<void> }> {
  const counts: StubCounts = {
    calls: 0,
    throttled: 0,
    accepted: 0,
    instances: 0,
    inFlight: 0,
    maxInFlight: 0,
    commands: new Map(),
    sentTo: new Map(),
  };
  const random = seeded(42);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      counts.inFlight += 1;
      counts.maxInFlight = Math.max(counts.maxInFlight, counts.inFlight);
      setTimeout(() => {
        counts.inFlight -= 1;
        res.setHeader('content-type', 'application/x-amz-json-1.1');
        if (target !== 'AmazonSSM.SendCommand') {
          res.writeHead(400).end(JSON.stringify({ __type: 'UnknownOperationException', message: String(target) }));
          return;
        }
        counts.calls += 1;
        counts.first ??= performance.now();
        counts.last = performance.now();
        if (random() < rate) {
          counts.throttled += 1;
          res.writeHead(400).end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
          return;
        }
        const input = JSON.parse(body) as { InstanceIds: string[] };
        const commandId = randomUUID();
        counts.accepted += 1;
        counts.instances += input.InstanceIds.length;
        counts.commands.set(commandId, input.InstanceIds);
        for (const id of input.InstanceIds) counts.sentTo.set(id, (counts.sentTo.get(id) ?? 0) + 1);
        res.writeHead(200).end(JSON.stringify({ Command: { CommandId: commandId, Status: 'Pending' } }));
      }, LATENCY_MS);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const silent: Logger = { info() {}, warn() {}, error() {} };

/** A cluster of `count` TaskManagers, as EC2 discovery would list tagged instances. */
class FleetDiscovery implements Discovery {
  readonly nodes: FlinkNode[] = Array.from({ length: NODES }, (_, i) => ({
    id: `i-${i.toString(16).padStart(17, '0')}`,
    role: 'taskmanager',
    host: `ip-10-0-${Math.floor(i / 250)}-${i % 250}`,
    reachable: true,
  }));
  async listClusters() {
    return [{ id: 'fleet', nodes: this.nodes.length, teams: [] }];
  }
  async listNodes(cluster: string) {
    return cluster === 'fleet' ? this.nodes : undefined;
  }
}

async function fireOnce(rate: number): Promise<void> {
  const stub = await startStubSsm(rate);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: stub.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  const dir = mkdtempSync(join(tmpdir(), 'ffp-bench-rules-'));
  const clients = createAwsClients();
  const runs = new SqliteRunStore(':memory:');
  const discovery = new FleetDiscovery();
  const profiler = new ProfilerService({
    runs,
    artifacts: new DirectoryArtifactStore(join(dir, 'artifacts'), Buffer.from('bench-secret-0123456789'), () => ''),
    dispatcher: new SsmDispatcher(clients.ssm, clients.s3, {
      documentName: 'FlinkFleetProfiler',
      documentVersion: '1',
      outputBucket: 'bench-artifacts',
      outputPrefix: 'ssm-output/',
      deliveryTimeoutSeconds: 60,
      graceSeconds: 60,
    }),
    discovery,
    // A fleet-wide rule is what this measures: the guardrails (200 targets, 3,600 s per firing) are raised for it,
    // as an operator would for such a rule.
    settings: { ...DEFAULT_SETTINGS, maxFanOut: NODES, maxFiringSeconds: NODES * 30 },
    log: silent,
  });
  const rules = new RuleService({
    rules: new SqliteRuleStore(':memory:'),
    scheduler: { put: async () => {}, remove: async () => {} },
    profiler,
    discovery,
    log: silent,
  });
  try {
    const rule = await rules.create(LOCAL_CALLER, {
      name: 'every TaskManager',
      cluster: 'fleet',
      target: { role: 'taskmanager' },
      mode: 'ITIMER',
      duration: 30,
      schedule: 'cron(0 3 * * ? *)',
      enabled: true,
    });
    const started = performance.now();
    const outcome = await rules.fireRule(rule.id, { scheduledAt: rule.nextFireAt ?? Date.now() });
    const elapsed = performance.now() - started;
    if (!outcome.fired) throw new Error(`the rule did not fire: ${outcome.reason}`);
    const running = await runs.listRunning();
    const failed = (await runs.list({ cluster: 'fleet', status: 'FAILED' }, NODES)).runs;
    const { calls, throttled, accepted, maxInFlight, commands, sentTo, first = 0, last = 0 } = stub.counts;
    const dispatched = running.filter((run) => run.commandId).length;
    const withoutCommand = running.filter((run) => !run.commandId).length;
    // Every run's command id must be one the stub accepted for that very node.
    const wrongCommand = running.filter((run) => run.commandId && !commands.get(run.commandId)?.includes(run.node));
    const sentTwice = [...sentTo.values()].filter((times) => times > 1).length;
    const aim = AIMS_MS.get(rate);
    console.log(
      [
        `throttled ${String(Math.round(rate * 100)).padStart(2)}%:`,
        `${NODES} nodes → ${outcome.firing.runIds.length} runs (${dispatched} dispatched, ${failed.length} failed,`,
        `${withoutCommand} without a command id, ${sentTwice} sent twice);`,
        `SendCommand calls ${String(calls).padStart(3)} (${accepted} accepted, ${throttled} throttled),`,
        `at most ${maxInFlight} in flight;`,
        `all dispatched in ${elapsed.toFixed(0).padStart(5)} ms (SendCommand window ${(last - first).toFixed(0)} ms)`,
        aim === undefined ? '' : `— aim ≤ ${aim / 1000} s: ${elapsed <= aim ? 'met' : 'MISSED'}`,
      ].join(' '),
    );
    for (const run of failed.slice(0, 3)) console.log(`  failed ${run.id}: ${run.message}`);
    if (withoutCommand > 0 || sentTwice > 0 || wrongCommand.length > 0 || failed.length > 0) {
      console.log(`  FAIL: every run must be dispatched exactly once and keep its command id`);
      process.exitCode = 1;
    }
  } finally {
    clients.ssm.destroy();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`rule fan-out: one firing over ${NODES} TaskManagers, SSM stub latency ${LATENCY_MS} ms per call`);
for (const rate of THROTTLE_RATES) await fireOnce(rate);
