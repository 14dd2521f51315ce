/**
 * `npm run bench`, second part: Flink's own profiler and Flink Fleet Profiler side by side, on the same TaskManager
 * of a real Flink 1.20 cluster (`rest.profiling.enabled: true`), same mode and duration.
 *
 * For each, per run: the time from sending the request to holding the downloaded flame graph (the profile's duration
 * included: what a user waits), and the size of that file. Flink: POST /taskmanagers/<id>/profiler, poll its history,
 * GET the file. Ours (local mode): POST …/taskmanagers/<node>/profiler, poll /runs/<id>, GET the link it carries.
 * Both are polled every POLL_MS. The two alternate (which goes first swaps every round); one warm-up run of each
 * (Flink extracts and loads its library, ours attaches the first time) is shown but not counted.
 *
 * Settings: BENCH_SIDE_BY_SIDE_REPS (default 5), BENCH_SIDE_BY_SIDE_DURATION (s, default 3), BENCH_SIDE_BY_SIDE_MODE
 * (default ITIMER), BENCH_SIDE_BY_SIDE_POLL_MS (default 100).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installAsyncProfiler } from '#local/async-profiler.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { busyMapFrame, type FlinkCluster, startFlinkCluster } from '#test/support/flink-cluster.ts';
import { type LocalServerProcess, startLocalServerProcess } from '#test/support/local-server-process.ts';
import { toolsDir } from '#test/support/paths.ts';
import {
  ourNodeOf,
  type ProfileOutcome,
  type ProfilingInfo,
  profileWithFlink,
  profileWithOurs,
} from '#test/support/profiling-clients.ts';

const REPS = Number(process.env.BENCH_SIDE_BY_SIDE_REPS ?? 5);
const DURATION = Number(process.env.BENCH_SIDE_BY_SIDE_DURATION ?? 3);
const MODE = process.env.BENCH_SIDE_BY_SIDE_MODE ?? 'ITIMER';
const POLL_MS = Number(process.env.BENCH_SIDE_BY_SIDE_POLL_MS ?? 100);

interface Sample {
  ms: number;
  bytes: number;
  frames: number;
  operator: boolean;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function sampleOf(who: string, outcome: ProfileOutcome<ProfilingInfo>): Sample {
  if (outcome.info.status !== 'FINISHED' || outcome.html === undefined) {
    throw new Error(`${who}'s run did not finish: ${JSON.stringify(outcome.info)}`);
  }
  const frames = flameGraphFrames(outcome.html);
  return {
    ms: outcome.requestToFileMs,
    bytes: outcome.bytes ?? 0,
    frames: frames.length,
    operator: frames.includes(busyMapFrame) || frames.includes('fleetprofiler/job/BusyMapFunction.map'),
  };
}

const fmtMs = (ms: number) => `${ms.toFixed(0)} ms`;
const fmtKiB = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function report(name: string, warmUp: Sample, samples: Sample[]): void {
  const ms = samples.map((s) => s.ms);
  const cells = [
    name.padEnd(30),
    `n=${samples.length}`,
    `p50 ${fmtMs(median(ms))}`.padStart(12),
    `(+${fmtMs(median(ms) - DURATION * 1000)} over ${DURATION} s)`.padStart(22),
    `min ${fmtMs(Math.min(...ms))}`.padStart(12),
    `max ${fmtMs(Math.max(...ms))}`.padStart(12),
    `file p50 ${fmtKiB(median(samples.map((s) => s.bytes)))}`.padStart(20),
    `frames p50 ${median(samples.map((s) => s.frames))}`.padStart(16),
    `operator ${samples.filter((s) => s.operator).length}/${samples.length}`,
    `first run ${fmtMs(warmUp.ms)}`,
  ];
  console.log(cells.join('  '));
}

const asprof = await installAsyncProfiler(toolsDir);
const dataDir = mkdtempSync(join(tmpdir(), 'ffp-bench-sbs-'));
const agentTmp = mkdtempSync(join(tmpdir(), 'ffp-bench-sbs-agent-'));
chmodSync(agentTmp, 0o755);
let cluster: FlinkCluster | undefined;
let server: LocalServerProcess | undefined;
try {
  const clusterStart = performance.now();
  cluster = await startFlinkCluster({ taskManagers: 1, profilingEnabled: true });
  const clusterMs = performance.now() - clusterStart;
  const [taskManager] = cluster.taskManagers;
  if (!taskManager) throw new Error('the cluster has no TaskManager');
  server = await startLocalServerProcess({
    ASPROF: asprof,
    FLINK_PROFILER_DATA: dataDir,
    FLINK_PROFILER_TMPDIR: agentTmp,
  });
  const node = await ourNodeOf(server.api, taskManager.pid);
  const request = { mode: MODE, duration: DURATION };
  const api = server.api;
  const restUrl = cluster.restUrl;

  const flinkRun = async () =>
    sampleOf('Flink', await profileWithFlink(restUrl, taskManager.resourceId, request, { pollMs: POLL_MS }));
  const ourRun = async () => sampleOf('ours', await profileWithOurs(api, 'local', node, request, { pollMs: POLL_MS }));

  // Flink first: its profiler then loads its own async-profiler (2.9). Were ours first, Flink's Java API would find
  // our library's natives already bound and profile with it.
  const flinkWarmUp = await flinkRun();
  const ourWarmUp = await ourRun();
  const flink: Sample[] = [];
  const ours: Sample[] = [];
  for (let round = 0; round < REPS; round++) {
    if (round % 2 === 0) {
      flink.push(await flinkRun());
      ours.push(await ourRun());
    } else {
      ours.push(await ourRun());
      flink.push(await flinkRun());
    }
  }

  console.log(
    `Flink ${cluster.flinkVersion} TaskManager ${taskManager.resourceId} (pid ${taskManager.pid}), ${MODE} ${DURATION} s, ` +
      `poll every ${POLL_MS} ms; cluster up in ${(clusterMs / 1000).toFixed(1)} s; Node ${process.version}`,
  );
  console.log('request -> downloaded flame graph:');
  report("Flink's REST profiler (2.9)", flinkWarmUp, flink);
  report('Flink Fleet Profiler (local)', ourWarmUp, ours);
} finally {
  await server?.stop();
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(agentTmp, { recursive: true, force: true });
}
