import { GetObjectCommand, type GetObjectCommandOutput, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  type Command,
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  type InstanceInformation,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
  type SSMClientConfig,
} from '@aws-sdk/client-ssm';
import { AdaptiveRetryStrategy, DefaultRateLimiter, isThrottlingError } from '@smithy/core/retry';
import type { RetryErrorInfo, StandardRetryBackoffStrategy, StandardRetryToken } from '@smithy/types';
import { MAX_AGENT_STDERR_BYTES, MAX_AGENT_STDOUT_BYTES, RESULT_LINE_PREFIX } from '#domain/agent-output.ts';
import { runDeadline } from '#domain/deadline.ts';
import { dispatchIdOf } from '#domain/dispatch-id.ts';
import type { CommandParameters, CommandState, Dispatcher, DispatchRequest, DispatchResult } from '#domain/ports.ts';
import { ROLES, type Role, type Run } from '#domain/run.ts';
import { AGENT_STEP_NAME, agentParameters } from '#node-agent/agent-parameters.ts';

/** SendCommand takes at most 50 instance ids; more can come back as a throttling error. */
export const MAX_INSTANCES_PER_COMMAND = 50;

/**
 * SendCommand calls in flight at once for one dispatch. The client's shared rate limiter sets the pace; this only
 * bounds how many batches wait on it (and on their backoff) together.
 */
export const MAX_COMMANDS_IN_FLIGHT = 8;

/** Times the dispatcher sends a batch that SSM throttled through every attempt of the SDK (never one it may have run). */
const SEND_ROUNDS = 3;

/** Longest pause before another round of a throttled batch (full jitter below it). */
const ROUND_PAUSE_MS = 2_000;

/** DescribeInstanceInformation: ids per InstanceIds filter, and the largest page it serves (MaxResults 5 to 50). */
const MAX_IDS_PER_DESCRIBE = 50;

export interface SsmDispatcherOptions {
  documentName: string;
  /** An explicit document version: a new default version never changes what running services send. */
  documentVersion: string;
  /** Where the SSM agent writes each command's full stdout and stderr (GetCommandInvocation shows 24,000 characters). */
  outputBucket: string;
  outputPrefix: string;
  /** Seconds SSM may take to deliver a command before giving up (SendCommand's TimeoutSeconds; at least 30). */
  deliveryTimeoutSeconds: number;
  /** How long past the command's own limits (delivery, then the step's run) a result may still arrive. */
  graceSeconds: number;
  now?: () => number;
  /** Waits between rounds of a throttled batch (tests pass one that does not wait). */
  sleep?: (ms: number) => Promise<void>;
}

/** How the SSM client retries: attempts per call (the first included), and the pacing under throttling. */
export interface SsmRetryOptions {
  maxAttempts?: number;
  /** Cap of one retry's backoff, in ms: the shared rate limiter, not a long backoff, keeps the client under SSM's limit. */
  maxDelayMs?: number;
  /** The lowest rate, in calls per second, to which the rate limiter slows the client while SSM throttles it. */
  minSendRate?: number;
}

/**
 * The SDK's limiter slows a throttled client down to 0.5 calls/s by default: with that floor a fan-out over 1,000 nodes
 * (20 commands) took 21 s at 30 % throttling and 75 s at 60 % in test/bench/rule-fan-out.bench.ts. At
 * 5 calls/s (250 nodes/s) it still slows down at once when SSM throttles it; the retry quota ends a storm of throttles.
 */
const SSM_RETRY_DEFAULTS: Required<SsmRetryOptions> = { maxAttempts: 8, maxDelayMs: 1_000, minSendRate: 5 };

/** Full jitter (a random wait below `base * 2^attempt`), capped: the SDK's own curve grows to 20 s per retry. */
class CappedJitterBackoff implements StandardRetryBackoffStrategy {
  // The SDK sets the base before each computation: 1 s after a throttling error, 50 ms after a transient one.
  private base = 50;

  constructor(private readonly maxDelayMs: number) {}

  setDelayBase(base: number): void {
    this.base = base;
  }

  computeNextBackoffDelay(retry: number): number {
    return Math.floor(Math.random() * Math.min(this.maxDelayMs, this.base * 2 ** retry));
  }
}

/** Set on an error of a SendCommand attempt (see {@link sentAtMostOnce}): SSM may have run that command. */
const NOT_REPEATABLE = Symbol('a SendCommand attempt that may have reached SSM');

/** Connection failures before a request was written: nothing reached SSM, so sending again runs nothing twice. */
const NEVER_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * The SDK's adaptive retry (a CUBIC token bucket shared by every call made through the client, full-jitter backoff,
 * a retry quota), except that a SendCommand attempt is repeated only when SSM throttled it or it never left this
 * host: SendCommand is not idempotent, and after a timeout, a reset connection or a 5xx the command may be running.
 */
class SsmRetryStrategy extends AdaptiveRetryStrategy {
  override async refreshRetryTokenForRetry(token: StandardRetryToken, info: RetryErrorInfo) {
    const error = info.error as (Error & { code?: string; [NOT_REPEATABLE]?: boolean }) | undefined;
    if (info.errorType !== 'THROTTLING' && error?.[NOT_REPEATABLE] && !NEVER_SENT_CODES.has(error.code ?? '')) {
      throw new Error('SendCommand is not repeated after an error that may have followed its delivery');
    }
    return super.refreshRetryTokenForRetry(token, info);
  }
}

/**
 * The SSM client's configuration (give it to `new SSMClient(...)`): the retry strategy of {@link SsmRetryStrategy},
 * whose rate limiter all calls of the client share. Fan-outs to many nodes meet SSM's rate limits.
 */
export function ssmClientConfig(options: SsmRetryOptions = {}): SSMClientConfig {
  const { maxAttempts, maxDelayMs, minSendRate } = { ...SSM_RETRY_DEFAULTS, ...options };
  return {
    maxAttempts,
    retryStrategy: new SsmRetryStrategy(maxAttempts, {
      rateLimiter: new DefaultRateLimiter({ minFillRate: minSendRate }),
      backoff: new CappedJitterBackoff(maxDelayMs),
    }),
  };
}

/**
 * Marks every error of the command's attempts as not repeatable. The middleware runs inside the SDK's retry loop,
 * once per attempt, so the retry strategy sees the mark on the attempt's error.
 */
function sentAtMostOnce(command: SendCommandCommand): SendCommandCommand {
  command.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (error !== null && typeof error === 'object') Object.assign(error, { [NOT_REPEATABLE]: true });
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'sendCommandAtMostOnce' },
  );
  return command;
}

/** Runs `task` on every item, at most `limit` at a time, and answers in the items' order. */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function isNamed(error: unknown, ...names: string[]): boolean {
  return error instanceof Error && names.includes(error.name);
}

/** SSM refused the call for its rate (ThrottlingException, HTTP 429, …): it ran nothing. */
function isThrottled(error: unknown): boolean {
  return error instanceof Error && isThrottlingError(error as Parameters<typeof isThrottlingError>[0]);
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The completion arrived before the SSM agent's output object: retry later rather than fail the run. */
export class OutputNotReadyError extends Error {
  override readonly name = 'OutputNotReadyError';
}

const RUNNING_STATUSES = new Set(['Pending', 'InProgress', 'Delayed', 'Cancelling']);

/**
 * Every message this adapter gives a user, in one place. Dispatch errors are reasons: the domain puts them after
 * "Start profiler failed. The node agent could not be started: ". The rest are whole messages.
 */
const MESSAGES = {
  /**
   * The finer causes SSM gives only in StatusDetails, by their normalized spelling (see {@link statusKey}): the
   * API reference spells them "Delivery Timed Out", other places "DeliveryTimedOut".
   */
  status: {
    undeliverable: (node: string) =>
      `Start profiler failed. The command could not be delivered to instance ${node} (Undeliverable): the instance is not a managed node of SSM or its SSM agent is not responding; check that the agent runs and that the instance role allows SSM, then start a new run.`,
    deliverytimedout: (node: string) =>
      `Start profiler failed. The command was not delivered to instance ${node} in time (Delivery Timed Out): its SSM agent is offline or the instance is stopped; start a new run once the node is Online in SSM.`,
    executiontimedout: (node: string) =>
      `Stop profiler failed. The node agent ran past its time limit on instance ${node} (Execution Timed Out) and was stopped.`,
    // Not the instance's termination: SSM's name for invocations it cancelled once the command's MaxErrors was exceeded.
    terminated: (node: string) =>
      `Start profiler failed. SSM cancelled the command on instance ${node} before it ran (Terminated): other instances of the same command failed beyond its error limit; start a new run.`,
    cancelled: () => 'Profiling was cancelled (the SSM command was cancelled).',
    noinstancefound: (node: string) =>
      `Start profiler failed. SSM does not know instance ${node} (No Instance Found): check that it runs the SSM agent and has an instance profile that allows SSM.`,
    // SSM checks the sender, not the node: the role that called SendCommand may not run our document on this instance.
    accessdenied: (node: string) =>
      `Start profiler failed. The profiler may not run commands on instance ${node} (Access Denied): its functions may send only to instances that carry the cluster tag; tag the instance, or ask an administrator whether a policy or SCP denies ssm:SendCommand on it.`,
    invalidplatform: (node: string) =>
      `Start profiler failed. Instance ${node} is not a Linux node (InvalidPlatform): the profiler's SSM document runs a shell script and supports Linux only; profile a Flink JVM on a Linux node.`,
  } satisfies Record<string, (node: string) => string>,
  unexplained: (status: string, details: string) =>
    `The node agent did not report a result; SSM says ${status} (${details}).`,
  notManaged: (node: string) =>
    `Instance ${node} is not a managed node of SSM (the SSM agent is not running, or its instance profile does not allow SSM); start the agent, or give the instance role AmazonSSMManagedInstanceCore and the profiler's NodePolicy, then start a new run once the node is Online in SSM.`,
  notOnline: (node: string, info: InstanceInformation) =>
    `The SSM agent of instance ${node} is not online (PingStatus ${info.PingStatus ?? 'unknown'}${info.LastPingDateTime ? `, last heard ${info.LastPingDateTime.toISOString()}` : ''}): the instance is stopped or its agent lost its connection to SSM; start a new run once the node is Online again.`,
  refused: (error: unknown) => `SSM SendCommand failed: ${describeError(error)}`,
  outputNeverReachedS3: (diagnostic: string | undefined) =>
    `Stop profiler failed. The node agent reported success but the agent's output never reached S3: attach the NodePolicy to the instance role and check the node's route to S3.${diagnostic ? ` SSM's own copy of the first line of its stdout (not used as a profile): "${diagnostic}".` : ''}`,
  neverSent: () => 'Start profiler failed. The run was never sent to its node; start a new run.',
  notThisAgentsOutput: (node: string) =>
    `Stop profiler failed. The output object in S3 for instance ${node} is not what its node agent printed: it does not start as SSM's own record of the agent's output, so it was not used. Another process with a node's instance-role credentials may have written it; start a new run, and check the fleet's nodes for code that writes to the profiler's bucket.`,
  forgotten: (commandId: string, node: string, error: unknown) =>
    `Start profiler failed. SSM has no record of command ${commandId} on instance ${node} (${(error as Error).name}); start a new run.`,
};

type StatusKey = keyof typeof MESSAGES.status;

/**
 * Causes after which no async-profiler session of the command can be running: it never reached the agent, or the
 * agent was stopped at the step's limit, past the session's own timeout. Cancelled is not one: the agent may have
 * been killed while its session ran on.
 */
const SESSION_OVER: ReadonlySet<string> = new Set<StatusKey>([
  'undeliverable',
  'deliverytimedout',
  'terminated',
  'noinstancefound',
  'accessdenied',
  'invalidplatform',
  'executiontimedout',
]);

/** One spelling for each StatusDetails value: lower case, letters only ("Delivery Timed Out" → "deliverytimedout"). */
function statusKey(value: string): string {
  const key = value.toLowerCase().replace(/[^a-z]/g, '');
  return key === 'canceled' ? 'cancelled' : key;
}

/**
 * Messages a user can act on, for the finer causes SSM gives only in StatusDetails; undefined for a plain
 * Success or Failed, where the agent's own output tells more.
 */
function explainStatus(invocation: GetCommandInvocationCommandOutput, instanceId: string): string | undefined {
  const details = invocation.StatusDetails || invocation.Status || 'unknown';
  const key = statusKey(details);
  if (key === 'success' || key === 'failed') return undefined;
  if (Object.hasOwn(MESSAGES.status, key)) return MESSAGES.status[key as StatusKey](instanceId);
  return MESSAGES.unexplained(invocation.Status ?? 'unknown', details);
}

/** The agent's result line as SSM saw it (GetCommandInvocation's first 24,000 characters), for a diagnostic only. */
function resultLineOf(invocation: GetCommandInvocationCommandOutput): string | undefined {
  const lines = (invocation.StandardOutputContent ?? '').split('\n').map((line) => line.trim());
  const line = lines.find((l) => l.startsWith(RESULT_LINE_PREFIX)) ?? lines.find((l) => l !== '');
  return line && line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** How far this function's clock may be ahead of SSM's when it compares a run's start with a command's. */
const SEND_CLOCK_SKEW_MS = 5 * 60_000;

/** The dispatch id and role in a command's parameters (see agentParameters), if it has both. */
function parametersOf(command: Command): CommandParameters | undefined {
  const dispatchId = command.Parameters?.runId?.[0];
  const role = command.Parameters?.role?.[0];
  if (!dispatchId || !ROLES.includes(role as Role)) return undefined;
  return { dispatchId, role: role as Role };
}

/**
 * SSM's view holds the first 24,000 characters of stdout (less while the command runs): how much of it is compared,
 * short of where SSM may mark a cut.
 */
const SSM_VIEW_COMPARED = 20_000;

/**
 * Whether the stdout object read from S3 starts as SSM's own copy of this invocation's stdout does. Every node of the
 * fleet may write output objects (one command covers up to 50 instances; the node policy cannot tell their keys
 * apart), but no node can change what SSM recorded: an object that disagrees, or output SSM never saw, is not this
 * invocation's. The result line comes first and carries the payload's digest, so agreeing here vouches for it all.
 */
function agreesWithSsm(stdout: string, invocation: GetCommandInvocationCommandOutput): boolean {
  const view = invocation.StandardOutputContent ?? '';
  if (view.trim() === '') return stdout.trim() === '';
  const compared = Math.min(view.length, SSM_VIEW_COMPARED);
  return stdout.slice(0, compared) === view.slice(0, compared);
}

/** What one SendCommand call came to. */
type Sent = { commandId: string } | { error: unknown };

/**
 * Dispatcher on SSM RunCommand with our own document. Runs that share their parameters go out in one
 * SendCommand of up to 50 instances, up to {@link MAX_COMMANDS_IN_FLIGHT} commands at a time; throttled calls are
 * retried by the SDK as the client is configured (see {@link ssmClientConfig}), then by the dispatcher in a few more
 * rounds; a call that may have reached SSM is never sent again. Output is read from the command's S3 output objects.
 */
export class SsmDispatcher implements Dispatcher {
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly ssm: SSMClient,
    private readonly s3: S3Client,
    private readonly options: SsmDispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]> {
    const groups = new Map<string, DispatchRequest[]>();
    for (const request of requests) {
      const { role, mode, duration } = request.run;
      // One command carries one dispatch id (its runs find it by that, see dispatch-id.ts).
      const key = `${dispatchIdOf(request.run)}|${role}|${mode}|${duration}|${request.node.pid ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), request]);
    }
    const batches: DispatchRequest[][] = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += MAX_INSTANCES_PER_COMMAND) {
        batches.push(group.slice(i, i + MAX_INSTANCES_PER_COMMAND));
      }
    }
    const results = await mapConcurrently(batches, MAX_COMMANDS_IN_FLIGHT, async (batch) => {
      try {
        return await this.send(batch);
      } catch (error) {
        // Only this batch's runs fail: the other batches' commands went out, and their runs keep their command ids.
        return this.resultsOf(batch, { error });
      }
    });
    return results.flat();
  }

  /**
   * One batch. SSM refuses the whole call with InvalidInstanceId when any one of its ids is not a managed node, so
   * a refused batch is checked node by node and only the bad nodes' runs fail.
   */
  private async send(batch: DispatchRequest[]): Promise<DispatchResult[]> {
    const sent = await this.sendCommand(batch);
    if (!('error' in sent) || !isNamed(sent.error, 'InvalidInstanceId')) return this.resultsOf(batch, sent);
    if (batch.length === 1) return this.sendEachAlone(batch, sent);
    return this.sendToManagedNodes(batch);
  }

  /**
   * Asks SSM which of the batch's nodes are managed and Online, fails the runs of the others and sends the rest
   * again, once. A node that is registered but not Online (ConnectionLost: stopped, or its agent cut off) fails
   * too: SSM could not deliver to it anyway (the run would end in Delivery Timed Out), and were it the node that
   * SSM refused, keeping it would fail the whole batch a second time.
   */
  private async sendToManagedNodes(batch: DispatchRequest[]): Promise<DispatchResult[]> {
    let nodes: Map<string, InstanceInformation>;
    try {
      nodes = await this.describeNodes(batch.map(({ node }) => node.id));
    } catch {
      // No answer (the role lacks ssm:DescribeInstanceInformation, an endpoint without the API, or the API
      // refusing an unknown id in its filter, as it documents it may): one command per node still fails one
      // bad node alone.
      return this.sendEachAlone(batch);
    }
    const failed = new Map<string, DispatchResult>();
    const online: DispatchRequest[] = [];
    for (const request of batch) {
      const info = nodes.get(request.node.id);
      if (!info) failed.set(request.run.id, { runId: request.run.id, error: MESSAGES.notManaged(request.node.id) });
      else if (info.PingStatus !== 'Online') {
        failed.set(request.run.id, { runId: request.run.id, error: MESSAGES.notOnline(request.node.id, info) });
      } else online.push(request);
    }
    let results: DispatchResult[] = [];
    if (failed.size === 0) {
      // Every node is Online, yet SSM refused the batch (a node went away in between, or one is not ours to
      // see): only sending each alone tells which.
      results = await this.sendEachAlone(batch);
    } else if (online.length > 0) {
      const again = await this.sendCommand(online);
      // Refused again: the nodes changed since SSM described them; find the bad one by sending each alone.
      results =
        'error' in again && isNamed(again.error, 'InvalidInstanceId')
          ? await this.sendEachAlone(online)
          : this.resultsOf(online, again);
    }
    for (const result of results) failed.set(result.runId, result);
    return batch.map(({ run }) => failed.get(run.id) as DispatchResult);
  }

  /** One SendCommand per run (one after the other: SendCommand's rate limit is low); `first` is the first one's answer. */
  private async sendEachAlone(batch: DispatchRequest[], first?: Sent): Promise<DispatchResult[]> {
    const results: DispatchResult[] = [];
    for (const [i, request] of batch.entries()) {
      const sent = i === 0 && first ? first : await this.sendCommand([request]);
      if ('error' in sent && isNamed(sent.error, 'InvalidInstanceId')) {
        results.push({ runId: request.run.id, error: MESSAGES.notManaged(request.node.id) });
      } else results.push(...this.resultsOf([request], sent));
    }
    return results;
  }

  /** The managed nodes among `ids`, by id (an id SSM does not manage is missing). */
  private async describeNodes(ids: string[]): Promise<Map<string, InstanceInformation>> {
    const unique = [...new Set(ids)];
    const nodes = new Map<string, InstanceInformation>();
    for (let i = 0; i < unique.length; i += MAX_IDS_PER_DESCRIBE) {
      const Values = unique.slice(i, i + MAX_IDS_PER_DESCRIBE);
      let NextToken: string | undefined;
      do {
        const page = await this.ssm.send(
          new DescribeInstanceInformationCommand({
            Filters: [{ Key: 'InstanceIds', Values }],
            MaxResults: MAX_IDS_PER_DESCRIBE,
            ...(NextToken ? { NextToken } : {}),
          }),
        );
        for (const info of page.InstanceInformationList ?? []) if (info.InstanceId) nodes.set(info.InstanceId, info);
        if (page.NextToken && page.NextToken === NextToken)
          throw new Error('DescribeInstanceInformation repeated its page token');
        NextToken = page.NextToken;
      } while (NextToken);
    }
    return nodes;
  }

  private resultsOf(batch: DispatchRequest[], sent: Sent): DispatchResult[] {
    if ('commandId' in sent) return batch.map(({ run }) => ({ runId: run.id, commandId: sent.commandId }));
    const error = MESSAGES.refused(sent.error);
    return batch.map(({ run }) => ({ runId: run.id, error }));
  }

  /**
   * One SendCommand, sent again (after a jittered pause) only while SSM throttled it through all of the SDK's
   * attempts: a throttled call ran nothing.
   */
  private async sendCommand(batch: DispatchRequest[]): Promise<Sent> {
    for (let round = 1; ; round += 1) {
      const sent = await this.sendCommandOnce(batch);
      if (!('error' in sent) || round >= SEND_ROUNDS || !isThrottled(sent.error)) return sent;
      await this.sleep(Math.floor(Math.random() * ROUND_PAUSE_MS));
    }
  }

  private async sendCommandOnce(batch: DispatchRequest[]): Promise<Sent> {
    const [first] = batch as [DispatchRequest];
    // The runs are stored before this call: the dispatch id in the parameters finds them even if their sender dies
    // before it records the command id.
    const parameters = agentParameters(first.run, dispatchIdOf(first.run), first.node.pid);
    try {
      const { Command } = await this.ssm.send(
        sentAtMostOnce(
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
            // Each node's run is its own: one failing must not stop SSM from sending the others (MaxErrors is 0 by
            // default, and then SSM cancels the invocations it has not started yet).
            MaxErrors: '100%',
            MaxConcurrency: '100%',
            OutputS3BucketName: this.options.outputBucket,
            OutputS3KeyPrefix: this.options.outputPrefix,
            Comment: `flink-fleet-profiler ${first.run.mode} ${first.run.duration}s (${batch.length} run${batch.length > 1 ? 's' : ''})`,
          }),
        ),
      );
      const commandId = Command?.CommandId;
      if (!commandId) throw new Error('SendCommand returned no command id');
      return { commandId };
    } catch (error) {
      return { error };
    }
  }

  /** The moment after which nothing of a run's command can still be on its way (the domain's one definition). */
  private deadlineOf(run: Run): number {
    const { deliveryTimeoutSeconds, graceSeconds } = this.options;
    return runDeadline(run, { deliveryTimeoutSeconds, settleMarginSeconds: graceSeconds });
  }

  async inspect(run: Run): Promise<CommandState> {
    if (!run.commandId) return { state: 'lost', reason: MESSAGES.neverSent() };
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
      if (this.now() <= this.deadlineOf(run)) return { state: 'running' };
      return { state: 'lost', reason: MESSAGES.forgotten(run.commandId, run.node, error) };
    }
    if (RUNNING_STATUSES.has(invocation.Status ?? '')) return { state: 'running' };

    const [stdoutRead, stderrRead] = await Promise.all([
      this.readOutput(run.commandId, run.node, 'stdout'),
      this.readOutput(run.commandId, run.node, 'stderr'),
    ]);
    const stdout = stdoutRead?.text;
    const stderr = stderrRead?.text;
    const stdoutTooLarge = stdoutRead?.tooLarge;
    const exitCode =
      invocation.ResponseCode === undefined || invocation.ResponseCode < 0 ? null : invocation.ResponseCode;
    if (stdout !== undefined && !agreesWithSsm(stdout, invocation)) {
      // Any process on any node with the instance role's credentials can write the output objects; only SSM's own
      // copy of the output's start (with the result line and its digest) comes from this invocation's agent.
      return {
        state: 'ended',
        output: { stdout: '', stderr: '', exitCode, failure: MESSAGES.notThisAgentsOutput(run.node) },
      };
    }
    if (stdout === undefined && invocation.Status === 'Success') {
      // The agent uploads only non-empty streams and only logs a failed upload (no NodePolicy, no route to S3):
      // Success without an object may be an upload on its way, until nothing can be on its way any more.
      if (this.now() <= this.deadlineOf(run)) {
        throw new OutputNotReadyError(`the output of command ${run.commandId} on ${run.node} is not in S3 yet`);
      }
      // SSM's copy of stdout is cut at 24,000 characters: a diagnostic in the message, never the profile.
      return {
        state: 'ended',
        output: {
          stdout: '',
          stderr: stderr ?? invocation.StandardErrorContent ?? '',
          exitCode,
          failure: MESSAGES.outputNeverReachedS3(resultLineOf(invocation)),
        },
      };
    }
    const failure = explainStatus(invocation, run.node);
    const sessionOver = SESSION_OVER.has(statusKey(invocation.StatusDetails || invocation.Status || ''));
    return {
      state: 'ended',
      output: {
        stdout: stdoutTooLarge === undefined ? (stdout ?? invocation.StandardOutputContent ?? '') : '',
        stderr: stderr ?? invocation.StandardErrorContent ?? '',
        exitCode,
        ...(failure ? { failure } : {}),
        ...(stdoutTooLarge === undefined ? {} : { stdoutTooLarge }),
        ...(sessionOver ? { sessionOver } : {}),
      },
    };
  }

  /**
   * Looks through the document's commands sent to the run's node since shortly before the run started for one
   * that carries the run's dispatch id (ListCommands keeps 30 days; its own filters narrow the search, the
   * parameters decide).
   */
  async commandFor(run: Run): Promise<string | undefined> {
    const dispatchId = dispatchIdOf(run);
    const sentAfter = new Date(run.triggerTime - SEND_CLOCK_SKEW_MS).toISOString().replace(/\.\d{3}Z$/, 'Z');
    let NextToken: string | undefined;
    do {
      const page = await this.ssm.send(
        new ListCommandsCommand({
          InstanceId: run.node,
          Filters: [
            { key: 'DocumentName', value: this.options.documentName },
            { key: 'InvokedAfter', value: sentAfter },
          ],
          MaxResults: 50,
          ...(NextToken ? { NextToken } : {}),
        }),
      );
      const command = (page.Commands ?? []).find((c) => {
        const parameters = parametersOf(c);
        return (
          c.DocumentName === this.options.documentName &&
          parameters?.dispatchId === dispatchId &&
          parameters.role === run.role &&
          (c.InstanceIds ?? []).includes(run.node)
        );
      });
      if (command?.CommandId) return command.CommandId;
      if (page.NextToken && page.NextToken === NextToken) throw new Error('ListCommands repeated its page token');
      NextToken = page.NextToken;
    } while (NextToken);
    return undefined;
  }

  async parametersOf(commandId: string): Promise<CommandParameters | undefined> {
    let commands: Command[];
    try {
      ({ Commands: commands = [] } = await this.ssm.send(new ListCommandsCommand({ CommandId: commandId })));
    } catch (error) {
      if (isNamed(error, 'InvalidCommandId')) return undefined;
      throw error;
    }
    const command = commands.find((c) => c.CommandId === commandId);
    // Only our document's commands name our runs: another command's parameters are not trusted to.
    return command?.DocumentName === this.options.documentName ? parametersOf(command) : undefined;
  }

  /** The key under which the SSM agent writes a step's stream of a command on an instance. */
  outputKey(commandId: string, instanceId: string, stream: 'stdout' | 'stderr'): string {
    const prefix = this.options.outputPrefix.replace(/\/+$/, '');
    return `${prefix}/${commandId}/${instanceId}/awsrunShellScript/${AGENT_STEP_NAME}/${stream}`;
  }

  /**
   * A stream of the command's output object, read within a byte limit (never the whole of an object a node made as
   * large as it liked): stdout over MAX_AGENT_STDOUT_BYTES is refused unread (`tooLarge`: its size), by its
   * ContentLength and again while it streams; of stderr only the last MAX_AGENT_STDERR_BYTES are read.
   */
  private async readOutput(
    commandId: string,
    instanceId: string,
    stream: 'stdout' | 'stderr',
  ): Promise<{ text: string; tooLarge?: number } | undefined> {
    const Key = this.outputKey(commandId, instanceId, stream);
    const Bucket = this.options.outputBucket;
    const limit = stream === 'stdout' ? MAX_AGENT_STDOUT_BYTES : MAX_AGENT_STDERR_BYTES;
    try {
      let object = await this.s3.send(new GetObjectCommand({ Bucket, Key }));
      const length = object.ContentLength;
      if (length !== undefined && length > limit) {
        destroyBody(object.Body);
        if (stream === 'stdout') return { text: '', tooLarge: length };
        object = await this.s3.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=${length - limit}-` }));
      }
      const read = await readBody(object.Body, limit);
      if (read.tooLarge !== undefined && stream === 'stdout') return { text: '', tooLarge: read.tooLarge };
      return { text: read.text };
    } catch (error) {
      if (isNamed(error, 'NoSuchKey')) return undefined;
      // S3 answers 403 for a missing key to a caller it does not count as allowed s3:ListBucket (a grant
      // conditioned on s3:prefix may not count): a missing key only if listing that exact key finds nothing.
      if (isNamed(error, 'AccessDenied') && !(await this.outputExists(Key))) return undefined;
      throw error;
    }
  }

  private async outputExists(key: string): Promise<boolean> {
    // The key itself sorts first among the keys it prefixes: one key is enough to tell.
    const { Contents } = await this.s3.send(
      new ListObjectsV2Command({ Bucket: this.options.outputBucket, Prefix: key, MaxKeys: 1 }),
    );
    return (Contents ?? []).some((object) => object.Key === key);
  }
}

type ObjectBody = GetObjectCommandOutput['Body'];

function destroyBody(body: ObjectBody): void {
  (body as { destroy?: () => void } | undefined)?.destroy?.();
}

/**
 * Reads a body up to `limit` bytes. More than that is not read on (the stream is closed): `tooLarge` then says how
 * many bytes arrived, and `text` is the first `limit` of them.
 */
async function readBody(body: ObjectBody, limit: number): Promise<{ text: string; tooLarge?: number }> {
  if (!body) return { text: '' };
  if (typeof (body as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator] !== 'function') {
    // Not a Node stream (another runtime's body): only whole, then measured.
    const text = await body.transformToString('utf8');
    const bytes = Buffer.byteLength(text);
    return bytes > limit ? { text: text.slice(0, limit), tooLarge: bytes } : { text };
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    length += chunk.length;
    if (length > limit) {
      destroyBody(body);
      return { text: Buffer.concat(chunks).toString('utf8'), tooLarge: length };
    }
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8') };
}
