import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout } from '#test/support/unit-fakes.ts';

/** One place where a run ends: duplicates, races and late reports never lose, double or delete a flame graph. */
describe('settle', () => {
  const finished = { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 };

  async function running() {
    const service = createTestService();
    const run = await service.profiler.startRun({
      caller: LOCAL_CALLER,
      cluster: 'local',
      role: 'taskmanager',
      mode: 'ITIMER',
      duration: 5,
    });
    return { ...service, run };
  }

  it('keeps the flame graph under a key of the run’s own', async () => {
    const { profiler, run } = await running();
    const settled = await profiler.settle(run.id, { kind: 'agentOutput', output: finished });
    expect(settled?.status).toBe('FINISHED');
    expect(settled?.artifactKey).toContain(`/${run.id}/`);
  });

  it('settles once under duplicate, concurrent reports, and the losers keep the winner’s flame graph', async () => {
    const { profiler, artifacts, run, clock } = await running();
    // The same second: every settle names the same output file, as duplicated events do.
    const results = await Promise.all(
      Array.from({ length: 6 }, () => profiler.settle(run.id, { kind: 'agentOutput', output: finished })),
    );
    const stored = await profiler.getRun(LOCAL_CALLER, run.id);
    expect(new Set(results.map((r) => r?.artifactKey))).toEqual(new Set([stored.artifactKey]));
    expect(existsSync(artifacts.fileOf(stored.artifactKey as string))).toBe(true);
    // A late duplicate in another second changes nothing either.
    clock.now += 5_000;
    expect((await profiler.settle(run.id, { kind: 'agentOutput', output: finished }))?.artifactKey).toBe(
      stored.artifactKey,
    );
    expect(existsSync(artifacts.fileOf(stored.artifactKey as string))).toBe(true);
  });

  it('ignores a report that comes after the run ended, whatever it says', async () => {
    const { profiler, run } = await running();
    await profiler.settle(run.id, { kind: 'agentOutput', output: finished });
    const late = await profiler.settle(run.id, { kind: 'overdue', deadline: run.triggerTime });
    expect(late).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    const failedFirst = await running();
    await failedFirst.profiler.settle(failedFirst.run.id, { kind: 'dispatchFailed', reason: 'SendCommand failed' });
    const after = await failedFirst.profiler.settle(failedFirst.run.id, { kind: 'agentOutput', output: finished });
    expect(after).toMatchObject({
      status: 'FAILED',
      message: 'Start profiler failed. The node agent could not be started: SendCommand failed',
      artifactKey: null,
    });
  });

  it('turns each observation into the catalog’s message', async () => {
    const cases = [
      [{ kind: 'commandUnknown', reason: 'SSM has no record of command c-1' }, 'SSM has no record of command c-1'],
      [
        { kind: 'agentOutput', output: { stdout: '', stderr: 'sh: asprof: not found\n', exitCode: 127 } },
        'The node agent exited with code 127 without a result: sh: asprof: not found',
      ],
      [
        {
          kind: 'agentOutput',
          output: {
            stdout: 'FLINK_PROFILER_RESULT status=FINISHED pid=1 mode=ITIMER message=ok\n',
            stderr: '',
            exitCode: 0,
          },
        },
        'Stop profiler failed. The node agent reported success but its flame graph was missing or damaged in transit.',
      ],
    ] as const;
    for (const [observation, message] of cases) {
      const { profiler, run } = await running();
      expect((await profiler.settle(run.id, observation))?.message).toBe(message);
    }
  });
});
