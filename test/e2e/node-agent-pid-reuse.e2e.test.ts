import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { compileFakeFlink, fakeFlinkMainClasses } from '#test/support/fake-flink-jvm.ts';
import { nodeAgentScript } from '#test/support/paths.ts';

/**
 * A pid the kernel gives to another process while the agent works must never be signalled. The JVM dies right
 * after the profiler starts in it and an impostor gets its pid at once: run in a pid namespace of its own
 * (`unshare --pid`), where root may say which pid the next process gets (/proc/sys/kernel/ns_last_pid). A stand-in
 * async-profiler records every call; after `start`, the agent must see that the pid is no longer the JVM it checked
 * (its start time differs) and call asprof on it no more.
 */
describe('the node agent when the JVM’s pid is reused', () => {
  let dir: string;
  let calls: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ffp-pid-reuse-'));
    chmodSync(dir, 0o755);
    calls = join(dir, 'asprof-calls');
    // A root-owned async-profiler home the agent accepts: bin/asprof (the stand-in) beside the real lib/.
    mkdirSync(join(dir, 'asprof', 'bin'), { recursive: true, mode: 0o755 });
    mkdirSync(join(dir, 'asprof', 'lib'), { mode: 0o755 });
    symlinkSync(
      join(dirname(inject('asprofPath')), '..', 'lib', 'libasyncProfiler.so'),
      join(dir, 'asprof', 'lib', 'libasyncProfiler.so'),
    );
    writeFileSync(
      join(dir, 'asprof', 'bin', 'asprof'),
      [
        '#!/usr/bin/env bash',
        // The last argument is the pid; every call is recorded.
        `printf '%s\\n' "$*" >>${JSON.stringify(calls)}`,
        'for pid; do :; done',
        'case $1 in',
        '  start)',
        '    kill -9 "$pid"',
        '    for _ in $(seq 100); do [[ -e /proc/$pid ]] || break; sleep 0.05; done',
        // The next process of the namespace gets the JVM's pid: no fork between these two lines.
        '    echo $((pid - 1)) >/proc/sys/kernel/ns_last_pid',
        '    sleep 300 </dev/null >/dev/null 2>&1 &',
        `    echo "impostor $! for $pid" >>${JSON.stringify(calls)}`,
        '    echo "Profiling started" ;;',
        '  status) echo "Profiling is running for 1 seconds" ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops at once, saying the JVM exited, and never calls asprof on the process that took its pid', async () => {
    const classpath = await compileFakeFlink();
    // Inside the namespace: the JVM, then the agent on its pid; the harness's output is the agent's.
    const harness = join(dir, 'harness.sh');
    writeFileSync(
      harness,
      [
        '#!/usr/bin/env bash',
        `java -Xmx64m -XX:+UseSerialGC -cp ${JSON.stringify(classpath)} ${fakeFlinkMainClasses.taskmanager} --configDir /nonexistent &`,
        'jvm=$!',
        // Attach only once the JVM has finished starting (its libjvm mapped, its main class running).
        'for _ in $(seq 100); do grep -q libjvm.so /proc/$jvm/maps 2>/dev/null && break; sleep 0.1; done',
        'sleep 2',
        `SSM_runId=pid-reuse SSM_role=taskmanager SSM_mode=ITIMER SSM_duration=5 SSM_pid=$jvm ASPROF=${JSON.stringify(join(dir, 'asprof', 'bin', 'asprof'))} bash ${JSON.stringify(nodeAgentScript)}`,
        'echo "agent exit $?"',
        'echo "jvm $jvm"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const run = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'bash', harness], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    });
    const jvm = /^jvm (\d+)$/m.exec(run.stdout)?.[1];
    const log = readFileSync(calls, 'utf8').trim().split('\n');

    // The impostor really has the JVM's pid (else this run proves nothing).
    expect(log, run.stderr).toContain(`impostor ${jvm} for ${jvm}`);
    expect(run.stdout).toContain(
      `FLINK_PROFILER_RESULT status=FAILED pid=${jvm} mode=ITIMER message=Process ${jvm} exited during profiling`,
    );
    expect(run.stdout).toMatch(/^agent exit 6$/m);
    // After `start`, no asprof call at all: not `status`, not `stop`, on what is now another process.
    const start = log.findIndex((line) => line.startsWith('start '));
    expect(start, log.join('\n')).toBeGreaterThanOrEqual(0);
    expect(log.slice(start + 1).filter((line) => !line.startsWith('impostor '))).toEqual([]);
  });
});
