import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { flinkRoleOf } from '#domain/flink-entrypoints.ts';
import {
  type FakeFlinkJvm,
  type FakeFlinkJvmOptions,
  fakeFlinkMethods,
  fakeFlinkPids,
  startFakeFlinkJvm,
  stopAllFakeFlinkJvms,
} from '#test/support/fake-flink-jvm.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { nodeAgentScript } from '#test/support/paths.ts';

// The node agent script run as SSM would run it (inputs only as environment variables), against real
// fake-Flink JVMs and the real async-profiler.

const asprofPath = inject('asprofPath');
const execFileAsync = promisify(execFile);

interface AgentRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunningAgent {
  child: ChildProcess;
  done: Promise<AgentRun>;
  stderr(): string;
}

const children = new Set<ChildProcess>();
const testJvms: FakeFlinkJvm[] = [];
const tempDirs: string[] = [];

async function newTempDir(prefix = 'node-agent-e2e-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A JVM that the current test owns: stopped in afterEach. */
async function startJvm(options: FakeFlinkJvmOptions): Promise<FakeFlinkJvm> {
  const jvm = await startFakeFlinkJvm(options);
  testJvms.push(jvm);
  return jvm;
}

function spawnTracked(command: string, args: string[], options: Parameters<typeof spawn>[2] = {}): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The agent's environment: ours without any SSM_* or agent setting, plus `vars` (undefined deletes). */
function agentEnv(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('SSM_') && key !== 'ASPROF' && key !== 'FLINK_PROFILER_TMPDIR') env[key] = value;
  }
  for (const [key, value] of Object.entries(vars)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function startAgent(vars: Record<string, string | undefined>, script = nodeAgentScript): RunningAgent {
  const child = spawnTracked('bash', [script], {
    env: agentEnv({
      SSM_runId: 'e2e-run-1',
      SSM_role: 'taskmanager',
      SSM_mode: 'ITIMER',
      SSM_duration: '2',
      ASPROF: asprofPath,
      ...vars,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<AgentRun>((resolve, reject) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      // Says why a search went wrong on a shared machine (the message then names more JVMs than the test started).
      void foreignFlinkJvms().then((foreign) => {
        const note = foreign.length > 0 ? `\n[test] Flink JVMs of other processes: ${foreign.join('; ')}` : '';
        resolve({ code, signal, stdout, stderr: stderr + note });
      }, reject);
    });
  });
  return { child, done, stderr: () => stderr };
}

function runAgent(vars: Record<string, string | undefined>, script?: string): Promise<AgentRun> {
  return startAgent(vars, script).done;
}

/** Where the agent looks for asprof when ASPROF is unset and PATH has none (system paths: tests move them). */
const ASPROF_LOCATIONS_LINE =
  'readonly ASPROF_DEFAULT_LOCATIONS=(/usr/local/bin/asprof /opt/async-profiler/bin/asprof)';

/** A copy of the agent script whose default asprof locations are `locations`, so a test needs no system paths. */
async function scriptWithAsprofLocations(locations: string[]): Promise<string> {
  const text = await readFile(nodeAgentScript, 'utf8');
  if (!text.includes(ASPROF_LOCATIONS_LINE)) throw new Error(`the agent script has no line ${ASPROF_LOCATIONS_LINE}`);
  const script = join(await newTempDir('node-agent-script-'), 'agent.sh');
  await writeFile(
    script,
    text.replace(ASPROF_LOCATIONS_LINE, `readonly ASPROF_DEFAULT_LOCATIONS=(${locations.join(' ')})`),
  );
  return script;
}

/** PATH without any directory that holds an asprof. */
function pathWithoutAsprof(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !existsSync(join(dir, 'asprof')))
    .join(delimiter);
}

const RESULT_LINE =
  /^FLINK_PROFILER_RESULT status=(FINISHED|FAILED) pid=(\S+) mode=(\S+) (?:sha256=[0-9a-f]{64} bytes=\d+ )?(?:collapsed=[0-9a-f]{64}:\d+ jfr=[0-9a-f]{64}:\d+ )?message=(.*)$/;
const marker = (edge: 'BEGIN' | 'END', label: string) => `-----${edge} FLINK PROFILE${label ? ` ${label}` : ''}-----`;

interface ResultLine {
  status: string;
  pid: string;
  mode: string;
  message: string;
}

function resultLine(run: AgentRun): ResultLine {
  const first = run.stdout.split('\n')[0] ?? '';
  const match = RESULT_LINE.exec(first);
  if (!match) throw new Error(`stdout does not start with a result line:\n${run.stdout.slice(0, 500)}\n${run.stderr}`);
  const [, status = '', pid = '', mode = '', message = ''] = match;
  return { status, pid, mode, message };
}

interface Finished extends ResultLine {
  html: string;
  /** The collapsed stacks and the recording, when the agent sent them (it could convert the recording). */
  collapsed?: string;
  jfr?: Buffer;
}

/**
 * Checks the FINISHED protocol exactly: the line, then the flame graph's section and, when the line names them, the
 * collapsed stacks' and the recording's, nothing else; every payload base64 in lines of 76 and vouched for by the line
 * (its gzip's SHA-256 and length). Returns the line and the decoded files.
 */
function expectFinished(run: AgentRun, message = 'Profiling Successful'): Finished {
  expect(run.code, run.stderr).toBe(0);
  const result = resultLine(run);
  expect(result.status, result.message).toBe('FINISHED');
  expect(result.message).toBe(message);
  const lines = run.stdout.split('\n');
  const withExtras = / collapsed=[0-9a-f]{64}:\d+ jfr=/.test(lines[0] ?? '');
  const sections = withExtras ? (['', 'collapsed', 'jfr'] as const) : ([''] as const);
  let at = 1;
  const decoded = new Map<string, Buffer>();
  for (const label of sections) {
    expect(lines[at]).toBe(marker('BEGIN', label));
    const end = lines.indexOf(marker('END', label), at + 1);
    expect(end).toBeGreaterThan(at + 1);
    const body = lines.slice(at + 1, end);
    expect(body.every((line) => /^[A-Za-z0-9+/=]{1,76}$/.test(line))).toBe(true);
    const gzipped = Buffer.from(body.join(''), 'base64');
    const vouched = `${createHash('sha256').update(gzipped).digest('hex')}${label ? ':' : ' bytes='}${gzipped.length} `;
    expect(lines[0]).toContain(label ? ` ${label}=${vouched}` : ` sha256=${vouched}`);
    decoded.set(label, gunzipSync(gzipped));
    at = end + 1;
  }
  expect(lines.slice(at)).toEqual(['']);
  const html = decoded.get('')?.toString('utf8') ?? '';
  expect(html.trimStart().toLowerCase()).toMatch(/^<!doctype html>/);
  expect(html.trimEnd()).toMatch(/<\/html>$/);
  const collapsed = decoded.get('collapsed')?.toString('utf8');
  const jfr = decoded.get('jfr');
  return { ...result, html, ...(collapsed === undefined ? {} : { collapsed }), ...(jfr ? { jfr } : {}) };
}

/** The java binary a process runs, as the agent reads it. */
const javaOf = (pid: number) => readlinkSync(`/proc/${pid}/exe`);

/** The frames of collapsed stacks' lines whose thread frame is `[<thread> tid=N]`, thread frames left out. */
function collapsedFramesOfThread(collapsed: string, thread: RegExp): string[] {
  return collapsed
    .split('\n')
    .filter((line) => {
      const threadFrame = /^\[(.*) tid=\d+\];/.exec(line);
      return threadFrame?.[1] !== undefined && thread.test(threadFrame[1]);
    })
    .flatMap((line) => line.slice(line.indexOf('];') + 2, line.lastIndexOf(' ')).split(';'));
}

/** The message of a run's result line (for a FINISHED run whose message carries a note). */
function resultMessageOf(run: AgentRun): string {
  return resultLine(run).message;
}

/** Checks the FAILED protocol exactly (one line, nothing else on stdout) and the exit code. */
function expectFailed(run: AgentRun, exitCode: number): ResultLine {
  const result = resultLine(run);
  expect(result.status, run.stderr).toBe('FAILED');
  expect(run.stdout.split('\n')).toHaveLength(2);
  expect(run.stdout.endsWith('\n')).toBe(true);
  expect(run.code, `${result.message}\n${run.stderr}`).toBe(exitCode);
  return result;
}

/** Names of the fixture's methods that appear as frames. */
function fixtureMethods(html: string): string[] {
  const methods = flameGraphFrames(html).flatMap((frame) => /FakeFlinkWorkload\.(\w+)$/.exec(frame)?.[1] ?? []);
  return [...new Set(methods)].sort();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function profilerStatus(pid: number): Promise<string> {
  const { stdout } = await execFileAsync(asprofPath, ['status', String(pid)], { timeout: 30_000 });
  return stdout.trim();
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function unusedPid(): number {
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  for (let pid = pidMax - 1; pid > 1; pid--) if (!existsSync(`/proc/${pid}`)) return pid;
  throw new Error('no free pid');
}

/** Flink JVMs on this machine that this test process did not start (they would confuse the agent's search). */
async function foreignFlinkJvms(): Promise<string[]> {
  const ours = new Set([...fakeFlinkPids(), ...[...children].flatMap((child) => child.pid ?? [])]);
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || ours.has(Number(entry))) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (flinkRoleOf(args.split('\0'))) found.push(`${entry}: ${args.replaceAll('\0', ' ').slice(0, 160)}`);
  }
  return found;
}

// A shared machine may run other Flink JVMs for a while (another suite, a benchmark): wait for them to go.
beforeEach(async () => {
  const deadline = Date.now() + 120_000;
  let foreign = await foreignFlinkJvms();
  while (foreign.length > 0) {
    if (Date.now() > deadline) throw new Error(`other Flink JVMs run on this machine:\n${foreign.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    foreign = await foreignFlinkJvms();
  }
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(testJvms.splice(0).map((jvm) => jvm.stop()));
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

afterAll(async () => {
  await stopAllFakeFlinkJvms();
});

describe('node agent: profiling a TaskManager', () => {
  let taskManager: FakeFlinkJvm;

  beforeAll(async () => {
    taskManager = await startFakeFlinkJvm({ role: 'taskmanager' });
  });

  afterAll(async () => {
    await taskManager?.stop();
  });

  it.each([
    { mode: 'ITIMER', title: 'CPU profile', method: fakeFlinkMethods.hot },
    { mode: 'CPU', title: 'CPU profile', method: fakeFlinkMethods.hot },
    { mode: 'WALL', title: 'Wall clock profile', method: fakeFlinkMethods.idle },
    { mode: 'ALLOC', title: 'Allocation profile', method: fakeFlinkMethods.allocation },
    { mode: 'LOCK', title: 'Lock profile', method: fakeFlinkMethods.lock },
  ])('$mode: prints a flame graph that shows $method and leaves no scratch files', async ({ mode, title, method }) => {
    const scratchBase = await newTempDir();

    const run = await runAgent({ SSM_mode: mode, SSM_duration: '2', FLINK_PROFILER_TMPDIR: scratchBase });

    const result = expectFinished(run);
    expect(result.pid).toBe(String(taskManager.pid));
    expect(result.mode).toBe(mode);
    expect(result.html).toContain(`<h1>${title}</h1>`);
    expect(fixtureMethods(result.html)).toContain(method);
    // The flame graph has no thread frames (as Flink's); the collapsed stacks of the same recording do.
    expect(flameGraphFrames(result.html).some((name) => name.includes('tid='))).toBe(false);
    expect(result.collapsed, 'the converter runs here: collapsed stacks are sent').toBeDefined();
    expect(
      result.collapsed
        ?.split('\n')
        .filter(Boolean)
        .every((line) => /^\[.* tid=\d+\];.* \d+$/.test(line)),
    ).toBe(true);
    expect(collapsedFramesOfThread(result.collapsed ?? '', /./).some((frame) => frame.includes(method))).toBe(true);
    expect(result.jfr?.subarray(0, 4).toString('latin1')).toBe('FLR\0');
    expect(await readdir(scratchBase)).toEqual([]);
    expect(isAlive(taskManager.pid)).toBe(true);
    expect(await profilerStatus(taskManager.pid)).toBe('Profiler is not active');
  });

  it('refuses to start while another profiling session runs in the JVM', async () => {
    const manualOutput = join(await newTempDir(), 'manual.html');
    await execFileAsync(asprofPath, [
      'start',
      '-e',
      'itimer',
      '--timeout',
      '20',
      '-f',
      manualOutput,
      String(taskManager.pid),
    ]);
    try {
      const run = await runAgent({ SSM_mode: 'WALL' });

      const result = expectFailed(run, 5);
      expect(result.message).toMatch(
        /^Start profiler failed\. Another profiling session is already running in process/,
      );
      // The other session is left alone.
      expect(await profilerStatus(taskManager.pid)).toMatch(/^Profiling is running/);
    } finally {
      await execFileAsync(asprofPath, ['stop', String(taskManager.pid)]);
    }
  });

  it('on SIGTERM stops the profiler in the JVM, answers FAILED and removes its scratch directory', async () => {
    const scratchBase = await newTempDir();
    const agent = startAgent({ SSM_mode: 'WALL', SSM_duration: '30', FLINK_PROFILER_TMPDIR: scratchBase });
    await waitFor('profiling to start', () => agent.stderr().includes('Profiling started'));
    expect(await profilerStatus(taskManager.pid)).toMatch(/^Profiling is running/);

    agent.child.kill('SIGTERM');
    const run = await agent.done;

    const result = expectFailed(run, 143);
    expect(result.message).toBe('Profiling was cancelled (SIGTERM)');
    expect(await profilerStatus(taskManager.pid)).toBe('Profiler is not active');
    expect(await readdir(scratchBase)).toEqual([]);
    expect(isAlive(taskManager.pid)).toBe(true);
  });

  it('when SIGKILLed, the profiler still stops by itself after the duration and writes its file', async () => {
    const scratchBase = await newTempDir();
    const agent = startAgent({ SSM_runId: 'killed-run', SSM_duration: '3', FLINK_PROFILER_TMPDIR: scratchBase });
    await waitFor('profiling to start', () => agent.stderr().includes('Profiling started'));

    agent.child.kill('SIGKILL');
    expect((await agent.done).signal).toBe('SIGKILL');
    expect(await profilerStatus(taskManager.pid)).toMatch(/^Profiling is running/);

    await waitFor(
      'the profiler to stop',
      async () => (await profilerStatus(taskManager.pid)) === 'Profiler is not active',
    );
    const [scratchDir] = await readdir(scratchBase);
    expect(scratchDir).toMatch(/^flink-profiler\./);
    // The session records JFR where the converter runs (here): the JVM wrote the whole recording by itself.
    const recording = await readFile(join(scratchBase, scratchDir ?? '', 'out', 'killed-run.jfr'));
    expect(recording.subarray(0, 4).toString('latin1')).toBe('FLR\0');
    expect(isAlive(taskManager.pid)).toBe(true);
  });
});

describe('node agent: finding the Flink JVM', () => {
  it('picks the JVM of the asked role and refuses a pid of the other role, saying what it is', async () => {
    const [jobManager, taskManager] = await Promise.all([
      startJvm({ role: 'jobmanager' }),
      startJvm({ role: 'taskmanager' }),
    ]);

    const asJobManager = expectFinished(await runAgent({ SSM_role: 'jobmanager', SSM_duration: '1' }));
    const asTaskManager = expectFinished(await runAgent({ SSM_role: 'taskmanager', SSM_duration: '1' }));
    const wrongRole = expectFailed(
      await runAgent({ SSM_role: 'taskmanager', SSM_pid: String(jobManager.pid), SSM_duration: '1' }),
      4,
    );

    expect(asJobManager.pid).toBe(String(jobManager.pid));
    expect(asTaskManager.pid).toBe(String(taskManager.pid));
    expect(wrongRole.pid).toBe(String(jobManager.pid));
    expect(wrongRole.message).toBe(
      `Process ${jobManager.pid} is not a Flink TaskManager: it is a Flink JobManager ` +
        '(org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint)',
    );
  });

  it('with two TaskManagers asks for a pid, and profiles the one whose pid it gets', async () => {
    const [first, second] = await Promise.all([startJvm({ role: 'taskmanager' }), startJvm({ role: 'taskmanager' })]);
    const scratchBase = await newTempDir();

    const ambiguous = expectFailed(await runAgent({ FLINK_PROFILER_TMPDIR: scratchBase }), 4);
    const chosen = expectFinished(await runAgent({ SSM_pid: String(second.pid), FLINK_PROFILER_TMPDIR: scratchBase }));

    expect(ambiguous.pid).toBe('-');
    expect(ambiguous.message).toMatch(/^Found 2 Flink TaskManager JVMs on this node \(pids \d+ \d+\): pass the pid/);
    const listed = /\(pids (\d+) (\d+)\)/.exec(ambiguous.message)?.slice(1).map(Number).sort();
    expect(listed).toEqual([first.pid, second.pid].sort());
    expect(chosen.pid).toBe(String(second.pid));
    expect(fixtureMethods(chosen.html)).toContain(fakeFlinkMethods.hot);
    expect(await readdir(scratchBase)).toEqual([]);
  });

  it('fails clearly when no Flink JVM of the role runs', async () => {
    await startJvm({ role: 'jobmanager' });

    const result = expectFailed(await runAgent({ SSM_role: 'taskmanager' }), 4);

    expect(result.message).toBe(
      'No Flink TaskManager JVM found on this node (looked for main classes ' +
        'org.apache.flink.runtime.taskexecutor.TaskManagerRunner org.apache.flink.yarn.YarnTaskExecutorRunner ' +
        'org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner)',
    );
  });

  it('refuses a pid that is not a JVM without signalling it', async () => {
    const sleeper = spawnTracked('sleep', ['60'], { stdio: 'ignore' });
    const pid = sleeper.pid ?? Number.NaN;

    const result = expectFailed(await runAgent({ SSM_pid: String(pid) }), 4);
    // An attach attempt would have sent SIGQUIT, which kills `sleep` at once.
    await new Promise((resolve) => setTimeout(resolve, 500));

    expect(result.message).toBe(
      `Process ${pid} is not a Java process (no libjvm.so in its memory maps): sleep (sleep 60). ` +
        'Refusing to attach, which would kill it',
    );
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
    expect(isAlive(pid)).toBe(true);
  });

  it('ignores a process that names a Flink main class but is not a JVM', async () => {
    // A process whose command line reads like a JVM's with the class as its main class (`bash -s <class>`), a JVM
    // still starting, say. `read` (a builtin, waiting on the script's pipe, which nobody writes to any more) keeps
    // bash alive without a child process that could outlive it.
    const wrapper = spawnTracked('bash', ['-s', 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    wrapper.stdin?.write('read -t 60 || :\n');
    const wrapperPid = wrapper.pid ?? Number.NaN;

    const alone = expectFailed(await runAgent({ SSM_role: 'taskmanager' }), 4);
    const taskManager = await startJvm({ role: 'taskmanager' });
    const beside = expectFinished(await runAgent({ SSM_role: 'taskmanager', SSM_duration: '1' }));

    expect(alone.message).toMatch(
      new RegExp(
        `^No Flink TaskManager JVM found on this node .*; processes ${wrapperPid} name such a class but are not \\(yet\\) JVMs$`,
      ),
    );
    expect(beside.pid).toBe(String(taskManager.pid));
    expect(wrapper.exitCode).toBeNull();
    expect(wrapper.signalCode).toBeNull();
  });

  it('explains an attach failure (here -XX:+DisableAttachMechanism) and leaves the JVM running', async () => {
    const jvm = await startJvm({ role: 'taskmanager', extraJvmArgs: ['-XX:+DisableAttachMechanism'] });

    const result = expectFailed(await runAgent({ SSM_pid: String(jvm.pid) }), 5);

    expect(result.message).toBe(
      `Start profiler failed. Could not attach to process ${jvm.pid} (Could not start attach mechanism: ` +
        'No such file or directory). The JVM may run with -XX:+DisableAttachMechanism, a tmp cleaner may have ' +
        `deleted /tmp/.java_pid${jvm.pid} (restart the JVM to recreate it), or the JVM may use a private /tmp ` +
        '(container, systemd PrivateTmp)',
    );
    expect(isAlive(jvm.pid)).toBe(true);
  });

  it('fails for a pid that does not exist', async () => {
    const pid = unusedPid();

    const result = expectFailed(await runAgent({ SSM_pid: String(pid) }), 4);

    expect(result).toMatchObject({ pid: String(pid), message: `Process ${pid} not found on this node` });
  });

  it('fails with "exited" when the JVM exits during profiling', async () => {
    const jvm = await startJvm({ role: 'taskmanager', exitAfterSeconds: 2 });
    const scratchBase = await newTempDir();

    const run = await runAgent({ SSM_pid: String(jvm.pid), SSM_duration: '4', FLINK_PROFILER_TMPDIR: scratchBase });

    const result = expectFailed(run, 6);
    expect(result.message).toBe(`Process ${jvm.pid} exited during profiling`);
    expect(await jvm.exited).toBe(0);
    expect(await readdir(scratchBase)).toEqual([]);
  });
});

describe('node agent: installation and input checks', () => {
  let taskManager: FakeFlinkJvm;

  beforeAll(async () => {
    // A running TaskManager, so that a check that let a bad request through would really profile it.
    taskManager = await startFakeFlinkJvm({ role: 'taskmanager' });
  });

  afterAll(async () => {
    await taskManager?.stop();
  });

  it('explains how to install async-profiler when ASPROF points nowhere', async () => {
    const result = expectFailed(await runAgent({ ASPROF: '/nonexistent/async-profiler/bin/asprof' }), 3);

    expect(result.message).toMatch(
      /^async-profiler not found: ASPROF=\/nonexistent\/async-profiler\/bin\/asprof is not/,
    );
    expect(result.message).toContain('bin/asprof and lib/libasyncProfiler.so');
    expect(result.message).toContain("put bin/asprof on root's PATH");
  });

  it('explains how to install async-profiler when there is no asprof on PATH nor where the README installs it', async () => {
    const home = await newTempDir('no-asprof-');
    const locations = [join(home, 'usr-local-bin', 'asprof'), join(home, 'opt', 'async-profiler', 'bin', 'asprof')];
    const script = await scriptWithAsprofLocations(locations);

    const result = expectFailed(await runAgent({ ASPROF: undefined, PATH: pathWithoutAsprof() }, script), 3);

    expect(result.message).toBe(
      `async-profiler not found: no asprof on PATH or at ${locations.join(' ')}, and ASPROF is not set. Install an ` +
        'async-profiler release on this node (its bin/asprof and lib/libasyncProfiler.so must stay side by side), ' +
        "then put bin/asprof on root's PATH (for example: ln -s /opt/async-profiler/bin/asprof /usr/local/bin/asprof) " +
        'or set ASPROF to its path.',
    );
  });

  it("finds asprof in /opt/async-profiler/bin when SSM's PATH has no asprof and ASPROF is unset", async () => {
    // The release layout under a stand-in for /opt/async-profiler, its bin/asprof a link to the real one (asprof
    // finds its library next to its real path).
    const home = await newTempDir('opt-asprof-');
    const optAsprof = join(home, 'opt', 'async-profiler', 'bin', 'asprof');
    await mkdir(dirname(optAsprof), { recursive: true });
    await symlink(asprofPath, optAsprof);
    const script = await scriptWithAsprofLocations([join(home, 'usr-local-bin', 'asprof'), optAsprof]);

    const run = await runAgent({ ASPROF: undefined, PATH: pathWithoutAsprof(), SSM_duration: '1' }, script);

    const result = expectFinished(run);
    expect(result.pid).toBe(String(taskManager.pid));
    expect(run.stderr).toContain(`with ${optAsprof}`);
  });

  it("without async-profiler's converter next to its library, sends the flame graph alone and says why", async () => {
    // A release without lib/converter.jar (what async-profiler's own archives hold in lib/ differs by version).
    const home = await newTempDir('asprof-no-converter-');
    const bare = join(home, 'async-profiler', 'bin', 'asprof');
    const library = join(home, 'async-profiler', 'lib', 'libasyncProfiler.so');
    await mkdir(dirname(bare), { recursive: true });
    await mkdir(dirname(library), { recursive: true });
    await copyFile(asprofPath, bare);
    await copyFile(join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'), library);
    await chmod(bare, 0o755);
    await chmod(library, 0o644);

    const run = await runAgent({ ASPROF: bare, SSM_duration: '1' });

    const missing = join(home, 'async-profiler', 'lib', 'converter.jar');
    const result = expectFinished(
      run,
      `Profiling Successful (flame graph only: no async-profiler converter at ${missing})`,
    );
    expect(result.collapsed).toBeUndefined();
    expect(fixtureMethods(result.html)).toContain(fakeFlinkMethods.hot);
  });

  it('with a converter that does not run, records the flame graph as before and says why', async () => {
    const home = await newTempDir('asprof-bad-converter-');
    const bare = join(home, 'async-profiler', 'bin', 'asprof');
    const lib = join(home, 'async-profiler', 'lib');
    await mkdir(dirname(bare), { recursive: true });
    await mkdir(lib, { recursive: true });
    await copyFile(asprofPath, bare);
    await copyFile(join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'), join(lib, 'libasyncProfiler.so'));
    await writeFile(join(lib, 'converter.jar'), 'not a jar');
    await chmod(bare, 0o755);
    await chmod(join(lib, 'libasyncProfiler.so'), 0o644);
    await chmod(join(lib, 'converter.jar'), 0o644);
    const scratchBase = await newTempDir();

    const run = await runAgent({ ASPROF: bare, SSM_duration: '1', FLINK_PROFILER_TMPDIR: scratchBase });

    const result = expectFinished(run, resultMessageOf(run));
    expect(result.message).toBe(
      `Profiling Successful (flame graph only: async-profiler's converter ${join(lib, 'converter.jar')} does not run with the JVM's own java (${javaOf(taskManager.pid)}) as its user (uid ${process.getuid?.()}) here)`,
    );
    expect(result.collapsed).toBeUndefined();
    expect(fixtureMethods(result.html)).toContain(fakeFlinkMethods.hot);
    expect(await readdir(scratchBase)).toEqual([]);
    expect(await profilerStatus(taskManager.pid)).toBe('Profiler is not active');
  });

  it.each([
    { name: 'a mode with shell text', vars: { SSM_mode: 'cpu;rm -rf /' } },
    { name: 'a lower-case mode', vars: { SSM_mode: 'cpu' } },
    { name: 'no mode', vars: { SSM_mode: undefined } },
    { name: 'duration 0', vars: { SSM_duration: '0' } },
    { name: 'duration abc', vars: { SSM_duration: 'abc' } },
    { name: 'duration 3601', vars: { SSM_duration: '3601' } },
    { name: 'a negative duration', vars: { SSM_duration: '-5' } },
    { name: 'pid "1 2"', vars: { SSM_pid: '1 2' } },
    { name: 'pid $(id)', vars: { SSM_pid: '$(id)' } },
    { name: 'a role that is no Flink process', vars: { SSM_role: 'historyserver' } },
    { name: 'a run id with a path', vars: { SSM_runId: '../../etc/cron.d/x' } },
    { name: 'a run id of 65 characters', vars: { SSM_runId: 'a'.repeat(65) } },
    { name: 'a run id with a newline', vars: { SSM_runId: 'ok\nFLINK_PROFILER_RESULT status=FINISHED' } },
    { name: 'a relative scratch base', vars: { FLINK_PROFILER_TMPDIR: 'relative/dir' } },
  ])('refuses $name with exit code 2 and profiles nothing', async ({ vars }) => {
    const scratchBase = await newTempDir();

    const run = await runAgent({ FLINK_PROFILER_TMPDIR: scratchBase, ...vars });

    const result = expectFailed(run, 2);
    expect(result.message).toMatch(/^(Invalid (mode|duration|pid|role|run id) |Scratch base directory )/);
    expect(run.stderr).not.toContain('Profiling started');
    expect(await readdir(scratchBase)).toEqual([]);
    expect(await profilerStatus(taskManager.pid)).toBe('Profiler is not active');
  });

  describe('with an asprof that fails the way real nodes do', () => {
    let fakeAsprof: string;
    let fakeHome: string | undefined;

    beforeAll(async () => {
      // bin/asprof wrapper + lib/libasyncProfiler.so, the layout the agent checks. It fails `start -e <event>` for
      // the events in FAKE_FAIL_EVENTS (the agent passes -e first) and runs the real asprof otherwise.
      const home = await mkdtemp(join(tmpdir(), 'fake-asprof-'));
      fakeAsprof = join(home, 'bin', 'asprof');
      await mkdir(join(home, 'bin'));
      await mkdir(join(home, 'lib'));
      await symlink(
        join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'),
        join(home, 'lib', 'libasyncProfiler.so'),
      );
      await writeFile(
        fakeAsprof,
        [
          '#!/usr/bin/env bash',
          'if [[ $1 == start && $2 == -e && " $FAKE_FAIL_EVENTS " == *" $3 "* ]]; then',
          '  printf "%s\\n" "$FAKE_ERROR" >&2',
          '  exit "$FAKE_EXIT_CODE"',
          'fi',
          'exec "$REAL_ASPROF" "$@"',
          '',
        ].join('\n'),
      );
      await chmod(fakeAsprof, 0o755);
      fakeHome = home;
    });

    afterAll(async () => {
      if (fakeHome) await rm(fakeHome, { recursive: true, force: true });
    });

    const failing = (events: string, exitCode: number, error: string) => ({
      ASPROF: fakeAsprof,
      REAL_ASPROF: asprofPath,
      FAKE_FAIL_EVENTS: events,
      FAKE_EXIT_CODE: String(exitCode),
      FAKE_ERROR: error,
    });
    const perfUnavailable =
      "[ERROR] Perf events unavailable. Try --fdtransfer or --all-user option or 'sysctl kernel.perf_event_paranoid=1'";
    /** async-profiler before 4.0 words it so (Flink's docs quote this one). */
    const noAccessToPerfEvents =
      "[ERROR] No access to perf events. Try --fdtransfer or --all-user option or 'sysctl kernel.perf_event_paranoid=1'";

    it.each([
      { error: perfUnavailable, reason: 'perf events unavailable on this node' },
      { error: noAccessToPerfEvents, reason: 'perf events unavailable on this node' },
      {
        error: "[ERROR] Perf events resource limit. Check 'ulimit -n'",
        reason: "perf events hit the JVM's open-file limit",
      },
    ])('profiles CPU in ITIMER mode, and says so, on "$error"', async ({ error, reason }) => {
      // The agent asks for perf events by name (cpu-clock): 4.x's `cpu` would silently fall back to ctimer.
      const run = await runAgent({ ...failing('cpu-clock', 200, error), SSM_mode: 'CPU' });

      const result = expectFinished(run, resultMessageOf(run));
      expect(result.message).toMatch(new RegExp(`^Profiling Successful \\(CPU fell back to ITIMER: ${reason}`));
      expect(result.mode).toBe('ITIMER');
      expect(fixtureMethods(result.html)).toContain(fakeFlinkMethods.hot);
    });

    // One row per exit code and error text of async-profiler's table (docs/reference: async-profiler.md).
    it.each([
      {
        mode: 'CPU',
        events: 'cpu-clock itimer', // the ITIMER retry fails too
        exitCode: 200,
        error: perfUnavailable,
        message:
          /^Start profiler failed\. Perf events are unavailable on this node .*Use mode ITIMER, or allow perf events with sysctl kernel\.perf_event_paranoid=1$/,
      },
      {
        mode: 'CPU',
        events: 'cpu-clock itimer',
        exitCode: 200,
        error: noAccessToPerfEvents,
        message: /^Start profiler failed\. Perf events are unavailable on this node \(No access to perf events\. /,
      },
      {
        mode: 'ALLOC',
        events: 'alloc',
        exitCode: 200,
        error: '[ERROR] No AllocTracer symbols found. Are JDK debug symbols installed?',
        message: /^Start profiler failed\. ALLOC needs the JDK debug symbols/,
      },
      {
        mode: 'WALL',
        events: 'wall',
        exitCode: 200,
        error: '[ERROR] Profiler already started',
        message:
          /^Start profiler failed\. Another profiling session is already running in process \d+ .*: wait until it finishes and try again$/,
      },
      {
        mode: 'ITIMER',
        events: 'itimer',
        exitCode: 200,
        error: '[ERROR] Could not open output file',
        message: /^Start profiler failed\. The JVM \(uid \d+\) could not write \/.*\.(html|jfr): FLINK_PROFILER_TMPDIR/,
      },
      {
        mode: 'ITIMER',
        events: 'itimer',
        exitCode: 200,
        error: '[ERROR] Only JFR output supports multiple events',
        message:
          /^Start profiler failed\. asprof rejected the node agent's options \(Only JFR output supports multiple events\): install an async-profiler release this agent supports/,
      },
      {
        mode: 'WALL',
        events: 'wall',
        exitCode: 1,
        error: 'Failed to change credentials to match the target process: Operation not permitted',
        message:
          /^Start profiler failed\. asprof could not switch to the user of process \d+ \(uid \d+\): run the node agent as root/,
      },
      {
        mode: 'WALL',
        events: 'wall',
        exitCode: 1,
        error: 'Could not start attach mechanism: No such file or directory',
        message: /^Start profiler failed\. Could not attach to process \d+ .*-XX:\+DisableAttachMechanism/,
      },
      {
        mode: 'WALL',
        events: 'wall',
        exitCode: 1,
        error: 'Could not connect to socket: Connection refused',
        message:
          /^Start profiler failed\. Could not attach to process \d+ \(Could not connect to socket: Connection refused\)\. The JVM may run with -XX:\+DisableAttachMechanism/,
      },
      {
        mode: 'WALL',
        events: 'wall',
        exitCode: 1,
        error: 'Process 123 not found',
        message:
          /^Start profiler failed\. asprof could not find process \d+ although it runs \(Process 123 not found\): run the node agent on the host or in the JVM's own container, as root$/,
      },
      {
        mode: 'ITIMER',
        events: 'itimer',
        exitCode: 100,
        error: 'Invalid interval',
        message: /^Start profiler failed\. asprof rejected the node agent's options \(Invalid interval\): install/,
      },
      {
        mode: 'ITIMER',
        events: 'itimer',
        exitCode: 100,
        error: 'Duplicate event argument',
        message:
          /^Start profiler failed\. asprof rejected the node agent's options \(Duplicate event argument\): install/,
      },
      {
        mode: 'LOCK',
        events: 'lock',
        exitCode: 255,
        error: 'Target JVM failed to load /opt/async-profiler/lib/libasyncProfiler.so',
        message:
          /^Start profiler failed\. Process \d+ could not load .*libasyncProfiler\.so: the library and its directories must be readable by the JVM's user/,
      },
      {
        mode: 'LOCK',
        events: 'lock',
        exitCode: 255,
        error: 'Dynamic agent loading is not enabled. Use -XX:+EnableDynamicAgentLoading to launch target VM.',
        message:
          /^Start profiler failed\. The JVM refuses dynamically loaded agents: start it with -XX:\+EnableDynamicAgentLoading/,
      },
      {
        mode: 'ITIMER',
        events: 'itimer',
        exitCode: 200,
        error: '[ERROR] Something nobody expected',
        message: /^Start profiler failed\. asprof failed with exit code 200: Something nobody expected$/,
      },
    ])('maps "$error" ($mode) to a message a user can act on', async ({ mode, events, exitCode, error, message }) => {
      const run = await runAgent({ ...failing(events, exitCode, error), SSM_mode: mode });

      const result = expectFailed(run, 5);
      expect(result.message).toMatch(message);
      expect(await profilerStatus(taskManager.pid)).toBe('Profiler is not active');
    });
  });
});
