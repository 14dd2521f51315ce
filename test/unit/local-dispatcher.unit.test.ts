import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalDispatcher } from '#adapters/local/local-dispatcher.ts';
import type { CommandOutput } from '#domain/ports.ts';
import { aRun } from '#test/support/runs.ts';
import { silentLog, TM } from '#test/support/unit-fakes.ts';

/**
 * Local mode accepts a command the way SSM does and forks its agent right after, so a request that starts a run is
 * answered before fork and exec. The agent here is the real script with an asprof that does not exist: it fails at
 * once (nothing is profiled).
 */

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dispatcherWith(ended: Array<{ runId: string; output: CommandOutput }>) {
  const commandsDir = mkdtempSync(join(tmpdir(), 'ffp-local-dispatch-'));
  dirs.push(commandsDir);
  const dispatcher = new LocalDispatcher({
    commandsDir,
    asprof: '/nonexistent/asprof',
    onCommandEnded: async (runId, output) => {
      ended.push({ runId, output });
    },
    log: silentLog,
  });
  return { dispatcher, commandsDir };
}

const waitFor = async (what: string, check: () => boolean) => {
  const until = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('LocalDispatcher', () => {
  it('hands out the command id before the agent is forked; the command counts as running until it ends', async () => {
    const ended: Array<{ runId: string; output: CommandOutput }> = [];
    const { dispatcher, commandsDir } = dispatcherWith(ended);
    const run = aRun({ cluster: 'local', node: TM.id, duration: 1 });

    const [result] = await dispatcher.dispatch([{ run, node: TM }]);

    if (!result || !('commandId' in result)) throw new Error(`not dispatched: ${JSON.stringify(result)}`);
    // Accepted: the record names the run (a restarted server finds it), no process yet.
    const record = JSON.parse(readFileSync(join(commandsDir, result.commandId, 'agent.json'), 'utf8'));
    expect(record).toEqual({ runId: run.id, role: run.role });
    expect(await dispatcher.inspect({ ...run, commandId: result.commandId })).toEqual({ state: 'running' });
    expect(await dispatcher.commandFor(run)).toBe(result.commandId);

    await waitFor('the agent to end', () => ended.length === 1);
    expect(ended[0]?.runId).toBe(run.id);
    expect(ended[0]?.output.stdout).toMatch(/^FLINK_PROFILER_RESULT status=FAILED /);
  });

  it('ends the run as a command that failed at once when its agent cannot be started', async () => {
    const ended: Array<{ runId: string; output: CommandOutput }> = [];
    const { dispatcher, commandsDir } = dispatcherWith(ended);
    const run = aRun({ cluster: 'local', node: TM.id, duration: 1 });

    const [result] = await dispatcher.dispatch([{ run, node: TM }]);
    // Gone before the fork: the agent's script cannot be written.
    rmSync(commandsDir, { recursive: true, force: true });

    await waitFor('the failure to be handed off', () => ended.length === 1);
    expect(result).toMatchObject({ runId: run.id, commandId: expect.stringMatching(/^local-/) });
    expect(ended[0]?.output).toMatchObject({
      exitCode: 127,
      failure: expect.stringMatching(/^Start profiler failed\. The node agent could not be started: /),
    });
  });

  it('after a restart, a command accepted but never forked is lost, saying why', async () => {
    const { commandsDir } = dispatcherWith([]);
    const run = aRun({ cluster: 'local', node: TM.id, duration: 1, commandId: 'local-never-forked' });
    const dir = join(commandsDir, 'local-never-forked');
    mkdirSync(dir);
    writeFileSync(join(dir, 'agent.json'), JSON.stringify({ runId: run.id, role: run.role }));
    const restarted = new LocalDispatcher({
      commandsDir,
      asprof: '/nonexistent/asprof',
      onCommandEnded: async () => undefined,
      log: silentLog,
    });

    expect(await restarted.inspect(run)).toEqual({
      state: 'lost',
      reason: 'The server stopped before the node agent was started; start a new run.',
    });
  });
});
