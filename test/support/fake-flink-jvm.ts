import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { dataDir, repoRoot } from './paths.ts';

const run = promisify(execFile);

export type FlinkRole = 'jobmanager' | 'taskmanager';

/** Fully qualified main class of each fake process: the same names as Flink's own entrypoints. */
export const fakeFlinkMainClasses: Record<FlinkRole, string> = {
  jobmanager: 'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint',
  taskmanager: 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner',
};

/** Methods of the fixture's workload, one per kind of profile that should show it. */
export const fakeFlinkMethods = {
  hot: 'fakeFlinkHotLoop',
  idle: 'fakeFlinkIdleWait',
  allocation: 'fakeFlinkAllocate',
  lock: 'fakeFlinkLockContender',
} as const;

const sourceDir = join(repoRoot, 'test', 'fixtures', 'fake-flink', 'src');
/** Where the fixture's classes are compiled to. */
export const fakeFlinkBuildDir = join(dataDir, 'build', 'fake-flink');

async function javaSources(): Promise<string[]> {
  const entries = await readdir(sourceDir, { recursive: true });
  return entries.filter((entry) => entry.endsWith('.java')).map((entry) => join(sourceDir, entry));
}

async function mtimeMs(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

async function upToDate(sources: string[]): Promise<boolean> {
  for (const source of sources) {
    const classFile = join(fakeFlinkBuildDir, relative(sourceDir, source)).replace(/\.java$/, '.class');
    const [sourceTime, classTime] = await Promise.all([mtimeMs(source), mtimeMs(classFile)]);
    if (sourceTime === undefined || classTime === undefined || classTime < sourceTime) return false;
  }
  return true;
}

async function compile(): Promise<string> {
  const sources = await javaSources();
  if (sources.length === 0) throw new Error(`no Java sources under ${sourceDir}`);
  if (await upToDate(sources)) return fakeFlinkBuildDir;

  // Compile next to the final place and rename into it, so a failed build never looks up to date.
  await mkdir(join(dataDir, 'build'), { recursive: true });
  const staging = await mkdtemp(join(dataDir, 'build', '.fake-flink-'));
  try {
    await run('javac', ['--release', '17', '-d', staging, ...sources], { timeout: 120_000 });
    await rm(fakeFlinkBuildDir, { recursive: true, force: true });
    await rename(staging, fakeFlinkBuildDir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (await upToDate(sources)) return fakeFlinkBuildDir; // another process won the race
    throw new Error(`compiling the fake Flink fixture failed: ${(error as Error).message}`, { cause: error });
  }
  return fakeFlinkBuildDir;
}

let compiled: Promise<string> | undefined;

/** Compiles the fixture with javac into `.data/build/fake-flink` (once; skipped while up to date) and returns that directory. */
export function compileFakeFlink(): Promise<string> {
  compiled ??= compile().catch((error: unknown) => {
    compiled = undefined;
    throw error;
  });
  return compiled;
}

export interface FakeFlinkJvmOptions {
  role: FlinkRole;
  /** The JVM exits by itself (status 0) this many seconds after it is ready. */
  exitAfterSeconds?: number;
  /** Start no workload: a target that costs the machine nothing (benchmarks with many JVMs). */
  idle?: boolean;
  extraJvmArgs?: string[];
  /** Run the JVM as this user (uid and gid) rather than as the test's own (the classes must be readable to it). */
  user?: { uid: number; gid: number };
}

export interface FakeFlinkJvm {
  pid: number;
  role: FlinkRole;
  /** Resolves with the exit code (null when killed by a signal) once the JVM has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the JVM has exited. */
  stop(): Promise<void>;
  /** What the JVM printed so far (stdout and stderr), for failure messages. */
  output(): string;
}

const running = new Set<ChildProcess>();

// A worker that dies without running its hooks must not leave JVMs behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Starts a fake Flink JobManager or TaskManager JVM (see `test/fixtures/fake-flink`) and resolves once its
 * main method runs and the JVM had a moment to finish starting (attaching earlier could kill it).
 */
export async function startFakeFlinkJvm(options: FakeFlinkJvmOptions): Promise<FakeFlinkJvm> {
  const classpath = await compileFakeFlink();
  const args = [
    '-Xmx64m',
    '-XX:+UseSerialGC',
    '-XX:+UnlockDiagnosticVMOptions',
    '-XX:+DebugNonSafepoints',
    ...(options.extraJvmArgs ?? []),
    '-cp',
    classpath,
    fakeFlinkMainClasses[options.role],
    // Flink's scripts pass arguments after the main class; the node agent must not be confused by them.
    '--configDir',
    '/nonexistent/flink/conf',
    ...(options.exitAfterSeconds === undefined ? [] : ['--exit-after-seconds', String(options.exitAfterSeconds)]),
    ...(options.idle ? ['--idle'] : []),
  ];
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.user ?? {}) });
  running.add(child);

  let output = '';
  const record = (chunk: string) => {
    if (output.length < 20_000) output += chunk;
  };
  child.stderr?.setEncoding('utf8').on('data', record);

  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });

  const stdout = child.stdout;
  if (!stdout) throw new Error('spawn gave the fake Flink JVM no stdout pipe');
  const ready = new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: stdout });
    lines.on('line', (line) => {
      record(`${line}\n`);
      if (line === 'FAKE_FLINK_READY') resolve();
    });
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`fake Flink ${options.role} exited with ${code} before it was ready`)));
  });

  const stop = async (): Promise<void> => {
    if (!hasExited(child)) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await exited;
  };

  let readyTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => {
        readyTimer = setTimeout(() => reject(new Error('not ready within 30 s')), 30_000);
      }),
    ]);
  } catch (error) {
    await stop();
    throw new Error(`fake Flink ${options.role} did not start: ${(error as Error).message}\n${output}`, {
      cause: error,
    });
  } finally {
    clearTimeout(readyTimer);
  }
  if (child.pid === undefined) throw new Error('fake Flink JVM has no pid');

  // main() runs before the JVM has finished its own start-up (signal handlers, attach listener).
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { pid: child.pid, role: options.role, exited, stop, output: () => output };
}

/** Pids of the fake Flink JVMs this process started that are still running. */
export function fakeFlinkPids(): number[] {
  return [...running].flatMap((child) => child.pid ?? []);
}

/** Stops every fake Flink JVM this process started and that is still running. */
export async function stopAllFakeFlinkJvms(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      child.kill('SIGKILL');
      await new Promise((resolve) => (hasExited(child) ? resolve(undefined) : child.once('exit', resolve)));
    }),
  );
}
