import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import { PROFILE_BEGIN, PROFILE_END } from '#domain/agent-output.ts';
import { createTestService, FLAME_GRAPH, TM } from '#test/support/unit-fakes.ts';

/** What the node agent prints for a finished profile, with the mode it really used and its message. */
function agentStdout(mode: string, message: string): string {
  const gzipped = gzipSync(Buffer.from(FLAME_GRAPH));
  const payload = gzipped.toString('base64').replace(/.{76}/g, '$&\n');
  const vouched = `sha256=${createHash('sha256').update(gzipped).digest('hex')} bytes=${gzipped.length}`;
  return `FLINK_PROFILER_RESULT status=FINISHED pid=4242 mode=${mode} ${vouched} message=${message}\n${PROFILE_BEGIN}\n${payload}\n${PROFILE_END}\n`;
}

async function completedCpuRun(stdout: string) {
  const { profiler } = createTestService();
  const started = await profiler.startRun({
    caller: LOCAL_CALLER,
    cluster: 'local',
    role: 'taskmanager',
    node: TM.id,
    mode: 'CPU',
    duration: 30,
  });
  return profiler.completeRun(started.id, { stdout, stderr: '', exitCode: 0 });
}

describe('completing a run that the agent profiled in another mode than asked', () => {
  it("keeps the agent's note on the fallback, and the mode asked for", async () => {
    const message = 'Profiling Successful (CPU fell back to ITIMER: perf events unavailable on this node)';

    const run = await completedCpuRun(agentStdout('ITIMER', message));

    expect(run).toMatchObject({ status: 'FINISHED', mode: 'CPU', message });
    expect(run?.outputFile).toMatch(new RegExp(`^${TM.id}_CPU_`));
  });

  it('adds a note when the agent changed the mode without saying so', async () => {
    const run = await completedCpuRun(agentStdout('ITIMER', 'Profiling Successful'));

    expect(run).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful (CPU fell back to ITIMER)' });
  });

  it("keeps Flink's plain message when the mode is the one asked for", async () => {
    const run = await completedCpuRun(agentStdout('CPU', 'Profiling Successful'));

    expect(run).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
  });
});
