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
}

/**
 * Stands in for the SSM agent on an EC2 instance, which cannot run here (moto runs no command): checks the
 * command's parameters against our document as SSM does (moto does not), runs the document's script as a
 * file with sh on this machine — the real agent script, against a real JVM, with the real async-profiler —
 * and writes its stdout and stderr where the SSM agent writes them in S3.
 */
export async function runAsSsmAgent(command: Command, instanceId: string, options: StandInOptions) {
  const values = Object.fromEntries(Object.entries(command.Parameters ?? {}).map(([k, v]) => [k, v[0] ?? '']));
  const resolved = checkParameters(document, values);
  const env = { ...stepEnvironment(document, resolved), ...(options.pid ? { SSM_pid: String(options.pid) } : {}) };
  const script = join(options.tmpDir, `_script-${command.CommandId}.sh`);
  writeFileSync(script, agentStep(document).script, { mode: 0o700 });
  const child = spawn('sh', [script], {
    env: { PATH: process.env.PATH, ASPROF: options.asprof, FLINK_PROFILER_TMPDIR: options.tmpDir, ...env },
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
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const s3 = new S3Client({});
  const key = (stream: string) =>
    `${command.OutputS3KeyPrefix}${command.CommandId}/${instanceId}/awsrunShellScript/${agentStep(document).name}/${stream}`;
  await s3.send(new PutObjectCommand({ Bucket: command.OutputS3BucketName, Key: key('stdout'), Body: stdout }));
  if (stderr)
    await s3.send(new PutObjectCommand({ Bucket: command.OutputS3BucketName, Key: key('stderr'), Body: stderr }));
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
