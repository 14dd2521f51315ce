import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import { PROFILE_BEGIN, PROFILE_END } from '#domain/agent-output.ts';
import { dispatchIdOf } from '#domain/dispatch-id.ts';
import type {
  CommandParameters,
  CommandState,
  Discovery,
  Dispatcher,
  DispatchRequest,
  DispatchResult,
  FlinkNode,
  Logger,
} from '#domain/ports.ts';
import { DEFAULT_SETTINGS, ProfilerService, type ProfilerSettings } from '#domain/profiler-service.ts';
import type { Run } from '#domain/run.ts';
import { createApp } from '#http/app.ts';

/**
 * Stand-ins for the two ports that touch processes, for the unit tier only (no processes, no network):
 * a fixed list of nodes, and a dispatcher that records what it was asked to run. The end-to-end tier runs
 * the real ones against real JVMs.
 */
export class StaticDiscovery implements Discovery {
  constructor(public nodes: FlinkNode[]) {}
  async listClusters() {
    return [{ id: 'local', nodes: this.nodes.length, teams: [] }];
  }
  async listNodes(cluster: string) {
    return cluster === 'local' ? this.nodes : undefined;
  }
}

export class RecordingDispatcher implements Dispatcher {
  readonly dispatched: Array<{ run: Run; node: FlinkNode }> = [];
  /** What `inspect` answers, per run id; runs not listed are 'running'. */
  readonly states = new Map<string, CommandState>();
  failWith?: Error;

  /** Every command sent, by id, with what its parameters say (as SSM's ListCommands tells). */
  readonly commands = new Map<string, CommandParameters & { node: string }>();

  async dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]> {
    if (this.failWith) throw this.failWith;
    return requests.map(({ run, node }) => {
      this.dispatched.push({ run, node });
      const commandId = `command-${this.dispatched.length}`;
      this.commands.set(commandId, { dispatchId: dispatchIdOf(run), role: run.role, node: run.node });
      return { runId: run.id, commandId };
    });
  }
  async inspect(run: Run): Promise<CommandState> {
    return this.states.get(run.id) ?? { state: 'running' };
  }
  async commandFor(run: Run): Promise<string | undefined> {
    const sent = [...this.commands].find(
      ([, c]) => c.dispatchId === dispatchIdOf(run) && c.role === run.role && c.node === run.node,
    );
    return sent?.[0];
  }
  async parametersOf(commandId: string): Promise<CommandParameters | undefined> {
    const command = this.commands.get(commandId);
    return command && { dispatchId: command.dispatchId, role: command.role };
  }
}

export const silentLog: Logger = { info() {}, warn() {}, error() {} };

/** A gzip payload as the node agent prints it: base64 in lines of 76, and what the result line says of it. */
function section(body: string | Buffer): { gzipped: Buffer; base64: string; digest: string } {
  const gzipped = gzipSync(Buffer.from(body));
  return {
    gzipped,
    base64: gzipped.toString('base64').replace(/.{76}/g, '$&\n'),
    digest: `${createHash('sha256').update(gzipped).digest('hex')}:${gzipped.length}`,
  };
}

/**
 * What the node agent prints for a finished profile of `html`; with `extras`, also the collapsed stacks and the
 * recording of a node that converts its recording (each payload vouched for by the line, unless `forge` names one
 * whose digest the line gets wrong).
 */
export function finishedAgentStdout(
  html: string,
  mode = 'ITIMER',
  extras?: { collapsed: string; jfr?: Buffer; forge?: 'collapsed' | 'jfr' },
): string {
  const page = section(html);
  const [digest, length] = page.digest.split(':');
  let fields = `sha256=${digest} bytes=${length}`;
  let sections = `${PROFILE_BEGIN}\n${page.base64}\n${PROFILE_END}\n`;
  if (extras) {
    const collapsed = section(extras.collapsed);
    const jfr = section(extras.jfr ?? Buffer.concat([Buffer.from('FLR\0', 'latin1'), Buffer.alloc(64, 1)]));
    const vouch = (label: 'collapsed' | 'jfr', part: { digest: string }) =>
      extras.forge === label ? `${'0'.repeat(64)}:${part.digest.split(':')[1]}` : part.digest;
    fields += ` collapsed=${vouch('collapsed', collapsed)} jfr=${vouch('jfr', jfr)}`;
    sections += `-----BEGIN FLINK PROFILE collapsed-----\n${collapsed.base64}\n-----END FLINK PROFILE collapsed-----\n`;
    sections += `-----BEGIN FLINK PROFILE jfr-----\n${jfr.base64}\n-----END FLINK PROFILE jfr-----\n`;
  }
  return `FLINK_PROFILER_RESULT status=FINISHED pid=4242 mode=${mode} ${fields} message=Profiling Successful\n${sections}`;
}

export const FLAME_GRAPH =
  '<!DOCTYPE html>\n<html><head><title>Flame Graph</title></head><body>fakeFlinkHotLoop</body></html>\n';

export const TM: FlinkNode = { id: '4242-100', role: 'taskmanager', host: 'test-host', pid: 4242, reachable: true };
export const JM: FlinkNode = { id: '4141-90', role: 'jobmanager', host: 'test-host', pid: 4141, reachable: true };

/** A service over real SQLite (in memory) and a real directory, with a clock the test moves. */
export function createTestService(settings: Partial<ProfilerSettings> = {}, log: Logger = silentLog) {
  const clock = { now: Date.UTC(2026, 10, 27, 10, 0, 0) };
  const dir = mkdtempSync(join(tmpdir(), 'ffp-unit-'));
  const runs = new SqliteRunStore(':memory:');
  const artifacts = new DirectoryArtifactStore(
    join(dir, 'artifacts'),
    Buffer.from('unit-test-secret-0123456789'),
    () => 'http://profiler.test',
    () => clock.now,
  );
  const dispatcher = new RecordingDispatcher();
  const discovery = new StaticDiscovery([JM, TM]);
  const profiler = new ProfilerService({
    runs,
    artifacts,
    dispatcher,
    discovery,
    settings: { ...DEFAULT_SETTINGS, ...settings },
    log,
    now: () => clock.now,
  });
  const app = createApp({ profiler, log: silentLog });
  return { app, profiler, runs, artifacts, dispatcher, discovery, clock, dir };
}
