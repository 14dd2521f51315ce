import { type Caller, canSee, visibleTeams } from './access.ts';
import { type AgentResult, parseAgentOutput } from './agent-output.ts';
import { ConflictError, NotFoundError, ValidationError } from './errors.ts';
import type { ProfilingMode } from './modes.ts';
import type {
  ArtifactStore,
  CommandOutput,
  Discovery,
  Dispatcher,
  DispatchRequest,
  DispatchResult,
  FlinkNode,
  LinkDisposition,
  Logger,
  RunFilter,
  RunPage,
  RunStore,
} from './ports.ts';
import {
  artifactKeyFor,
  deadlineOf,
  describeTarget,
  outputFileName,
  type Role,
  type Run,
  SUCCESS_MESSAGE,
  type Target,
} from './run.ts';
import { DEFAULT_MAX_DURATION_SECONDS, DEFAULT_MAX_FAN_OUT } from './validation.ts';

export interface ProfilerSettings {
  /** Largest accepted duration in seconds (Flink: `rest.profiling.duration-max`). */
  maxDurationSeconds: number;
  /** Runs kept per target; older runs and their flame graphs are deleted (Flink: `rest.profiling.history-size`). */
  historySize: number;
  /** How long after its duration a RUNNING run may go without a result before it is reconciled. */
  graceSeconds: number;
  /** How long a link to a flame graph stays valid. */
  linkTtlSeconds: number;
  /** Most targets one fan-out (or rule firing) may start runs on. */
  maxFanOut: number;
  /** Shortest time between two firings of a rule, in seconds. */
  minRuleIntervalSeconds: number;
  /** Most profiling seconds (duration × targets) one rule firing may start. */
  maxFiringSeconds: number;
}

export const DEFAULT_SETTINGS: ProfilerSettings = {
  maxDurationSeconds: DEFAULT_MAX_DURATION_SECONDS,
  historySize: 10,
  graceSeconds: 60,
  linkTtlSeconds: 900,
  maxFanOut: DEFAULT_MAX_FAN_OUT,
  minRuleIntervalSeconds: 300,
  maxFiringSeconds: 3600,
};

export interface ProfilerDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  dispatcher: Dispatcher;
  discovery: Discovery;
  settings: ProfilerSettings;
  log: Logger;
  now?: () => number;
  newId?: () => string;
}

/** What every request that starts runs says: who asks, and how to profile (already validated at the edge). */
interface ProfileCommand {
  caller: Caller;
  cluster: string;
  mode: ProfilingMode;
  duration: number;
  /** The rule whose firing this is, if any. */
  ruleId?: string | null;
}

/** Profile one target. */
export interface StartRunCommand extends ProfileCommand {
  role: Role;
  /** The node to profile; for a JobManager it may be left out when the cluster has exactly one. */
  node?: string;
}

/** Fan-out: profile every node of `role` in the cluster, or the `nodes` named. */
export interface StartRunsCommand extends ProfileCommand {
  role: Role;
  nodes?: readonly string[];
}

/** A target a fan-out did not start a run on, and why. */
export interface SkippedTarget {
  node: string;
  role: Role;
  reason: string;
  /** The run that keeps the target busy, when that is the reason. */
  runningRunId?: string;
}

/** What a fan-out started: one run per free target, all sharing `groupId`, and the targets it skipped. */
export interface StartRunsResult {
  groupId: string;
  runs: RunView[];
  skipped: SkippedTarget[];
}

/** A run as clients see it, with fresh links to its flame graph once it has one. */
export interface RunView extends Run {
  url?: string;
  downloadUrl?: string;
}

/** Which runs a reconciliation pass looks at. */
export type ReconcileScope = 'overdue' | 'all';

/**
 * The profiler's use cases over the ports: start a run, finish it from the node agent's output,
 * reconcile runs whose completion never came, and read history with fresh links.
 */
export class ProfilerService {
  readonly settings: ProfilerSettings;
  private readonly deps: ProfilerDependencies;
  private readonly now: () => number;
  private readonly newId: () => string;

  constructor(deps: ProfilerDependencies) {
    this.deps = deps;
    this.settings = deps.settings;
    this.now = deps.now ?? Date.now;
    this.newId = deps.newId ?? (() => crypto.randomUUID());
  }

  /**
   * A cluster's nodes and the teams it belongs to, if the caller may see it. A cluster outside the caller's
   * teams is answered exactly like an unknown one (404), so its existence does not leak.
   */
  private async visibleCluster(caller: Caller, cluster: string): Promise<{ nodes: FlinkNode[]; teams: string[] }> {
    const nodes = await this.deps.discovery.listNodes(cluster);
    const teams = teamsOf(nodes ?? []);
    if (!nodes || !canSee(caller, teams)) throw new NotFoundError(`cluster '${cluster}' not found`);
    return { nodes, teams };
  }

  /** The nodes of a cluster the caller may see; throws NotFoundError for an unknown or foreign cluster. */
  async listNodes(caller: Caller, cluster: string): Promise<Array<FlinkNode & { runningRunId?: string }>> {
    const { nodes } = await this.visibleCluster(caller, cluster);
    const running = await this.deps.runs.list({ cluster, status: 'RUNNING' }, 1000);
    return nodes.map((node) => {
      const run = running.runs.find((r) => r.node === node.id && r.role === node.role);
      return run ? { ...node, runningRunId: run.id } : node;
    });
  }

  /** The clusters of the caller's teams (every cluster for an admin or in local mode). */
  async listClusters(caller: Caller): Promise<Array<{ id: string; nodes: number; teams: string[] }>> {
    return (await this.deps.discovery.listClusters()).filter((cluster) => canSee(caller, cluster.teams));
  }

  /** Finds the node to profile. A JobManager may be named by role alone when the cluster has exactly one. */
  private async resolveTarget(
    caller: Caller,
    cluster: string,
    role: Role,
    node?: string,
  ): Promise<{ target: Target; node: FlinkNode; teams: string[] }> {
    const { nodes, teams } = await this.visibleCluster(caller, cluster);
    const candidates = nodes.filter((n) => n.role === role && (node === undefined || n.id === node));
    if (candidates.length === 1) {
      const [found] = candidates as [FlinkNode];
      return { target: { cluster, role, node: found.id }, node: found, teams };
    }
    if (node !== undefined) throw new NotFoundError(`${role} '${node}' not found in cluster '${cluster}'`);
    if (candidates.length === 0) throw new NotFoundError(`no ${role} found in cluster '${cluster}'`);
    throw new ConflictError(
      `cluster '${cluster}' has ${candidates.length} ${role}s (${candidates.map((n) => n.id).join(', ')}); name the node to profile`,
    );
  }

  /**
   * Records a RUNNING run and dispatches the node agent. A busy target is refused with ConflictError and
   * nothing is written; a dispatch that fails leaves the run FAILED with the reason (as Flink reports
   * profiler failures), never RUNNING.
   */
  async startRun(command: StartRunCommand): Promise<RunView> {
    const { target, node, teams } = await this.resolveTarget(
      command.caller,
      command.cluster,
      command.role,
      command.node,
    );

    const run = this.newRun(target, teams, command);
    const insert = await this.deps.runs.insertRunning(run);
    if (!insert.inserted) throw new ConflictError(busyReason(target, insert.runningRunId));
    this.auditStart(command.caller, [run]);
    await this.trimHistory(target);

    await this.dispatch([{ run, node }]);
    return this.view((await this.deps.runs.get(run.id)) ?? run);
  }

  /**
   * Fan-out: starts one run per target — every node of `role` in the cluster, or the nodes named — all sharing
   * one group id, and dispatches them in one batch. A busy or unknown node is skipped and reported, not a reason
   * to refuse the others; only an unknown (or foreign) cluster, or one with no node of the role, is refused (404),
   * and more targets than one fan-out may start (400).
   */
  async startRuns(command: StartRunsCommand): Promise<StartRunsResult> {
    const { cluster, role, nodes: named } = command;
    const { nodes: known, teams } = await this.visibleCluster(command.caller, cluster);
    const ofRole = known.filter((n) => n.role === role);
    if (ofRole.length === 0) throw new NotFoundError(`no ${role} found in cluster '${cluster}'`);

    const skipped: SkippedTarget[] = [];
    let chosen = ofRole;
    if (named) {
      const byId = new Map(ofRole.map((n) => [n.id, n]));
      chosen = [];
      for (const id of new Set(named)) {
        const node = byId.get(id);
        if (node) chosen.push(node);
        else skipped.push({ node: id, role, reason: `${role} '${id}' not found in cluster '${cluster}'` });
      }
    }
    const limit = this.settings.maxFanOut;
    if (chosen.length > limit) {
      throw new ValidationError(
        `${named ? 'nodes' : 'role'}: cluster '${cluster}' has ${chosen.length} ${role}s to profile, more than the limit of ${limit} targets per fan-out; name at most ${limit} of them in nodes`,
      );
    }

    const groupId = this.newId();
    const inserts = await Promise.all(
      chosen.map(async (node) => {
        const target: Target = { cluster, role, node: node.id };
        const run = { ...this.newRun(target, teams, command), groupId };
        return { run, node, insert: await this.deps.runs.insertRunning(run) };
      }),
    );
    const started: DispatchRequest[] = [];
    for (const { run, node, insert } of inserts) {
      if (insert.inserted) started.push({ run, node });
      else {
        const reason = busyReason(run, insert.runningRunId);
        skipped.push({ node: node.id, role, reason, runningRunId: insert.runningRunId });
      }
    }
    this.auditStart(
      command.caller,
      started.map(({ run }) => run),
    );
    await Promise.all(started.map(({ run }) => this.trimHistory(run)));
    if (started.length > 0) await this.dispatch(started);

    const runs = await Promise.all(
      started.map(async ({ run }) => this.view((await this.deps.runs.get(run.id)) ?? run)),
    );
    return { groupId, runs, skipped };
  }

  /** One structured audit line per profile start: who, for which team, what, on which target. */
  private auditStart(caller: Caller, runs: Run[]): void {
    for (const run of runs) {
      this.deps.log.info('audit', {
        action: 'profile.start',
        who: caller.user,
        teams: run.teams ?? [],
        runId: run.id,
        target: { cluster: run.cluster, role: run.role, node: run.node },
        mode: run.mode,
        duration: run.duration,
        ...(run.ruleId ? { ruleId: run.ruleId } : {}),
        ...(run.groupId ? { groupId: run.groupId } : {}),
      });
    }
  }

  /** A new RUNNING run of a target, not yet stored; it stays visible to the teams its cluster has now. */
  private newRun(target: Target, teams: string[], command: ProfileCommand): Run {
    return {
      cluster: target.cluster,
      node: target.node,
      role: target.role,
      id: this.newId(),
      mode: command.mode,
      duration: command.duration,
      status: 'RUNNING',
      triggerTime: this.now(),
      finishedTime: null,
      message: null,
      outputFile: null,
      commandId: null,
      artifactKey: null,
      requestedBy: command.caller.user,
      ruleId: command.ruleId ?? null,
      teams,
    };
  }

  /** Dispatches RUNNING runs and records their commands; a run whose agent could not be started is FAILED. */
  private async dispatch(requests: DispatchRequest[]): Promise<void> {
    let results: DispatchResult[];
    try {
      results = await this.deps.dispatcher.dispatch(requests);
    } catch (error) {
      this.deps.log.error('dispatch failed', { runIds: requests.map((r) => r.run.id), error: String(error) });
      results = requests.map(({ run }) => ({ runId: run.id, error: (error as Error).message }));
    }
    for (const result of results) {
      if ('commandId' in result) {
        await this.deps.runs.setCommandId(result.runId, result.commandId);
      } else {
        await this.fail(result.runId, `Start profiler failed. The node agent could not be started: ${result.error}`);
      }
    }
  }

  /**
   * Finishes the run of a command on a node, from where the command is now (AWS: on the SSM status-change
   * event). Idempotent: an unknown command or a run already finished is left alone.
   */
  async completeCommand(commandId: string, node: string): Promise<Run | undefined> {
    const run = await this.deps.runs.findByCommand(commandId, node);
    if (run?.status !== 'RUNNING') return run;
    return this.settle(run, false);
  }

  /**
   * Finishes a run from its command's output: FINISHED with the flame graph stored, or FAILED with the
   * agent's message. Safe to call more than once for the same run: only the first call changes anything.
   */
  async completeRun(runId: string, output: CommandOutput): Promise<Run | undefined> {
    const run = await this.deps.runs.get(runId);
    if (run?.status !== 'RUNNING') return run;

    const result = parseAgentOutput(output.stdout);
    const finishedTime = this.now();
    if (result?.status === 'FINISHED' && result.gzippedHtml) {
      const outputFile = outputFileName(run, finishedTime);
      const artifactKey = artifactKeyFor(run, outputFile);
      await this.deps.artifacts.put(artifactKey, result.gzippedHtml);
      const finished = await this.deps.runs.finish(run.id, {
        status: 'FINISHED',
        finishedTime,
        message: finishedMessage(run, result),
        outputFile,
        artifactKey,
      });
      // Another completion won the race: its flame graph is the one on record, drop ours.
      if (!finished) await this.deps.artifacts.delete([artifactKey]);
      return finished ?? (await this.deps.runs.get(run.id));
    }
    const finished = await this.deps.runs.finish(run.id, {
      status: 'FAILED',
      finishedTime,
      message: failureMessage(result, output),
      outputFile: null,
      artifactKey: null,
    });
    return finished ?? (await this.deps.runs.get(run.id));
  }

  /**
   * Settles RUNNING runs whose completion did not arrive: asks the dispatcher where each command is, and
   * finishes the run from the command's output, or fails it once it is overdue or the command is lost.
   * `overdue` looks only at runs past their duration plus grace; `all` at every RUNNING run (local mode,
   * where asking is cheap and a restarted server must pick up agents that ended while it was down).
   */
  async reconcile(scope: ReconcileScope = 'overdue'): Promise<Run[]> {
    const settled: Run[] = [];
    for (const run of await this.deps.runs.listRunning()) {
      const overdue = this.now() > deadlineOf(run, this.settings.graceSeconds);
      if (scope === 'overdue' && !overdue) continue;
      try {
        const finished = await this.settle(run, overdue);
        if (finished && finished.status !== 'RUNNING') settled.push(finished);
      } catch (error) {
        // One run's trouble (say, its output not readable yet) must not hold up the others: next pass.
        this.deps.log.warn('could not reconcile run', { runId: run.id, error: String(error) });
      }
    }
    return settled;
  }

  /** Finishes a run from where its command is; a command still running fails the run only when `overdue`. */
  private async settle(run: Run, overdue: boolean): Promise<Run | undefined> {
    // A run with no command yet may be between its insert and the end of its dispatch: only once it is
    // overdue is it surely lost (say, the server stopped in between).
    if (!run.commandId && !overdue) return run;
    const state = await this.deps.dispatcher.inspect(run);
    if (state.state === 'ended') return this.completeRun(run.id, state.output);
    if (state.state === 'lost') return this.fail(run.id, state.reason);
    if (!overdue) return run;
    return this.fail(
      run.id,
      `The node agent gave no result within ${run.duration + this.settings.graceSeconds} s of the start (duration ${run.duration} s plus ${this.settings.graceSeconds} s grace); the run was abandoned.`,
    );
  }

  /** One run the caller may see (404 for an unknown or foreign run). */
  async getRun(caller: Caller, id: string): Promise<RunView> {
    const run = await this.deps.runs.get(id);
    if (!run || !canSee(caller, run.teams ?? [])) throw new NotFoundError(`run '${id}' not found`);
    return this.view(run);
  }

  /**
   * A target's history, newest first, as Flink's profilingList. For the JobManager endpoint (no node) it
   * is the history of the cluster's JobManagers. History is read from the store first: a node that has
   * stopped keeps its history, and reads cost no discovery. A run stays visible to the teams its cluster had
   * when it was started.
   */
  async listTargetRuns(caller: Caller, cluster: string, role: Role, node?: string): Promise<RunView[]> {
    const teams = visibleTeams(caller);
    const runs =
      node === undefined
        ? (await this.deps.runs.list({ cluster, role, teams }, this.settings.historySize)).runs
        : (await this.deps.runs.listForTarget({ cluster, role, node }, this.settings.historySize)).filter((run) =>
            canSee(caller, run.teams ?? []),
          );
    // No history: tell an unknown (or foreign) cluster or node (404) from a known one with nothing yet ([]).
    if (runs.length === 0 && node !== undefined) await this.resolveTarget(caller, cluster, role, node);
    if (runs.length === 0 && node === undefined) await this.visibleCluster(caller, cluster);
    return Promise.all(runs.map((run) => this.view(run)));
  }

  /** Runs across targets that the caller may see, newest first. */
  async listRuns(
    caller: Caller,
    filter: Omit<RunFilter, 'teams'>,
    limit: number,
    nextToken?: string,
  ): Promise<{ runs: RunView[]; nextToken?: string }> {
    const page: RunPage = await this.deps.runs.list({ ...filter, teams: visibleTeams(caller) }, limit, nextToken);
    return { ...page, runs: await Promise.all(page.runs.map((run) => this.view(run))) };
  }

  /** A short-lived link that downloads a flame graph by its output file name. */
  async downloadLink(
    caller: Caller,
    cluster: string,
    role: Role,
    node: string | undefined,
    outputFile: string,
  ): Promise<string> {
    const run = await this.deps.runs.findByOutputFile({ cluster, role, node }, outputFile);
    if (!run?.artifactKey || !canSee(caller, run.teams ?? [])) {
      const where =
        node === undefined ? `the ${role} of cluster '${cluster}'` : describeTarget({ cluster, role, node });
      throw new NotFoundError(`file '${outputFile}' not found for ${where}`);
    }
    return this.link(run.artifactKey, outputFile, 'attachment');
  }

  private link(key: string, fileName: string, disposition: LinkDisposition): Promise<string> {
    return this.deps.artifacts.link(key, { fileName, disposition, expiresInSeconds: this.settings.linkTtlSeconds });
  }

  private async view(run: Run): Promise<RunView> {
    if (run.status !== 'FINISHED' || !run.artifactKey || !run.outputFile) return run;
    const [url, downloadUrl] = await Promise.all([
      this.link(run.artifactKey, run.outputFile, 'inline'),
      this.link(run.artifactKey, run.outputFile, 'attachment'),
    ]);
    return { ...run, url, downloadUrl };
  }

  private fail(runId: string, message: string): Promise<Run | undefined> {
    return this.deps.runs.finish(runId, {
      status: 'FAILED',
      finishedTime: this.now(),
      message,
      outputFile: null,
      artifactKey: null,
    });
  }

  /** Keeps the newest `historySize` runs of a target and deletes the rest with their flame graphs. */
  private async trimHistory(target: Target): Promise<void> {
    const trimmed = await this.deps.runs.trimTarget(target, this.settings.historySize);
    const keys = trimmed.flatMap((run) => (run.artifactKey ? [run.artifactKey] : []));
    if (keys.length > 0) await this.deps.artifacts.delete(keys);
  }
}

/** The teams a cluster belongs to: the union of its nodes' team tags. */
export function teamsOf(nodes: readonly FlinkNode[]): string[] {
  return [...new Set(nodes.flatMap((node) => node.teams ?? []))].sort();
}

/**
 * The message of a finished run: Flink's "Profiling Successful", with the agent's note when it profiled in another
 * mode than asked (a CPU run retried in ITIMER where perf events are unavailable). The run keeps the mode asked for;
 * an agent that switched modes without saying so in its message still gets a note, so the flame graph is never
 * taken for what it is not.
 */
function finishedMessage(run: Run, result: AgentResult): string {
  const message = result.message || SUCCESS_MESSAGE;
  if (!result.mode || result.mode === run.mode || message.includes(result.mode)) return message;
  return `${message} (${run.mode} fell back to ${result.mode})`;
}

function busyReason(target: Target, runningRunId: string): string {
  return `${describeTarget(target)} is busy: run ${runningRunId} is still RUNNING; wait for it to finish`;
}

/** The message of a failed run: the agent's own when it gave one, else what the command's end tells. */
function failureMessage(result: AgentResult | undefined, output: CommandOutput): string {
  if (result?.status === 'FAILED') return result.message;
  if (result?.status === 'FINISHED') {
    return 'Stop profiler failed. The node agent reported success but its flame graph was missing or damaged in transit.';
  }
  if (output.failure) return output.failure;
  const lastError = output.stderr.trim().split('\n').pop()?.trim();
  const exit = output.exitCode === null ? 'ended' : `exited with code ${output.exitCode}`;
  return `The node agent ${exit} without a result${lastError ? `: ${lastError}` : '.'}`;
}
