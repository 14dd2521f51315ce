import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  type Command,
  ListCommandsCommand,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { vi } from 'vitest';
import { agentStep, checkParameters, loadAgentDocument, stepEnvironment } from '#node-agent/ssm-document.ts';
import { reportInvocation } from '#test/support/ssm-as-aws.ts';

const { document } = loadAgentDocument();

/** The command SendCommand recorded for a run (moto keeps commands; it runs none), by the run id in its parameters. */
export async function recordedCommandFor(runId: string): Promise<Command> {
  const { Commands = [] } = await new SSMClient({}).send(new ListCommandsCommand({}));
  const command = Commands.find((c) => c.Parameters?.runId?.[0] === runId);
  if (!command) throw new Error(`no command recorded for run ${runId}`);
  return command;
}

export interface StandInOptions {
  asprof: string;
  /** Base of the agent's scratch directories. */
  tmpDir: string;
  /**
   * The JVM to profile. The "instance" is this machine, where other tests may run JVMs of the same role:
   * name ours, as a node with one TaskManager would not need to.
   */
  pid?: number;
  /**
   * The real agent uploads a stream to S3 only when it is non-empty (default true); false writes an object for an
   * empty stream too, as no real agent does.
   */
  skipEmptyStreams?: boolean;
  /**
   * `fails-silently`: nothing reaches S3 (no NodePolicy on the instance role, no route to S3 from a private subnet,
   * an SCP), yet the invocation reports how the script ended, Success included: the agent only logs the failure.
   */
  upload?: 'ok' | 'fails-silently';
  /**
   * How the invocation ends as SSM reports it (GetCommandInvocation, the status-change events), e.g. a recorded
   * response from test/fixtures/ssm/get-command-invocation.json. By default it follows the script's exit code
   * (0: Success, else Failed). A ResponseCode of -1 means the script never ran (not delivered, refused, cancelled
   * first) or was stopped before it printed anything: nothing runs and nothing is uploaded.
   */
  endsWith?: { Status?: string; StatusDetails?: string; ResponseCode?: number };
  /**
   * What an earlier real run of the script printed, given back instead of running it again: for runs in bulk (the
   * fault run), where what matters is what SSM, S3 and the functions do with the output.
   */
  replay?: { code: number | null; stdout: string; stderr: string };
}

/** What the stand-in did: the script's exit code and streams, and the keys it wrote to S3. */
export interface StandInResult {
  code: number | null;
  stdout: string;
  stderr: string;
  uploaded: string[];
}

/**
 * Stands in for the SSM agent on an EC2 instance, which cannot run here (moto runs no command): checks the
 * command's parameters against our document as SSM does (moto does not), runs the document's script as a
 * file with sh on this machine — the real agent script, against a real JVM, with the real async-profiler —
 * writes its non-empty streams where the SSM agent writes them in S3, and reports how the invocation ended to
 * the AWS-like SSM (test/support/ssm-as-aws.ts), which GetCommandInvocation and the status-change events answer
 * from.
 */
export async function runAsSsmAgent(
  command: Command,
  instanceId: string,
  options: StandInOptions,
): Promise<StandInResult> {
  const values = Object.fromEntries(Object.entries(command.Parameters ?? {}).map(([k, v]) => [k, v[0] ?? '']));
  const resolved = checkParameters(document, values);
  const ran = (options.endsWith?.ResponseCode ?? 0) >= 0;
  const started = new Date();
  const { code, stdout, stderr } = !ran
    ? { code: null, stdout: '', stderr: '' }
    : (options.replay ?? (await runScript(command, options, { ...stepEnvironment(document, resolved) })));
  const ended = new Date();

  const uploaded: string[] = [];
  if ((options.upload ?? 'ok') === 'ok') {
    const s3 = new S3Client({});
    const key = (stream: string) =>
      `${command.OutputS3KeyPrefix}${command.CommandId}/${instanceId}/awsrunShellScript/${agentStep(document).name}/${stream}`;
    for (const [stream, body] of [
      ['stdout', stdout],
      ['stderr', stderr],
    ] as const) {
      if (body === '' && (options.skipEmptyStreams ?? true)) continue;
      await s3.send(new PutObjectCommand({ Bucket: command.OutputS3BucketName, Key: key(stream), Body: body }));
      uploaded.push(key(stream));
    }
    s3.destroy();
  }

  const byExitCode = code === 0 ? 'Success' : 'Failed';
  reportInvocation({
    commandId: command.CommandId ?? '',
    instanceId,
    Status: options.endsWith?.Status ?? byExitCode,
    StatusDetails: options.endsWith?.StatusDetails ?? byExitCode,
    ResponseCode: code ?? -1,
    stdout,
    stderr,
    ...(ran ? { started, ended } : {}),
  });
  return { code, stdout, stderr, uploaded };
}

async function runScript(command: Command, options: StandInOptions, env: Record<string, string>) {
  const script = join(options.tmpDir, `_script-${command.CommandId}.sh`);
  writeFileSync(script, agentStep(document).script, { mode: 0o700 });
  const child = spawn('sh', [script], {
    env: {
      PATH: process.env.PATH,
      ASPROF: options.asprof,
      FLINK_PROFILER_TMPDIR: options.tmpDir,
      ...env,
      ...(options.pid ? { SSM_pid: String(options.pid) } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  // 'close', not 'exit': the streams may still hold output when the process has exited.
  const code = await new Promise<number | null>((resolve) => child.on('close', (exitCode) => resolve(exitCode)));
  return { code, stdout, stderr };
}

/**
 * Records the input of every SendCommand the code under test sends, as it is sent (moto keeps no document
 * version in its command records). Undo with `vi.restoreAllMocks()`.
 */
export function recordSendCommands(): SendCommandCommandInput[] {
  const inputs: SendCommandCommandInput[] = [];
  const send = SSMClient.prototype.send;
  vi.spyOn(SSMClient.prototype, 'send').mockImplementation(function (
    this: SSMClient,
    command: unknown,
    ...rest: unknown[]
  ) {
    if (command instanceof SendCommandCommand) inputs.push(command.input);
    return (send as (...args: unknown[]) => Promise<unknown>).call(this, command, ...rest);
  } as typeof send);
  return inputs;
}
