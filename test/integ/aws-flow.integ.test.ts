import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SendCommandCommandInput } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { HttpRequest } from '@smithy/protocol-http';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { ENV } from '#shared/config.ts';
import { launchFlinkInstance, provisionFunctionEnvironment, TEST_TEAM } from '#test/support/aws-resources.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { commandStatusEvent, httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { aRun } from '#test/support/runs.ts';
import { recordedCommandFor, runAsSsmAgent } from '#test/support/ssm-agent-stand-in.ts';
import { installSsmAsAws } from '#test/support/ssm-as-aws.ts';

/**
 * The AWS path end to end, through the real Lambda handlers against a local AWS endpoint (moto_server, or
 * whatever AWS_ENDPOINT_URL names). moto runs no command: `runAsSsmAgent` stands in for the SSM agent on
 * the EC2 instance (see test/support/ssm-agent-stand-in.ts).
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

const OUTPUT_PREFIX = 'ssm-output/';

describe('the AWS path through the Lambda handlers', () => {
  let api: Handler;
  let completion: Handler;
  let reconciler: Handler;
  let bucket: string;
  let table: string;
  let documentName: string;
  let taskManager: string;
  let jobManager: string;
  let jvm: FakeFlinkJvm;
  let agentTmp: string;
  let sendCommandInputs: SendCommandCommandInput[] = [];

  beforeAll(async () => {
    [taskManager, jobManager] = await Promise.all([
      launchFlinkInstance('prod', 'taskmanager'),
      launchFlinkInstance('prod', 'jobmanager'),
    ]);
    ({ bucket, table, documentName } = await provisionFunctionEnvironment({
      [ENV.ssmOutputPrefix]: OUTPUT_PREFIX,
      [ENV.graceSeconds]: '30',
    }));
    // SSM as AWS has it where moto is friendlier (test/support/ssm-as-aws.ts): only managed nodes take commands,
    // invocations end as the agent reports, and GetCommandInvocation keeps the start of each one's output, which the
    // completion checks the S3 object against. It also records what SendCommand is really sent (moto keeps no
    // document version in its command records).
    const ssm = installSsmAsAws({ beforeAgentReports: 'InProgress' });
    ssm.register(taskManager);
    ssm.register(jobManager);
    sendCommandInputs = ssm.sent;
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    completion = (await import('#lambda/completion.lambda.ts')).handler as Handler;
    reconciler = (await import('#lambda/reconciler.lambda.ts')).handler as Handler;
    jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
    agentTmp = mkdtempSync(join(tmpdir(), 'ffp-agent-'));
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await jvm?.stop();
    rmSync(agentTmp, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const result = await api(httpApiEvent(method, path, { body }), lambdaContext);
    return {
      status: result.statusCode as number,
      headers: result.headers as Record<string, string>,
      body: result.body ? JSON.parse(result.body) : undefined,
    };
  };

  const statusEvent = (commandId: string, instanceId: string, status = 'Success') =>
    commandStatusEvent({
      'command-id': commandId,
      'document-name': documentName,
      'instance-id': instanceId,
      'requested-date-time': new Date().toISOString(),
      status,
    });

  it('lists the tagged instances as clusters and nodes', async () => {
    expect((await call('GET', '/api/v1/clusters')).body.clusters).toContainEqual({
      id: 'prod',
      nodes: 2,
      teams: [TEST_TEAM],
    });
    const { body } = await call('GET', '/api/v1/clusters/prod/nodes');
    expect(body.nodes.map((n: Json) => [n.id, n.role, n.reachable])).toEqual(
      [
        [taskManager, 'taskmanager', true],
        [jobManager, 'jobmanager', true],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect((await call('GET', '/api/v1/clusters/nope/nodes')).status).toBe(404);
  });

  it('creates a run, sends our document, and finishes it from the SSM output: FINISHED with working links', async () => {
    const created = await call('POST', `/api/v1/clusters/prod/taskmanagers/${taskManager}/profiler`, {
      mode: 'ITIMER',
      duration: 2,
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      status: 'RUNNING',
      node: taskManager,
      role: 'taskmanager',
      requestedBy: 'alice',
    });

    // SendCommand: our document at an explicit version, the run's parameters, output to S3.
    const sent = sendCommandInputs.at(-1);
    expect(sent).toMatchObject({
      DocumentName: documentName,
      DocumentVersion: process.env[ENV.documentVersion],
      InstanceIds: [taskManager],
      Parameters: {
        runId: [created.body.id],
        role: ['taskmanager'],
        mode: ['ITIMER'],
        duration: ['2'],
        executionTimeout: ['212'],
      },
      OutputS3BucketName: bucket,
      OutputS3KeyPrefix: OUTPUT_PREFIX,
    });
    const command: Json = await recordedCommandFor(created.body.id);
    expect(command.DocumentName).toBe(documentName);

    const agent = await runAsSsmAgent(command, taskManager, {
      asprof: inject('asprofPath'),
      tmpDir: agentTmp,
      pid: jvm.pid,
    });
    expect(agent.code, agent.stderr).toBe(0);
    // moto's GetCommandInvocation carries no output at all: a FINISHED run below proves it was read from S3.

    await completion(statusEvent(command.CommandId, taskManager), lambdaContext);
    const run = (await call('GET', `/api/v1/runs/${created.body.id}`)).body;
    expect(run).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });

    const head = await new S3Client({}).send(
      new HeadObjectCommand({
        Bucket: bucket,
        Key: `profiles/prod/taskmanager/${taskManager}/${run.id}/${run.outputFile}`,
      }),
    );
    expect(head.ContentType).toBe('text/html; charset=utf-8');
    expect(head.ContentEncoding).toBe('gzip');

    // The links open the flame graph of the JVM that was profiled.
    const response = await fetch(run.url);
    expect(response.status).toBe(200);
    const html =
      response.headers.get('content-encoding') === 'gzip' ? await response.text() : await gunzipped(response);
    expect(flameGraphFrames(html).some((frame) => frame.endsWith('.fakeFlinkHotLoop'))).toBe(true);

    // Duplicate and late events change nothing.
    await completion(statusEvent(command.CommandId, taskManager), lambdaContext);
    await completion(statusEvent(command.CommandId, taskManager, 'InProgress'), lambdaContext);
    expect((await call('GET', `/api/v1/runs/${created.body.id}`)).body.finishedTime).toBe(run.finishedTime);
    // An event of a command that is not ours is ignored.
    await completion(statusEvent('00000000-0000-0000-0000-000000000000', taskManager), lambdaContext);

    // Flink's download endpoint redirects to a presigned download link.
    const download = await api(
      httpApiEvent('GET', `/api/v1/clusters/prod/taskmanagers/${taskManager}/profiler/${run.outputFile}`),
      lambdaContext,
    );
    expect(download.statusCode).toBe(302);
    expect(new URL(download.headers.location).searchParams.get('response-content-disposition')).toBe(
      `attachment; filename="${run.outputFile}"`,
    );
  });

  it('signs links for minutes, with the SDK signer, and signs no checksum parameters into them', async () => {
    const { body } = await call('GET', `/api/v1/runs?cluster=prod&status=FINISHED`);
    const link = new URL(body.runs[0].url);
    const params = link.searchParams;
    expect(Number(params.get('X-Amz-Expires'))).toBe(900);
    expect([...params.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
    expect(params.get('response-content-disposition')).toBe(`inline; filename="${body.runs[0].outputFile}"`);

    // Recompute the signature with the SDK's own signer: the same request, time and credentials.
    const amzDate = params.get('X-Amz-Date') as string;
    const signingDate = new Date(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    const signatureParams = [
      'X-Amz-Algorithm',
      'X-Amz-Content-Sha256',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-Signature',
      'X-Amz-SignedHeaders',
    ];
    const unsigned = Object.fromEntries([...params].filter(([k]) => !signatureParams.includes(k)));
    const signer = new S3RequestPresigner({
      credentials: {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID as string,
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY as string,
      },
      region: process.env.AWS_REGION as string,
      sha256: Sha256,
    });
    const presigned = await signer.presign(
      new HttpRequest({
        method: 'GET',
        protocol: link.protocol,
        hostname: link.hostname,
        port: Number(link.port),
        path: decodeURIComponent(link.pathname),
        query: unsigned,
        headers: {},
      }),
      { expiresIn: 900, signingDate },
    );
    expect(presigned.query?.['X-Amz-Signature']).toBe(params.get('X-Amz-Signature'));
    expect(params.get('X-Amz-SignedHeaders')).toBe('host');
  });

  it('leaves a run RUNNING while SSM still has it in progress, then fails it with the agent message', async () => {
    const created = await call('POST', '/api/v1/clusters/prod/jobmanager/profiler', { mode: 'WALL', duration: 1 });
    expect(created.body).toMatchObject({ status: 'RUNNING', node: jobManager });
    const jm: Json = await recordedCommandFor(created.body.id);
    expect(sendCommandInputs.at(-1)?.InstanceIds, JSON.stringify(jm)).toEqual([jobManager]);

    // An event ahead of what SSM answers (the invocation still in progress there) ends nothing. (An object not in S3
    // yet after Success is retried: test/integ/ssm-as-aws.integ.test.ts.)
    await completion(statusEvent(jm.CommandId, jobManager), lambdaContext);
    expect((await call('GET', `/api/v1/runs/${created.body.id}`)).body.status).toBe('RUNNING');

    // The agent, pointed at a JVM that is a TaskManager, refuses to profile it as the JobManager and says so.
    const agent = await runAsSsmAgent(jm, jobManager, { asprof: inject('asprofPath'), tmpDir: agentTmp, pid: jvm.pid });
    expect(agent.code).not.toBe(0);
    await completion(statusEvent(jm.CommandId, jobManager), lambdaContext);
    const run = (await call('GET', `/api/v1/runs/${created.body.id}`)).body;
    expect(run.status).toBe('FAILED');
    expect(run.message).toBe(
      `Process ${jvm.pid} is not a Flink JobManager: it is a Flink TaskManager (org.apache.flink.runtime.taskexecutor.TaskManagerRunner)`,
    );
    // The target is free again.
    expect(
      (await call('POST', '/api/v1/clusters/prod/jobmanager/profiler', { mode: 'WALL', duration: 1 })).status,
    ).toBe(200);
  });

  it('reconciles an overdue run that SSM does not know: FAILED with a message', async () => {
    const store = new DynamoDbRunStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), table);
    const id = crypto.randomUUID();
    await store.insertRunning(
      aRun({ id, node: 'i-0123456789abcdef0', mode: 'CPU', triggerTime: Date.now() - 10 * 60_000, teams: [TEST_TEAM] }),
    );
    await store.setCommandId(id, '11111111-2222-3333-4444-555555555555');
    const result = await reconciler({}, lambdaContext);
    expect(result.settled).toBeGreaterThanOrEqual(1);
    const run = (await call('GET', `/api/v1/runs/${id}`)).body;
    expect(run.status).toBe('FAILED');
    expect(run.message).toMatch(/SSM has no record of command 11111111-2222-3333-4444-555555555555/);
  });
});

async function gunzipped(response: Response): Promise<string> {
  const { gunzipSync } = await import('node:zlib');
  return gunzipSync(Buffer.from(await response.arrayBuffer())).toString('utf8');
}
