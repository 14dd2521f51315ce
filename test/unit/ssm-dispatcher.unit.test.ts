import { S3Client } from '@aws-sdk/client-s3';
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { OutputNotReadyError, SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import type { FlinkNode } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { aRun } from '#test/support/runs.ts';

/**
 * The SSM dispatcher's own logic, with the SDK clients mocked (aws-sdk-client-mock): batching and the
 * mapping of SSM's statuses, which moto cannot produce (it reports Success at once). The integration tier
 * runs the same adapter against a local AWS endpoint.
 */

const ssm = mockClient(SSMClient);
const s3 = mockClient(S3Client);
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

function dispatcher() {
  return new SsmDispatcher(new SSMClient({}), new S3Client({}), {
    documentName: 'FlinkFleetProfiler',
    documentVersion: '3',
    outputBucket: 'artifacts',
    outputPrefix: 'ssm-output/',
    deliveryTimeoutSeconds: 60,
    graceSeconds: 60,
    now: () => NOW,
  });
}

const runOf = (overrides: Partial<Run> = {}) =>
  aRun({ node: 'i-1', triggerTime: NOW - 5_000, commandId: 'cmd-1', ...overrides });

const nodeOf = (id: string): FlinkNode => ({ id, role: 'taskmanager', host: `${id}.internal`, reachable: true });

beforeEach(() => {
  ssm.reset();
  s3.reset();
});

describe('SsmDispatcher.dispatch', () => {
  it('sends one command per 50 instances of runs that share their parameters', async () => {
    let n = 0;
    ssm.on(SendCommandCommand).callsFake(async () => ({ Command: { CommandId: `cmd-${++n}` } }));
    const requests = Array.from({ length: 120 }, (_, i) => ({
      run: runOf({ node: `i-${i}` }),
      node: nodeOf(`i-${i}`),
    }));
    requests.push({ run: runOf({ node: 'i-wall', mode: 'WALL' }), node: nodeOf('i-wall') });
    const results = await dispatcher().dispatch(requests);

    const calls = ssm.commandCalls(SendCommandCommand).map((call) => call.args[0].input);
    expect(calls.map((input) => input.InstanceIds?.length)).toEqual([50, 50, 20, 1]);
    expect(calls[0]).toMatchObject({
      DocumentName: 'FlinkFleetProfiler',
      DocumentVersion: '3',
      OutputS3BucketName: 'artifacts',
      OutputS3KeyPrefix: 'ssm-output/',
      TimeoutSeconds: 60,
      Parameters: { role: ['taskmanager'], mode: ['ITIMER'], duration: ['30'], executionTimeout: ['150'] },
    });
    // No pid parameter when discovery knows none: SSM refuses an empty value for a pattern of digits.
    expect(calls[0]?.Parameters).not.toHaveProperty('pid');
    // A single run sends its own id; a batch sends an id of its own.
    expect(calls[3]?.Parameters?.runId).toEqual([requests[120]?.run.id]);
    expect(results.filter((r) => 'commandId' in r && r.commandId === 'cmd-2')).toHaveLength(50);
    expect(results).toHaveLength(121);
  });

  it('fails only the runs of a command that SSM refused, with its reason', async () => {
    ssm
      .on(SendCommandCommand)
      .rejectsOnce(Object.assign(new Error('Instances [[i-0]] not in a valid state'), { name: 'InvalidInstanceId' }))
      .resolves({ Command: { CommandId: 'cmd-ok' } });
    const results = await dispatcher().dispatch([
      { run: runOf({ node: 'i-0', mode: 'CPU' }), node: nodeOf('i-0') },
      { run: runOf({ node: 'i-1', mode: 'WALL' }), node: nodeOf('i-1') },
    ]);
    expect(results).toEqual([
      {
        runId: expect.any(String),
        error: 'SSM SendCommand failed: InvalidInstanceId: Instances [[i-0]] not in a valid state',
      },
      { runId: expect.any(String), commandId: 'cmd-ok' },
    ]);
  });
});

describe('SsmDispatcher.inspect', () => {
  const invocation = (Status: string, StatusDetails: string, extra: Record<string, unknown> = {}) =>
    ssm.on(GetCommandInvocationCommand).resolves({ Status, StatusDetails, ResponseCode: -1, ...extra } as never);
  const noOutput = () =>
    s3.onAnyCommand().rejects(Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' }));

  it('treats pending and in-progress invocations as running', async () => {
    for (const status of ['Pending', 'InProgress', 'Delayed']) {
      ssm.reset();
      invocation(status, status);
      expect(await dispatcher().inspect(runOf())).toEqual({ state: 'running' });
    }
  });

  const causes: Array<[string, string, RegExp]> = [
    ['Failed', 'Undeliverable', /could not be delivered to instance i-1 \(Undeliverable\).*SSM agent/],
    ['TimedOut', 'Delivery Timed Out', /not delivered to instance i-1 in time \(Delivery Timed Out\)/],
    ['TimedOut', 'Execution Timed Out', /ran past its time limit on instance i-1 \(Execution Timed Out\)/],
    ['Failed', 'Terminated', /Instance i-1 was terminated during the run/],
    ['Cancelled', 'Cancelled', /cancelled/],
    ['Failed', 'No Instance Found', /SSM does not know instance i-1/],
    ['Failed', 'Access Denied', /Access Denied.*instance profile/],
  ];
  for (const [status, details, message] of causes) {
    it(`explains ${details} when the agent left no output`, async () => {
      invocation(status, details);
      noOutput();
      const state = await dispatcher().inspect(runOf());
      expect(state).toMatchObject({ state: 'ended', output: { stdout: '', exitCode: null } });
      expect(state.state === 'ended' && state.output.failure).toMatch(message);
    });
  }

  it("reads the agent's full stdout from S3, not the truncated view", async () => {
    invocation('Success', 'Success', { ResponseCode: 0, StandardOutputContent: 'truncated' });
    s3.onAnyCommand().callsFake(async (input: { Key: string }) => ({
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

  it('asks to be retried when a successful command has no output object yet', async () => {
    invocation('Success', 'Success', { ResponseCode: 0 });
    noOutput();
    await expect(dispatcher().inspect(runOf())).rejects.toBeInstanceOf(OutputNotReadyError);
  });

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
    const overdue = await dispatcher().inspect(runOf({ triggerTime: NOW - 200_000 }));
    expect(overdue).toEqual({
      state: 'lost',
      reason: expect.stringMatching(/SSM has no record of command cmd-1 on instance i-1 \(InvocationDoesNotExist\)/),
    });
    expect(await dispatcher().inspect(runOf({ commandId: null }))).toMatchObject({ state: 'lost' });
  });
});
