import { afterAll, describe, expect, it } from 'vitest';
import { parseAgentOutput } from '#domain/agent-output.ts';
import type { CommandOutput, Dispatcher, FlinkNode } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { aRun } from '#test/support/runs.ts';

export interface DispatcherUnderTest {
  dispatcher: Dispatcher;
  /** A node that runs a Flink TaskManager JVM. */
  node: FlinkNode;
  /** The output of a dispatched command as it reaches the completion code once the command has ended. */
  outputOf(run: Run, commandId: string): Promise<CommandOutput>;
  cleanup(): Promise<void>;
}

function runFor(node: FlinkNode): Run {
  return aRun({ cluster: 'contract', node: node.id, role: node.role, duration: 1, triggerTime: Date.now() });
}

/** The behaviour every Dispatcher adapter promises; run against each adapter. */
export function describeDispatcherContract(adapter: string, create: () => Promise<DispatcherUnderTest>): void {
  describe(`Dispatcher contract: ${adapter}`, () => {
    let underTest: DispatcherUnderTest | undefined;
    const setup = async () => {
      underTest ??= await create();
      return underTest;
    };
    afterAll(async () => {
      await underTest?.cleanup();
    });

    it("starts the node agent for a run and hands over its output: the profile of the node's JVM", async () => {
      const { dispatcher, node, outputOf } = await setup();
      const run = runFor(node);
      const [result] = await dispatcher.dispatch([{ run, node }]);
      expect(result).toEqual({ runId: run.id, commandId: expect.any(String) });
      const output = await outputOf(run, (result as { commandId: string }).commandId);
      const parsed = parseAgentOutput(output.stdout);
      expect(parsed, output.stderr).toMatchObject({
        status: 'FINISHED',
        message: 'Profiling Successful',
        mode: 'ITIMER',
      });
      expect(parsed?.gzippedHtml?.length).toBeGreaterThan(1000);
    });

    it('answers for every run of a batch', async () => {
      const { dispatcher, node } = await setup();
      const runs = [runFor(node), { ...runFor(node), mode: 'WALL' as const }];
      const results = await dispatcher.dispatch(runs.map((run) => ({ run, node })));
      expect(results.map((r) => r.runId).sort()).toEqual(runs.map((r) => r.id).sort());
    });

    it('knows nothing of a run it never dispatched', async () => {
      const { dispatcher, node } = await setup();
      expect(await dispatcher.inspect(runFor(node))).toMatchObject({ state: 'lost', reason: expect.any(String) });
    });
  });
}
