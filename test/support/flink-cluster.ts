import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { dataDir, repoRoot } from './paths.ts';

const run = promisify(execFile);

/**
 * A real Flink session cluster for e2e tests: one JobManager and N TaskManagers, each its own JVM, started from Flink's
 * Maven Central artifacts (flink-dist is not available), running a small streaming job whose map operator burns CPU in
 * `fleetprofiler.job.BusyMapFunction.fleetProfilerBusyMap`.
 */
export interface FlinkCluster {
  /** Base URL of the JobManager's REST API, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  restUrl: string;
  jobManager: { pid: number };
  /** One entry per TaskManager; `resourceId` is the id that `GET /taskmanagers` and the profiler endpoints use. */
  taskManagers: Array<{ pid: number; resourceId: string }>;
  /** The running busy job (all subtasks RUNNING when `startFlinkCluster` resolves). */
  jobId: string;
  /** The Flink version the cluster runs (from the fixture pom). */
  flinkVersion: string;
  /** The cluster's temporary directory: `conf/`, `log/`, `tmp/` (io.tmp.dirs, java.io.tmpdir, profiler output). */
  workDir: string;
  /**
   * Changes the job's hot path while it runs, as a deploy would: `alternate` sends every record through
   * {@link alternateMapFrame} instead of {@link busyMapFrame} (the job's subtasks notice within 200 ms).
   */
  setHotPath(path: 'busyMap' | 'alternate'): Promise<void>;
  /** The last `lines` lines of every log and stdout/stderr file of the cluster, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /** Cancels the job, stops every JVM (SIGTERM, then SIGKILL after a grace period) and removes `workDir`. Idempotent. */
  stop(): Promise<void>;
}

export interface StartFlinkClusterOptions {
  /** Number of TaskManager JVMs (one slot each; the job's parallelism is the same number). Default 1. */
  taskManagers?: number;
  /** Sets `rest.profiling.enabled: true`, which registers Flink's own `/…/profiler` REST endpoints. Default false. */
  profilingEnabled?: boolean;
  /** Unprivileged OS user to run the JVMs as; created (`useradd --system --no-create-home`) if missing. Needs root. */
  runAsUser?: string;
  /** Extra JVM options for every TaskManager (placed before the main class), e.g. an `-agentpath:`. */
  extraTaskManagerJvmArgs?: string[];
  /** Share of each 100 ms period that each busy-map subtask burns CPU, 1..100. Default 50 (half a core per TM). */
  busyPercent?: number;
  /** How long startup (JVMs, registration, job submission, all subtasks RUNNING) may take. Default 120 s. */
  startupTimeoutMs?: number;
}

/** Main classes of the cluster's JVMs (the same ones Flink's bin scripts start). */
export const flinkClusterMainClasses = {
  jobmanager: 'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint',
  taskmanager: 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner',
} as const;

/** The job's CPU-burning method, as async-profiler names the frame. */
export const busyMapFrame = 'fleetprofiler/job/BusyMapFunction.fleetProfilerBusyMap';

/** The job's other hot path (see `FlinkCluster.setHotPath`), as async-profiler names the frame. */
export const alternateMapFrame = 'fleetprofiler/job/BusyMapFunction.fleetProfilerAlternateMap';

/** The operators of the job's one chained task, as its task threads are named (`<chain> (i/n)#attempt`). */
export const jobOperatorNames = ['sequence', 'fleetProfilerBusyMap', 'discard'] as const;

const pomPath = join(repoRoot, 'test', 'fixtures', 'flink-cluster', 'pom.xml');
const jobSourceDir = join(repoRoot, 'test', 'fixtures', 'flink-job', 'src');
const buildRoot = join(dataDir, 'build', 'flink-cluster');
const jobMainClass = 'fleetprofiler.job.FleetProfilerJob';
const jobIdMarker = 'FLEET_PROFILER_JOB_ID=';
const bashJavaUtils = 'org.apache.flink.runtime.util.bash.BashJavaUtils';
const bashJavaUtilsPrefix = 'BASH_JAVA_UTILS_EXEC_RESULT:';
const host = '127.0.0.1';
const stopGraceMs = 10_000;

/** What Flink's default config.yaml passes through `env.java.opts.all` so that Flink runs on Java 17. */
const java17Options = [
  '--add-exports=java.base/sun.net.util=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED',
  '--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED',
  '--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.net=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens=java.base/java.text=ALL-UNNAMED',
  '--add-opens=java.base/java.time=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED',
];

/** Options of every cluster JVM: exact stacks for profilers (frames between safepoints too). */
const profilingJvmOptions = ['-XX:+UnlockDiagnosticVMOptions', '-XX:+DebugNonSafepoints'];

/**
 * Keeps the busy method a frame of its own. Once C2 inlines it into `BusyMapFunction.map`, the hot loop's code maps
 * to `map` in the debug info and async-profiler 2.9 (Flink's) no longer shows `fleetProfilerBusyMap` at all.
 */
const busyMapJvmOptions = [
  '-XX:CompileCommand=quiet',
  '-XX:CompileCommand=dontinline,fleetprofiler.job.BusyMapFunction::fleetProfilerBusyMap',
];

const log4jProperties = `# Written by test/support/flink-cluster.ts: everything at INFO into the file named by -Dlog.file.
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
appender.main.name = MainAppender
appender.main.type = File
appender.main.fileName = \${sys:log.file}
appender.main.append = true
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
`;

function javaCommand(tool: 'java' | 'javac' | 'jar'): string {
  const javaHome = process.env.JAVA_HOME;
  return javaHome ? join(javaHome, 'bin', tool) : tool;
}

function sha256(...parts: Array<string | Buffer>): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function errorText(error: unknown): string {
  const e = error as { message?: string; stdout?: string; stderr?: string };
  return [e.message, e.stdout, e.stderr].filter((s) => s && s.trim() !== '').join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Classpath and job jar (cached under .data/build/flink-cluster, keyed by content hashes)
// ---------------------------------------------------------------------------------------------------------------

export interface ResolvedClasspath {
  /** `:`-joined absolute jar paths (copies under `.data/build/flink-cluster/<pom hash>/lib`). */
  classpath: string;
  libDir: string;
  flinkVersion: string;
  /** Whether this call ran Maven (cold cache). */
  resolvedWithMaven: boolean;
}

async function renameIntoPlace(staging: string, target: string, isValid: () => Promise<boolean>): Promise<void> {
  try {
    await rename(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (!(await isValid())) throw error; // not a lost race with another process: a real failure
  }
}

async function resolveClasspathUncached(): Promise<ResolvedClasspath> {
  const pom = await readFile(pomPath, 'utf8');
  const flinkVersion = /<flink\.version>([^<]+)<\/flink\.version>/.exec(pom)?.[1];
  if (!flinkVersion) throw new Error(`no <flink.version> in ${pomPath}`);
  const key = sha256(pom).slice(0, 16);
  const cacheDir = join(buildRoot, key);
  const classpathFile = join(cacheDir, 'classpath.txt');
  const libDir = join(cacheDir, 'lib');
  const cached = async () => (await readFile(classpathFile, 'utf8').catch(() => '')).trim();

  let classpath = await cached();
  let resolvedWithMaven = false;
  if (classpath === '') {
    resolvedWithMaven = true;
    console.error(`flink-cluster: resolving the Flink ${flinkVersion} classpath with Maven (cache key ${key})`);
    await mkdir(buildRoot, { recursive: true });
    const staging = await mkdtemp(join(buildRoot, '.staging-'));
    try {
      const mavenOutput = join(staging, 'maven-classpath.txt');
      await run('mvn', ['-B', '-q', '-f', pomPath, 'dependency:build-classpath', `-Dmdep.outputFile=${mavenOutput}`], {
        timeout: 600_000,
        maxBuffer: 16 * 1024 * 1024,
      }).catch((error: unknown) => {
        throw new Error(`mvn dependency:build-classpath failed for ${pomPath}:\n${errorText(error)}`, { cause: error });
      });
      const jars = (await readFile(mavenOutput, 'utf8')).trim().split(':').filter(Boolean);
      if (!jars.some((jar) => basename(jar).startsWith('flink-runtime-'))) {
        throw new Error(`the resolved classpath has no flink-runtime jar: ${jars.join(':')}`);
      }
      // Copy the jars out of ~/.m2 (under /root, mode 700): an unprivileged cluster user must be able to read them.
      const stagingLib = join(staging, 'lib');
      await mkdir(stagingLib);
      const names = new Set<string>();
      const copied: string[] = [];
      for (const [index, jar] of jars.entries()) {
        let name = basename(jar);
        if (names.has(name)) name = `${index}-${name}`;
        names.add(name);
        await copyFile(jar, join(stagingLib, name));
        await chmod(join(stagingLib, name), 0o644);
        copied.push(join(libDir, name));
      }
      await writeFile(join(staging, 'classpath.txt'), `${copied.join(':')}\n`, { mode: 0o644 });
      await chmod(stagingLib, 0o755);
      await chmod(staging, 0o755);
      await renameIntoPlace(staging, cacheDir, async () => (await cached()) !== '');
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
    classpath = await cached();
    // Drop the caches of earlier pom versions (65 MB each).
    for (const entry of await readdir(buildRoot)) {
      if (/^[0-9a-f]{16}$/.test(entry) && entry !== key)
        await rm(join(buildRoot, entry), { recursive: true, force: true });
    }
  }
  return { classpath, libDir, flinkVersion, resolvedWithMaven };
}

async function javaSources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries
    .filter((entry) => entry.endsWith('.java'))
    .sort()
    .map((entry) => join(dir, entry));
}

async function buildJobJar(resolved: ResolvedClasspath): Promise<string> {
  const sources = await javaSources(jobSourceDir);
  if (sources.length === 0) throw new Error(`no Java sources under ${jobSourceDir}`);
  const contents = await Promise.all(
    sources.map(async (source) => `${relative(jobSourceDir, source)}\n${await readFile(source, 'utf8')}`),
  );
  const jar = join(dirname(resolved.libDir), `job-${sha256(resolved.classpath, ...contents).slice(0, 16)}.jar`);
  if (await exists(jar)) return jar;

  const staging = await mkdtemp(join(buildRoot, '.job-'));
  try {
    const classes = join(staging, 'classes');
    await run(javaCommand('javac'), ['--release', '17', '-cp', resolved.classpath, '-d', classes, ...sources], {
      timeout: 180_000,
    });
    const stagedJar = join(staging, 'job.jar');
    await run(javaCommand('jar'), ['cf', stagedJar, '-C', classes, '.'], { timeout: 60_000 });
    await chmod(stagedJar, 0o644);
    await renameIntoPlace(stagedJar, jar, () => exists(jar));
  } catch (error) {
    throw new Error(`building the Flink test job failed:\n${errorText(error)}`, { cause: error });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return jar;
}

let resolving: Promise<ResolvedClasspath & { jobJar: string }> | undefined;

/**
 * The cluster classpath and the job jar, built once: Maven runs only when `.data/build/flink-cluster/<pom hash>` is
 * missing (first run on a machine, or after the pom changed), javac only when the job's sources changed.
 */
export function prepareFlinkCluster(): Promise<ResolvedClasspath & { jobJar: string }> {
  resolving ??= (async () => {
    const resolved = await resolveClasspathUncached();
    return { ...resolved, jobJar: await buildJobJar(resolved) };
  })().catch((error: unknown) => {
    resolving = undefined;
    throw error;
  });
  return resolving;
}

// ---------------------------------------------------------------------------------------------------------------
// OS user, ports, memory
// ---------------------------------------------------------------------------------------------------------------

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

async function lookupUser(name: string): Promise<OsUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

async function ensureUser(name: string): Promise<OsUser> {
  if (!/^[a-z_][a-z0-9_-]*$/.test(name)) throw new Error(`not a safe user name: ${JSON.stringify(name)}`);
  const found = await lookupUser(name);
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error(`user ${name} does not exist, and creating it needs root`);
  try {
    await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  } catch (error) {
    const raced = await lookupUser(name); // another process may have created it meanwhile
    if (raced) return raced;
    throw new Error(`useradd ${name} failed: ${errorText(error)}`, { cause: error });
  }
  const created = await lookupUser(name);
  if (!created) throw new Error(`user ${name} was created but cannot be looked up`);
  return created;
}

/** Whether `path` can be reached and read by a user that is neither its owner nor in its group. */
async function readableByOthers(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if ((info.mode & (info.isDirectory() ? 0o005 : 0o004)) !== (info.isDirectory() ? 0o005 : 0o004)) return false;
    let dir = dirname(path);
    while (true) {
      if (((await stat(dir)).mode & 0o001) === 0) return false;
      const parent = dirname(dir);
      if (parent === dir) return true;
      dir = parent;
    }
  } catch {
    return false;
  }
}

/** The classpath, or a world-readable copy of it under the temp dir when the repository is not reachable by others. */
async function classpathReadableByOthers(resolved: ResolvedClasspath): Promise<string> {
  const jars = resolved.classpath.split(':');
  if ((await readableByOthers(resolved.libDir)) && (await readableByOthers(jars[0] ?? resolved.libDir))) {
    return resolved.classpath;
  }
  const mirror = join(tmpdir(), `flink-fleet-profiler-lib-${sha256(resolved.classpath).slice(0, 16)}`);
  const mirrored = jars.map((jar) => join(mirror, basename(jar)));
  if (!(await exists(join(mirror, '.complete')))) {
    await mkdir(mirror, { recursive: true, mode: 0o755 });
    await chmod(mirror, 0o755);
    for (const jar of jars) {
      await copyFile(jar, join(mirror, basename(jar)));
      await chmod(join(mirror, basename(jar)), 0o644);
    }
    await writeFile(join(mirror, '.complete'), '');
  }
  return mirrored.join(':');
}

async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, host, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

/** Runs Flink's BashJavaUtils like the bin scripts do: line 1 are JVM flags, line 2 the `-D` dynamic properties. */
async function resourceParams(
  classpath: string,
  confDir: string,
  command: 'GET_JM_RESOURCE_PARAMS' | 'GET_TM_RESOURCE_PARAMS',
): Promise<{ jvmArgs: string[]; dynamicArgs: string[] }> {
  let stdout: string;
  try {
    ({ stdout } = await run(
      javaCommand('java'),
      ['-Xmx128m', '-cp', classpath, bashJavaUtils, command, '--configDir', confDir],
      { timeout: 60_000 },
    ));
  } catch (error) {
    throw new Error(`BashJavaUtils ${command} failed:\n${errorText(error)}`, { cause: error });
  }
  const results = stdout
    .split('\n')
    .filter((line) => line.startsWith(bashJavaUtilsPrefix))
    .map((line) => line.slice(bashJavaUtilsPrefix.length).trim());
  if (results.length < 2) throw new Error(`BashJavaUtils ${command} printed no result:\n${stdout}`);
  const words = (line: string | undefined) => (line ?? '').split(/\s+/).filter(Boolean);
  return { jvmArgs: words(results[0]), dynamicArgs: words(results[1]) };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------------------

const liveProcesses = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveProcesses) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

let setprivAvailable: Promise<boolean> | undefined;

/** util-linux's setpriv sets a parent-death signal (and the user): the JVMs die with the test process, whatever kills it. */
function hasSetpriv(): Promise<boolean> {
  setprivAvailable ??= run('setpriv', ['--help']).then(
    ({ stdout }) => stdout.includes('--pdeathsig'),
    () => false,
  );
  return setprivAvailable;
}

interface JvmProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  exitInfo: string | undefined;
}

async function startJvm(
  name: string,
  args: string[],
  outFile: string,
  user: OsUser | undefined,
  cwd: string,
): Promise<JvmProcess> {
  const out = openSync(outFile, 'a', 0o644);
  let child: ChildProcess;
  try {
    if (await hasSetpriv()) {
      const userArgs = user ? ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups'] : [];
      child = spawn('setpriv', ['--pdeathsig', 'KILL', ...userArgs, '--', javaCommand('java'), ...args], {
        cwd,
        stdio: ['ignore', out, out],
      });
    } else {
      child = spawn(javaCommand('java'), args, {
        cwd,
        stdio: ['ignore', out, out],
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
    }
  } finally {
    closeSync(out);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`starting the ${name} JVM failed: ${error.message}`);
  }
  liveProcesses.add(child);
  installExitHook();
  const jvm: JvmProcess = { name, child, pid, exitInfo: undefined, exited: Promise.resolve() };
  jvm.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      jvm.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
      liveProcesses.delete(child);
      resolve();
    });
  });
  return jvm;
}

async function stopJvms(jvms: JvmProcess[]): Promise<void> {
  const running = jvms.filter((jvm) => jvm.exitInfo === undefined);
  for (const jvm of running) jvm.child.kill('SIGTERM');
  const graceOver = new Promise<'timeout'>((resolve) => setTimeout(resolve, stopGraceMs, 'timeout').unref());
  await Promise.all(
    running.map(async (jvm) => {
      if ((await Promise.race([jvm.exited.then(() => 'exited' as const), graceOver])) === 'timeout') {
        jvm.child.kill('SIGKILL');
        await jvm.exited;
      }
    }),
  );
}

async function tailOf(path: string, lines: number): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(missing)';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------------------------

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

interface JobDetails {
  state?: string;
  vertices?: Array<{ name?: string; parallelism?: number; status?: string; tasks?: Record<string, number> }>;
}

function allSubtasksRunning(job: JobDetails): boolean {
  const vertices = job.vertices ?? [];
  return (
    job.state === 'RUNNING' &&
    vertices.length > 0 &&
    vertices.every((vertex) => vertex.status === 'RUNNING' && vertex.tasks?.RUNNING === vertex.parallelism)
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------------------------

/**
 * Starts a JobManager and `taskManagers` TaskManagers (one slot each) as separate JVMs bound to 127.0.0.1 only,
 * submits the busy job with parallelism = `taskManagers`, and resolves once every TaskManager is registered and every
 * subtask is RUNNING. On failure everything started is stopped and the error carries the tail of the logs.
 */
export async function startFlinkCluster(options: StartFlinkClusterOptions = {}): Promise<FlinkCluster> {
  const taskManagerCount = options.taskManagers ?? 1;
  if (!Number.isInteger(taskManagerCount) || taskManagerCount < 1) {
    throw new Error(`taskManagers must be a positive integer, got ${taskManagerCount}`);
  }
  const busyPercent = options.busyPercent ?? 50;

  const startedAt = Date.now();
  const trace = (phase: string) => {
    if (process.env.FLINK_CLUSTER_TRACE) console.error(`flink-cluster: ${phase} after ${Date.now() - startedAt} ms`);
  };
  const prepared = await prepareFlinkCluster();
  trace('classpath and job jar ready');
  const user = options.runAsUser ? await ensureUser(options.runAsUser) : undefined;
  const classpath = user ? await classpathReadableByOthers(prepared) : prepared.classpath;
  // The startup budget starts after the (possibly first-run, downloading) preparation.
  const deadline = Date.now() + (options.startupTimeoutMs ?? 120_000);

  const [restPort, jobManagerRpcPort, ...taskManagerRpcPorts] = await freeLoopbackPorts(2 + taskManagerCount);
  const restUrl = `http://${host}:${restPort}`;
  const workDir = await mkdtemp(join(tmpdir(), 'flink-cluster-'));
  const confDir = join(workDir, 'conf');
  const logDir = join(workDir, 'log');
  const ioTmpDir = join(workDir, 'tmp');
  // Root's file in the JVMs' work directory (its mode 0644): they read it, only the test changes it.
  const hotPathFile = join(workDir, 'hot-path');

  const jvms: JvmProcess[] = [];
  const logFiles: string[] = [];
  const logTail = async (lines = 40): Promise<string> => {
    const tails = await Promise.all(logFiles.map(async (file) => `==> ${file} <==\n${await tailOf(file, lines)}`));
    return tails.join('\n\n');
  };
  let jobId: string | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (jobId !== undefined && jvms[0]?.exitInfo === undefined) {
        await fetch(`${restUrl}/jobs/${jobId}?mode=cancel`, { method: 'PATCH', signal: AbortSignal.timeout(5_000) })
          .then(async () => {
            // Give the cancellation a moment so the TaskManagers shut down without a running task.
            const until = Date.now() + 5_000;
            while (Date.now() < until) {
              const job = (await getJson(`${restUrl}/jobs/${jobId}`)) as JobDetails;
              if (job.state === 'CANCELED' || job.state === 'FAILED' || job.state === 'FINISHED') return;
              await new Promise((resolve) => setTimeout(resolve, 200));
            }
          })
          .catch(() => undefined);
      }
      await stopJvms(jvms);
      await rm(workDir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const fail = async (message: string, cause?: unknown): Promise<never> => {
    const logs = await logTail();
    await stop();
    throw new Error(`Flink test cluster: ${message}\n\n${logs}`, { cause });
  };

  try {
    await Promise.all([mkdir(confDir), mkdir(logDir), mkdir(ioTmpDir)]);
    const config: Record<string, string | number | boolean> = {
      'jobmanager.rpc.address': host,
      'jobmanager.rpc.port': jobManagerRpcPort ?? 0,
      'jobmanager.bind-host': host,
      'jobmanager.memory.process.size': '768m',
      'jobmanager.execution.failover-strategy': 'region',
      'taskmanager.host': host,
      'taskmanager.bind-host': host,
      'taskmanager.numberOfTaskSlots': 1,
      'taskmanager.memory.process.size': '1g',
      'taskmanager.memory.managed.size': '32m',
      // TaskManagers usually start before the JobManager listens: retry registration quickly (defaults wait 10-30 s).
      'cluster.registration.error-delay': '500ms',
      'cluster.registration.refused-registration-delay': '500ms',
      'cluster.registration.max-timeout': '2s',
      'rest.address': host,
      'rest.bind-address': host,
      'rest.port': restPort ?? 0,
      'rest.profiling.enabled': options.profilingEnabled ?? false,
      'rest.profiling.dir': ioTmpDir,
      'io.tmp.dirs': ioTmpDir,
      'parallelism.default': taskManagerCount,
    };
    const configYaml = Object.entries(config)
      .map(([key, value]) => `${key}: ${typeof value === 'string' ? JSON.stringify(value) : value}`)
      .join('\n');
    await writeFile(join(confDir, 'config.yaml'), `# Written by test/support/flink-cluster.ts\n${configYaml}\n`);
    await writeFile(join(confDir, 'log4j.properties'), log4jProperties);

    const [jm, tm] = await Promise.all([
      resourceParams(classpath, confDir, 'GET_JM_RESOURCE_PARAMS'),
      resourceParams(classpath, confDir, 'GET_TM_RESOURCE_PARAMS'),
    ]);
    trace('BashJavaUtils done');
    const commonJvmArgs = [...java17Options, ...profilingJvmOptions, `-Djava.io.tmpdir=${ioTmpDir}`];
    const log4jArg = `-Dlog4j.configurationFile=file:${join(confDir, 'log4j.properties')}`;

    const processes: Array<{ name: string; args: string[] }> = [
      {
        name: 'jobmanager',
        args: [
          ...jm.jvmArgs,
          ...commonJvmArgs,
          `-Dlog.file=${join(logDir, 'jobmanager.log')}`,
          log4jArg,
          '-cp',
          classpath,
          flinkClusterMainClasses.jobmanager,
          '--configDir',
          confDir,
          '--executionMode',
          'cluster',
          ...jm.dynamicArgs,
        ],
      },
    ];
    const resourceIds = Array.from({ length: taskManagerCount }, (_, index) => `fleet-tm-${index}`);
    for (const [index, resourceId] of resourceIds.entries()) {
      processes.push({
        name: `taskmanager-${index}`,
        args: [
          ...tm.jvmArgs,
          ...commonJvmArgs,
          ...busyMapJvmOptions,
          ...(options.extraTaskManagerJvmArgs ?? []),
          `-Dlog.file=${join(logDir, `taskmanager-${index}.log`)}`,
          log4jArg,
          '-cp',
          classpath,
          flinkClusterMainClasses.taskmanager,
          '--configDir',
          confDir,
          ...tm.dynamicArgs,
          '-D',
          `taskmanager.resource-id=${resourceId}`,
          '-D',
          `taskmanager.rpc.port=${taskManagerRpcPorts[index]}`,
        ],
      });
    }
    for (const { name } of processes) {
      logFiles.push(join(logDir, `${name}.log`), join(logDir, `${name}.out`));
      await writeFile(join(logDir, `${name}.out`), '');
    }
    if (user) await run('chown', ['-R', `${user.uid}:${user.gid}`, workDir]);

    for (const { name, args } of processes) {
      jvms.push(await startJvm(name, args, join(logDir, `${name}.out`), user, workDir));
    }

    trace('JVMs spawned');
    const checkAlive = async () => {
      const dead = jvms.find((jvm) => jvm.exitInfo !== undefined);
      if (dead) {
        const output = await tailOf(join(logDir, `${dead.name}.out`), 20);
        await fail(`the ${dead.name} JVM (pid ${dead.pid}) ${dead.exitInfo} during startup; its output:\n${output}`);
      }
    };
    /** Polls `ready` until true; a `{ fatal }` answer fails the startup at once. */
    const waitFor = async (what: string, ready: () => Promise<boolean | { fatal: string }>): Promise<void> => {
      let lastError: unknown;
      while (true) {
        await checkAlive();
        let answer: boolean | { fatal: string } = false;
        try {
          answer = await ready();
        } catch (error) {
          lastError = error;
        }
        if (answer === true) return;
        if (typeof answer === 'object') await fail(answer.fatal);
        if (Date.now() > deadline) {
          await fail(`timed out waiting for ${what}${lastError ? ` (last error: ${errorText(lastError)})` : ''}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    };

    await waitFor(`${taskManagerCount} TaskManager(s) to register at ${restUrl}`, async () => {
      const { taskmanagers = [] } = (await getJson(`${restUrl}/taskmanagers`)) as {
        taskmanagers?: Array<{ id: string }>;
      };
      const registered = new Set(taskmanagers.map((taskManager) => taskManager.id));
      return resourceIds.every((id) => registered.has(id));
    });

    trace('TaskManagers registered');
    const clientLog = join(logDir, 'job-client.log');
    logFiles.push(clientLog);
    let clientOutput: string;
    try {
      const { stdout } = await run(
        javaCommand('java'),
        [
          '-Xmx256m',
          '-XX:TieredStopAtLevel=1',
          '-XX:+UseSerialGC',
          ...java17Options,
          `-Djava.io.tmpdir=${ioTmpDir}`,
          `-Dlog.file=${clientLog}`,
          log4jArg,
          '-cp',
          `${classpath}:${prepared.jobJar}`,
          jobMainClass,
          host,
          String(restPort),
          prepared.jobJar,
          String(taskManagerCount),
          String(busyPercent),
          hotPathFile,
        ],
        { timeout: Math.max(10_000, deadline - Date.now()), cwd: workDir },
      );
      clientOutput = stdout;
    } catch (error) {
      // Not errorText: the message repeats the whole command line, classpath included.
      const {
        code,
        signal,
        stdout = '',
        stderr = '',
      } = error as { code?: unknown; signal?: unknown; stdout?: string; stderr?: string };
      return await fail(`the job client failed (${signal ?? code}):\n${stderr}${stdout}`, error);
    }
    jobId = clientOutput
      .split('\n')
      .find((line) => line.startsWith(jobIdMarker))
      ?.slice(jobIdMarker.length)
      .trim();
    if (!jobId) return await fail(`the job client printed no job id:\n${clientOutput}`);

    const submitted = jobId;
    trace(`job ${submitted} submitted`);
    await waitFor(`job ${submitted} to run all ${taskManagerCount} subtask(s)`, async () => {
      const job = (await getJson(`${restUrl}/jobs/${submitted}`)) as JobDetails;
      if (job.state === 'FAILED' || job.state === 'CANCELED' || job.state === 'FINISHED') {
        const exceptions = await getJson(`${restUrl}/jobs/${submitted}/exceptions`).catch(() => undefined);
        return { fatal: `job ${submitted} is ${job.state}: ${JSON.stringify(exceptions)}` };
      }
      return allSubtasksRunning(job);
    });

    trace('all subtasks running');
    const jobManager = jvms[0];
    if (!jobManager) throw new Error('no JobManager');
    return {
      restUrl,
      jobManager: { pid: jobManager.pid },
      taskManagers: resourceIds.map((resourceId, index) => ({ pid: jvms[index + 1]?.pid ?? -1, resourceId })),
      jobId: submitted,
      flinkVersion: prepared.flinkVersion,
      workDir,
      setHotPath: (path) => writeFile(hotPathFile, `${path}\n`, { mode: 0o644 }),
      logTail,
      stop,
    };
  } catch (error) {
    await stop(); // idempotent: `fail` already stopped the cluster
    throw error;
  }
}
