import type { Caller } from './access.ts';
import type { RunTimeouts } from './deadline.ts';
import type { Observation } from './observation.ts';
import type {
  ArtifactStore,
  CommandOutput,
  Discovery,
  Dispatcher,
  FlinkNode,
  Logger,
  RunFilter,
  RunStore,
} from './ports.ts';
import { ProfileReader } from './profile-read.ts';
import type { Role, Run } from './run.ts';
import { type RunReader as Reader, RunReader, type RunView } from './run-read.ts';
import { type ReconcileScope, RunReconciler } from './run-reconcile.ts';
import { RunSettler } from './run-settle.ts';
import { RunStarter, type StartRunCommand, type StartRunsCommand, type StartRunsResult } from './run-start.ts';
import { DEFAULT_MAX_DURATION_SECONDS, DEFAULT_MAX_FAN_OUT } from './validation.ts';

export type { RunView } from './run-read.ts';
export type { ReconcileScope } from './run-reconcile.ts';
export type { SkippedTarget, StartRunCommand, StartRunsCommand, StartRunsResult } from './run-start.ts';

export interface ProfilerSettings {
  /** Largest accepted duration in seconds (Flink: `rest.profiling.duration-max`). */
  maxDurationSeconds: number;
  /** Runs kept per target; older runs and their flame graphs are deleted (Flink: `rest.profiling.history-size`). */
  historySize: number;
  /** How long past its command's time limits (delivery, then the step's run) a result may still arrive. */
  graceSeconds: number;
  /** SendCommand's delivery timeout on AWS; 0 in local mode, where the agent starts at once. */
  deliveryTimeoutSeconds: number;
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
  deliveryTimeoutSeconds: 0,
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

/**
 * The profiler's use cases over the ports, in three parts that each fit in one read: starting runs (run-start.ts),
 * reading them (run-read.ts), and ending them in one place (run-settle.ts, fed by run-reconcile.ts and the
 * dispatchers' reports).
 */
export class ProfilerService {
  readonly settings: ProfilerSettings;
  /** How long a run may take before it is settled FAILED (one definition: deadline.ts). */
  readonly timeouts: RunTimeouts;
  /** Exports, frames, threads, differences and merged profiles of finished runs. */
  readonly profiles: ProfileReader;
  private readonly reader: Reader;
  private readonly starter: RunStarter;
  private readonly settler: RunSettler;
  private readonly reconciler: RunReconciler;

  constructor(deps: ProfilerDependencies) {
    this.settings = deps.settings;
    const now = deps.now ?? Date.now;
    const newId = deps.newId ?? (() => crypto.randomUUID());
    this.timeouts = {
      deliveryTimeoutSeconds: deps.settings.deliveryTimeoutSeconds,
      settleMarginSeconds: deps.settings.graceSeconds,
    };
    this.reader = new RunReader({ ...deps, settings: deps.settings });
    this.profiles = new ProfileReader({ ...deps, settings: deps.settings, now, newId });
    this.settler = new RunSettler({
      runs: deps.runs,
      artifacts: deps.artifacts,
      log: deps.log,
      now,
      timeouts: this.timeouts,
    });
    this.starter = new RunStarter({ ...deps, settler: this.settler, reader: this.reader, now, newId });
    this.reconciler = new RunReconciler({ ...deps, settler: this.settler, now, timeouts: this.timeouts });
  }

  startRun(command: StartRunCommand): Promise<RunView> {
    return this.starter.startRun(command);
  }

  startRuns(command: StartRunsCommand): Promise<StartRunsResult> {
    return this.starter.startRuns(command);
  }

  /** Ends a run from what a writer saw: the one place where a run ends. */
  settle(runId: string, observation: Observation): Promise<Run | undefined> {
    return this.settler.settle(runId, observation);
  }

  /** The agent's command of a run ended with this output (local mode's child process). */
  completeRun(runId: string, output: CommandOutput): Promise<Run | undefined> {
    return this.settler.settle(runId, { kind: 'agentOutput', output });
  }

  completeCommand(commandId: string, node: string): Promise<Run | undefined> {
    return this.reconciler.completeCommand(commandId, node);
  }

  reconcile(scope?: ReconcileScope): Promise<Run[]> {
    return this.reconciler.reconcile(scope);
  }

  listNodes(caller: Caller, cluster: string): Promise<Array<FlinkNode & { runningRunId?: string }>> {
    return this.reader.listNodes(caller, cluster);
  }

  listClusters(caller: Caller): Promise<Array<{ id: string; nodes: number; teams: string[] }>> {
    return this.reader.listClusters(caller);
  }

  getRun(caller: Caller, id: string): Promise<RunView> {
    return this.reader.getRun(caller, id);
  }

  listTargetRuns(caller: Caller, cluster: string, role: Role, node?: string): Promise<RunView[]> {
    return this.reader.listTargetRuns(caller, cluster, role, node);
  }

  listRuns(caller: Caller, filter: Omit<RunFilter, 'teams'>, limit: number, nextToken?: string) {
    return this.reader.listRuns(caller, filter, limit, nextToken);
  }

  downloadLink(caller: Caller, cluster: string, role: Role, node: string | undefined, outputFile: string) {
    return this.reader.downloadLink(caller, cluster, role, node, outputFile);
  }
}
