import { spawn } from 'node:child_process';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { flinkRoleOf } from '#domain/flink-entrypoints.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { busyMapFrame, type FlinkCluster, startFlinkCluster } from '#test/support/flink-cluster.ts';
import { type LocalServerProcess, startLocalServerProcess } from '#test/support/local-server-process.ts';
import { nodeAgentScript } from '#test/support/paths.ts';
import {
  awaitFlinkProfile,
  awaitOurProfile,
  type OurRun,
  ourNodeOf,
  type ProfileOutcome,
  type ProfilingInfo,
  profileWithFlink,
  profileWithOurs,
  startFlinkProfile,
  startOurProfile,
} from '#test/support/profiling-clients.ts';

// The node agent on REAL Flink 1.20 JobManager and TaskManager JVMs (test/support/flink-cluster.ts), through local
// mode's HTTP API (the product path: the server runs our SSM document's script the way the SSM agent does), and
// the agent script directly where the API cannot express a case (no pid, a pid that is no Flink JVM). This test
// process runs as root, as the SSM agent does. Clusters are few and small: the machine may have two cores.

const asprofPath = inject('asprofPath');
const LOCAL = 'local';

const FRAMES = {
  jobManagerMain: 'org/apache/flink/runtime/entrypoint/StandaloneSessionClusterEntrypoint.main',
  taskManagerMain: 'org/apache/flink/runtime/taskexecutor/TaskManagerRunner.main',
  busyMapMethod: 'fleetprofiler/job/BusyMapFunction.map',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function framesOf(outcome: ProfileOutcome<ProfilingInfo>): string[] {
  expect(outcome.html, 'no flame graph').toBeDefined();
  const html = outcome.html ?? '';
  expect(html.trimStart()).toMatch(/^<!DOCTYPE html>/i);
  expect(html.trimEnd()).toMatch(/<\/html>$/);
  return flameGraphFrames(html);
}

const hasStreamTask = (frames: string[]) =>
  frames.some((frame) => frame.startsWith('org/apache/flink/streaming/runtime/tasks/StreamTask.'));
const hasOperator = (frames: string[]) => frames.includes(busyMapFrame) || frames.includes(FRAMES.busyMapMethod);
/** Allocated types are frames of their own in an allocation profile: `java.lang.Long`, `byte[]`. */
const allocatedTypes = (frames: string[]) =>
  frames.filter((f) =>
    /^([a-z_$][\w$]*\.)+[\w$]+(\[\])*$|^(byte|char|short|int|long|float|double|boolean)(\[\])+$/.test(f),
  );
const titleOf = (html: string | undefined) => /<h1>([^<]*)<\/h1>/.exec(html ?? '')?.[1];

async function uidOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1]);
}

/** A directory every user can enter (mkdtemp makes 0700 ones): the JVM's user must reach the agent's scratch dir. */
async function openTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

/** How many perf_event descriptors a process holds (async-profiler's cpu engine opens one per thread). */
async function perfEventFds(pid: number): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target === 'anon_inode:[perf_event]').length;
}

/**
 * Whether a JVM of this uid may open perf events, from what this machine tells: root may; others may open
 * user-space events while `kernel.perf_event_paranoid` <= 2. Undefined where the machine cannot tell: a seccomp
 * filter (containers) may block perf_event_open whatever the sysctl says, and at 3 Debian's and Ubuntu's kernels
 * forbid perf events to users while upstream kernels treat 3 as 2.
 */
async function perfEventsExpected(jvmUid: number): Promise<boolean | undefined> {
  const seccomp = /^Seccomp:\s*(\d+)/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
  if (seccomp !== '0') return undefined;
  if (jvmUid === 0) return true;
  const paranoid = Number((await readFile('/proc/sys/kernel/perf_event_paranoid', 'utf8')).trim());
  return paranoid <= 2 ? true : undefined;
}

/**
 * bin/asprof + lib/libasyncProfiler.so (the layout the agent checks) whose `start -e cpu-clock` fails the way
 * async-profiler does where the JVM may not open perf events (4.x wording); everything else runs the real asprof.
 */
async function perfRefusingAsprof(home: string): Promise<string> {
  const asprof = join(home, 'bin', 'asprof');
  await mkdir(dirname(asprof), { recursive: true });
  await mkdir(join(home, 'lib'));
  await symlink(
    join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'),
    join(home, 'lib', 'libasyncProfiler.so'),
  );
  await writeFile(
    asprof,
    [
      '#!/bin/bash',
      'if [[ $1 == start && $2 == -e && $3 == cpu-clock ]]; then',
      `  echo "[ERROR] Perf events unavailable. Try --fdtransfer or --all-user option or 'sysctl kernel.perf_event_paranoid=1'" >&2`,
      '  exit 200',
      'fi',
      `exec '${asprofPath}' "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return asprof;
}

interface AgentResult {
  code: number | null;
  status: string;
  pid: string;
  mode: string;
  message: string;
  stdout: string;
  stderr: string;
}

/** Runs the agent script as the SSM agent would (inputs only as environment variables), as root. */
async function runAgent(vars: Record<string, string>): Promise<AgentResult> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', ASPROF: asprofPath };
  const child = spawn('bash', [nodeAgentScript], {
    env: { ...env, SSM_runId: 'real-flink-e2e', SSM_mode: 'ITIMER', SSM_duration: '1', ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  clearTimeout(guard);
  const match =
    /^FLINK_PROFILER_RESULT status=(\S+) pid=(\S+) mode=(\S+) (?:sha256=[0-9a-f]{64} bytes=\d+ )?(?:collapsed=[0-9a-f]{64}:\d+ jfr=[0-9a-f]{64}:\d+ )?message=(.*)$/m.exec(
      stdout,
    );
  if (!match) throw new Error(`no result line (exit ${code}):\n${stdout.slice(0, 500)}\n${stderr}`);
  const [, status = '', pid = '', mode = '', message = ''] = match;
  return { code, status, pid, mode, message, stdout, stderr };
}

/** Processes whose command line contains `text` (e.g. an agent script left running). */
async function processesWith(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (args.includes(text)) found.push(`${entry}: ${args.replaceAll('\0', ' ').slice(0, 200)}`);
  }
  return found;
}

/** The async-profiler libraries mapped into a process, as /proc/<pid>/maps names them. */
async function asyncProfilerLibraries(pid: number): Promise<string[]> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  const paths = maps
    .split('\n')
    .flatMap((line) => /\s(\/\S*libasyncProfiler\S*\.so(?: \(deleted\))?)$/.exec(line)?.[1] ?? []);
  return [...new Set(paths)];
}

/** Flink's run ends FINISHED with a flame graph, and the JVM and the job live on. */
async function expectFlinkRunUnharmed(
  cluster: FlinkCluster,
  flinkRun: ProfilingInfo,
  startedAt: number,
  resourceId: string | undefined,
  pid: number,
): Promise<void> {
  expect(isAlive(pid)).toBe(true);
  const flinks = await awaitFlinkProfile(cluster.restUrl, resourceId, flinkRun, startedAt);
  expect(flinks.info).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
  expect(framesOf(flinks).length).toBeGreaterThan(1);
  expect(isAlive(pid)).toBe(true);
  const job = (await (await fetch(`${cluster.restUrl}/jobs/${cluster.jobId}`)).json()) as { state: string };
  expect(job.state).toBe('RUNNING');
}

/** Flink JVMs on this machine other than `ours` (another suite's or a benchmark's, on a shared machine). */
async function foreignFlinkJvms(ours: number[]): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || ours.includes(Number(entry))) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (flinkRoleOf(args.split('\0'))) found.push(`${entry}: ${args.replaceAll('\0', ' ').slice(0, 160)}`);
  }
  return found;
}

/** Waits until the only Flink JVMs here are the cluster's: the agent's search by role and the node list count them. */
async function waitForOnlyOurFlinkJvms(cluster: FlinkCluster | undefined): Promise<void> {
  const ours = cluster ? [cluster.jobManager.pid, ...cluster.taskManagers.map((taskManager) => taskManager.pid)] : [];
  const deadline = Date.now() + 180_000;
  let foreign = await foreignFlinkJvms(ours);
  while (foreign.length > 0) {
    if (Date.now() > deadline) throw new Error(`other Flink JVMs run on this machine:\n${foreign.join('\n')}`);
    await sleep(1_000);
    foreign = await foreignFlinkJvms(ours);
  }
}

/**
 * Runs the agent without a pid, so that it searches the machine by role, with no Flink JVM but the cluster's about.
 * On a shared machine another suite may start one mid-run: then the search is run again.
 */
async function runAgentAlone(cluster: FlinkCluster, vars: Record<string, string>): Promise<AgentResult> {
  const ours = [cluster.jobManager.pid, ...cluster.taskManagers.map((taskManager) => taskManager.pid)];
  for (let attempt = 1; ; attempt++) {
    await waitForOnlyOurFlinkJvms(cluster);
    const result = await runAgent(vars);
    const listed = /\(pids ([\d ]+)\)/.exec(result.message)?.[1]?.split(' ').map(Number) ?? [];
    const disturbed =
      result.code === 4 && (listed.some((pid) => !ours.includes(pid)) || /^No Flink /.test(result.message));
    if (!disturbed || attempt === 5) return result;
  }
}

/**
 * Profiles the cluster's JobManager through our API by role alone (Flink's `/jobmanager/profiler`), which needs it to
 * be the only JobManager here: on a shared machine another suite's may appear for a moment, then this tries again.
 */
async function profileJobManager(
  cluster: FlinkCluster,
  api: string,
  request: { mode: string; duration: number },
): Promise<ProfileOutcome<OurRun>> {
  for (let attempt = 1; ; attempt++) {
    await waitForOnlyOurFlinkJvms(cluster);
    try {
      return await profileWithOurs(api, LOCAL, undefined, request);
    } catch (error) {
      if (attempt === 5 || !/HTTP 409 .*has \d+ jobmanagers/.test(String(error))) throw error;
    }
  }
}

/** A local server (`npm start`'s process) with its own data directory; `stop()` also removes that directory. */
async function startServer(env: Record<string, string>): Promise<LocalServerProcess & { dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ffp-real-flink-'));
  const server = await startLocalServerProcess({ ASPROF: asprofPath, FLINK_PROFILER_DATA: dataDir, ...env });
  return {
    ...server,
    dataDir,
    stop: async (signal?: NodeJS.Signals) => {
      await server.stop(signal);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('real Flink: a JobManager and a TaskManager run as user flink, with Flink’s REST profiler enabled', () => {
  const user = 'flink';
  let cluster: FlinkCluster;
  let server: LocalServerProcess & { dataDir: string };
  /** The agent's scratch base (FLINK_PROFILER_TMPDIR): must be empty whenever no run is under way. */
  let agentTmp: string;
  let tm: { pid: number; resourceId: string };
  let tmNode: string;

  beforeAll(async () => {
    cluster = await startFlinkCluster({ taskManagers: 1, profilingEnabled: true, runAsUser: user });
    const [taskManager] = cluster.taskManagers;
    if (!taskManager) throw new Error('no TaskManager');
    tm = taskManager;
    agentTmp = await openTempDir('ffp-agent-tmp-');
    server = await startServer({ FLINK_PROFILER_TMPDIR: agentTmp });
    tmNode = await ourNodeOf(server.api, tm.pid);
  });

  beforeEach(() => waitForOnlyOurFlinkJvms(cluster));

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
    if (agentTmp) await rm(agentTmp, { recursive: true, force: true });
  });

  // First in this block, while no profiler of ours has touched the TaskManager: Flink's profiler then loads its own
  // copy of async-profiler (2.9, from its jar), which would clash with ours on signals and timers.
  it('refuses while Flink’s own profiler runs in its own copy of async-profiler; the JVM keeps running', async () => {
    expect(await asyncProfilerLibraries(tm.pid)).toEqual([]);
    const flinkStartedAt = performance.now();
    const flinkRun = await startFlinkProfile(cluster.restUrl, tm.resourceId, { mode: 'ITIMER', duration: 6 });
    expect(flinkRun.status).toBe('RUNNING');
    const [flinkLibrary] = await asyncProfilerLibraries(tm.pid);

    const refused = await profileWithOurs(server.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 2 });

    expect(flinkLibrary).toMatch(/libasyncProfiler.*\.so \(deleted\)$/); // extracted, loaded, deleted
    expect(refused.info.status).toBe('FAILED');
    expect(refused.info.message).toMatch(
      new RegExp(
        `^Start profiler failed\\. Another async-profiler is profiling process ${tm.pid} right now, most likely ` +
          "Flink's built-in profiler \\(rest\\.profiling\\.enabled; its library /\\S+libasyncProfiler\\S*\\.so\\): " +
          'wait until that profiling finishes and try again$',
      ),
    );
    await expectFlinkRunUnharmed(cluster, flinkRun, flinkStartedAt, tm.resourceId, tm.pid);

    // Flink's copy stays loaded, idle: ours profiles beside it.
    const after = await profileWithOurs(server.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 2 });
    expect(after.info).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(framesOf(after)).toContain(busyMapFrame);
    expect(await asyncProfilerLibraries(tm.pid)).toHaveLength(2);
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('finds each role’s own JVM: the JobManager’s profile shows the JobManager, the TaskManager’s the job', async () => {
    const { nodes } = (await (await fetch(`${server.api}/clusters/${LOCAL}/nodes`)).json()) as {
      nodes: Array<{ id: string; role: string; pid: number }>;
    };
    // (Only the cluster's JVMs: on a shared machine another suite's may come and go.)
    const ours = nodes.filter((node) => node.pid === cluster.jobManager.pid || node.pid === tm.pid);
    expect(ours.map(({ role, pid }) => ({ role, pid })).sort((a, b) => a.pid - b.pid)).toEqual(
      [
        { role: 'jobmanager', pid: cluster.jobManager.pid },
        { role: 'taskmanager', pid: tm.pid },
      ].sort((a, b) => a.pid - b.pid),
    );

    // The JobManager by role alone (Flink's /jobmanager/profiler): WALL sees its idle threads too.
    const jobManager = await profileJobManager(cluster, server.api, { mode: 'WALL', duration: 2 });
    expect(jobManager.info).toMatchObject({ status: 'FINISHED', role: 'jobmanager', message: 'Profiling Successful' });
    expect(jobManager.info.node).toBe(await ourNodeOf(server.api, cluster.jobManager.pid));
    const jmFrames = framesOf(jobManager);
    expect(jmFrames).toContain(FRAMES.jobManagerMain);
    expect(jmFrames.some((frame) => frame.startsWith('org/apache/pekko/'))).toBe(true);
    expect(jmFrames).not.toContain(FRAMES.taskManagerMain);
    expect(hasOperator(jmFrames)).toBe(false);

    const taskManager = await profileWithOurs(server.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 2 });
    expect(taskManager.info).toMatchObject({ status: 'FINISHED', role: 'taskmanager', node: tmNode });
    const tmFrames = framesOf(taskManager);
    expect(tmFrames).toContain(busyMapFrame);
    expect(hasStreamTask(tmFrames)).toBe(true);
    expect(tmFrames).not.toContain(FRAMES.jobManagerMain);

    // The agent on its own (no pid, as for an SSM target that runs one JVM per role) finds the same two JVMs.
    const asJobManager = await runAgentAlone(cluster, { SSM_role: 'jobmanager', FLINK_PROFILER_TMPDIR: agentTmp });
    const asTaskManager = await runAgentAlone(cluster, { SSM_role: 'taskmanager', FLINK_PROFILER_TMPDIR: agentTmp });
    expect(asJobManager, asJobManager.message).toMatchObject({ code: 0, status: 'FINISHED' });
    expect(asJobManager.pid).toBe(String(cluster.jobManager.pid));
    expect(asTaskManager, asTaskManager.message).toMatchObject({ code: 0, status: 'FINISHED' });
    expect(asTaskManager.pid).toBe(String(tm.pid));
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('lets the JVM (user flink) write the flame graph into an out/ dir handed to it, then reads it back and removes it', async () => {
    const flinkUid = await uidOf(tm.pid);
    expect(flinkUid).toBeGreaterThan(0);
    expect(process.getuid?.()).toBe(0); // the agent runs as root, as under SSM

    const startedAt = performance.now();
    const started = await startOurProfile(server.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 3 });
    // While it runs, the scratch directory is root's (0711) and its out/ belongs to the JVM's user, who writes the
    // file into it (root works in out/ only as that user).
    let scratch: { uid: number; mode: number } | undefined;
    let outOwner: number | undefined;
    while (outOwner === undefined && performance.now() - startedAt < 3_000) {
      const [entry] = (await readdir(agentTmp)).filter((name) => name.startsWith('flink-profiler.'));
      if (entry) {
        scratch = await stat(join(agentTmp, entry)).catch(() => undefined);
        outOwner = (await stat(join(agentTmp, entry, 'out')).catch(() => undefined))?.uid;
      }
      await sleep(50);
    }
    const outcome = await awaitOurProfile(server.api, started, startedAt);

    expect(scratch?.uid).toBe(0);
    expect((scratch?.mode ?? 0) & 0o777).toBe(0o711);
    expect(outOwner).toBe(flinkUid);
    expect(outcome.info).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(framesOf(outcome)).toContain(busyMapFrame);
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('CPU: profiles with perf events where this machine allows them, else falls back to ITIMER and says so', async () => {
    const expected = await perfEventsExpected(await uidOf(tm.pid));

    const startedAt = performance.now();
    const started = await startOurProfile(server.api, LOCAL, tmNode, { mode: 'CPU', duration: 3 });
    let maxPerfFds = 0;
    while (performance.now() - startedAt < 2_500) {
      maxPerfFds = Math.max(maxPerfFds, await perfEventFds(tm.pid));
      await sleep(100);
    }
    const outcome = await awaitOurProfile(server.api, started, startedAt);

    expect(outcome.info).toMatchObject({ status: 'FINISHED', mode: 'CPU' });
    const fellBack = 'Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)';
    if (expected === true) {
      // perf events really (not async-profiler 4.x's silent ctimer fallback, which a CPU run would not show).
      expect(outcome.info.message).toBe('Profiling Successful');
      expect(maxPerfFds).toBeGreaterThan(0);
    } else {
      expect([fellBack, 'Profiling Successful']).toContain(outcome.info.message);
      expect(maxPerfFds > 0).toBe(outcome.info.message === 'Profiling Successful');
    }
    expect(titleOf(outcome.html)).toBe('CPU profile');
    const frames = framesOf(outcome);
    expect(frames).toContain(busyMapFrame);
    expect(hasStreamTask(frames)).toBe(true);
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('CPU on a node without perf events: retried in ITIMER, FINISHED with a message saying so', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ffp-no-perf-'));
    const noPerf = await startServer({ FLINK_PROFILER_TMPDIR: agentTmp, ASPROF: await perfRefusingAsprof(home) });
    try {
      const outcome = await profileWithOurs(noPerf.api, LOCAL, tmNode, { mode: 'CPU', duration: 2 });

      expect(outcome.info).toMatchObject({
        status: 'FINISHED',
        mode: 'CPU',
        message: 'Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)',
      });
      expect(outcome.info.outputFile).toMatch(new RegExp(`^${tmNode}_CPU_`));
      expect(framesOf(outcome)).toContain(busyMapFrame);
    } finally {
      await noPerf.stop();
      await rm(home, { recursive: true, force: true });
    }
  });

  it.each([
    { mode: 'ITIMER', title: 'CPU profile' },
    { mode: 'WALL', title: 'Wall clock profile' },
    { mode: 'ALLOC', title: 'Allocation profile' },
    { mode: 'LOCK', title: 'Lock profile' },
  ])('$mode: FINISHED with a $title of the TaskManager', async ({ mode, title }) => {
    const outcome = await profileWithOurs(server.api, LOCAL, tmNode, { mode, duration: 3 });

    expect(outcome.info).toMatchObject({ status: 'FINISHED', mode, message: 'Profiling Successful' });
    expect(outcome.info.outputFile).toMatch(
      new RegExp(`^${tmNode}_${mode}_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html$`),
    );
    expect(titleOf(outcome.html)).toBe(title);
    const frames = framesOf(outcome);
    if (mode === 'ITIMER') {
      expect(frames).toContain(busyMapFrame);
      expect(hasStreamTask(frames)).toBe(true);
    } else if (mode === 'WALL') {
      // Every thread, running or not: the TaskManager's main thread waits, the task thread works.
      expect(frames).toContain(FRAMES.taskManagerMain);
      expect(hasStreamTask(frames)).toBe(true);
    } else if (mode === 'ALLOC') {
      // The job boxes every record into a java.lang.Long: allocated types and the Flink code that allocates.
      expect(allocatedTypes(frames)).not.toEqual([]);
      expect(frames.some((frame) => frame.startsWith('org/apache/flink/'))).toBe(true);
    }
    // LOCK: the job hardly contends, so the graph may hold no more than its root; it is whole and valid HTML.
    expect(await readdir(agentTmp)).toEqual([]);
    expect(isAlive(tm.pid)).toBe(true);
  });

  it('refuses a pid that is not a JVM without signalling it', async () => {
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = sleeper.pid ?? Number.NaN;

      const result = await runAgent({ SSM_role: 'taskmanager', SSM_pid: String(pid), FLINK_PROFILER_TMPDIR: agentTmp });
      await sleep(500); // an attach would have sent SIGQUIT, which ends `sleep` at once

      expect(result).toMatchObject({ code: 4, status: 'FAILED', pid: String(pid) });
      expect(result.message).toBe(
        `Process ${pid} is not a Java process (no libjvm.so in its memory maps): sleep (sleep 60). ` +
          'Refusing to attach, which would kill it',
      );
      expect(sleeper.exitCode).toBeNull();
      expect(sleeper.signalCode).toBeNull();
      expect(isAlive(pid)).toBe(true);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('async-profiler not installed: FAILED with how to install it', async () => {
    const missing = await startServer({
      FLINK_PROFILER_TMPDIR: agentTmp,
      ASPROF: '/nonexistent/async-profiler/bin/asprof',
    });
    try {
      const outcome = await profileWithOurs(missing.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 1 });

      expect(outcome.info.status).toBe('FAILED');
      expect(outcome.info.message).toBe(
        'async-profiler not found: ASPROF=/nonexistent/async-profiler/bin/asprof is not an executable file. Install an ' +
          'async-profiler release on this node (its bin/asprof and lib/libasyncProfiler.so must stay side by side), ' +
          "then put bin/asprof on root's PATH (for example: ln -s /opt/async-profiler/bin/asprof /usr/local/bin/asprof) " +
          'or set ASPROF to its path.',
      );
      expect(outcome.info.url).toBeUndefined();
    } finally {
      await missing.stop();
    }
  });

  it('fails at once, saying what to set, when the scratch base is closed to the JVM’s user', async () => {
    const closed = await mkdtemp(join(tmpdir(), 'ffp-closed-')); // 0700, root's
    const server2 = await startServer({ FLINK_PROFILER_TMPDIR: closed });
    try {
      const outcome = await profileWithOurs(server2.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 60 });

      expect(outcome.info.status).toBe('FAILED');
      expect(outcome.info.message).toMatch(
        new RegExp(
          `^Start profiler failed\\. The JVM's user \\(uid ${await uidOf(tm.pid)}\\) cannot enter ${closed}, so it could ` +
            'not write the flame graph into .*: set FLINK_PROFILER_TMPDIR \\(or TMPDIR\\) to a directory that every ' +
            'user can enter, such as /tmp$',
        ),
      );
      // Not after the 60 s it would have profiled for nothing.
      expect((outcome.info.finishedTime ?? Number.POSITIVE_INFINITY) - outcome.info.triggerTime).toBeLessThan(20_000);
      expect(await readdir(closed)).toEqual([]);
    } finally {
      await server2.stop();
      await rm(closed, { recursive: true, force: true });
    }
  });

  it('refuses while Flink’s own profiler runs in our copy of async-profiler (loaded first); the JVM keeps running', async () => {
    // Once our library is in a JVM, Flink's Java API finds its natives already bound and profiles in our copy.
    const ours = await profileJobManager(cluster, server.api, { mode: 'WALL', duration: 1 });
    expect(ours.info).toMatchObject({ status: 'FINISHED', node: await ourNodeOf(server.api, cluster.jobManager.pid) });
    const flinkStartedAt = performance.now();
    const flinkRun = await startFlinkProfile(cluster.restUrl, undefined, { mode: 'WALL', duration: 6 });
    expect(flinkRun.status).toBe('RUNNING');

    const refused = await profileJobManager(cluster, server.api, { mode: 'WALL', duration: 2 });

    expect(await asyncProfilerLibraries(cluster.jobManager.pid)).toEqual([
      await realpath(join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so')),
    ]);
    expect(refused.info).toMatchObject({
      status: 'FAILED',
      message:
        `Start profiler failed. Another profiling session is already running in process ${cluster.jobManager.pid} ` +
        "(another run of this profiler, a manual asprof, or Flink's built-in profiler): wait until it finishes and try again",
    });
    await expectFlinkRunUnharmed(cluster, flinkRun, flinkStartedAt, undefined, cluster.jobManager.pid);
    const after = await profileJobManager(cluster, server.api, { mode: 'WALL', duration: 1 });
    expect(after.info).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('side by side with Flink’s own profiler (ITIMER, 3 s, same TaskManager): both show the job’s operator', async () => {
    const flinks = await profileWithFlink(cluster.restUrl, tm.resourceId, { mode: 'ITIMER', duration: 3 });
    const ours = await profileWithOurs(server.api, LOCAL, tmNode, { mode: 'ITIMER', duration: 3 });

    expect(flinks.info).toMatchObject({ status: 'FINISHED', mode: 'ITIMER', duration: 3 });
    expect(ours.info).toMatchObject({ status: 'FINISHED', mode: 'ITIMER', duration: 3 });
    for (const outcome of [flinks, ours]) {
      const frames = framesOf(outcome);
      expect(hasOperator(frames)).toBe(true);
      expect(hasStreamTask(frames)).toBe(true);
    }
    // Flink's file is named after its resource id, ours after our node id; the same pattern otherwise.
    expect(flinks.info.outputFile).toMatch(
      new RegExp(`^${tm.resourceId}_ITIMER_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html$`),
    );
    expect(ours.info.outputFile).toMatch(
      new RegExp(`^${tmNode}_ITIMER_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html$`),
    );
  });
});

describe('real Flink: two TaskManagers on one host', () => {
  let cluster: FlinkCluster;
  let server: LocalServerProcess & { dataDir: string };
  let agentTmp: string;

  beforeAll(async () => {
    cluster = await startFlinkCluster({ taskManagers: 2, busyPercent: 25 });
    agentTmp = await openTempDir('ffp-agent-tmp-');
    server = await startServer({ FLINK_PROFILER_TMPDIR: agentTmp });
  });

  beforeEach(() => waitForOnlyOurFlinkJvms(cluster));

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
    if (agentTmp) await rm(agentTmp, { recursive: true, force: true });
  });

  it('without a pid the agent lists both TaskManagers; with one (what local mode sends) it profiles that one', async () => {
    const pids = cluster.taskManagers.map((taskManager) => taskManager.pid);
    const second = pids[1] ?? Number.NaN;

    const ambiguous = await runAgentAlone(cluster, { SSM_role: 'taskmanager', FLINK_PROFILER_TMPDIR: agentTmp });
    const chosen = await runAgent({
      SSM_role: 'taskmanager',
      SSM_pid: String(second),
      FLINK_PROFILER_TMPDIR: agentTmp,
    });

    expect(ambiguous).toMatchObject({ code: 4, status: 'FAILED', pid: '-' });
    expect(ambiguous.message).toMatch(
      /^Found 2 Flink TaskManager JVMs on this node \(pids \d+ \d+\): pass the pid of the one to profile$/,
    );
    const listed = /\(pids (\d+) (\d+)\)/.exec(ambiguous.message)?.slice(1).map(Number);
    expect(listed?.sort((a, b) => a - b)).toEqual([...pids].sort((a, b) => a - b));
    expect(chosen).toMatchObject({ code: 0, status: 'FINISHED', pid: String(second) });

    // Through the API: one node per TaskManager, each profiled at the same time (one run per JVM, not per host).
    const nodes = await Promise.all(pids.map((pid) => ourNodeOf(server.api, pid)));
    const outcomes = await Promise.all(
      nodes.map((node) => profileWithOurs(server.api, LOCAL, node, { mode: 'ITIMER', duration: 2 })),
    );
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome.info).toMatchObject({ status: 'FINISHED', node: nodes[index] });
      expect(framesOf(outcome)).toContain(busyMapFrame);
    }
    expect(await readdir(agentTmp)).toEqual([]);
  });

  it('fails with "exited" when the JVM exits during the run, and leaves nothing behind', async () => {
    const victim = cluster.taskManagers[1];
    if (!victim) throw new Error('no second TaskManager');
    const node = await ourNodeOf(server.api, victim.pid);
    const startedAt = performance.now();
    const started: OurRun = await startOurProfile(server.api, LOCAL, node, { mode: 'ITIMER', duration: 10 });
    // Once the profiler runs inside the JVM, the JVM goes, as a crash or an OOM kill would take it.
    const deadline = Date.now() + 15_000;
    while ((await readdir(agentTmp)).length === 0 || !(await profilerRunning(victim.pid))) {
      if (Date.now() > deadline) throw new Error('profiling did not start');
      await sleep(100);
    }
    process.kill(victim.pid, 'SIGKILL');

    const outcome = await awaitOurProfile(server.api, started, startedAt);

    expect(outcome.info.status).toBe('FAILED');
    expect(outcome.info.message).toBe(`Process ${victim.pid} exited during profiling`);
    expect(outcome.info.url).toBeUndefined();
    // No scratch directory, no agent or asprof left, no command output kept once the run is settled.
    expect(await readdir(agentTmp)).toEqual([]);
    expect(await processesWith(join(server.dataDir, 'commands'))).toEqual([]);
    expect(await processesWith(asprofPath)).toEqual([]);
    const commandsLeft = async () => readdir(join(server.dataDir, 'commands')).catch(() => [] as string[]);
    const until = Date.now() + 5_000;
    while ((await commandsLeft()).length > 0 && Date.now() < until) await sleep(100);
    expect(await commandsLeft()).toEqual([]);
    // The other TaskManager still profiles.
    const other = cluster.taskManagers[0];
    if (!other) throw new Error('no first TaskManager');
    expect(isAlive(other.pid)).toBe(true);
  });
});

/** Whether async-profiler (ours) is profiling inside the JVM. */
async function profilerRunning(pid: number): Promise<boolean> {
  const child = spawn(asprofPath, ['status', String(pid)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  await new Promise((resolve) => child.once('close', resolve));
  return out.includes('Profiling is running');
}

describe('real Flink: a TaskManager started with -XX:+DisableAttachMechanism', () => {
  let cluster: FlinkCluster;
  let server: LocalServerProcess & { dataDir: string };
  let agentTmp: string;

  beforeAll(async () => {
    cluster = await startFlinkCluster({
      taskManagers: 1,
      busyPercent: 20,
      extraTaskManagerJvmArgs: ['-XX:+DisableAttachMechanism'],
    });
    agentTmp = await openTempDir('ffp-agent-tmp-');
    server = await startServer({ FLINK_PROFILER_TMPDIR: agentTmp });
  });

  beforeEach(() => waitForOnlyOurFlinkJvms(cluster));

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
    if (agentTmp) await rm(agentTmp, { recursive: true, force: true });
  });

  it('FAILED with a message naming the cause; the JVM keeps running', async () => {
    const [taskManager] = cluster.taskManagers;
    if (!taskManager) throw new Error('no TaskManager');
    const node = await ourNodeOf(server.api, taskManager.pid);

    const outcome = await profileWithOurs(server.api, LOCAL, node, { mode: 'ITIMER', duration: 2 });

    expect(outcome.info.status).toBe('FAILED');
    expect(outcome.info.message).toBe(
      `Start profiler failed. Could not attach to process ${taskManager.pid} (Could not start attach mechanism: ` +
        'No such file or directory). The JVM may run with -XX:+DisableAttachMechanism, a tmp cleaner may have ' +
        `deleted /tmp/.java_pid${taskManager.pid} (restart the JVM to recreate it), or the JVM may use a private ` +
        '/tmp (container, systemd PrivateTmp)',
    );
    expect(isAlive(taskManager.pid)).toBe(true);
    const job = (await (await fetch(`${cluster.restUrl}/jobs/${cluster.jobId}`)).json()) as { state: string };
    expect(job.state).toBe('RUNNING');
    expect(await readdir(agentTmp)).toEqual([]);
  });
});
