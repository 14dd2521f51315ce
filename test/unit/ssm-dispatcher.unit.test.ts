import { readFileSync } from 'node:fs';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import {
  DescribeInstanceInformationCommand,
  type DescribeInstanceInformationCommandOutput,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  InvalidInstanceId,
  ListCommandsCommand,
  type ListCommandsCommandOutput,
  SendCommandCommand,
  SSMClient,
  SSMServiceException,
} from '@aws-sdk/client-ssm';
import { HttpResponse } from '@smithy/protocol-http';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_COMMANDS_IN_FLIGHT,
  OutputNotReadyError,
  SsmDispatcher,
  type SsmDispatcherOptions,
  ssmClientConfig,
} from '#adapters/aws/ssm-dispatcher.ts';
import { parseAgentOutput } from '#domain/agent-output.ts';
import type { FlinkNode } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { aRun } from '#test/support/runs.ts';
import { FLAME_GRAPH, finishedAgentStdout } from '#test/support/unit-fakes.ts';

/**
 * The SSM dispatcher's own logic, with the SDK clients mocked (aws-sdk-client-mock): batching and the
 * mapping of SSM's statuses, which moto cannot produce (it reports Success at once). The responses and errors
 * SSM and S3 give are replayed from test/fixtures/ssm/, in AWS's documented shapes. The integration tier runs the
 * same adapter against a local AWS endpoint.
 */

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

// biome-ignore lint/suspicious/noExplicitAny: fixtures are JSON, typed where they are used
const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/ssm/${name}.json`, import.meta.url), 'utf8'));

const invocations = fixture('get-command-invocation') as {
  terminal: GetCommandInvocationCommandOutput[];
  successWithProfile: GetCommandInvocationCommandOutput;
};
const errors = fixture('errors');
const listings = fixture('list-objects-v2');
const described = fixture('describe-instance-information') as {
  batch: string[];
  unmanaged: string;
  pages: DescribeInstanceInformationCommandOutput[];
  connectionLost: DescribeInstanceInformationCommandOutput;
};

/** The SDK returns Date objects where the JSON fixture has ISO strings. */
function withDates(page: DescribeInstanceInformationCommandOutput): DescribeInstanceInformationCommandOutput {
  const dates = ['LastPingDateTime', 'RegistrationDate', 'LastAssociationExecutionDate'] as const;
  return {
    ...page,
    InstanceInformationList: page.InstanceInformationList?.map((info) => {
      const revived: Record<string, unknown> = { ...info };
      for (const key of [...dates, 'LastSuccessfulAssociationExecutionDate']) {
        if (typeof revived[key] === 'string') revived[key] = new Date(revived[key] as string);
      }
      return revived;
    }),
  } as DescribeInstanceInformationCommandOutput;
}

/** An error as the SDK raises it: the modeled class where there is one, else the service's base exception. */
function sdkError(shape: { name: string; $fault?: 'client' | 'server'; message: string; $metadata: object }): Error {
  const options = { message: shape.message, $metadata: shape.$metadata };
  switch (shape.name) {
    case 'InvalidInstanceId':
      return new InvalidInstanceId(options);
    case 'NoSuchKey':
      return new NoSuchKey(options);
    case 'AccessDenied':
      return new S3ServiceException({ ...options, name: shape.name, $fault: shape.$fault ?? 'client' });
    case 'SyntaxError':
      return Object.assign(new SyntaxError(shape.message), { $metadata: shape.$metadata });
    default:
      return new SSMServiceException({ ...options, name: shape.name, $fault: shape.$fault ?? 'client' });
  }
}

/** The pauses the dispatcher took between rounds of a throttled batch (it does not really wait here). */
let pauses: number[] = [];

function dispatcher(client = new SSMClient({}), options: Partial<SsmDispatcherOptions> = {}) {
  return new SsmDispatcher(client, new S3Client({}), {
    documentName: 'FlinkFleetProfiler',
    documentVersion: '3',
    outputBucket: 'artifacts',
    outputPrefix: 'ssm-output/',
    deliveryTimeoutSeconds: 60,
    graceSeconds: 60,
    now: () => NOW,
    sleep: async (ms) => {
      pauses.push(ms);
    },
    ...options,
  });
}

const runOf = (overrides: Partial<Run> = {}) =>
  aRun({ node: 'i-1', triggerTime: NOW - 5_000, commandId: 'cmd-1', ...overrides });

const GROUP = '0b9c2a5e-4f61-4c1e-9d3a-7e2f8a6b5c4d';
const OTHER_GROUP = '6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

const nodeOf = (id: string): FlinkNode => ({ id, role: 'taskmanager', host: `${id}.internal`, reachable: true });

beforeEach(() => {
  ssm.reset();
  s3.reset();
  pauses = [];
});

describe('SsmDispatcher.dispatch', () => {
  it('sends one command per 50 instances of runs that share their parameters', async () => {
    let n = 0;
    ssm.on(SendCommandCommand).callsFake(async () => ({ Command: { CommandId: `cmd-${++n}` } }));
    const requests = Array.from({ length: 120 }, (_, i) => ({
      run: runOf({ node: `i-${i}`, groupId: GROUP }),
      node: nodeOf(`i-${i}`),
    }));
    requests.push({ run: runOf({ node: 'i-wall', mode: 'WALL' }), node: nodeOf('i-wall') });
    // A run of another group (or none) never shares a command: each command names one dispatch.
    requests.push({ run: runOf({ node: 'i-other', groupId: OTHER_GROUP }), node: nodeOf('i-other') });
    const results = await dispatcher().dispatch(requests);

    const calls = ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
    expect(calls.map((input) => input.InstanceIds?.length)).toEqual([50, 50, 20, 1, 1]);
    expect(calls[0]).toMatchObject({
      DocumentName: 'FlinkFleetProfiler',
      DocumentVersion: '3',
      OutputS3BucketName: 'artifacts',
      OutputS3KeyPrefix: 'ssm-output/',
      TimeoutSeconds: 60,
      // One node's failure must not make SSM cancel the invocations it has not started (MaxErrors defaults to 0).
      MaxErrors: '100%',
      MaxConcurrency: '100%',
      Parameters: { role: ['taskmanager'], mode: ['ITIMER'], duration: ['30'], executionTimeout: ['240'] },
    });
    // No pid parameter when discovery knows none: SSM refuses an empty value for a pattern of digits.
    expect(calls[0]?.Parameters).not.toHaveProperty('pid');
    // A run started alone sends its own id; a fan-out's commands send its group's id, which finds their runs.
    expect(calls.slice(0, 3).map((input) => input.Parameters?.runId)).toEqual([[GROUP], [GROUP], [GROUP]]);
    expect(calls[3]?.Parameters?.runId).toEqual([requests[120]?.run.id]);
    expect(calls[4]?.Parameters?.runId).toEqual([OTHER_GROUP]);
    expect(results.filter((r) => 'commandId' in r && r.commandId === 'cmd-2')).toHaveLength(50);
    expect(results).toHaveLength(122);
  });

  it('fails only the runs of a command that SSM refused, with its reason', async () => {
    ssm
      .on(SendCommandCommand)
      .rejectsOnce(
        new SSMServiceException({
          name: 'InvalidDocument',
          $fault: 'client',
          message: 'Document FlinkFleetProfiler does not exist',
          $metadata: { httpStatusCode: 400 },
        }),
      )
      .resolves({ Command: { CommandId: 'cmd-ok' } });
    const results = await dispatcher().dispatch([
      { run: runOf({ node: 'i-0', mode: 'CPU' }), node: nodeOf('i-0') },
      { run: runOf({ node: 'i-1', mode: 'WALL' }), node: nodeOf('i-1') },
    ]);
    expect(results).toEqual([
      {
        runId: expect.any(String),
        error: 'SSM SendCommand failed: InvalidDocument: Document FlinkFleetProfiler does not exist',
      },
      { runId: expect.any(String), commandId: 'cmd-ok' },
    ]);
  });
});

describe('SsmDispatcher.dispatch of a fan-out', () => {
  /** SSM's answer to a call over its rate, as the SDK raises it once its own attempts are spent. */
  const throttling = () =>
    new SSMServiceException({
      name: 'ThrottlingException',
      $fault: 'client',
      message: 'Rate exceeded',
      $metadata: { httpStatusCode: 400, attempts: 8 },
    });
  const fleet = (count: number) =>
    Array.from({ length: count }, (_, i) => ({
      run: runOf({ node: `i-${i}`, groupId: GROUP }),
      node: nodeOf(`i-${i}`),
    }));
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Instance ids of the calls SSM accepted, each as often as it was accepted. */
  let accepted: string[] = [];
  beforeEach(() => {
    accepted = [];
  });
  const accept = (input: { InstanceIds?: string[] }, commandId: string) => {
    accepted.push(...(input.InstanceIds ?? []));
    return { Command: { CommandId: commandId } };
  };

  it(`keeps several commands in flight at once, never more than ${MAX_COMMANDS_IN_FLIGHT}`, async () => {
    let inFlight = 0;
    let most = 0;
    let n = 0;
    ssm.on(SendCommandCommand).callsFake(async (input) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      // Later calls answer sooner: the results still come back in the requests' order.
      const id = ++n;
      await wait(40 - id);
      inFlight -= 1;
      return accept(input, `cmd-${id}`);
    });
    const requests = fleet(1000);
    const results = await dispatcher().dispatch(requests);

    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(20);
    expect(most).toBeGreaterThan(1);
    expect(most).toBe(MAX_COMMANDS_IN_FLIGHT);
    expect(results.map((r) => r.runId)).toEqual(requests.map(({ run }) => run.id));
    expect(results.slice(0, 50).every((r) => 'commandId' in r && r.commandId === 'cmd-1')).toBe(true);
    expect(results.slice(950).every((r) => 'commandId' in r && r.commandId === 'cmd-20')).toBe(true);
    expect(new Set(accepted).size).toBe(1000);
    expect(accepted).toHaveLength(1000);
  });

  it('sends a batch that SSM throttled through all attempts again after a pause, and runs it once', async () => {
    let n = 0;
    ssm
      .on(SendCommandCommand)
      .rejectsOnce(throttling())
      .callsFake(async (input) => accept(input, `cmd-${++n}`));
    const requests = fleet(100);
    const results = await dispatcher().dispatch(requests);

    const calls = ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input.InstanceIds);
    const [first, second] = [0, 50].map((from) => requests.slice(from, from + 50).map(({ node }) => node.id));
    // The first batch throttled, the second accepted, then the first again, with the same instances.
    expect(calls).toEqual([first, second, first]);
    expect(pauses).toHaveLength(1);
    expect(results.every((r) => 'commandId' in r)).toBe(true);
    expect([...accepted].sort()).toEqual(requests.map(({ node }) => node.id).sort());
  });

  it('fails the runs of a batch that SSM throttles in every round, and only those', async () => {
    ssm.on(SendCommandCommand).callsFake(async (input: { InstanceIds: string[] }) => {
      if (input.InstanceIds.includes('i-0')) throw throttling();
      return accept(input, 'cmd-ok');
    });
    const results = await dispatcher().dispatch(fleet(100));

    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(4);
    expect(pauses).toHaveLength(2);
    expect(results.slice(0, 50)).toEqual(
      results.slice(0, 50).map(({ runId }) => ({
        runId,
        error: 'SSM SendCommand failed: ThrottlingException: Rate exceeded',
      })),
    );
    expect(results.slice(50).every((r) => 'commandId' in r && r.commandId === 'cmd-ok')).toBe(true);
  });

  it('never sends again a batch whose call failed otherwise (it may have run), and fails only its runs', async () => {
    const failure = new SSMServiceException({
      name: 'InternalServerError',
      $fault: 'server',
      message: 'An error occurred on the server side.',
      $metadata: { httpStatusCode: 500 },
    });
    ssm.on(SendCommandCommand).callsFake(async (input: { InstanceIds: string[] }) => {
      if (input.InstanceIds.includes('i-50')) throw failure;
      return accept(input, 'cmd-ok');
    });
    const results = await dispatcher().dispatch(fleet(150));

    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(3);
    expect(pauses).toEqual([]);
    expect(
      results
        .slice(50, 100)
        .every(
          (r) =>
            'error' in r &&
            r.error === `SSM SendCommand failed: InternalServerError: An error occurred on the server side.`,
        ),
    ).toBe(true);
    expect(results.filter((r) => 'commandId' in r)).toHaveLength(100);
  });
});

describe('SsmDispatcher.dispatch when SSM refuses a batch with InvalidInstanceId', () => {
  const notManaged = (id: string) =>
    new RegExp(
      `^Instance ${id} is not a managed node of SSM \\(the SSM agent is not running, or its instance profile does not allow SSM\\); .*start a new run`,
    );
  const batch = () => described.batch.map((id) => ({ run: runOf({ node: id, groupId: GROUP }), node: nodeOf(id) }));

  /** SSM as it is: the whole call fails when any one id is not a managed node. */
  function sendCommandRefusing(...badIds: string[]) {
    let n = 0;
    ssm.on(SendCommandCommand).callsFake(async (input: { InstanceIds: string[] }) => {
      if (input.InstanceIds.some((id) => badIds.includes(id))) throw sdkError(errors.invalidInstanceId);
      n += 1;
      return { Command: { CommandId: `cmd-${n}` } };
    });
  }
  const sentInstanceIds = () => ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input.InstanceIds);

  it('fails only the run of the unmanaged node and sends the other four again, in one command', async () => {
    sendCommandRefusing(described.unmanaged);
    const [first, second] = described.pages.map(withDates) as [
      DescribeInstanceInformationCommandOutput,
      DescribeInstanceInformationCommandOutput,
    ];
    ssm
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce(first)
      .resolvesOnce(second)
      .rejects(new Error('asked for a third page'));
    const requests = batch();
    const results = await dispatcher().dispatch(requests);

    const good = described.batch.filter((id) => id !== described.unmanaged);
    expect(sentInstanceIds()).toEqual([described.batch, good]);
    expect(results.map((r) => r.runId)).toEqual(requests.map(({ run }) => run.id));
    expect(results.slice(0, 4)).toEqual(requests.slice(0, 4).map(({ run }) => ({ runId: run.id, commandId: 'cmd-1' })));
    expect(results[4]).toEqual({
      runId: requests[4]?.run.id,
      error: expect.stringMatching(notManaged(described.unmanaged)),
    });
    // One filter naming the batch, read to its last page.
    const describes = ssm.commandCalls(DescribeInstanceInformationCommand).map((call) => call.args[0].input);
    expect(describes).toEqual([
      { Filters: [{ Key: 'InstanceIds', Values: described.batch }], MaxResults: 50 },
      { Filters: [{ Key: 'InstanceIds', Values: described.batch }], MaxResults: 50, NextToken: first.NextToken },
    ]);
  });

  it('fails a node whose agent is not Online without trying it again', async () => {
    // Here the node SSM cannot reach is registered, but has not been heard from for hours.
    const lost = described.batch[3] as string;
    sendCommandRefusing(lost);
    ssm.on(DescribeInstanceInformationCommand).resolves(withDates(described.connectionLost));
    const results = await dispatcher().dispatch(batch());

    expect(sentInstanceIds()).toEqual([described.batch, described.batch.filter((id) => id !== lost)]);
    expect(results.filter((r) => 'commandId' in r)).toHaveLength(4);
    expect(results[3]).toMatchObject({
      error: `The SSM agent of instance ${lost} is not online (PingStatus ConnectionLost, last heard 2026-11-27T09:12:05.871Z): the instance is stopped or its agent lost its connection to SSM; start a new run once the node is Online again.`,
    });
  });

  for (const [why, error] of [
    ['the role may not call DescribeInstanceInformation', errors.describeAccessDenied],
    ["the endpoint does not implement it (moto's 500)", errors.describeMotoNotImplemented],
  ] as const) {
    it(`sends each node alone when ${why}`, async () => {
      sendCommandRefusing(described.unmanaged);
      ssm.on(DescribeInstanceInformationCommand).rejects(sdkError(error));
      const requests = batch();
      const results = await dispatcher().dispatch(requests);

      expect(sentInstanceIds()).toEqual([described.batch, ...described.batch.map((id) => [id])]);
      // Sent alone, each command still carries its group's id: that, with the instance, finds its run.
      const runIds = ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input.Parameters?.runId?.[0]);
      expect(runIds.slice(1)).toEqual(requests.map(() => GROUP));
      expect(results.slice(0, 4).map((r) => 'commandId' in r && r.commandId)).toEqual([
        'cmd-1',
        'cmd-2',
        'cmd-3',
        'cmd-4',
      ]);
      expect(results[4]).toEqual({
        runId: requests[4]?.run.id,
        error: expect.stringMatching(notManaged(described.unmanaged)),
      });
    });
  }

  it('sends each node alone when every node looks Online and SSM still refuses the batch', async () => {
    const all = withDates({
      InstanceInformationList: described.pages.flatMap((page) => page.InstanceInformationList ?? []),
    } as DescribeInstanceInformationCommandOutput);
    // The fifth node is listed (say, it was deregistered in between): SSM refuses it, DescribeInstanceInformation not.
    const fifth = structuredClone(all.InstanceInformationList?.[0]);
    all.InstanceInformationList?.push({ ...fifth, InstanceId: described.unmanaged });
    sendCommandRefusing(described.unmanaged);
    ssm.on(DescribeInstanceInformationCommand).resolves(all);
    const results = await dispatcher().dispatch(batch());

    expect(sentInstanceIds()).toEqual([described.batch, ...described.batch.map((id) => [id])]);
    expect(results.filter((r) => 'commandId' in r)).toHaveLength(4);
    expect(results[4]).toMatchObject({ error: expect.stringMatching(notManaged(described.unmanaged)) });
  });

  it('names the instance when a single run is refused', async () => {
    sendCommandRefusing(described.unmanaged);
    const [result] = await dispatcher().dispatch([
      { run: runOf({ node: described.unmanaged }), node: nodeOf(described.unmanaged) },
    ]);
    expect(result).toMatchObject({ error: expect.stringMatching(notManaged(described.unmanaged)) });
    expect(ssm.commandCalls(SendCommandCommand)).toHaveLength(1);
    expect(ssm.commandCalls(DescribeInstanceInformationCommand)).toHaveLength(0);
  });
});

describe('SsmDispatcher.inspect', () => {
  const invocation = (Status: string, StatusDetails: string, extra: Record<string, unknown> = {}) =>
    ssm.on(GetCommandInvocationCommand).resolves({ Status, StatusDetails, ResponseCode: -1, ...extra } as never);
  const noOutput = () => s3.on(GetObjectCommand).rejects(sdkError(errors.s3NoSuchKey));

  it('treats pending and in-progress invocations as running', async () => {
    for (const status of ['Pending', 'InProgress', 'Delayed']) {
      ssm.reset();
      invocation(status, status);
      expect(await dispatcher().inspect(runOf())).toEqual({ state: 'running' });
    }
  });

  /** What each terminal StatusDetails tells the user, whichever way SSM spells it. */
  const causes: Record<string, RegExp> = {
    'Delivery Timed Out':
      /^Start profiler failed\. The command was not delivered to instance (i-\w+) in time \(Delivery Timed Out\): its SSM agent is offline/,
    'Execution Timed Out':
      /^Stop profiler failed\. The node agent ran past its time limit on instance (i-\w+) \(Execution Timed Out\)/,
    'Access Denied':
      /^Start profiler failed\. The profiler may not run commands on instance (i-\w+) \(Access Denied\): .*cluster tag.*ssm:SendCommand/,
    'No Instance Found': /^Start profiler failed\. SSM does not know instance (i-\w+) \(No Instance Found\)/,
    'Invalid Platform':
      /^Start profiler failed\. Instance (i-\w+) is not a Linux node \(InvalidPlatform\): .*supports Linux only/,
    Undeliverable:
      /^Start profiler failed\. The command could not be delivered to instance (i-\w+) \(Undeliverable\): .*SSM agent/,
    Terminated: /^Start profiler failed\. SSM cancelled the command on instance (i-\w+) before it ran \(Terminated\)/,
    Cancelled: /^Profiling was cancelled/,
  };
  const causeOf = (details: string) =>
    Object.entries(causes).find(([name]) => name.replaceAll(' ', '') === details.replaceAll(' ', ''))?.[1];

  it('has a recorded response for both spellings of each cause', () => {
    const spellings = invocations.terminal.map((response) => response.StatusDetails as string);
    for (const name of Object.keys(causes)) {
      expect(spellings).toContain(name);
      expect(spellings).toContain(name.replaceAll(' ', ''));
    }
  });

  for (const response of invocations.terminal) {
    it(`explains ${response.Status} / "${response.StatusDetails}" when the agent left no output`, async () => {
      ssm.on(GetCommandInvocationCommand).resolves(response);
      noOutput();
      const state = await dispatcher().inspect(runOf({ node: response.InstanceId, commandId: response.CommandId }));
      expect(state).toMatchObject({ state: 'ended', output: { stdout: '', exitCode: null } });
      const failure = state.state === 'ended' ? state.output.failure : undefined;
      const expected = causeOf(response.StatusDetails as string);
      expect(expected, `no expectation for ${response.StatusDetails}`).toBeDefined();
      expect(failure).toMatch(expected as RegExp);
      if (!failure?.startsWith('Profiling was cancelled')) expect(failure).toContain(response.InstanceId);
      // A cancel (or a plain failure) may have killed an agent whose async-profiler session runs on: every finer
      // cause either never reached the agent or ended it past the session's own timeout.
      const sessionOver = state.state === 'ended' && state.output.sessionOver === true;
      expect(sessionOver).toBe(!['Cancelled', 'Failed', 'Success'].includes(response.StatusDetails as string));
    });
  }

  it('gives both spellings of a cause the same message', async () => {
    const messages = new Map<string, Set<string>>();
    for (const response of invocations.terminal) {
      ssm.reset();
      s3.reset();
      ssm.on(GetCommandInvocationCommand).resolves(response);
      noOutput();
      const state = await dispatcher().inspect(runOf({ node: response.InstanceId, commandId: response.CommandId }));
      const key = (response.StatusDetails as string).replaceAll(' ', '');
      messages.set(key, (messages.get(key) ?? new Set()).add(state.state === 'ended' ? `${state.output.failure}` : ''));
    }
    for (const [key, set] of messages) expect([...set], key).toHaveLength(1);
  });

  it("reads the agent's full stdout from S3, not the truncated view", async () => {
    invocation('Success', 'Success', { ResponseCode: 0, StandardOutputContent: 'full stdout of' });
    s3.on(GetObjectCommand).callsFake(async (input: { Key: string }) => ({
      Body: { transformToString: async () => (input.Key.endsWith('/stdout') ? `full stdout of ${input.Key}` : '') },
    }));
    const state = await dispatcher().inspect(runOf());
    expect(state).toEqual({
      state: 'ended',
      output: {
        stdout: 'full stdout of ssm-output/cmd-1/i-1/awsrunShellScript/profileFlinkJvm/stdout',
        stderr: '',
        exitCode: 0,
      },
    });
  });

  for (const [why, view] of [
    ['starts otherwise than SSM recorded (another node wrote it)', 'FLINK_PROFILER_RESULT status=FAILED pid=1'],
    ['holds output where SSM recorded none', ''],
  ] as const) {
    it(`refuses an output object that ${why}`, async () => {
      invocation('Success', 'Success', { ResponseCode: 0, StandardOutputContent: view });
      s3.on(GetObjectCommand).callsFake(async (input: { Key: string }) => ({
        Body: {
          transformToString: async () => (input.Key.endsWith('/stdout') ? finishedAgentStdout(FLAME_GRAPH) : ''),
        },
      }));
      const state = await dispatcher().inspect(runOf());
      expect(state).toEqual({
        state: 'ended',
        output: {
          stdout: '',
          stderr: '',
          exitCode: 0,
          failure: expect.stringMatching(
            /^Stop profiler failed\. The output object in S3 for instance i-1 is not what its node agent printed: it does not start as SSM's own record/,
          ),
        },
      });
    });
  }

  it('falls back to the invocation view when a failed command wrote nothing to S3', async () => {
    invocation('Failed', 'Failed', { ResponseCode: 4, StandardOutputContent: 'FLINK_PROFILER_RESULT status=FAILED …' });
    noOutput();
    const state = await dispatcher().inspect(runOf());
    expect(state).toEqual({
      state: 'ended',
      output: { stdout: 'FLINK_PROFILER_RESULT status=FAILED …', stderr: '', exitCode: 4 },
    });
  });

  it('waits for an invocation SSM does not know yet, and gives up once the run is overdue', async () => {
    ssm
      .on(GetCommandInvocationCommand)
      .rejects(Object.assign(new Error('not yet'), { name: 'InvocationDoesNotExist' }));
    expect(await dispatcher().inspect(runOf())).toEqual({ state: 'running' });
    // Past its deadline: delivery (60 s) + the step's limit (duration + 210 s) + grace (60 s).
    const run = runOf();
    const justBefore = NOW - (60 + run.duration + 210 + 60) * 1000 + 1000;
    expect(await dispatcher().inspect(runOf({ triggerTime: justBefore }))).toEqual({ state: 'running' });
    const overdue = await dispatcher().inspect(runOf({ triggerTime: justBefore - 2000 }));
    expect(overdue).toEqual({
      state: 'lost',
      reason: expect.stringMatching(/SSM has no record of command cmd-1 on instance i-1 \(InvocationDoesNotExist\)/),
    });
    expect(await dispatcher().inspect(runOf({ commandId: null }))).toMatchObject({ state: 'lost' });
  });
});

describe('SsmDispatcher.inspect of a Success without an output object', () => {
  const NEVER_REACHED =
    "Stop profiler failed. The node agent reported success but the agent's output never reached S3: attach the NodePolicy to the instance role and check the node's route to S3.";
  // Delivery (60 s) + the step's limit (30 s duration + 210 s margin) + grace (60 s): 360 s after the trigger.
  const DEADLINE_MS = 360_000;
  const response = invocations.successWithProfile;
  const runAt = (triggerTime: number) =>
    runOf({ node: response.InstanceId, commandId: response.CommandId, triggerTime });

  beforeEach(() => {
    ssm.on(GetCommandInvocationCommand).resolves(response);
    s3.on(GetObjectCommand).rejects(sdkError(errors.s3NoSuchKey));
  });

  it('asks to be retried until the run is past its deadline: the upload may be on its way', async () => {
    for (const elapsed of [5_000, 200_000, DEADLINE_MS]) {
      await expect(dispatcher().inspect(runAt(NOW - elapsed))).rejects.toBeInstanceOf(OutputNotReadyError);
    }
  });

  it("ends the run past its deadline, without taking SSM's truncated copy of stdout for the profile", async () => {
    // SSM's copy holds a whole flame graph here: it still must not become the run's profile.
    expect(parseAgentOutput(response.StandardOutputContent ?? '')?.gzippedHtml).toBeInstanceOf(Buffer);
    const state = await dispatcher().inspect(runAt(NOW - DEADLINE_MS - 1));
    expect(state).toEqual({
      state: 'ended',
      output: {
        stdout: '',
        stderr: '',
        exitCode: 0,
        failure: `${NEVER_REACHED} SSM's own copy of the first line of its stdout (not used as a profile): "FLINK_PROFILER_RESULT status=FINISHED pid=4242 mode=ITIMER sha256=c03c307feb55712962bf0a7e38c843fd649384655ae571c033275b803e238cc2 bytes=61 message=Profiling Successful".`,
      },
    });
  });

  it('gives exactly that message when SSM has no copy of stdout either (the agent printed nothing)', async () => {
    ssm.on(GetCommandInvocationCommand).resolves({ ...response, StandardOutputContent: '' });
    const state = await dispatcher().inspect(runAt(NOW - DEADLINE_MS - 1));
    expect(state.state === 'ended' && state.output.failure).toBe(NEVER_REACHED);
  });
});

describe('SsmDispatcher.inspect when S3 answers 403 AccessDenied for an output object', () => {
  const response = invocations.successWithProfile;
  const run = () => runOf({ node: response.InstanceId, commandId: response.CommandId, triggerTime: NOW - 5_000 });
  const key = (stream: string) =>
    `ssm-output/${response.CommandId}/${response.InstanceId}/awsrunShellScript/profileFlinkJvm/${stream}`;
  const listing = (name: 'found' | 'absent', prefix: string): ListObjectsV2CommandOutput =>
    JSON.parse(JSON.stringify(listings[name]).replaceAll('__KEY__', prefix));

  beforeEach(() => {
    ssm.on(GetCommandInvocationCommand).resolves(response);
    // stderr exists and is readable; stdout is refused.
    s3.on(GetObjectCommand, { Key: key('stderr') }).resolves({
      Body: { transformToString: async () => 'asprof: warning' },
    } as unknown as GetObjectCommandOutput);
    s3.on(GetObjectCommand, { Key: key('stdout') }).rejects(sdkError(errors.s3AccessDenied));
  });

  it('treats it as a missing key when listing that exact key finds nothing', async () => {
    s3.on(ListObjectsV2Command).callsFake(async (input: { Prefix: string }) => listing('absent', input.Prefix));
    await expect(dispatcher().inspect(run())).rejects.toBeInstanceOf(OutputNotReadyError);
    expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'artifacts', Prefix: key('stdout'), MaxKeys: 1 },
    ]);
  });

  it('rethrows it when the key is there (the caller may not read it)', async () => {
    s3.on(ListObjectsV2Command).callsFake(async (input: { Prefix: string }) => listing('found', input.Prefix));
    await expect(dispatcher().inspect(run())).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});

describe('SsmDispatcher: finding a command whose id was never recorded', () => {
  const listed = fixture('list-commands') as {
    pages: ListCommandsCommandOutput[];
    invalidCommandId: { name: string; message: string; $metadata: object };
  };
  const ours = listed.pages[1]?.Commands?.[0] as { CommandId: string };
  const groupRun = () => runOf({ node: 'i-0a1b2c3d4e5f60001', groupId: GROUP, commandId: null });

  it('finds the command by the run’s dispatch id among the node’s commands, page by page', async () => {
    ssm
      .on(ListCommandsCommand)
      .resolvesOnce(listed.pages[0] as ListCommandsCommandOutput)
      .resolvesOnce(listed.pages[1] as ListCommandsCommandOutput);
    expect(await dispatcher().commandFor(groupRun())).toBe(ours.CommandId);

    const inputs = ssm.commandCalls(ListCommandsCommand).map((call) => call.args[0].input);
    expect(inputs[0]).toMatchObject({
      InstanceId: 'i-0a1b2c3d4e5f60001',
      Filters: [
        { key: 'DocumentName', value: 'FlinkFleetProfiler' },
        // Five minutes before the run, in the seconds-only form the filter documents.
        { key: 'InvokedAfter', value: '2026-11-27T11:54:55Z' },
      ],
    });
    expect(inputs[1]?.NextToken).toBe('AAEAAQ-page-2');
  });

  it('finds none for a run of another role, or when only another document carries the id', async () => {
    ssm.on(ListCommandsCommand).resolves({ ...listed.pages[0], NextToken: undefined } as ListCommandsCommandOutput);
    expect(await dispatcher().commandFor(groupRun())).toBeUndefined();
    ssm.reset();
    ssm
      .on(ListCommandsCommand)
      .resolvesOnce(listed.pages[0] as ListCommandsCommandOutput)
      .resolvesOnce(listed.pages[1] as ListCommandsCommandOutput);
    expect(await dispatcher().commandFor({ ...groupRun(), role: 'jobmanager' })).toBeUndefined();
  });

  it('reads the dispatch id and role from our document’s command, and from no other', async () => {
    ssm.on(ListCommandsCommand, { CommandId: ours.CommandId }).resolves({ Commands: [ours] } as never);
    const foreign = listed.pages[0]?.Commands?.[0] as { CommandId: string };
    ssm.on(ListCommandsCommand, { CommandId: foreign.CommandId }).resolves({ Commands: [foreign] } as never);
    ssm.on(ListCommandsCommand, { CommandId: 'nope' }).rejects(sdkError(listed.invalidCommandId));

    expect(await dispatcher().parametersOf(ours.CommandId)).toEqual({ dispatchId: GROUP, role: 'taskmanager' });
    expect(await dispatcher().parametersOf(foreign.CommandId)).toBeUndefined();
    expect(await dispatcher().parametersOf('nope')).toBeUndefined();
  });
});

/**
 * The SSM client as ssmClientConfig builds it, with the SDK's real retry loop, in front of a stand-in HTTP handler
 * (no network) that answers like SSM's JSON endpoint.
 */
describe('the SSM client of ssmClientConfig', () => {
  beforeEach(() => {
    // These tests need the SDK's real send, retries included.
    ssm.restore();
  });
  afterEach(() => {
    ssm.reset();
  });

  type Answer = { status: number; body: object } | { code: string };
  /** A client whose every request gets the next answer; `sent` records each request's X-Amz-Target. */
  function clientAnswering(...answers: Answer[]) {
    const sent: string[] = [];
    const client = new SSMClient({
      // Fast for a test: the pacing and backoff are the SDK's, only their scale is smaller.
      ...ssmClientConfig({ maxDelayMs: 5, minSendRate: 1000 }),
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: {
        handle: async (request: { headers: Record<string, string> }) => {
          sent.push(request.headers['x-amz-target'] ?? '');
          const answer = answers.shift() ?? { status: 200, body: {} };
          if ('code' in answer) throw Object.assign(new Error(`connect ${answer.code}`), { code: answer.code });
          return {
            response: new HttpResponse({
              statusCode: answer.status,
              headers: { 'content-type': 'application/x-amz-json-1.1' },
              body: Buffer.from(JSON.stringify(answer.body)),
            }),
          };
        },
      },
    });
    return { client, sent };
  }
  const throttled = { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' } };
  const accepted = { status: 200, body: { Command: { CommandId: 'cmd-1', Status: 'Pending' } } };
  const serverError = { status: 500, body: { __type: 'InternalServerError', message: 'Internal error' } };
  const request = () => ({ run: runOf({ node: 'i-1', commandId: null }), node: nodeOf('i-1') });

  it('retries a throttled SendCommand and dispatches the run with the command SSM accepted', async () => {
    const { client, sent } = clientAnswering(throttled, throttled, accepted);
    const [result] = await dispatcher(client).dispatch([request()]);

    expect(result).toMatchObject({ commandId: 'cmd-1' });
    expect(sent).toEqual(['AmazonSSM.SendCommand', 'AmazonSSM.SendCommand', 'AmazonSSM.SendCommand']);
  });

  it('does not repeat a SendCommand that failed after it may have reached SSM (a 5xx, a reset connection)', async () => {
    for (const failure of [serverError, { code: 'ECONNRESET' }]) {
      const { client, sent } = clientAnswering(failure, accepted);
      const [result] = await dispatcher(client).dispatch([request()]);

      expect(result).toMatchObject({ error: expect.stringMatching(/^SSM SendCommand failed: /) });
      expect(sent).toHaveLength(1);
    }
  });

  it('repeats a SendCommand whose connection was refused: nothing reached SSM', async () => {
    const { client, sent } = clientAnswering({ code: 'ECONNREFUSED' }, accepted);
    const [result] = await dispatcher(client).dispatch([request()]);

    expect(result).toMatchObject({ commandId: 'cmd-1' });
    expect(sent).toHaveLength(2);
  });

  it('still retries reads after a 5xx', async () => {
    const invocation = { status: 200, body: { Status: 'InProgress', StatusDetails: 'InProgress' } };
    const { client, sent } = clientAnswering(serverError, invocation);

    expect(await dispatcher(client).inspect(runOf())).toEqual({ state: 'running' });
    expect(sent).toEqual(['AmazonSSM.GetCommandInvocation', 'AmazonSSM.GetCommandInvocation']);
  });
});
