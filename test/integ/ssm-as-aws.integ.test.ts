import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { runDeadline } from '#domain/deadline.ts';
import { ENV } from '#shared/config.ts';
import { launchFlinkInstance, provisionFunctionEnvironment, uniqueName } from '#test/support/aws-resources.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { installS3AsAws } from '#test/support/s3-as-aws.ts';
import { runAsSsmAgent, type StandInOptions } from '#test/support/ssm-agent-stand-in.ts';
import {
  type EventDelivery,
  installSsmAsAws,
  type SsmAsAws,
  type SsmAsAwsOptions,
  type StatusChangeEvent,
  statusChangeEvents,
} from '#test/support/ssm-as-aws.ts';

/**
 * The real Lambda handlers against an SSM and an S3 that answer as AWS does where moto is friendlier: SendCommand
 * refuses a whole batch for one unmanaged node, DescribeInstanceInformation answers in its documented shape,
 * GetCommandInvocation reports what the agent stand-in ran (every terminal StatusDetails replayed from
 * test/fixtures/ssm/get-command-invocation.json), the agent uploads only non-empty streams or nothing at all, S3
 * answers 403 for a missing key, and status-change events come twice, out of order or never.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

// biome-ignore lint/suspicious/noExplicitAny: fixtures are JSON, typed where they are used
const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/ssm/${name}.json`, import.meta.url), 'utf8'));
const invocations = fixture('get-command-invocation') as {
  terminal: GetCommandInvocationCommandOutput[];
  successWithProfile: GetCommandInvocationCommandOutput;
  agentFailed: GetCommandInvocationCommandOutput;
};
const events = fixture('status-change-events') as { inProgress: StatusChangeEvent[]; terminal: StatusChangeEvent[] };
const describedFixture = fixture('describe-instance-information');

const OUTPUT_PREFIX = 'ssm-output/';
const GRACE_SECONDS = 30;
const DELIVERY_TIMEOUT_SECONDS = 60;

/** What each finer cause tells the user (by StatusDetails with spaces removed): it names the node and what to do. */
const CAUSES: Record<string, RegExp> = {
  DeliveryTimedOut:
    /^Start profiler failed\. The command was not delivered to instance (i-\w+) in time \(Delivery Timed Out\): .*start a new run once the node is Online/,
  ExecutionTimedOut:
    /^Stop profiler failed\. The node agent ran past its time limit on instance (i-\w+) \(Execution Timed Out\)/,
  AccessDenied: /^Start profiler failed\. The profiler may not run commands on instance (i-\w+) \(Access Denied\): /,
  NoInstanceFound: /^Start profiler failed\. SSM does not know instance (i-\w+) \(No Instance Found\): check /,
  InvalidPlatform: /^Start profiler failed\. Instance (i-\w+) is not a Linux node \(InvalidPlatform\): /,
  Undeliverable: /^Start profiler failed\. The command could not be delivered to instance (i-\w+) \(Undeliverable\): /,
  Terminated: /^Start profiler failed\. SSM cancelled the command on instance (i-\w+) before it ran \(Terminated\)/,
  Cancelled: /^Profiling was cancelled \(the SSM command was cancelled\)\./,
};
/** Messages that explain nothing: the catch-alls a user cannot act on. */
const GENERIC = /did not report a result; SSM says|without a result|gave no result within/;

describe('the Lambda handlers against an SSM and S3 that answer as AWS does', () => {
  let api: Handler;
  let completion: Handler;
  let reconciler: Handler;
  let bucket: string;
  let jvm: FakeFlinkJvm;
  let agentTmp: string;
  let ssm: SsmAsAws;
  const cluster = uniqueName('strict');

  beforeAll(async () => {
    // The functions read the clock through Date.now, captured when they are built: fake it before they are, so a
    // test can move past a run's deadline. It runs at the real pace until a test moves it.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    ({ bucket } = await provisionFunctionEnvironment({
      [ENV.ssmOutputPrefix]: OUTPUT_PREFIX,
      [ENV.graceSeconds]: String(GRACE_SECONDS),
      [ENV.deliveryTimeout]: String(DELIVERY_TIMEOUT_SECONDS),
    }));
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    completion = (await import('#lambda/completion.lambda.ts')).handler as Handler;
    reconciler = (await import('#lambda/reconciler.lambda.ts')).handler as Handler;
    jvm = await startFakeFlinkJvm({ role: 'taskmanager' });
    agentTmp = mkdtempSync(join(tmpdir(), 'ffp-agent-'));
  });

  afterAll(async () => {
    vi.useRealTimers();
    await jvm?.stop();
    if (agentTmp) rmSync(agentTmp, { recursive: true, force: true });
  });

  beforeEach(() => {
    ssm = installSsmAsAws();
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const result = await api(httpApiEvent(method, path, { body }), lambdaContext);
    return { status: result.statusCode as number, body: result.body ? JSON.parse(result.body) : undefined };
  };
  const runOf = async (id: string) => (await call('GET', `/api/v1/runs/${id}`)).body;

  /** A TaskManager instance of the test cluster, a managed node of SSM unless `managed` is false. */
  const taskManager = async (onCluster = cluster, managed = true) => {
    const id = await launchFlinkInstance(onCluster, 'taskmanager');
    // Not managed: discovery lists it, and it has left SSM by the time its command is sent.
    ssm.register(id, {}, { leavesBeforeFirstCommand: !managed });
    return id;
  };
  const startRun = async (node: string) => {
    const created = await call('POST', `/api/v1/clusters/${cluster}/taskmanagers/${node}/profiler`, {
      mode: 'ITIMER',
      duration: 1,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body.status).toBe('RUNNING');
    return created.body;
  };
  const agent = (node: string, options: Partial<StandInOptions> = {}) =>
    runAsSsmAgent(ssm.commandTo(node), node, {
      asprof: inject('asprofPath'),
      tmpDir: agentTmp,
      pid: jvm.pid,
      ...options,
    });
  /** Hands the events to the completion function one after the other, as EventBridge invokes it. */
  const deliver = async (node: string, delivery: EventDelivery = 'in-order') => {
    const command = ssm.commandTo(node);
    for (const event of statusChangeEvents(command.CommandId as string, node, delivery)) {
      await completion(event, lambdaContext);
    }
  };
  const objectsUnder = async (prefix: string) => {
    const { Contents = [] } = await new S3Client({}).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return Contents.map((object) => object.Key);
  };
  /** The reconciler looks at runs past their duration (1 s here). */
  const pastDuration = () => new Promise((resolve) => setTimeout(resolve, 1_100));
  /** The flame graphs stored for a node (each run keeps its other files beside its flame graph). */
  const profilesOf = async (node: string) =>
    (await objectsUnder(`profiles/${cluster}/taskmanager/${node}/`)).filter((key) => key?.endsWith('.html'));

  describe('the SSM stand-in answers in AWS’s documented shapes', () => {
    it('refuses a whole SendCommand with InvalidInstanceId when one id is no managed node, as the SDK raises it', async () => {
      const [good, bad] = await Promise.all([taskManager(), taskManager(cluster, false)]);
      const client = new SSMClient({});
      const documentName = process.env[ENV.documentName] as string;
      const error = await client
        .send(new SendCommandCommand({ DocumentName: documentName, InstanceIds: [good, bad], Comment: 'refused' }))
        .catch((e: unknown) => e);
      const recorded = fixture('errors').invalidInstanceId;
      expect(error).toMatchObject({
        name: recorded.name,
        $fault: recorded.$fault,
        $metadata: { httpStatusCode: recorded.$metadata.httpStatusCode },
        message: `Instances [[${bad}]] not in a valid state for account 123456789012`,
      });
      // Nothing was sent to the good node either.
      const { Commands = [] } = await client.send(new ListCommandsCommand({}));
      expect(Commands.filter((c) => c.Comment === 'refused')).toEqual([]);
    });

    it('answers DescribeInstanceInformation from its managed nodes, by InstanceIds, in pages of MaxResults (5 to 50)', async () => {
      const ids = await Promise.all(Array.from({ length: 7 }, () => taskManager()));
      ssm.register('i-0connectionlost0', { PingStatus: 'ConnectionLost' });
      const client = new SSMClient({});
      const asked = [...ids, 'i-0connectionlost0', 'i-0notmanaged00000'];
      const pages: Json[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(
          new DescribeInstanceInformationCommand({
            Filters: [{ Key: 'InstanceIds', Values: asked }],
            MaxResults: 5,
            ...(NextToken ? { NextToken } : {}),
          }),
        );
        pages.push(page);
        NextToken = page.NextToken;
      } while (NextToken);
      expect(pages.map((page) => page.InstanceInformationList.length)).toEqual([5, 3]);
      const listed = pages.flatMap((page) => page.InstanceInformationList);
      // Each managed node asked for, once; the one that is not managed is simply absent.
      expect(listed.map((info: Json) => info.InstanceId).sort()).toEqual([...ids, 'i-0connectionlost0'].sort());
      expect(listed.find((info: Json) => info.InstanceId === 'i-0connectionlost0')).toMatchObject({
        PingStatus: 'ConnectionLost',
      });
      // The documented fields, no more and no fewer, with dates as the SDK returns them.
      const documented = Object.keys(describedFixture.pages[0].InstanceInformationList[0]).sort();
      for (const info of listed) expect(Object.keys(info).sort()).toEqual(documented);
      expect(listed[0].LastPingDateTime).toBeInstanceOf(Date);

      for (const MaxResults of [4, 51]) {
        await expect(client.send(new DescribeInstanceInformationCommand({ MaxResults }))).rejects.toMatchObject({
          name: 'ValidationException',
        });
      }
      await expect(
        client.send(new DescribeInstanceInformationCommand({ NextToken: pages[0].NextToken, MaxResults: 5 })),
      ).rejects.toMatchObject({ name: 'InvalidNextToken' });
    });

    it('answers GetCommandInvocation from what the agent reported, and InvocationDoesNotExist before it has', async () => {
      const node = await taskManager();
      const run = await startRun(node);
      const command = ssm.commandTo(node);
      const client = new SSMClient({});
      const ask = () =>
        client.send(new GetCommandInvocationCommand({ CommandId: command.CommandId, InstanceId: node }));
      await expect(ask()).rejects.toMatchObject({ name: 'InvocationDoesNotExist' });

      const ran = await agent(node);
      expect(ran.code, ran.stderr).toBe(0);
      const invocation = await ask();
      const documented = Object.keys(invocations.successWithProfile).sort();
      expect(
        Object.keys(invocation)
          .filter((k) => k !== '$metadata')
          .sort(),
      ).toEqual(documented);
      expect(invocation).toMatchObject({
        Status: 'Success',
        StatusDetails: 'Success',
        ResponseCode: 0,
        DocumentVersion: '1',
        StandardOutputContent: ran.stdout.slice(0, 24_000),
      });
      // Both streams had something to say (the script logs its progress on stderr): both went to S3.
      const key = (stream: string) =>
        `${OUTPUT_PREFIX}${command.CommandId}/${node}/awsrunShellScript/profileFlinkJvm/${stream}`;
      expect(ran.stderr).not.toBe('');
      expect(ran.uploaded).toEqual([key('stdout'), key('stderr')]);
      expect(invocation.StandardErrorContent).toBe(ran.stderr.slice(0, 8_000));
      await deliver(node);
      expect((await runOf(run.id)).status).toBe('FINISHED');
    });

    it('builds status-change events in the documented shape, statuses spelled as events spell them', async () => {
      const node = await taskManager();
      await startRun(node);
      await agent(node, { endsWith: { Status: 'TimedOut', StatusDetails: 'Execution Timed Out' } });
      const built = statusChangeEvents(ssm.commandTo(node).CommandId as string, node);
      const [documented] = events.terminal as [StatusChangeEvent];
      for (const event of built) {
        expect(Object.keys(event).sort()).toEqual(Object.keys(documented).sort());
        expect(Object.keys(event.detail).sort()).toEqual(Object.keys(documented.detail).sort());
        expect(event.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(event.resources).toEqual([`arn:aws:ec2:us-east-1:123456789012:instance/${node}`]);
      }
      expect(built.map((event) => event.detail.status)).toEqual(['InProgress', 'TimedOut']);
      const statuses = [...events.inProgress, ...events.terminal].map((event) => event.detail.status);
      for (const event of built) expect(statuses).toContain(event.detail.status);
      await deliver(node);
    });
  });

  describe('every terminal StatusDetails, replayed from recorded responses, ends the run with a message to act on', () => {
    for (const recorded of invocations.terminal) {
      const cause = (recorded.StatusDetails as string).replaceAll(' ', '');
      it(`${recorded.Status} / "${recorded.StatusDetails}": FAILED, saying what happened on which node`, async () => {
        const node = await taskManager();
        const run = await startRun(node);
        const ran = await agent(node, { endsWith: recorded });
        expect(ran.uploaded).toEqual([]);

        await deliver(node);
        const ended = await runOf(run.id);
        expect(ended.status).toBe('FAILED');
        expect(CAUSES[cause], `no expectation for ${cause}`).toBeDefined();
        expect(ended.message).toMatch(CAUSES[cause] as RegExp);
        expect(ended.message).not.toMatch(GENERIC);
        if (cause !== 'Cancelled') expect(ended.message).toContain(node);
      });
    }

    it('Failed / "Failed": FAILED with the agent’s own reason', async () => {
      // A JobManager run pointed at a TaskManager JVM: the real script refuses it and says why.
      const jmCluster = uniqueName('strict-jm');
      const node = await launchFlinkInstance(jmCluster, 'jobmanager');
      ssm.register(node);
      const created = await call('POST', `/api/v1/clusters/${jmCluster}/jobmanager/profiler`, {
        mode: 'ITIMER',
        duration: 1,
      });
      const ran = await agent(node, { endsWith: invocations.agentFailed });
      expect(ran.code).not.toBe(0);
      await deliver(node);
      const ended = await runOf(created.body.id);
      expect(ended).toMatchObject({
        status: 'FAILED',
        message: `Process ${jvm.pid} is not a Flink JobManager: it is a Flink TaskManager (org.apache.flink.runtime.taskexecutor.TaskManagerRunner)`,
      });
    });

    it('Success / "Success" with its output in S3: FINISHED with one flame graph', async () => {
      const node = await taskManager();
      const run = await startRun(node);
      const ran = await agent(node, { endsWith: invocations.successWithProfile });
      expect(ran.code, ran.stderr).toBe(0);
      await deliver(node);
      expect(await runOf(run.id)).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
      expect(await profilesOf(node)).toHaveLength(1);
    });
  });

  it('Success whose upload failed silently stays RUNNING until the deadline, then FAILED naming the NodePolicy', async () => {
    const node = await taskManager();
    const run = await startRun(node);
    const ran = await agent(node, { upload: 'fails-silently' });
    expect(ran.code, ran.stderr).toBe(0);
    const command = ssm.commandTo(node);
    expect(await objectsUnder(`${OUTPUT_PREFIX}${command.CommandId}/`)).toEqual([]);

    // SSM says Success; the output may still be on its way: the event is retried, the reconciler waits.
    const [, ended] = statusChangeEvents(command.CommandId as string, node) as [StatusChangeEvent, StatusChangeEvent];
    await expect(completion(ended, lambdaContext)).rejects.toThrow(/not in S3 yet/);
    await reconciler({}, lambdaContext);
    expect((await runOf(run.id)).status).toBe('RUNNING');

    // Lambda retries the event once nothing can be on its way any more.
    const deadline = runDeadline(run, {
      deliveryTimeoutSeconds: DELIVERY_TIMEOUT_SECONDS,
      settleMarginSeconds: GRACE_SECONDS,
    });
    vi.setSystemTime(deadline + 1_000);
    await completion(ended, lambdaContext);
    const failed = await runOf(run.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.message).toMatch(
      /^Stop profiler failed\. The node agent reported success but the agent's output never reached S3: attach the NodePolicy to the instance role/,
    );
    // SSM's own 24,000-character copy is quoted as a diagnostic, never taken for the profile.
    expect(failed.message).toContain('FLINK_PROFILER_RESULT status=FINISHED');
    expect(await profilesOf(node)).toEqual([]);
  });

  it('S3’s 403 for a missing output key (no s3:ListBucket) is taken for a 404', async () => {
    const s3 = installS3AsAws();
    // Never delivered: the agent uploaded nothing, S3 answers 403 for both streams, and the cause still shows.
    const undelivered = await taskManager();
    const failed = await startRun(undelivered);
    const [timedOut] = invocations.terminal.filter((r) => r.StatusDetails === 'Delivery Timed Out');
    await agent(undelivered, { endsWith: timedOut });
    await deliver(undelivered);
    const settled = await runOf(failed.id);
    expect(settled.status).toBe('FAILED');
    expect(settled.message).toMatch(CAUSES.DeliveryTimedOut as RegExp);
    expect(s3.refused.filter((key) => key.includes(`/${undelivered}/`)).map((key) => key.split('/').pop())).toEqual(
      expect.arrayContaining(['stdout', 'stderr']),
    );

    // Not there yet: stdout answers 403 too, and the event is retried as for a 404, not failed as forbidden.
    const waiting = await taskManager();
    const pending = await startRun(waiting);
    await agent(waiting, { upload: 'fails-silently' });
    const [, ended] = statusChangeEvents(ssm.commandTo(waiting).CommandId as string, waiting) as StatusChangeEvent[];
    await expect(completion(ended, lambdaContext)).rejects.toThrow(/not in S3 yet/);
    expect((await runOf(pending.id)).status).toBe('RUNNING');
  });

  const fanOuts: Array<{ name: string; layer: SsmAsAwsOptions; describes: number; resends: number }> = [
    { name: 'DescribeInstanceInformation in one page', layer: {}, describes: 1, resends: 1 },
    // Pages may hold fewer entries than MaxResults and still go on: every page counts.
    { name: 'DescribeInstanceInformation one node a page', layer: { describePageSize: 1 }, describes: 2, resends: 1 },
    // DescribeInstanceInformation may refuse an unknown id in its filter: each node is then sent alone.
    {
      name: 'DescribeInstanceInformation refusing the unknown id',
      layer: { describeUnknownIds: 'InvalidInstanceId' },
      describes: 1,
      resends: 3,
    },
  ];
  for (const { name, layer, describes, resends } of fanOuts) {
    it(`a fan-out over nodes of which one is no managed node fails only that node’s run (${name})`, async () => {
      vi.restoreAllMocks();
      ssm = installSsmAsAws(layer);
      const fanCluster = uniqueName('strict-fan');
      const goods = [await taskManager(fanCluster), await taskManager(fanCluster)];
      const bad = await taskManager(fanCluster, false);
      const started = await call('POST', `/api/v1/clusters/${fanCluster}/profiler`, {
        mode: 'ITIMER',
        duration: 1,
        role: 'taskmanager',
      });
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      const byNode = new Map<string, Json>(started.body.runs.map((run: Json) => [run.node, run]));
      const badRun = await runOf(byNode.get(bad).id);
      expect(badRun.status).toBe('FAILED');
      expect(badRun.message).toContain(`Instance ${bad} is not a managed node of SSM`);
      // One refused call for all three, then the managed nodes without the bad one.
      const sent = ssm.sent.map((input) => [...(input.InstanceIds ?? [])].sort());
      expect(sent[0]).toEqual([...goods, bad].sort());
      expect(sent.slice(1)).toHaveLength(resends);
      expect(
        sent
          .slice(1)
          .flat()
          .filter((id) => id !== bad)
          .sort(),
      ).toEqual([...goods].sort());
      // The dispatcher's questions (by id), not discovery's (by tag).
      expect(ssm.described.filter((input) => input.Filters?.some((f) => f.Key === 'InstanceIds'))).toHaveLength(
        describes,
      );

      for (const good of goods) {
        expect((await runOf(byNode.get(good).id)).status).toBe('RUNNING');
        const ran = await agent(good);
        expect(ran.code, ran.stderr).toBe(0);
        await deliver(good);
        expect(await runOf(byNode.get(good).id)).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
      }
    });
  }

  for (const delivery of ['duplicated', 'reordered'] as const) {
    it(`events ${delivery}: the run finishes once, with one flame graph`, async () => {
      const node = await taskManager();
      const run = await startRun(node);
      await agent(node);
      const command = ssm.commandTo(node);
      const seen: Json[] = [];
      for (const event of statusChangeEvents(command.CommandId as string, node, delivery)) {
        await completion(event, lambdaContext);
        seen.push(await runOf(run.id));
      }
      // Each read signs fresh links (their X-Amz-Date moves with the clock): the run itself must not change.
      const settled = seen.map(({ url: _url, downloadUrl: _downloadUrl, ...stored }) => stored);
      const first = settled.findIndex((state) => state.status !== 'RUNNING');
      expect(settled[first]).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
      for (const later of settled.slice(first)) expect(later).toEqual(settled[first]);
      expect(await profilesOf(node)).toEqual([expect.stringContaining(`/${run.id}/`)]);
    });
  }

  it('events never sent: the reconciler settles the run from SSM and S3', async () => {
    const node = await taskManager();
    const run = await startRun(node);
    // Past its duration (1 s) the reconciler asks SSM, which knows no invocation before the agent has run.
    await pastDuration();
    await reconciler({}, lambdaContext);
    expect((await runOf(run.id)).status).toBe('RUNNING');

    await agent(node);
    expect(statusChangeEvents(ssm.commandTo(node).CommandId as string, node, 'never')).toEqual([]);
    const result = await reconciler({}, lambdaContext);
    expect(result.settled).toBeGreaterThanOrEqual(1);
    expect(await runOf(run.id)).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(await profilesOf(node)).toHaveLength(1);
  });

  it('events never sent for a command never delivered: the reconciler fails the run with the cause', async () => {
    const node = await taskManager();
    const run = await startRun(node);
    const [undelivered] = invocations.terminal.filter((r) => r.StatusDetails === 'Delivery Timed Out');
    await agent(node, { endsWith: undelivered });
    await pastDuration();
    await reconciler({}, lambdaContext);
    const ended = await runOf(run.id);
    expect(ended.status).toBe('FAILED');
    expect(ended.message).toMatch(CAUSES.DeliveryTimedOut as RegExp);
  });
});
