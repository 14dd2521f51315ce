import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { flinkRoleOf } from '#domain/flink-entrypoints.ts';
import {
  compileFakeFlink,
  type FakeFlinkJvm,
  type FakeFlinkJvmOptions,
  fakeFlinkBuildDir,
  startFakeFlinkJvm,
  stopAllFakeFlinkJvms,
} from '#test/support/fake-flink-jvm.ts';
import { nodeAgentScript } from '#test/support/paths.ts';

// The node agent (root) against a node whose JVM user is hostile: links, FIFOs and renames in the scratch directory,
// an unsafe scratch base, a writable asprof, a 2 GiB flame graph, a process that only names a Flink class. Run as root
// (as the SSM agent runs the script); the JVM's user is `nobody` where it must not be root.

const asprofPath = inject('asprofPath');
const NOBODY = { uid: 65534, gid: 65534 };

interface AgentRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

const children = new Set<ChildProcess>();
const jvms: FakeFlinkJvm[] = [];
const dirs: string[] = [];

async function newDir(prefix: string, mode?: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  if (mode !== undefined) await chmod(dir, mode);
  return dir;
}

async function startJvm(options: FakeFlinkJvmOptions): Promise<FakeFlinkJvm> {
  const jvm = await startFakeFlinkJvm(options);
  jvms.push(jvm);
  // Other suites on this machine may run Flink JVMs too: runs name the test's own JVM unless a test says otherwise.
  currentPid = String(jvm.pid);
  return jvm;
}

let currentPid: string | undefined;

/** Waits until this machine runs no TaskManager but this test's (a search by role would find the others too). */
async function waitForOnlyOurTaskManagers(): Promise<void> {
  const ours = new Set(jvms.map((jvm) => String(jvm.pid)));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const others: string[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry) || ours.has(entry)) continue;
      const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      // By main class, as the agent counts (an impostor naming the class as an argument is not one).
      if (flinkRoleOf(args.split('\0')) === 'taskmanager') others.push(entry);
    }
    if (others.length === 0) return;
    if (Date.now() > deadline) throw new Error(`other TaskManagers run on this machine: ${others.join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function runAgent(vars: Record<string, string | undefined>): Promise<AgentRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('SSM_') && !key.startsWith('FLINK_PROFILER_') && key !== 'ASPROF') env[key] = value;
  }
  Object.assign(env, { SSM_runId: 'hostile-1', SSM_role: 'taskmanager', SSM_mode: 'ITIMER', SSM_duration: '1' });
  Object.assign(env, { ASPROF: asprofPath, ...(currentPid ? { SSM_pid: currentPid } : {}) });
  for (const [key, value] of Object.entries(vars)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const started = Date.now();
  const child = track(spawn('bash', [nodeAgentScript], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const RESULT =
  /^FLINK_PROFILER_RESULT status=(FINISHED|FAILED) pid=(\S+) mode=(\S+) (?:sha256=[0-9a-f]{64} bytes=\d+ )?(?:collapsed=[0-9a-f]{64}:\d+ jfr=[0-9a-f]{64}:\d+ )?message=(.*)$/;

function result(run: AgentRun): { status: string; pid: string; message: string } {
  const match = RESULT.exec(run.stdout.split('\n')[0] ?? '');
  if (!match) throw new Error(`no result line:\n${run.stdout.slice(0, 300)}\n${run.stderr}`);
  return { status: match[1] ?? '', pid: match[2] ?? '', message: match[4] ?? '' };
}

function expectFailed(run: AgentRun, code: number): string {
  const { status, message } = result(run);
  expect(status, run.stderr).toBe('FAILED');
  expect(run.code, `${message}\n${run.stderr}`).toBe(code);
  expect(run.stdout.split('\n')).toHaveLength(2);
  return message;
}

function expectFinished(run: AgentRun): { pid: string } {
  const { status, pid, message } = result(run);
  expect(status, `${message}\n${run.stderr}`).toBe('FINISHED');
  expect(run.code).toBe(0);
  return { pid };
}

/**
 * A stand-in async-profiler: `start -e E --timeout N -f FILE PID` makes FILE with `make_file` (a bash function given
 * FILE) and says "Profiling started"; `status` says the profiler is not active; `stop` does nothing.
 */
async function standInAsprof(makeFile: string): Promise<string> {
  const home = await newDir('stand-in-asprof-');
  await chmod(home, 0o755);
  await mkdir(join(home, 'bin'));
  await mkdir(join(home, 'lib'));
  await symlink(
    join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'),
    join(home, 'lib', 'libasyncProfiler.so'),
  );
  const asprof = join(home, 'bin', 'asprof');
  await writeFile(
    asprof,
    [
      '#!/usr/bin/env bash',
      'set -euo pipefail',
      `make_file() { ${makeFile}; }`,
      'case $1 in',
      '  start) while [[ $1 != -f ]]; do shift; done; make_file "$2"; echo "Profiling started" ;;',
      '  status) echo "Profiler is not active" ;;',
      '  *) : ;;',
      'esac',
      '',
    ].join('\n'),
  );
  await chmod(asprof, 0o755);
  return asprof;
}

/** A root-owned file only root may read, whose atime is older than its mtime: any read of it moves the atime. */
async function rootCanary(): Promise<{ path: string; check: () => Promise<void> }> {
  const dir = await newDir('canary-', 0o755);
  const path = join(dir, 'secret.html');
  await writeFile(path, '<!DOCTYPE html><html>CANARY</html>', { mode: 0o600 });
  await utimes(path, new Date(Date.now() - 3_600_000), new Date());
  const before = await stat(path);
  return {
    path,
    check: async () => {
      const after = await stat(path);
      expect(await readFile(path, 'utf8')).toBe('<!DOCTYPE html><html>CANARY</html>');
      expect({ uid: after.uid, gid: after.gid, mode: after.mode, nlink: after.nlink }).toEqual({
        uid: before.uid,
        gid: before.gid,
        mode: before.mode,
        nlink: before.nlink,
      });
      expect(after.atimeMs, 'the canary was read').toBe(before.atimeMs);
    },
  };
}

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  currentPid = undefined;
  await Promise.all(jvms.splice(0).map((jvm) => jvm.stop()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

afterAll(async () => {
  await stopAllFakeFlinkJvms();
});

beforeAll(async () => {
  // The fixture's classes, readable by the JVM's user when it is not root.
  await compileFakeFlink();
  await chmod(fakeFlinkBuildDir, 0o755);
});

describe('node agent on a hostile node: the scratch base', () => {
  it('refuses a scratch base others may write without the sticky bit, naming it and what to change', async () => {
    await startJvm({ role: 'taskmanager' });
    const base = await newDir('open-base-', 0o777);

    const message = expectFailed(await runAgent({ FLINK_PROFILER_TMPDIR: base }), 2);

    expect(message).toBe(
      `Scratch base directory ${base} (FLINK_PROFILER_TMPDIR or TMPDIR) is not safe for the node agent: ${base} may be written by every user (mode 0777). Make it (and each directory above it) belong to root and writable by no other user, or give it the sticky bit (chmod 1777, as /tmp has), or set FLINK_PROFILER_TMPDIR to such a directory`,
    );
    expect(await readdir(base)).toEqual([]);
  });

  it('refuses a scratch base that another user owns; a sticky one of root works', async () => {
    const jvm = await startJvm({ role: 'taskmanager' });
    const base = await newDir('foreign-base-');
    await import('node:fs/promises').then(({ chown }) => chown(base, NOBODY.uid, NOBODY.gid));
    const sticky = await newDir('sticky-base-', 0o1777);

    const message = expectFailed(await runAgent({ TMPDIR: base }), 2);
    const next = expectFinished(await runAgent({ TMPDIR: sticky }));

    expect(message).toContain(`: ${base} belongs to uid ${NOBODY.uid}, not root.`);
    expect(next.pid).toBe(String(jvm.pid));
  });
});

describe('node agent on a hostile node: asprof', () => {
  it.each([
    {
      what: 'a group-writable asprof',
      mode: { file: 0o775, bin: 0o755 },
      bad: 'asprof',
      writer: 'its group (mode 0775)',
    },
    {
      what: 'an asprof in a directory others may write',
      mode: { file: 0o755, bin: 0o757 },
      bad: 'bin',
      writer: 'every user (mode 0757)',
    },
  ])('refuses $what, naming the file', async ({ mode, bad, writer }) => {
    await startJvm({ role: 'taskmanager' });
    const home = await newDir('writable-asprof-', 0o755);
    await mkdir(join(home, 'bin'));
    await mkdir(join(home, 'lib'));
    await copyFile(
      join(dirname(asprofPath), '..', 'lib', 'libasyncProfiler.so'),
      join(home, 'lib', 'libasyncProfiler.so'),
    );
    await copyFile(asprofPath, join(home, 'bin', 'asprof'));
    await chmod(join(home, 'bin', 'asprof'), mode.file);
    await chmod(join(home, 'bin'), mode.bin);
    const badPath = bad === 'asprof' ? join(home, 'bin', 'asprof') : join(home, 'bin');

    const message = expectFailed(await runAgent({ ASPROF: join(home, 'bin', 'asprof') }), 3);

    expect(message).toMatch(
      new RegExp(
        `^async-profiler at \\S+ is not safe to run as root: ${badPath} may be written by ${writer.replace(/[()]/g, '\\$&')}\\. Install it owned by root`,
      ),
    );
  });
});

describe('node agent on a hostile node: the flame graph', () => {
  it('refuses 2 GiB of HTML with exit 7, naming the size and the limit, and the next run works', async () => {
    const jvm = await startJvm({ role: 'taskmanager' });
    // 2 GiB of zeros between <html> and </html>, as a sparse file: written as a stream, never held.
    const asprof = await standInAsprof('printf "<html>" >"$1"; truncate -s +2G "$1"; printf "</html>" >>"$1"');
    const base = await newDir('big-base-');

    const run = await runAgent({ ASPROF: asprof, FLINK_PROFILER_TMPDIR: base });
    const next = expectFinished(await runAgent({ FLINK_PROFILER_TMPDIR: base }));

    // The session's file: the recording, where the converter is installed (as here).
    expect(expectFailed(run, 7)).toBe(
      `Stop profiler failed. The recording is ${2 * 1024 ** 3 + 13} bytes, more than this node's limit of ${64 * 1024 ** 2} bytes (FLINK_PROFILER_MAX_HTML_BYTES, default ${64 * 1024 ** 2}): profile for a shorter duration, or raise the limit on the node`,
    );
    expect(next.pid).toBe(String(jvm.pid));
    expect(await readdir(base)).toEqual([]);
  });

  it('takes the limit from FLINK_PROFILER_MAX_HTML_BYTES on the node (a real flame graph over 2 KiB)', async () => {
    await startJvm({ role: 'taskmanager' });

    const message = expectFailed(await runAgent({ FLINK_PROFILER_MAX_HTML_BYTES: '2048' }), 7);

    expect(message).toMatch(
      /^Stop profiler failed\. The (recording|flame graph|collapsed stacks) is \d+ bytes, more than this node's limit of 2048 bytes/,
    );
  });
});

describe('node agent on a hostile node: which process is the Flink JVM', () => {
  it('counts only the main class, not a Flink class name among the program arguments', async () => {
    const taskManager = await startJvm({ role: 'taskmanager' });
    // A JVM whose main class is a source file; its first program argument is the TaskManager's class.
    const dir = await newDir('impostor-', 0o755);
    await writeFile(
      join(dir, 'Impostor.java'),
      'public class Impostor { public static void main(String[] a) throws Exception { System.out.println("READY"); Thread.sleep(120_000); } }\n',
    );
    const impostor = track(
      spawn(
        'java',
        ['-Xmx32m', join(dir, 'Impostor.java'), 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner'],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      ),
    );
    await new Promise<void>((resolve) =>
      impostor.stdout?.on('data', (chunk) => String(chunk).includes('READY') && resolve()),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));

    await waitForOnlyOurTaskManagers();
    const found = expectFinished(await runAgent({ SSM_pid: undefined }));
    const given = expectFailed(await runAgent({ SSM_pid: String(impostor.pid) }), 4);

    expect(found.pid).toBe(String(taskManager.pid));
    expect(given).toMatch(
      new RegExp(
        `^Process ${impostor.pid} is not a Flink TaskManager: it is a Java process that is not a Flink JobManager or TaskManager`,
      ),
    );
    expect(impostor.exitCode).toBeNull();
  });
});

describe('node agent on a hostile node: the JVM user plants links, FIFOs and renames', () => {
  /**
   * As the JVM's user, swaps the entries where the profile's files go, as fast as it can, for a symlink to the root-only
   * canary, a FIFO, a second hard link of a file of its own and a symlink to /dev/zero, and tries to rename the
   * directories above it. Runs until killed.
   */
  function startWatcher(base: string, canary: string): ChildProcess {
    const script = `
      const fs = require('node:fs'); const path = require('node:path'); const { execFileSync } = require('node:child_process');
      const [base, canary] = process.argv.slice(1);
      let n = 0;
      const tryIt = (f) => { try { f(); } catch {} };
      for (;;) {
        for (const entry of fs.readdirSync(base)) {
          const scratch = path.join(base, entry); const out = path.join(scratch, 'out');
          tryIt(() => fs.renameSync(scratch, scratch + '.moved'));
          tryIt(() => fs.renameSync(out, out + '.moved'));
          // Wherever the session or the converter writes: the recording, the flame graph, the collapsed stacks.
          const target = path.join(out, 'hostile-1.' + ['jfr', 'html', 'collapsed'][n % 3]);
          const tmp = path.join(out, 'tmp' + (n++ % 4));
          tryIt(() => fs.rmSync(tmp, { force: true }));
          switch (n % 4) {
            case 0: tryIt(() => fs.symlinkSync(canary, tmp)); break;
            case 1: tryIt(() => execFileSync('mkfifo', [tmp])); break;
            case 2: tryIt(() => { fs.writeFileSync(path.join(out, 'own'), '<html></html>'); fs.linkSync(path.join(out, 'own'), tmp); }); break;
            case 3: tryIt(() => fs.symlinkSync('/dev/zero', tmp)); break;
          }
          tryIt(() => fs.renameSync(tmp, target));
        }
      }`;
    return track(spawn(process.execPath, ['-e', script, base, canary], { ...NOBODY, stdio: 'ignore' }));
  }

  it('root touches nothing but the scratch directory: the run FAILS with a message, in time, and the next works', async () => {
    const jvm = await startJvm({ role: 'taskmanager', user: NOBODY });
    const canary = await rootCanary();
    // Like /tmp: root's, sticky, writable by all.
    const base = await newDir('hostile-base-', 0o1777);
    // The stand-in leaves the file to the watcher, as a JVM that writes nothing.
    const asprof = await standInAsprof(':');
    const watcher = startWatcher(base, canary.path);

    const runs: AgentRun[] = [];
    for (let i = 0; i < 3; i++) runs.push(await runAgent({ ASPROF: asprof, FLINK_PROFILER_TMPDIR: base }));
    watcher.kill('SIGKILL');
    const next = await runAgent({ FLINK_PROFILER_TMPDIR: base });

    for (const run of runs) {
      // Which message depends on what the watcher had planted when the agent looked: something that is no plain file
      // of the JVM's user, a file it could not read in time, or (on a busy machine, where the watcher is slow) nothing
      // at all, which is what the stand-in, a JVM that writes nothing, leaves.
      expect(expectFailed(run, 7)).toMatch(
        /^Stop profiler failed\. (\S+ is not a plain file written by the JVM's user \(uid 65534\)|Could not read \S+ as the JVM's user \(uid 65534\) within \d+s|The JVM \(uid 65534\) could not write \S+: FLINK_PROFILER_TMPDIR .*)$/,
      );
      expect(run.ms).toBeLessThan(60_000);
    }
    await canary.check();
    expect(expectFinished(next).pid).toBe(String(jvm.pid));
    // The watcher could rename nothing of root's. A scratch directory whose out/ it kept filling while the agent
    // cleaned up stays (root's, mode 0711) until a later run removes it as stale.
    const left = await readdir(base);
    expect(left.filter((entry) => !/^flink-profiler\.[A-Za-z0-9]{10}$/.test(entry))).toEqual([]);
    for (const entry of left) expect((await stat(join(base, entry))).uid).toBe(0);
  });
});
