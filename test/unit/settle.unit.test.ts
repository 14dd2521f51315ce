import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import { SESSION_START_MARGIN_SECONDS } from '#domain/deadline.ts';
import type { CommandOutput } from '#domain/ports.ts';
import type { ProfilerSettings } from '#domain/profiler-service.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout, TM } from '#test/support/unit-fakes.ts';

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

/**
 * async-profiler's session in the JVM has its own timeout and outlives an agent that was killed: a run that ended
 * that way keeps its target busy until the session is surely over, and says so; the next request gets 409 saying
 * until when, never a run that fails with "Profiler already started".
 */
describe('a run whose agent was killed while profiling', () => {
  const TM_PROFILER = `/api/v1/clusters/local/taskmanagers/${TM.id}/profiler`;
  const post = (app: ReturnType<typeof createTestService>['app'], body: unknown) =>
    app.request(TM_PROFILER, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const iso = (time: number) => new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');

  async function killedAfter(output: Partial<CommandOutput>, settings: Partial<ProfilerSettings> = {}) {
    const service = createTestService({ deliveryTimeoutSeconds: 60, ...settings });
    const run = await service.profiler.startRun({
      caller: LOCAL_CALLER,
      cluster: 'local',
      role: 'taskmanager',
      mode: 'ITIMER',
      duration: 30,
    });
    service.clock.now += 3_000;
    const ended = await service.profiler.settle(run.id, {
      kind: 'agentOutput',
      output: { stdout: '', stderr: 'Killed', exitCode: null, ...output },
    });
    // The session's own timeout is over at the latest a duration after the agent could have started it.
    const busyUntil = run.triggerTime + (60 + SESSION_START_MARGIN_SECONDS + 30) * 1000;
    return { ...service, run, ended, busyUntil };
  }

  it('keeps the target busy until the session’s timeout is surely over, and says until when', async () => {
    const { app, ended, busyUntil, clock, dispatcher, run } = await killedAfter({ exitCode: 137 });
    expect(ended?.status).toBe('FAILED');
    expect(ended?.message).toContain(`async-profiler may still be profiling the JVM until ${iso(busyUntil)}`);

    const refused = await post(app, { mode: 'WALL', duration: 10 });
    expect(refused.status).toBe(409);
    const [reason] = ((await refused.json()) as { errors: string[] }).errors;
    expect(reason).toBe(
      `taskmanager '${TM.id}' of cluster 'local' is busy until ${iso(busyUntil)}: run ${run.id} ended before its agent could stop async-profiler, whose session in the JVM runs until then at the latest; start a new run after that`,
    );
    expect(dispatcher.dispatched).toHaveLength(1);

    clock.now = busyUntil + 1;
    expect((await post(app, { mode: 'WALL', duration: 10 })).status).toBe(200);
  });

  it('keeps it busy when the exit code is unknown (the agent’s process was lost)', async () => {
    const { app } = await killedAfter({ exitCode: null });
    expect((await post(app, { mode: 'WALL', duration: 10 })).status).toBe(409);
  });

  it('frees the target at once when the agent answered, exited by itself, or never ran', async () => {
    for (const output of [
      // Its own answer: the agent stops the session before it answers.
      {
        stdout: 'FLINK_PROFILER_RESULT status=FAILED pid=4242 mode=ITIMER message=Profiling was cancelled (SIGTERM)\n',
        exitCode: 143,
      },
      // Exited by itself, with no answer: its exit trap answers whenever a session may have started.
      { exitCode: 126 },
      // SSM says it never reached the agent, or stopped it past the session's timeout.
      { exitCode: null, sessionOver: true },
    ]) {
      const { app, ended } = await killedAfter(output);
      expect(ended?.message).not.toContain('may still be profiling');
      expect((await post(app, { mode: 'WALL', duration: 10 })).status).toBe(200);
    }
  });
});
