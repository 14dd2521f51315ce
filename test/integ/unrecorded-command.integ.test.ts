import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ListCommandsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { ENV } from '#shared/config.ts';
import { launchFlinkInstance, provisionFunctionEnvironment } from '#test/support/aws-resources.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { commandStatusEvent, httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { runAsSsmAgent } from '#test/support/ssm-agent-stand-in.ts';
import { installSsmAsAws } from '#test/support/ssm-as-aws.ts';

/**
 * The API function dies between SendCommand and recording the command id (a Lambda timeout, an out-of-memory kill
 * right after the call returns). Here the write of the command id fails in the real API handler, on moto, after SSM
 * has the command: nothing after that point of the request runs, as when the function dies. The run was stored before
 * the command went out and the command's parameters name it, so the status-change event, or the reconciler when no
 * event comes, still finishes the run with its flame graph.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

describe('a command sent by an API function that died before recording it', () => {
  let api: Handler;
  let completion: Handler;
  let reconciler: Handler;
  let bucket: string;
  let table: string;
  let documentName: string;
  let taskManager: string;
  let jvm: FakeFlinkJvm;
  let agentTmp: string;

  beforeAll(async () => {
    taskManager = await launchFlinkInstance('unrecorded', 'taskmanager');
    ({ bucket, table, documentName } = await provisionFunctionEnvironment({
      [ENV.graceSeconds]: '30',
    }));
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    completion = (await import('#lambda/completion.lambda.ts')).handler as Handler;
    reconciler = (await import('#lambda/reconciler.lambda.ts')).handler as Handler;
    jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
    agentTmp = mkdtempSync(join(tmpdir(), 'ffp-agent-'));
  });

  // SSM as AWS has it (moto keeps no copy of a command's output, which the completion checks the S3 object against).
  beforeEach(() => installSsmAsAws().register(taskManager));
  afterEach(() => vi.restoreAllMocks());

  afterAll(async () => {
    await jvm?.stop();
    rmSync(agentTmp, { recursive: true, force: true });
  });

  const store = () => new DynamoDbRunStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), table);

  /** The next write of a command id fails: the function is gone from then on. */
  function killApiAfterSendCommand() {
    const send = DynamoDBDocumentClient.prototype.send;
    return vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (
      this: DynamoDBDocumentClient,
      command: unknown,
      ...rest: unknown[]
    ) {
      if (command instanceof UpdateCommand && command.input.UpdateExpression?.includes('commandId = :commandId')) {
        return Promise.reject(new Error('Task timed out after 29.03 seconds'));
      }
      return (send as (...args: unknown[]) => Promise<unknown>).call(this, command, ...rest);
    } as typeof send);
  }

  /** Starts a run whose API call dies after SendCommand; returns the stored run and the command SSM has for it. */
  async function startAndDie() {
    const dynamo = killApiAfterSendCommand();
    const response = await api(
      httpApiEvent('POST', `/api/v1/clusters/unrecorded/taskmanagers/${taskManager}/profiler`, {
        body: { mode: 'ITIMER', duration: 1 },
      }),
      lambdaContext,
    );
    dynamo.mockRestore();
    expect(response.statusCode).toBe(500);
    const [run] = (await store().listRunning()).filter((r) => r.node === taskManager);
    expect(run).toMatchObject({ status: 'RUNNING', commandId: null });
    const { Commands = [] } = await new SSMClient({}).send(new ListCommandsCommand({ InstanceId: taskManager }));
    const command = Commands.find((c) => c.Parameters?.runId?.[0] === run?.id);
    if (!run || !command?.CommandId) throw new Error('SSM has no command for the run');
    const agent = await runAsSsmAgent(command, taskManager, {
      asprof: inject('asprofPath'),
      tmpDir: agentTmp,
      pid: jvm.pid,
    });
    expect(agent.code, agent.stderr).toBe(0);
    return { run, commandId: command.CommandId };
  }

  const flameGraphsOf = async (runId: string) => {
    const { Contents = [] } = await new S3Client({}).send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `profiles/unrecorded/taskmanager/${taskManager}/${runId}/` }),
    );
    return Contents.map((object) => object.Key).filter((key) => key?.endsWith('.html'));
  };

  it('is finished by its status-change event, found by the run id in the command’s parameters', async () => {
    const { run, commandId } = await startAndDie();
    await completion(
      commandStatusEvent({
        'command-id': commandId,
        'document-name': documentName,
        'instance-id': taskManager,
        'requested-date-time': new Date().toISOString(),
        status: 'Success',
      }),
      lambdaContext,
    );
    expect(await store().get(run.id)).toMatchObject({ status: 'FINISHED', commandId });
    expect(await flameGraphsOf(run.id)).toHaveLength(1);
  });

  it('is finished by the reconciler when its event never comes', async () => {
    const { run, commandId } = await startAndDie();
    // The reconciler looks once the profile should be over (1 s here).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await reconciler({}, lambdaContext);
    expect(await store().get(run.id)).toMatchObject({ status: 'FINISHED', commandId });
    expect(await flameGraphsOf(run.id)).toHaveLength(1);
  });
});
