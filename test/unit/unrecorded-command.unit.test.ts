import { describe, expect, it, vi } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout, JM, TM } from '#test/support/unit-fakes.ts';

/**
 * The sender dies between sending a command and recording its id (on AWS: the API or tick function times out or
 * crashes right after SendCommand). The run is stored before the command goes out, and the command's parameters
 * name it: its end is still recorded, and a retried fan-out never sends the command a second time.
 */
describe('a command whose id was never recorded', () => {
  const finished = { state: 'ended', output: { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 } };

  /** A service whose first `setCommandId` dies, as the sending function would right after SendCommand. */
  function senderDiesAfterSending() {
    const service = createTestService();
    const write = service.runs.setCommandId.bind(service.runs);
    let dies = true;
    vi.spyOn(service.runs, 'setCommandId').mockImplementation(async (id, commandId) => {
      if (dies) {
        dies = false;
        throw new Error('Task timed out after 29.00 seconds');
      }
      return write(id, commandId);
    });
    return service;
  }

  const profileTaskManager = {
    caller: LOCAL_CALLER,
    cluster: 'local',
    role: 'taskmanager',
    mode: 'ITIMER',
    duration: 5,
  } as const;

  it('finishes its run from the completion event, found by the command’s parameters', async () => {
    const { profiler, runs, dispatcher } = senderDiesAfterSending();
    await expect(profiler.startRun(profileTaskManager)).rejects.toThrow('Task timed out');
    const [stored] = await runs.listRunning();
    expect(stored).toMatchObject({ status: 'RUNNING', commandId: null });

    const [commandId] = [...dispatcher.commands.keys()] as [string];
    dispatcher.states.set(stored?.id as string, finished as never);
    const completed = await profiler.completeCommand(commandId, TM.id);

    expect(completed).toMatchObject({ id: stored?.id, status: 'FINISHED', commandId });
    expect((await runs.get(stored?.id as string))?.commandId).toBe(commandId);
  });

  it('finds the run of a fan-out command by the group id in its parameters and the instance', async () => {
    const { profiler, runs, dispatcher } = senderDiesAfterSending();
    await expect(profiler.startRuns({ ...profileTaskManager, cluster: 'local' })).rejects.toThrow('Task timed out');
    const [stored] = await runs.listRunning();
    const [commandId] = [...dispatcher.commands.keys()] as [string];
    expect(dispatcher.commands.get(commandId)).toMatchObject({ dispatchId: stored?.groupId });

    dispatcher.states.set(stored?.id as string, finished as never);
    // The same command on another instance, or a command that is not ours, names no run.
    expect(await profiler.completeCommand(commandId, JM.id)).toBeUndefined();
    expect(await profiler.completeCommand('command-of-someone-else', TM.id)).toBeUndefined();
    expect(await profiler.completeCommand(commandId, TM.id)).toMatchObject({ id: stored?.id, status: 'FINISHED' });
  });

  it('is found by the reconciler once the profile should be over, when no completion event comes', async () => {
    const { profiler, runs, dispatcher, clock } = senderDiesAfterSending();
    await expect(profiler.startRun(profileTaskManager)).rejects.toThrow('Task timed out');
    const [stored] = await runs.listRunning();
    dispatcher.states.set(stored?.id as string, finished as never);

    // Still within the profile: the dispatch may be under way; nothing is asked or settled.
    expect(await profiler.reconcile()).toEqual([]);
    clock.now += 6_000;
    const [settled] = await profiler.reconcile();
    expect(settled).toMatchObject({
      id: stored?.id,
      status: 'FINISHED',
      commandId: [...dispatcher.commands.keys()][0],
    });
  });

  it('is recorded, not sent again, when a rule firing that died after sending is retried', async () => {
    const { profiler, runs, dispatcher } = senderDiesAfterSending();
    const firing = { ...profileTaskManager, idempotencyKey: 'rule:r1@2026-11-27T10:00:00Z' };
    await expect(profiler.startRuns(firing)).rejects.toThrow('Task timed out');

    const retried = await profiler.startRuns(firing);
    expect(dispatcher.dispatched).toHaveLength(1);
    expect(retried.runs).toMatchObject([{ status: 'RUNNING', id: dispatcher.dispatched[0]?.run.id }]);
    expect((await runs.get(retried.runs[0]?.id as string))?.commandId).toBe('command-1');
  });
});
