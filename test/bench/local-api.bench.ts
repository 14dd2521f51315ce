/**
 * `npm run bench`: latency of the local server's API, measured through its real HTTP port.
 *
 * - POST create (a real run against a real JVM; the profile itself is not timed: the client waits for the
 *   run to end before the next create, so every create finds its target free);
 * - GET list (a target's history, and /runs across targets);
 * - the time from the end of a profile (trigger + duration, as the client sees it) to the run being FINISHED
 *   with a link — agent start-up, async-profiler's write, upload and bookkeeping included.
 *
 * - POST create on 100 different targets, one after another without waiting for the runs (idle JVMs, so the
 *   machine's load is the agents'): the create answers once the run is recorded and its command accepted, before
 *   the agent is forked (issue "Cold start and fleet-scale fan-out").
 *
 * Aims (issue "Local mode, end to end"): create p99 under 20 ms; under 1 s from profile end to link.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installAsyncProfiler } from '#local/async-profiler.ts';
import { startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { startLocalServerProcess } from '#test/support/local-server-process.ts';
import { toolsDir } from '#test/support/paths.ts';

const CREATE_SAMPLES = Number(process.env.BENCH_CREATE_SAMPLES ?? 30);
const LIST_SAMPLES = Number(process.env.BENCH_LIST_SAMPLES ?? 500);
const TARGETS = Number(process.env.BENCH_CREATE_TARGETS ?? 100);
const MANY_DURATION = 20;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function report(name: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const fmt = (ms: number) => `${ms.toFixed(2)} ms`.padStart(11);
  console.log(
    `${name.padEnd(44)} n=${String(samples.length).padStart(4)}  p50 ${fmt(percentile(sorted, 50))}  p99 ${fmt(percentile(sorted, 99))}  max ${fmt(sorted[sorted.length - 1] ?? Number.NaN)}`,
  );
}

async function timed<T>(action: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await action();
  return [result, performance.now() - start];
}

const asprof = await installAsyncProfiler(toolsDir);
const dataDir = mkdtempSync(join(tmpdir(), 'ffp-bench-'));
const jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
const idleJvms: Awaited<ReturnType<typeof startFakeFlinkJvm>>[] = [];
// Ten at a time: a hundred JVMs starting at once would take the machine for a while.
for (let i = 0; i < TARGETS; i += 10) {
  const batch = Math.min(10, TARGETS - i);
  idleJvms.push(
    ...(await Promise.all(
      Array.from({ length: batch }, () =>
        startFakeFlinkJvm({ role: 'taskmanager', idle: true, extraJvmArgs: ['-Xmx16m', '-XX:TieredStopAtLevel=1'] }),
      ),
    )),
  );
}
const server = await startLocalServerProcess({
  ASPROF: asprof,
  FLINK_PROFILER_DATA: dataDir,
  FLINK_PROFILER_HISTORY_SIZE: '10',
});
try {
  const nodes = (await (await fetch(`${server.api}/clusters/local/nodes`)).json()) as {
    nodes: Array<{ id: string; pid: number }>;
  };
  const node = nodes.nodes.find((n) => n.pid === jvm.pid)?.id;
  if (!node) throw new Error('the benchmark JVM was not discovered');
  const profiler = `${server.api}/clusters/local/taskmanagers/${node}/profiler`;

  const createMs: number[] = [];
  const endToLinkMs: number[] = [];
  for (let i = 0; i < CREATE_SAMPLES; i++) {
    const [created, ms] = await timed(() =>
      fetch(profiler, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"mode":"ITIMER","duration":1}',
      }),
    );
    if (created.status !== 200) throw new Error(`create answered ${created.status}: ${await created.text()}`);
    createMs.push(ms);
    const run = (await created.json()) as { id: string; duration: number };
    const profileEnd = performance.now() - ms + run.duration * 1000;
    for (;;) {
      const current = (await (await fetch(`${server.api}/runs/${run.id}`)).json()) as { status: string; url?: string };
      if (current.status === 'FINISHED' && current.url) {
        endToLinkMs.push(performance.now() - profileEnd);
        break;
      }
      if (current.status === 'FAILED') throw new Error(`run failed: ${JSON.stringify(current)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const targetListMs: number[] = [];
  const runsListMs: number[] = [];
  for (let i = 0; i < LIST_SAMPLES; i++) {
    targetListMs.push((await timed(async () => (await fetch(profiler)).arrayBuffer()))[1]);
    runsListMs.push((await timed(async () => (await fetch(`${server.api}/runs?limit=50`)).arrayBuffer()))[1]);
  }

  // One create per target, not waiting for the runs: every agent starts while the next creates are answered.
  const allNodes = (await (await fetch(`${server.api}/clusters/local/nodes`)).json()) as {
    nodes: Array<{ id: string; pid: number }>;
  };
  const idlePids = new Set(idleJvms.map((idle) => idle.pid));
  const targets = allNodes.nodes.filter((n) => idlePids.has(n.pid)).map((n) => n.id);
  if (targets.length !== TARGETS) throw new Error(`found ${targets.length} of the ${TARGETS} idle JVMs`);
  const manyCreateMs: number[] = [];
  const manyRunIds: string[] = [];
  for (const target of targets) {
    const [created, ms] = await timed(() =>
      fetch(`${server.api}/clusters/local/taskmanagers/${target}/profiler`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Long enough that the agents started by earlier creates are asleep in their duration, not converting.
        body: `{"mode":"ITIMER","duration":${MANY_DURATION}}`,
      }),
    );
    if (created.status !== 200) throw new Error(`create answered ${created.status}: ${await created.text()}`);
    manyCreateMs.push(ms);
    manyRunIds.push(((await created.json()) as { id: string }).id);
  }
  const outcomes = new Map<string, number>();
  for (const id of manyRunIds) {
    for (;;) {
      const current = (await (await fetch(`${server.api}/runs/${id}`)).json()) as { status: string };
      if (current.status !== 'RUNNING') {
        outcomes.set(current.status, (outcomes.get(current.status) ?? 0) + 1);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  console.log(`local server ${server.url}, node ${node}, Node ${process.version}`);
  // The first create pays for warming up (JIT, first spawn, first statements): shown apart from the steady state.
  console.log(`${'POST create, the first one (cold)'.padEnd(44)} ${createMs[0]?.toFixed(2)} ms`);
  report('POST create (ITIMER, 1 s), after the first', createMs.slice(1));
  report('GET target history (10 runs, fresh links)', targetListMs);
  report('GET /runs?limit=50', runsListMs);
  report('profile end -> FINISHED with link', endToLinkMs);
  report(`POST create on ${TARGETS} targets (${MANY_DURATION} s runs)`, manyCreateMs);
  console.log(`${''.padEnd(44)} those runs: ${[...outcomes].map(([status, n]) => `${n} ${status}`).join(', ')}`);
} finally {
  await server.stop();
  await jvm.stop();
  await Promise.all(idleJvms.map((idle) => idle.stop()));
  rmSync(dataDir, { recursive: true, force: true });
}
