import { readFileSync } from 'node:fs';
import { EC2Client, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import {
  type Command,
  DescribeInstanceInformationCommand,
  type DescribeInstanceInformationCommandInput,
  type DescribeInstanceInformationCommandOutput,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandInput,
  type GetCommandInvocationCommandOutput,
  type InstanceInformation,
  InvalidInstanceId,
  InvalidInstanceInformationFilterValue,
  InvalidNextToken,
  InvocationDoesNotExist,
  ListCommandsCommand,
  type ListCommandsCommandOutput,
  SendCommandCommand,
  type SendCommandCommandInput,
  type SendCommandCommandOutput,
  SSMClient,
  ValidationException,
} from '@aws-sdk/client-ssm';
import type { EventBridgeEvent } from 'aws-lambda';
import { vi } from 'vitest';
import type { CommandInvocationStatusDetail } from '#lambda/completion.lambda.ts';
import { AGENT_STEP_NAME } from '#node-agent/agent-parameters.ts';

/**
 * A test-side SSM that answers as AWS does where moto does not (moto reports Success for every invocation at once,
 * accepts any instance id, names instances a command was not sent to in its command records, and answers
 * DescribeInstanceInformation with HTTP 500). Installed per test on
 * `SSMClient.prototype.send`, so the clients the Lambda functions build at cold start go through it too; undo it
 * with `vi.restoreAllMocks()`. DescribeInstanceInformation takes SSM's tag filters (`tag-key`, `tag:<key>`) over the
 * tags EC2 (moto) has for the managed nodes, and leaves out the ones EC2 says are stopped or terminated, as SSM does.
 * What it does not model (tag targets, other filters) throws, never answers leniently.
 */

const ACCOUNT = '123456789012';
/** GetCommandInvocation's views of the streams: the first 24,000 characters of stdout, 8,000 of stderr. */
const STDOUT_VIEW = 24_000;
const STDERR_VIEW = 8_000;
/** DescribeInstanceInformation's MaxResults: 5 to 50, 10 when not given (API reference). */
const DESCRIBE_MIN = 5;
const DESCRIBE_MAX = 50;
const DESCRIBE_DEFAULT = 10;

/** How one invocation ended, as the SSM agent reports it to SSM (the stand-in reports it here). */
export interface AgentReport {
  commandId: string;
  instanceId: string;
  Status: string;
  StatusDetails: string;
  /** The script's exit code; -1 when it never ran or ended without one. */
  ResponseCode: number;
  /** The whole streams as the agent saw them (SSM keeps only the first characters). */
  stdout: string;
  stderr: string;
  /** When the script ran; absent when it never did. */
  started?: Date;
  ended?: Date;
}

// SSM's memory, shared by every install: commands it accepted and what agents reported of their invocations.
const commands = new Map<string, { command: Command; documentVersion?: string }>();
const reports = new Map<string, AgentReport>();
const invocationKey = (commandId: string, instanceId: string) => `${commandId}/${instanceId}`;

/** Called by the SSM agent stand-in when it has run an invocation (test/support/ssm-agent-stand-in.ts). */
export function reportInvocation(report: AgentReport): void {
  reports.set(invocationKey(report.commandId, report.instanceId), report);
}

/** What the agent reported of an invocation, if it has run. */
export function reportedInvocation(commandId: string, instanceId: string): AgentReport | undefined {
  return reports.get(invocationKey(commandId, instanceId));
}

const metadata = (httpStatusCode: number) => ({
  httpStatusCode,
  requestId: crypto.randomUUID(),
  attempts: 1,
  totalRetryDelay: 0,
});

// biome-ignore lint/suspicious/noExplicitAny: fixtures are JSON, typed where they are used
const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/ssm/${name}.json`, import.meta.url), 'utf8'));

/** A managed node as DescribeInstanceInformation documents it, from the recorded fixture's first entry. */
function instanceInformation(
  instanceId: string,
  index: number,
  info: Partial<InstanceInformation>,
): InstanceInformation {
  const [template] = fixture('describe-instance-information').pages[0].InstanceInformationList;
  const ip = `10.0.${Math.floor(index / 250) + 2}.${(index % 250) + 1}`;
  const online = (info.PingStatus ?? 'Online') === 'Online';
  return {
    ...template,
    InstanceId: instanceId,
    SourceId: instanceId,
    PingStatus: 'Online',
    // An agent that lost its connection was last heard a while ago.
    LastPingDateTime: new Date(Date.now() - (online ? 20_000 : 3 * 3600_000)),
    LastAssociationExecutionDate: new Date(template.LastAssociationExecutionDate),
    LastSuccessfulAssociationExecutionDate: new Date(template.LastSuccessfulAssociationExecutionDate),
    IPAddress: ip,
    ComputerName: `ip-${ip.replaceAll('.', '-')}.ec2.internal`,
    ...info,
  };
}

export interface SsmAsAwsOptions {
  /**
   * What GetCommandInvocation answers for an invocation the agent has not reported yet: `InvocationDoesNotExist`
   * (default; SSM's answer right after SendCommand) or an `InProgress` invocation.
   */
  beforeAgentReports?: 'InvocationDoesNotExist' | 'InProgress';
  /** Entries per DescribeInstanceInformation page when fewer than MaxResults (pages may hold fewer and still go on). */
  describePageSize?: number;
  /** DescribeInstanceInformation with an id in its filter that is no managed node: left out (default) or refused. */
  describeUnknownIds?: 'omitted' | 'InvalidInstanceId';
}

export interface SsmAsAws {
  /**
   * Makes `instanceId` a managed node (PingStatus Online unless `info` says otherwise); SendCommand refuses others.
   * `leavesBeforeFirstCommand`: the node is listed until the first SendCommand that names it, and is no managed node
   * from then on (its instance stopped, or its agent deregistered, after discovery listed it).
   */
  register(
    instanceId: string,
    info?: Partial<InstanceInformation>,
    lifecycle?: { leavesBeforeFirstCommand?: boolean },
  ): void;
  /** Every SendCommand input, as sent, refused or not. */
  readonly sent: SendCommandCommandInput[];
  /** Every DescribeInstanceInformation input, as sent. */
  readonly described: DescribeInstanceInformationCommandInput[];
  /** The last command SSM accepted that names `instanceId` (moto's record of it, with the sent document version). */
  commandTo(instanceId: string): Command;
}

/** Installs the AWS-like SSM on every SSMClient until `vi.restoreAllMocks()`. */
export function installSsmAsAws(options: SsmAsAwsOptions = {}): SsmAsAws {
  if (vi.isMockFunction(SSMClient.prototype.send)) {
    throw new Error('SSMClient.prototype.send is already spied on (recordSendCommands?): use SsmAsAws.sent instead');
  }
  const managed = new Map<string, InstanceInformation>();
  const leavingBeforeFirstCommand = new Set<string>();
  const sent: SendCommandCommandInput[] = [];
  const described: DescribeInstanceInformationCommandInput[] = [];
  const send = SSMClient.prototype.send as (this: SSMClient, ...args: unknown[]) => Promise<unknown>;

  async function sendCommand(client: SSMClient, command: SendCommandCommand): Promise<SendCommandCommandOutput> {
    const { input } = command;
    sent.push(input);
    if (input.Targets?.length) throw new Error('SendCommand by Targets is not modelled by the SSM stand-in');
    for (const id of input.InstanceIds ?? []) {
      if (leavingBeforeFirstCommand.delete(id)) managed.delete(id);
    }
    // One id that is no managed node fails the whole call: nothing is sent to the others either.
    const unknown = (input.InstanceIds ?? []).filter((id) => !managed.has(id));
    if (unknown.length > 0) {
      throw new InvalidInstanceId({
        message: `Instances [[${unknown.join(', ')}]] not in a valid state for account ${ACCOUNT}`,
        $metadata: metadata(400),
      });
    }
    const output = (await send.call(client, command)) as SendCommandCommandOutput;
    // moto's answer (and its ListCommands) can name instances the command was not sent to: keep the ids sent.
    const accepted = output.Command && { ...output.Command, InstanceIds: [...(input.InstanceIds ?? [])] };
    if (accepted?.CommandId) {
      // moto keeps no document version in its command records either.
      commands.set(accepted.CommandId, { command: accepted, documentVersion: input.DocumentVersion });
    }
    return { ...output, ...(accepted ? { Command: accepted } : {}) };
  }

  function getCommandInvocation(input: GetCommandInvocationCommandInput): GetCommandInvocationCommandOutput {
    const record = commands.get(input.CommandId ?? '');
    const instanceId = input.InstanceId ?? '';
    const doesNotExist = () =>
      // SSM sends this error without a message; the SDK then says UnknownError.
      new InvocationDoesNotExist({ message: 'UnknownError', $metadata: metadata(400) });
    if (!record?.command.InstanceIds?.includes(instanceId)) throw doesNotExist();
    if (input.PluginName !== undefined && input.PluginName !== AGENT_STEP_NAME) {
      throw new Error('GetCommandInvocation for another plugin is not modelled by the SSM stand-in');
    }
    const { command, documentVersion } = record;
    const report = reportedInvocation(command.CommandId ?? '', instanceId);
    if (!report && (options.beforeAgentReports ?? 'InvocationDoesNotExist') === 'InvocationDoesNotExist') {
      throw doesNotExist();
    }
    const url = (stream: string) =>
      command.OutputS3BucketName
        ? `https://s3.${process.env.AWS_REGION ?? 'us-east-1'}.amazonaws.com/${command.OutputS3BucketName}/${command.OutputS3KeyPrefix ?? ''}${command.CommandId}/${instanceId}/awsrunShellScript/${AGENT_STEP_NAME}/${stream}`
        : '';
    const elapsed =
      report?.started && report.ended
        ? `PT${((report.ended.getTime() - report.started.getTime()) / 1000).toFixed(3)}S`
        : '';
    return {
      $metadata: metadata(200),
      CommandId: command.CommandId,
      InstanceId: instanceId,
      Comment: command.Comment ?? '',
      DocumentName: command.DocumentName,
      DocumentVersion: documentVersion ?? command.DocumentVersion ?? '$DEFAULT',
      PluginName: AGENT_STEP_NAME,
      ResponseCode: report?.ResponseCode ?? -1,
      ExecutionStartDateTime: report?.started?.toISOString() ?? '',
      ExecutionElapsedTime: elapsed,
      ExecutionEndDateTime: report?.ended?.toISOString() ?? '',
      Status: (report?.Status ?? 'InProgress') as GetCommandInvocationCommandOutput['Status'],
      StatusDetails: report?.StatusDetails ?? 'InProgress',
      StandardOutputContent: (report?.stdout ?? '').slice(0, STDOUT_VIEW),
      StandardOutputUrl: url('stdout'),
      StandardErrorContent: (report?.stderr ?? '').slice(0, STDERR_VIEW),
      StandardErrorUrl: url('stderr'),
      CloudWatchOutputConfig: { CloudWatchLogGroupName: '', CloudWatchOutputEnabled: false },
    };
  }

  async function describeInstanceInformation(
    input: DescribeInstanceInformationCommandInput,
  ): Promise<DescribeInstanceInformationCommandOutput> {
    described.push(input);
    if (input.InstanceInformationFilterList) {
      throw new Error('InstanceInformationFilterList (deprecated) is not modelled by the SSM stand-in: use Filters');
    }
    const max = input.MaxResults ?? DESCRIBE_DEFAULT;
    if (!Number.isInteger(max) || max < DESCRIBE_MIN || max > DESCRIBE_MAX) {
      const bound =
        max < DESCRIBE_MIN ? `greater than or equal to ${DESCRIBE_MIN}` : `less than or equal to ${DESCRIBE_MAX}`;
      throw new ValidationException({
        message: `1 validation error detected: Value '${max}' at 'maxResults' failed to satisfy constraint: Member must have value ${bound}`,
        $metadata: metadata(400),
      });
    }
    const filters = input.Filters ?? [];
    const isTagFilter = (key: string | undefined) => key === 'tag-key' || key?.startsWith('tag:');
    if (filters.some((f) => isTagFilter(f.Key)) && filters.some((f) => !isTagFilter(f.Key))) {
      throw new Error('SSM refuses tag filters combined with other filter types; the stand-in does not model how');
    }
    // SSM describes no node that is stopped or terminated, and reads an EC2 instance's tags from EC2.
    const ec2 = await ec2View([...managed.keys()]);
    let nodes = [...managed.values()].filter((node) => ec2.get(node.InstanceId ?? '')?.running ?? true);
    const tagsOf = (node: InstanceInformation) => ec2.get(node.InstanceId ?? '')?.tags ?? new Map<string, string>();
    for (const filter of filters) {
      const values = filter.Values ?? [];
      if (values.length === 0) {
        throw new InvalidInstanceInformationFilterValue({
          message: `The filter ${filter.Key} has no values`,
          $metadata: metadata(400),
        });
      }
      if (filter.Key === 'tag-key') {
        nodes = nodes.filter((node) => values.some((key) => tagsOf(node).has(key)));
      } else if (filter.Key?.startsWith('tag:')) {
        const key = filter.Key.slice('tag:'.length);
        if (values.some((value) => /[*?]/.test(value))) {
          throw new Error('Wildcards in SSM tag filter values are not modelled by the SSM stand-in');
        }
        nodes = nodes.filter((node) => values.includes(tagsOf(node).get(key) ?? '\u0000'));
      } else if (filter.Key === 'InstanceIds') {
        const unknown = values.filter((id) => !managed.has(id));
        if (unknown.length > 0 && options.describeUnknownIds === 'InvalidInstanceId') {
          throw new InvalidInstanceId({ message: 'Instance Id is invalid', $metadata: metadata(400) });
        }
        nodes = nodes.filter((node) => values.includes(node.InstanceId ?? ''));
      } else if (filter.Key === 'PingStatus') {
        nodes = nodes.filter((node) => values.includes(node.PingStatus ?? ''));
      } else {
        throw new Error(`DescribeInstanceInformation filter ${filter.Key} is not modelled by the SSM stand-in`);
      }
    }
    // A page token belongs to its query: the same filters, or SSM refuses it.
    const query = JSON.stringify(input.Filters ?? []);
    let offset = 0;
    if (input.NextToken !== undefined) {
      const token = decodeToken(input.NextToken);
      if (!token || token.query !== query) {
        throw new InvalidNextToken({ message: 'The specified token is not valid.', $metadata: metadata(400) });
      }
      offset = token.offset;
    }
    const size = Math.min(max, options.describePageSize ?? max);
    const page = nodes.slice(offset, offset + size);
    const next = offset + size < nodes.length ? encodeToken({ offset: offset + size, query }) : undefined;
    return {
      $metadata: metadata(200),
      InstanceInformationList: page.map((node) => structuredClone(node)),
      ...(next ? { NextToken: next } : {}),
    };
  }

  vi.spyOn(SSMClient.prototype, 'send').mockImplementation(async function (
    this: SSMClient,
    command: unknown,
    ...rest: unknown[]
  ) {
    if (command instanceof SendCommandCommand) return sendCommand(this, command);
    if (command instanceof GetCommandInvocationCommand) return getCommandInvocation(command.input);
    if (command instanceof DescribeInstanceInformationCommand) return await describeInstanceInformation(command.input);
    if (command instanceof ListCommandsCommand) {
      // The ids each command was sent to, not moto's, and only the commands sent to the instance asked about.
      const output = (await send.call(this, command, ...rest)) as ListCommandsCommandOutput;
      const listed = (output.Commands ?? []).map((c) => {
        const sentTo = commands.get(c.CommandId ?? '')?.command.InstanceIds;
        return sentTo ? { ...c, InstanceIds: sentTo } : c;
      });
      const { InstanceId } = command.input;
      return { ...output, Commands: listed.filter((c) => !InstanceId || c.InstanceIds?.includes(InstanceId)) };
    }
    return send.call(this, command, ...rest);
  } as typeof SSMClient.prototype.send);

  return {
    register(instanceId, info = {}, lifecycle = {}) {
      managed.set(instanceId, instanceInformation(instanceId, managed.size, info));
      if (lifecycle.leavesBeforeFirstCommand) leavingBeforeFirstCommand.add(instanceId);
    },
    sent,
    described,
    commandTo(instanceId) {
      const found = [...commands.values()].reverse().find(({ command }) => command.InstanceIds?.includes(instanceId));
      if (!found) throw new Error(`SSM accepted no command for ${instanceId}`);
      return { ...found.command, DocumentVersion: found.documentVersion ?? found.command.DocumentVersion };
    },
  };
}

/**
 * What EC2 (moto) says of the ids: whether each is running, and its tags. Ids EC2 does not know (the recorded
 * fixtures' nodes) are left out and count as running with no tags.
 */
async function ec2View(ids: string[]): Promise<Map<string, { running: boolean; tags: Map<string, string> }>> {
  const view = new Map<string, { running: boolean; tags: Map<string, string> }>();
  if (ids.length === 0) return view;
  const ec2 = new EC2Client({});
  try {
    // A filter, not InstanceIds: EC2 refuses the whole call for one id it does not know.
    for await (const page of paginateDescribeInstances(
      { client: ec2 },
      { Filters: [{ Name: 'instance-id', Values: ids }] },
    )) {
      for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        view.set(instance.InstanceId ?? '', {
          running: instance.State?.Name === 'running',
          tags: new Map((instance.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
        });
      }
    }
  } finally {
    ec2.destroy();
  }
  return view;
}

function encodeToken(token: { offset: number; query: string }): string {
  return Buffer.from(JSON.stringify(token)).toString('base64');
}

function decodeToken(value: string): { offset: number; query: string } | undefined {
  try {
    const token = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
    return Number.isInteger(token?.offset) && typeof token.query === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

export type StatusChangeEvent = EventBridgeEvent<
  'EC2 Command Invocation Status-change Notification',
  CommandInvocationStatusDetail
>;

/**
 * How EventBridge hands an invocation's status changes to the completion function: `in-order` (InProgress, then
 * the end), `duplicated` (each event twice: delivery is at least once), `reordered` (the end before InProgress) or
 * `never` (best effort: none at all).
 */
export type EventDelivery = 'in-order' | 'duplicated' | 'reordered' | 'never';

/**
 * The status-change events of an invocation the stand-in has run, in the documented event shape
 * (test/fixtures/ssm/status-change-events.json) and spelled as events spell statuses (the invocation's Status,
 * never its StatusDetails). An invocation that never ran has no InProgress event.
 */
export function statusChangeEvents(
  commandId: string,
  instanceId: string,
  delivery: EventDelivery = 'in-order',
): StatusChangeEvent[] {
  const record = commands.get(commandId);
  const report = reportedInvocation(commandId, instanceId);
  if (!record || !report) throw new Error(`no invocation of ${commandId} on ${instanceId} has run`);
  const [template] = fixture('status-change-events').terminal as StatusChangeEvent[];
  const event = (status: string, at: Date): StatusChangeEvent => {
    const base = template as StatusChangeEvent;
    return {
      ...base,
      id: crypto.randomUUID(),
      account: ACCOUNT,
      time: `${at.toISOString().slice(0, 19)}Z`,
      region: process.env.AWS_REGION ?? 'us-east-1',
      resources: [`arn:aws:ec2:${process.env.AWS_REGION ?? 'us-east-1'}:${ACCOUNT}:instance/${instanceId}`],
      detail: {
        'command-id': commandId,
        'document-name': record.command.DocumentName ?? '',
        'instance-id': instanceId,
        'requested-date-time': new Date(record.command.RequestedDateTime ?? Date.now()).toISOString(),
        status,
      },
    };
  };
  const started = report.started ? [event('InProgress', report.started)] : [];
  const ended = event(report.Status, report.ended ?? new Date());
  switch (delivery) {
    case 'in-order':
      return [...started, ended];
    case 'duplicated':
      return [...started, ...started, ended, ended];
    case 'reordered':
      return [ended, ...started];
    case 'never':
      return [];
  }
}
