import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { LocalDispatcher } from '#adapters/local/local-dispatcher.ts';
import { MAX_AGENT_STDOUT_BYTES, MAX_HTML_BYTES, parseAgentOutput } from '#domain/agent-output.ts';
import { DAMAGED_PROFILE, outputTooLarge, PROFILE_TOO_LARGE } from '#domain/messages.ts';
import { corruptGzip, finishedStdoutWith, gzippedZerosHtml } from '#test/support/hostile-payloads.ts';
import { aRun } from '#test/support/runs.ts';
import { silentLog } from '#test/support/unit-fakes.ts';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Everything that decodes the agent's output reads within a byte limit and fails the run, never the process. */
describe('bounded agent output', () => {
  it('parses a gzip of 2 GiB of HTML as too large, stopping at the limit', () => {
    const result = parseAgentOutput(finishedStdoutWith(gzippedZerosHtml(2048)));

    expect(result?.status).toBe('FINISHED');
    expect(result?.gzippedHtml).toBeNull();
    expect(result?.profileProblem).toBe('tooLarge');
  });

  it('parses a corrupt gzip as damaged', () => {
    const result = parseAgentOutput(finishedStdoutWith(corruptGzip()));

    expect(result?.gzippedHtml).toBeNull();
    expect(result?.profileProblem).toBe('damaged');
  });

  it('the reconciler fails the 2 GiB and the corrupt run with their messages, settles the next run, and stays within bounded memory', async () => {
    // A child process, so the peak RSS measured is that of the decoding alone.
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--import', 'tsx', join('test', 'support', 'bounded-reconcile-child.ts')],
      { timeout: 120_000, maxBuffer: 1024 * 1024 },
    );
    const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      ids: { huge: string; corrupt: string; next: string };
      runs: Array<{ id: string; status: string; message: string }>;
      baseline: number;
      peak: number;
    };
    const byId = new Map(report.runs.map((run) => [run.id, run]));

    expect(byId.get(report.ids.huge)).toMatchObject({ status: 'FAILED', message: PROFILE_TOO_LARGE });
    expect(byId.get(report.ids.corrupt)).toMatchObject({ status: 'FAILED', message: DAMAGED_PROFILE });
    expect(byId.get(report.ids.next)?.status).toBe('FINISHED');
    console.info(
      `[bounded-output] reconciler child: peak RSS ${(report.peak / MiB).toFixed(0)} MiB (before the payloads ${(report.baseline / MiB).toFixed(0)} MiB)`,
    );
    // Decoding stops at 64 MiB of HTML: far from the 2 GiB it would take.
    expect(report.peak - report.baseline).toBeLessThan(MAX_HTML_BYTES + 96 * MiB);
    // A child process that decodes gigabytes' worth of gzip takes seconds; what is checked is its memory, not its time.
  }, 60_000);

  it('local mode does not read a stdout over the limit and fails the run naming its size', async () => {
    const commandsDir = await mkdtemp(join(tmpdir(), 'bounded-local-'));
    dirs.push(commandsDir);
    const commandId = 'local-oversized';
    const dir = join(commandsDir, commandId);
    await mkdir(dir);
    // A sparse file: 1 GiB of stdout, no disk.
    const stdout = await open(join(dir, 'stdout'), 'w');
    await stdout.truncate(1024 * MiB);
    await stdout.close();
    await writeFile(join(dir, 'stderr'), `${'noise\n'.repeat(100_000)}the last line\n`);
    await writeFile(join(dir, 'exit-code'), '0');
    await writeFile(
      join(dir, 'agent.json'),
      JSON.stringify({ runId: 'r', role: 'taskmanager', pid: 0, startTime: '' }),
    );
    const dispatcher = new LocalDispatcher({
      commandsDir,
      asprof: '/nonexistent/asprof',
      onCommandEnded: async () => undefined,
      log: silentLog,
    });

    const state = await dispatcher.inspect(aRun({ commandId }));

    expect(state.state).toBe('ended');
    if (state.state !== 'ended') return;
    expect(state.output.stdout).toBe('');
    expect(state.output.stdoutTooLarge).toBe(1024 * MiB);
    expect(state.output.stderr.length).toBeLessThanOrEqual(64 * 1024);
    expect(state.output.stderr.endsWith('the last line\n')).toBe(true);
    expect(outputTooLarge(1024 * MiB)).toContain(`${1024 * MiB} bytes, more than the ${MAX_AGENT_STDOUT_BYTES}`);
  });

  it('on AWS refuses an output object by its ContentLength, without reading its body', async () => {
    const reads: string[] = [];
    const s3 = {
      send: async (command: { input: { Key: string } }) => {
        const stdout = command.input.Key.endsWith('/stdout');
        return {
          ContentLength: stdout ? 3 * 1024 * MiB : 5,
          Body: {
            transformToString: async () => {
              reads.push(command.input.Key);
              return stdout ? 'never read' : 'oops\n';
            },
            destroy: () => undefined,
          },
        };
      },
    } as unknown as S3Client;
    const ssm = {
      send: async () => ({ Status: 'Success', StatusDetails: 'Success', ResponseCode: 0, StandardOutputContent: '' }),
    } as unknown as SSMClient;
    const dispatcher = new SsmDispatcher(ssm, s3, {
      documentName: 'doc',
      documentVersion: '1',
      outputBucket: 'bucket',
      outputPrefix: 'out',
      deliveryTimeoutSeconds: 60,
      graceSeconds: 60,
    });

    const state = await dispatcher.inspect(aRun({ commandId: 'cmd-1', node: 'i-0123456789abcdef0' }));

    expect(state).toMatchObject({ state: 'ended', output: { stdout: '', stdoutTooLarge: 3 * 1024 * MiB } });
    expect(reads.some((key) => key.endsWith('/stdout'))).toBe(false);
  });
});
