import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import type { CommandState, Dispatcher, DispatchRequest, DispatchResult } from '#domain/ports.ts';
import type { Run } from '#domain/run.ts';
import { AGENT_STEP_NAME, agentParameters } from '#node-agent/agent-parameters.ts';

/** SendCommand takes at most 50 instance ids; more can come back as a throttling error. */
export const MAX_INSTANCES_PER_COMMAND = 50;

export interface SsmDispatcherOptions {
  documentName: string;
  /** An explicit document version: a new default version never changes what running services send. */
  documentVersion: string;
  /** Where the SSM agent writes each command's full stdout and stderr (GetCommandInvocation shows 24,000 characters). */
  outputBucket: string;
  outputPrefix: string;
  /** Seconds SSM may take to deliver a command before giving up (SendCommand's TimeoutSeconds; at least 30). */
  deliveryTimeoutSeconds: number;
  /** How long, after a run's duration, SSM may still not know an invocation before it counts as lost. */
  graceSeconds: number;
  now?: () => number;
}

function isNamed(error: unknown, ...names: string[]): boolean {
  return error instanceof Error && names.includes(error.name);
}

/** The completion arrived before the SSM agent's output object: retry later rather than fail the run. */
export class OutputNotReadyError extends Error {
  override readonly name = 'OutputNotReadyError';
}

const RUNNING_STATUSES = new Set(['Pending', 'InProgress', 'Delayed', 'Cancelling']);

/**
 * Messages a user can act on, for the finer causes SSM gives only in StatusDetails; undefined for a plain
 * Success or Failed, where the agent's own output tells more.
 */
function explainStatus(invocation: GetCommandInvocationCommandOutput, instanceId: string): string | undefined {
  const details = invocation.StatusDetails ?? invocation.Status ?? 'unknown';
  switch (details) {
    case 'Undeliverable':
      return `Start profiler failed. The command could not be delivered to instance ${instanceId} (Undeliverable): the instance is not managed by SSM or its SSM agent is not running.`;
    case 'Delivery Timed Out':
      return `Start profiler failed. The command was not delivered to instance ${instanceId} in time (Delivery Timed Out): its SSM agent is offline or the instance is stopped.`;
    case 'Execution Timed Out':
      return `Stop profiler failed. The node agent ran past its time limit on instance ${instanceId} (Execution Timed Out) and was stopped.`;
    case 'Terminated':
      return `Stop profiler failed. Instance ${instanceId} was terminated during the run (Terminated).`;
    case 'Cancelled':
      return 'Profiling was cancelled (the SSM command was cancelled).';
    case 'No Instance Found':
      return `Start profiler failed. SSM does not know instance ${instanceId} (No Instance Found): check that it runs the SSM agent and has an instance profile that allows SSM.`;
    case 'Access Denied':
      return `Start profiler failed. SSM was refused access on instance ${instanceId} (Access Denied): check the instance profile's permissions.`;
    case 'Success':
    case 'Failed':
      return undefined;
    default:
      return `The node agent did not report a result; SSM says ${invocation.Status} (${details}).`;
  }
}

/**
 * Dispatcher on SSM RunCommand with our own document. Runs that share their parameters go out in one
 * SendCommand of up to 50 instances; throttled calls are retried by the SDK (adaptive retry mode, backoff
 * with jitter) as the client is configured. Output is read from the command's S3 output objects.
 */
export class SsmDispatcher implements Dispatcher {
  private readonly now: () => number;

  constructor(
    private readonly ssm: SSMClient,
    private readonly s3: S3Client,
    private readonly options: SsmDispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]> {
    const groups = new Map<string, DispatchRequest[]>();
    for (const request of requests) {
      const { role, mode, duration } = request.run;
      const key = `${role}|${mode}|${duration}|${request.node.pid ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), request]);
    }
    const results: DispatchResult[] = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += MAX_INSTANCES_PER_COMMAND) {
        results.push(...(await this.send(group.slice(i, i + MAX_INSTANCES_PER_COMMAND))));
      }
    }
    return results;
  }

  private async send(batch: DispatchRequest[]): Promise<DispatchResult[]> {
    const [first] = batch as [DispatchRequest];
    // A single run passes its own id; a batch passes an id of its own (it only names the agent's scratch file).
    const runId = batch.length === 1 ? first.run.id : crypto.randomUUID();
    const parameters = agentParameters(first.run, runId, first.node.pid);
    try {
      const { Command } = await this.ssm.send(
        new SendCommandCommand({
          DocumentName: this.options.documentName,
          DocumentVersion: this.options.documentVersion,
          InstanceIds: batch.map(({ node }) => node.id),
          // Only the parameters that have a value: SSM refuses an empty string for a pattern that needs digits.
          Parameters: Object.fromEntries(
            Object.entries(parameters)
              .filter(([, value]) => value !== '')
              .map(([name, value]) => [name, [value]]),
          ),
          TimeoutSeconds: this.options.deliveryTimeoutSeconds,
          OutputS3BucketName: this.options.outputBucket,
          OutputS3KeyPrefix: this.options.outputPrefix,
          Comment: `flink-fleet-profiler ${first.run.mode} ${first.run.duration}s (${batch.length} run${batch.length > 1 ? 's' : ''})`,
        }),
      );
      const commandId = Command?.CommandId;
      if (!commandId) throw new Error('SendCommand returned no command id');
      return batch.map(({ run }) => ({ runId: run.id, commandId }));
    } catch (error) {
      const reason = `SSM SendCommand failed: ${(error as Error).name}: ${(error as Error).message}`;
      return batch.map(({ run }) => ({ runId: run.id, error: reason }));
    }
  }

  async inspect(run: Run): Promise<CommandState> {
    if (!run.commandId) {
      return { state: 'lost', reason: 'Start profiler failed. The run was never sent to its node; start a new run.' };
    }
    let invocation: GetCommandInvocationCommandOutput;
    try {
      // No PluginName: the document has one step, and the invocation's status is that step's.
      invocation = await this.ssm.send(
        new GetCommandInvocationCommand({ CommandId: run.commandId, InstanceId: run.node }),
      );
    } catch (error) {
      // By name: errors deserialized from some endpoints are not instances of the modeled classes.
      if (!isNamed(error, 'InvocationDoesNotExist', 'InvalidCommandId')) throw error;
      // Right after SendCommand, SSM may not know the invocation yet; long after, it has forgotten the command.
      const overdue = this.now() > run.triggerTime + (run.duration + this.options.graceSeconds) * 1000;
      if (!overdue) return { state: 'running' };
      return {
        state: 'lost',
        reason: `Start profiler failed. SSM has no record of command ${run.commandId} on instance ${run.node} (${(error as Error).name}); start a new run.`,
      };
    }
    if (RUNNING_STATUSES.has(invocation.Status ?? '')) return { state: 'running' };

    const [stdout, stderr] = await Promise.all([
      this.readOutput(run.commandId, run.node, 'stdout'),
      this.readOutput(run.commandId, run.node, 'stderr'),
    ]);
    if (stdout === undefined && invocation.Status === 'Success') {
      throw new OutputNotReadyError(`the output of command ${run.commandId} on ${run.node} is not in S3 yet`);
    }
    const failure = explainStatus(invocation, run.node);
    return {
      state: 'ended',
      output: {
        stdout: stdout ?? invocation.StandardOutputContent ?? '',
        stderr: stderr ?? invocation.StandardErrorContent ?? '',
        exitCode: invocation.ResponseCode === undefined || invocation.ResponseCode < 0 ? null : invocation.ResponseCode,
        ...(failure ? { failure } : {}),
      },
    };
  }

  /** The key under which the SSM agent writes a step's stream of a command on an instance. */
  outputKey(commandId: string, instanceId: string, stream: 'stdout' | 'stderr'): string {
    const prefix = this.options.outputPrefix.replace(/\/+$/, '');
    return `${prefix}/${commandId}/${instanceId}/awsrunShellScript/${AGENT_STEP_NAME}/${stream}`;
  }

  private async readOutput(
    commandId: string,
    instanceId: string,
    stream: 'stdout' | 'stderr',
  ): Promise<string | undefined> {
    try {
      const object = await this.s3.send(
        new GetObjectCommand({ Bucket: this.options.outputBucket, Key: this.outputKey(commandId, instanceId, stream) }),
      );
      return await object.Body?.transformToString('utf8');
    } catch (error) {
      if (isNamed(error, 'NoSuchKey')) return undefined;
      throw error;
    }
  }
}
