import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { inject, vi } from 'vitest';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { LocalDispatcher } from '#adapters/local/local-dispatcher.ts';
import { LOCAL_CLUSTER, ProcDiscovery } from '#adapters/local/proc-discovery.ts';
import type { CommandOutput } from '#domain/ports.ts';
import { createAgentDocument, createBucket } from '#test/support/aws-resources.ts';
import { startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { recordedCommandFor, runAsSsmAgent } from '#test/support/ssm-agent-stand-in.ts';
import { installSsmAsAws } from '#test/support/ssm-as-aws.ts';
import { silentLog } from '#test/support/unit-fakes.ts';
import { describeDispatcherContract } from './dispatcher.contract.ts';

async function taskManagerJvm() {
  const jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
  const node = (await new ProcDiscovery().listNodes(LOCAL_CLUSTER))?.find((n) => n.pid === jvm.pid);
  if (!node) throw new Error(`fake TaskManager pid ${jvm.pid} was not discovered`);
  return { jvm, node };
}

describeDispatcherContract('child process (local mode)', async () => {
  const { jvm, node } = await taskManagerJvm();
  const dir = mkdtempSync(join(tmpdir(), 'ffp-dispatch-'));
  const ended = new Map<string, (output: CommandOutput) => void>();
  const outputs = new Map<string, Promise<CommandOutput>>();
  const waitFor = (runId: string) => {
    if (!outputs.has(runId)) outputs.set(runId, new Promise((resolve) => ended.set(runId, resolve)));
    return outputs.get(runId) as Promise<CommandOutput>;
  };
  const dispatcher = new LocalDispatcher({
    commandsDir: join(dir, 'commands'),
    asprof: inject('asprofPath'),
    agentTmpDir: dir,
    // The completion code's side of the port: local mode hands each command's output over when it ends.
    onCommandEnded: async (runId, output) => {
      void waitFor(runId);
      ended.get(runId)?.(output);
    },
    log: silentLog,
  });
  return {
    dispatcher,
    node,
    outputOf: (run) => waitFor(run.id),
    cleanup: async () => {
      await Promise.all([...outputs.values()]);
      await jvm.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeDispatcherContract('SSM RunCommand (AWS)', async () => {
  const { jvm, node: local } = await taskManagerJvm();
  const dir = mkdtempSync(join(tmpdir(), 'ffp-dispatch-'));
  const documentName = await createAgentDocument();
  const dispatcher = new SsmDispatcher(new SSMClient({}), new S3Client({}), {
    documentName,
    documentVersion: '1',
    outputBucket: await createBucket(),
    outputPrefix: 'ssm-output/',
    deliveryTimeoutSeconds: 60,
    graceSeconds: 60,
  });
  // On AWS a node is an instance; discovery there knows no pid.
  const node = {
    id: 'i-0c0ffee0c0ffee0c0',
    role: 'taskmanager' as const,
    host: 'ip-10-0-0-1.internal',
    reachable: true,
  };
  // SSM as AWS has it where moto is friendlier: only managed nodes take commands, and GetCommandInvocation keeps the
  // start of each invocation's output, which the dispatcher checks the S3 object against.
  installSsmAsAws().register(node.id);
  return {
    dispatcher,
    node,
    outputOf: async (run) => {
      // The SSM agent's part (runs nothing under moto): see the stand-in.
      await runAsSsmAgent(await recordedCommandFor(run.id), node.id, {
        asprof: inject('asprofPath'),
        tmpDir: dir,
        pid: local.pid,
      });
      const state = await dispatcher.inspect({
        ...run,
        commandId: (await recordedCommandFor(run.id)).CommandId ?? null,
      });
      if (state.state !== 'ended') throw new Error(`command not ended: ${JSON.stringify(state)}`);
      return state.output;
    },
    cleanup: async () => {
      vi.restoreAllMocks();
      await jvm.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
