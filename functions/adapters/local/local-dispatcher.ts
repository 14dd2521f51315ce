import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_AGENT_STDERR_BYTES, MAX_AGENT_STDOUT_BYTES } from '#domain/agent-output.ts';
import type {
  CommandOutput,
  CommandParameters,
  CommandState,
  Dispatcher,
  DispatchRequest,
  DispatchResult,
  FlinkNode,
  Logger,
} from '#domain/ports.ts';
import type { Role, Run } from '#domain/run.ts';
import { agentParameters } from '#node-agent/agent-parameters.ts';
import {
  type AgentDocument,
  agentStep,
  checkParameters,
  loadAgentDocument,
  stepEnvironment,
  stepTimeoutSeconds,
} from '#node-agent/ssm-document.ts';
import { ENV } from '#shared/config.ts';
import { processStartTime } from './proc-discovery.ts';

export interface LocalDispatcherOptions {
  /** Where each command keeps its stdout, stderr and exit code while it runs (like SSM's S3 output). */
  commandsDir: string;
  /** The asprof the agent runs. */
  asprof: string;
  /** Base of the agent's scratch directories; the agent's default (TMPDIR or /tmp) when absent. */
  agentTmpDir?: string;
  /** Receives every command's output when it ends; a command whose hand-off fails is kept for reconciling. */
  onCommandEnded: (runId: string, output: CommandOutput) => Promise<unknown>;
  log: Logger;
}

interface AgentRecord {
  runId: string;
  role: Role;
  pid: number;
  startTime: string;
}

/**
 * Dispatcher of local mode: runs our SSM document the way the SSM agent does on a node. Every parameter is
 * checked against the document's allowedValues/allowedPattern before anything runs; the values reach the
 * step's script as `SSM_<name>` environment variables, never as shell text; the script runs as a file with
 * `sh`, for at most the step's timeout. The agent runs in its own process group and writes to files, so a
 * profile under way survives a restart of the server: `inspect` then finds the agent still running, or its
 * output once it has ended.
 */
export class LocalDispatcher implements Dispatcher {
  private readonly document: AgentDocument;
  /** Commands accepted whose agent this process has not forked yet: they count as running. */
  private readonly pending = new Set<string>();

  constructor(private readonly options: LocalDispatcherOptions) {
    this.document = loadAgentDocument().document;
  }

  /**
   * Accepts the commands as SSM does, with an id each, and forks their agents right after: a request that starts
   * a run is answered without waiting for fork and exec (tens of milliseconds on a busy machine). An agent that
   * cannot be started ends its run as a command that failed at once would.
   */
  async dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]> {
    // One child process per run, as SSM runs one command invocation per instance.
    return Promise.all(
      requests.map(async ({ run, node }) => {
        try {
          return { runId: run.id, commandId: await this.accept(run, node) };
        } catch (error) {
          return { runId: run.id, error: (error as Error).message };
        }
      }),
    );
  }

  /** Checks the parameters and prepares the command's directory; the agent is forked on the next turn. */
  private async accept(run: Run, node: FlinkNode): Promise<string> {
    const parameters = checkParameters(this.document, agentParameters(run, run.id, node.pid));
    const commandId = `local-${crypto.randomUUID()}`;
    const dir = join(this.options.commandsDir, commandId);
    await mkdir(dir, { recursive: true });
    // Before the id is handed out: a restarted server finds the command by its run (commandFor) even unforked.
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ runId: run.id, role: run.role }));
    this.pending.add(commandId);
    setImmediate(() => {
      this.start(run, commandId, parameters)
        .catch(async (error: unknown) => {
          this.options.log.error('could not start the node agent', { runId: run.id, commandId, error: String(error) });
          const failure = `Start profiler failed. The node agent could not be started: ${(error as Error).message}`;
          await writeFile(join(dir, 'exit-code'), '127').catch(() => undefined);
          await this.options
            .onCommandEnded(run.id, { stdout: '', stderr: '', exitCode: 127, failure, sessionOver: true })
            .catch(() => undefined);
        })
        .finally(() => this.pending.delete(commandId));
    });
    return commandId;
  }

  private async start(run: Run, commandId: string, parameters: Record<string, string>): Promise<void> {
    const timeoutSeconds = stepTimeoutSeconds(this.document, parameters);
    const dir = join(this.options.commandsDir, commandId);
    // As the SSM agent does: the step's commands become a script file, run by sh.
    const script = join(dir, '_script.sh');
    await writeFile(script, agentStep(this.document).script, { mode: 0o700 });
    const stdout = openSync(join(dir, 'stdout'), 'w');
    const stderr = openSync(join(dir, 'stderr'), 'w');
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('sh', [script], {
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
          LANG: 'C.UTF-8',
          ASPROF: this.options.asprof,
          ...(this.options.agentTmpDir ? { [ENV.agentTmpDir]: this.options.agentTmpDir } : {}),
          ...stepEnvironment(this.document, parameters),
        },
        stdio: ['ignore', stdout, stderr],
        detached: true,
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } finally {
      closeSync(stdout);
      closeSync(stderr);
    }
    const pid = child.pid as number;
    const record: AgentRecord = { runId: run.id, role: run.role, pid, startTime: processStartTime(pid) ?? '' };
    await writeFile(join(dir, 'agent.json'), JSON.stringify(record));

    const timer = setTimeout(() => {
      this.options.log.warn('node agent timed out; stopping it', { runId: run.id, commandId });
      try {
        process.kill(-pid, 'SIGTERM'); // the whole group: the agent and the asprof it runs
      } catch {
        // already gone
      }
    }, timeoutSeconds * 1000);
    timer.unref();

    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      void this.handOff(commandId, run.id, code, signal, timeoutSeconds);
    });
    child.unref();
  }

  async inspect(run: Run): Promise<CommandState> {
    if (!run.commandId) {
      return { state: 'lost', reason: 'The server stopped before the node agent was started; start a new run.' };
    }
    if (this.pending.has(run.commandId)) return { state: 'running' };
    const dir = join(this.options.commandsDir, run.commandId);
    const record = await readJson<Partial<AgentRecord>>(join(dir, 'agent.json'));
    if (record?.pid && record.startTime && processStartTime(record.pid) === record.startTime) {
      return { state: 'running' };
    }
    if (record && record.pid === undefined) {
      // Accepted, never forked: this server stopped in between.
      return { state: 'lost', reason: 'The server stopped before the node agent was started; start a new run.' };
    }
    const output = await this.readOutput(dir, null);
    if (!output) return { state: 'lost', reason: 'The node agent left no output; start a new run.' };
    return { state: 'ended', output };
  }

  /** The command started for the run, if one was and the server stopped before recording it. */
  async commandFor(run: Run): Promise<string | undefined> {
    const entries = await readdir(this.options.commandsDir).catch(() => [] as string[]);
    for (const commandId of entries) {
      const record = await readJson<AgentRecord>(join(this.options.commandsDir, commandId, 'agent.json'));
      if (record?.runId === run.id && record.role === run.role) return commandId;
    }
    return undefined;
  }

  async parametersOf(commandId: string): Promise<CommandParameters | undefined> {
    const record = await readJson<AgentRecord>(join(this.options.commandsDir, commandId, 'agent.json'));
    return record?.role ? { dispatchId: record.runId, role: record.role } : undefined;
  }

  /**
   * Removes the output of commands no RUNNING run needs any more. A command younger than a minute is kept:
   * its run may not have recorded the command id yet.
   */
  async prune(activeCommandIds: ReadonlySet<string>): Promise<void> {
    const entries = await readdir(this.options.commandsDir).catch(() => [] as string[]);
    const cutoff = Date.now() - 60_000;
    await Promise.all(
      entries
        .filter((id) => !activeCommandIds.has(id))
        .map(async (id) => {
          const dir = join(this.options.commandsDir, id);
          const { mtimeMs } = await stat(dir);
          if (mtimeMs < cutoff) await rm(dir, { recursive: true, force: true });
        }),
    );
  }

  /**
   * The command's output as files hold it, read within limits: a stdout over MAX_AGENT_STDOUT_BYTES is not read (the
   * run then fails saying so), and only the tail of stderr is.
   */
  private async readOutput(dir: string, exitCode: number | null): Promise<CommandOutput | undefined> {
    try {
      const [stdout, stderr, recordedExit] = await Promise.all([
        readBounded(join(dir, 'stdout'), MAX_AGENT_STDOUT_BYTES, 'head'),
        readBounded(join(dir, 'stderr'), MAX_AGENT_STDERR_BYTES, 'tail'),
        readFile(join(dir, 'exit-code'), 'utf8').catch(() => undefined),
      ]);
      return {
        stdout: stdout.tooLarge === undefined ? stdout.text : '',
        stderr: stderr.text,
        exitCode: exitCode ?? (recordedExit === undefined ? null : Number(recordedExit)),
        ...(stdout.tooLarge === undefined ? {} : { stdoutTooLarge: stdout.tooLarge }),
      };
    } catch {
      return undefined;
    }
  }

  private async handOff(
    commandId: string,
    runId: string,
    code: number | null,
    signal: NodeJS.Signals | null,
    limitSeconds: number,
  ): Promise<void> {
    const dir = join(this.options.commandsDir, commandId);
    try {
      if (code !== null) await writeFile(join(dir, 'exit-code'), String(code));
      const output = (await this.readOutput(dir, code)) ?? { stdout: '', stderr: '', exitCode: code };
      if (signal === 'SIGTERM') {
        output.failure = `Stop profiler failed. The node agent ran past its time limit of ${limitSeconds} s (Execution Timed Out) and was stopped.`;
        // Past the step's limit the session's own timeout has passed too.
        output.sessionOver = true;
      } else if (signal) output.failure = `The node agent was killed by ${signal}.`;
      await this.options.onCommandEnded(runId, output);
      await rm(dir, { recursive: true, force: true });
    } catch (error) {
      // Keep the output: the reconciler hands it off again.
      this.options.log.error('completion of a local command failed', { commandId, runId, error: String(error) });
    }
  }
}

/**
 * Reads at most `limit` bytes of a file as UTF-8: its start (`head`; a longer file is reported as `tooLarge`, its
 * size, and not read) or its end (`tail`; the rest is skipped).
 */
async function readBounded(
  path: string,
  limit: number,
  part: 'head' | 'tail',
): Promise<{ text: string; tooLarge?: number }> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (part === 'head' && size > limit) return { text: '', tooLarge: size };
    const start = part === 'tail' ? Math.max(0, size - limit) : 0;
    // One byte more than allowed tells a file that grew since its size was read.
    const buffer = Buffer.alloc(Math.min(size, limit) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, start + length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (part === 'head' && length > limit) return { text: '', tooLarge: length };
    return { text: buffer.toString('utf8', 0, Math.min(length, limit)) };
  } finally {
    await handle.close();
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
