import type { Caller } from './access.ts';
import { runArtifactKeys } from './artifacts.ts';
import { resolveTarget, visibleCluster } from './cluster-access.ts';
import { derivedId, fanOutRunId } from './dispatch-id.ts';
import { ConflictError, NotFoundError, ValidationError } from './errors.ts';
import { busyReason } from './messages.ts';
import type { ProfilingMode } from './modes.ts';
import type {
  ArtifactStore,
  Discovery,
  Dispatcher,
  DispatchRequest,
  DispatchResult,
  Logger,
  RunStore,
} from './ports.ts';
import type { Role, Run, Target } from './run.ts';
import type { RunReader, RunView } from './run-read.ts';
import type { RunSettler } from './run-settle.ts';

/** What every request that starts runs says: who asks, and how to profile (already validated at the edge). */
export interface ProfileCommand {
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
  /**
   * Makes the fan-out safe to repeat (a rule firing is delivered at least once): the group's and each run's ids
   * derive from this key and the target, so a second try finds the runs of the first instead of doubling them,
   * and sends those the first try did not get to.
   */
  idempotencyKey?: string;
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

export interface StartDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  dispatcher: Dispatcher;
  discovery: Discovery;
  settler: RunSettler;
  reader: RunReader;
  log: Logger;
  settings: { historySize: number; maxFanOut: number };
  now: () => number;
  newId: () => string;
}

/**
 * Starts runs: one conditional insert per target (a busy target is refused, not overwritten), history trimmed,
 * then one dispatch for all of them. A run whose command could not be sent is settled FAILED, never left RUNNING.
 */
export class RunStarter {
  constructor(private readonly deps: StartDependencies) {}

  /**
   * Records a RUNNING run and dispatches the node agent. A busy target is refused with ConflictError and
   * nothing is written; a dispatch that fails leaves the run FAILED with the reason (as Flink reports
   * profiler failures), never RUNNING.
   */
  async startRun(command: StartRunCommand): Promise<RunView> {
    const { target, node, teams } = await resolveTarget(
      this.deps.discovery,
      command.caller,
      command.cluster,
      command.role,
      command.node,
    );

    const run = this.newRun(target, teams, command, this.deps.newId());
    const insert = await this.deps.runs.insertRunning(run);
    // A random id is never stored already: a refused insert is a busy target.
    if (!insert.inserted) {
      if ('existing' in insert) throw new ConflictError(busyReason(target, insert.existing.id));
      throw new ConflictError(busyReason(target, insert.runningRunId, insert.busyUntil));
    }
    this.auditStart(command.caller, [run]);
    await this.trimHistory(target);

    await this.dispatch([{ run, node }]);
    return this.deps.reader.view((await this.deps.runs.get(run.id)) ?? run);
  }

  /**
   * Fan-out: starts one run per target — every node of `role` in the cluster, or the nodes named — all sharing
   * one group id, and dispatches them in one batch. A busy or unknown node is skipped and reported, not a reason
   * to refuse the others; only an unknown (or foreign) cluster, or one with no node of the role, is refused (404),
   * and more targets than one fan-out may start (400).
   */
  async startRuns(command: StartRunsCommand): Promise<StartRunsResult> {
    const { cluster, role, nodes: named } = command;
    const { nodes: known, teams } = await visibleCluster(this.deps.discovery, command.caller, cluster);
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
    const limit = this.deps.settings.maxFanOut;
    if (chosen.length > limit) {
      throw new ValidationError(
        `${named ? 'nodes' : 'role'}: cluster '${cluster}' has ${chosen.length} ${role}s to profile, more than the limit of ${limit} targets per fan-out; name at most ${limit} of them in nodes`,
      );
    }

    const key = command.idempotencyKey;
    const groupId = key === undefined ? this.deps.newId() : await derivedId(`${key}|group`);
    const inserts = await Promise.all(
      chosen.map(async (node) => {
        const target: Target = { cluster, role, node: node.id };
        // Derived from the group: the group's commands carry its id, and so still find their runs (dispatch-id.ts).
        const run = { ...this.newRun(target, teams, command, await fanOutRunId(groupId, role, node.id)), groupId };
        return { run, node, insert: await this.deps.runs.insertRunning(run) };
      }),
    );
    const started: DispatchRequest[] = [];
    // Runs an earlier try of this fan-out stored: kept as they are, and sent if that try died before sending them.
    const earlier: DispatchRequest[] = [];
    for (const { run, node, insert } of inserts) {
      if (insert.inserted) started.push({ run, node });
      else if ('existing' in insert) earlier.push({ run: insert.existing, node });
      else {
        const reason = busyReason(run, insert.runningRunId, insert.busyUntil);
        skipped.push({ node: node.id, role, reason, runningRunId: insert.runningRunId });
      }
    }
    this.auditStart(
      command.caller,
      started.map(({ run }) => run),
    );
    await Promise.all(started.map(({ run }) => this.trimHistory(run)));
    const unsent = await this.notYetSent(earlier);
    if (started.length + unsent.length > 0) await this.dispatch([...started, ...unsent]);

    const runs = await Promise.all(
      [...started, ...earlier].map(async ({ run }) => this.deps.reader.view((await this.deps.runs.get(run.id)) ?? run)),
    );
    return { groupId, runs, skipped };
  }

  /**
   * The RUNNING runs of an earlier try that have no command on record. That try may have died after sending their
   * command and before recording it: a command found by its parameters is recorded, never sent a second time.
   */
  private async notYetSent(earlier: DispatchRequest[]): Promise<DispatchRequest[]> {
    const unsent: DispatchRequest[] = [];
    for (const request of earlier) {
      if (request.run.status !== 'RUNNING' || request.run.commandId !== null) continue;
      const commandId = await this.deps.dispatcher.commandFor(request.run);
      if (commandId) await this.deps.runs.setCommandId(request.run.id, commandId);
      else unsent.push(request);
    }
    return unsent;
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
  private newRun(target: Target, teams: string[], command: ProfileCommand, id: string): Run {
    return {
      cluster: target.cluster,
      node: target.node,
      role: target.role,
      id,
      mode: command.mode,
      duration: command.duration,
      status: 'RUNNING',
      triggerTime: this.deps.now(),
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
        await this.deps.settler.settle(result.runId, { kind: 'dispatchFailed', reason: result.error });
      }
    }
  }

  /** Keeps the newest `historySize` runs of a target and deletes the rest with all their files. */
  private async trimHistory(target: Target): Promise<void> {
    const trimmed = await this.deps.runs.trimTarget(target, this.deps.settings.historySize);
    const keys = trimmed.flatMap((run) => (run.artifactKey ? runArtifactKeys(run.artifactKey) : []));
    if (keys.length > 0) await this.deps.artifacts.delete(keys);
  }
}
