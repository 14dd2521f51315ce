import type { ProfileFormat } from './artifacts.ts';
import type { FiringClaim, Rule, RuleFiring } from './rule.ts';
import type { Role, Run, RunStatus, Target } from './run.ts';

/** What a finished run records; written only if the run is still RUNNING. */
export interface RunOutcome {
  status: Exclude<RunStatus, 'RUNNING'>;
  finishedTime: number;
  message: string;
  outputFile: string | null;
  artifactKey: string | null;
  /** The formats stored for a FINISHED run (under keys derived from `artifactKey`); absent or empty otherwise. */
  formats?: ProfileFormat[];
  /**
   * Until when the run's JVM may still be profiled although the run ended (its agent did not stop the session):
   * the target refuses new runs until then. Null when the JVM is free.
   */
  busyUntil?: number | null;
}

/** A target, or all targets of a role in a cluster when `node` is left out. */
export type TargetSelector = Omit<Target, 'node'> & { node?: string };

export interface RunFilter {
  cluster?: string;
  node?: string;
  role?: Role;
  status?: RunStatus;
  ruleId?: string;
  /** The runs of one fan-out or rule firing. */
  groupId?: string;
  /** Who started the runs: a user name, or `rule:<id>`. */
  requestedBy?: string;
  /** Keep only runs visible to one of these teams (none: no runs); left out, every run. */
  teams?: readonly string[];
}

export interface RunPage {
  runs: Run[];
  /** Opaque; pass it back to read the next page. Absent on the last page. */
  nextToken?: string;
}

export type InsertResult =
  | { inserted: true }
  /** The target is busy: a run is RUNNING there, or one that ended early may still be profiling until `busyUntil`. */
  | { inserted: false; runningRunId: string; busyUntil?: number }
  | { inserted: false; existing: Run };

/** Keeps runs. Every state change is a conditional write, so concurrent writers never lose an update. */
export interface RunStore {
  /**
   * Stores a new RUNNING run unless its target already has one, or a run there ended with `busyUntil` later than the
   * new run's trigger time: then it stores nothing and returns the id of the run that holds the target. The check and the write are one atomic operation. A run whose id is
   * stored already (an earlier try of the same rule firing) is not stored again: the stored one is returned.
   */
  insertRunning(run: Run): Promise<InsertResult>;
  get(id: string): Promise<Run | undefined>;
  /** Records the dispatched command of a run. */
  setCommandId(id: string, commandId: string): Promise<void>;
  /** Finishes a run if it is still RUNNING; returns the finished run, or undefined when it was not RUNNING. */
  finish(id: string, outcome: RunOutcome): Promise<Run | undefined>;
  /** A target's runs, newest first. */
  listForTarget(target: Target, limit: number): Promise<Run[]>;
  /** Runs across targets, newest first, filtered and paged. */
  list(filter: RunFilter, limit: number, nextToken?: string): Promise<RunPage>;
  /** The run whose flame graph is `outputFile`, among a target's runs (or a role's runs in a cluster, when `node` is left out). */
  findByOutputFile(target: TargetSelector, outputFile: string): Promise<Run | undefined>;
  /** The run that a command runs on a node (the command may run several runs, one per node). */
  findByCommand(commandId: string, node: string): Promise<Run | undefined>;
  /** Every run still RUNNING, oldest first. */
  listRunning(): Promise<Run[]>;
  /** Deletes a target's runs beyond the newest `keep`, returning the deleted runs. */
  trimTarget(target: Target, keep: number): Promise<Run[]>;
}

export type LinkDisposition = 'inline' | 'attachment';

/**
 * Keeps a run's files (flame graph, collapsed stacks, pprof, recording) and views derived from them, each stored
 * compressed (its type told by its key's ending: see artifacts.ts), and hands out short-lived links to them.
 */
export interface ArtifactStore {
  /** Stores `body`, compressed as the key's kind is (gzip, or pprof's own), under `key`. */
  put(key: string, body: Buffer): Promise<void>;
  /** The object as stored (compressed), or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Deletes the objects; keys that do not exist are ignored. */
  delete(keys: string[]): Promise<void>;
  /** A link that serves the flame graph until it expires, opened in the browser or downloaded as `fileName`. */
  link(
    key: string,
    options: { fileName: string; disposition: LinkDisposition; expiresInSeconds: number },
  ): Promise<string>;
}

/** A Flink JVM as discovery sees it. */
export interface FlinkNode {
  id: string;
  role: Role;
  host: string;
  pid?: number;
  reachable: boolean;
  /** The teams the node's host belongs to (AWS: its team tag); left out or empty in local mode. */
  teams?: string[];
}

/** Finds clusters and their Flink JVMs. */
export interface Discovery {
  /** Every cluster, with its node count and its teams (the union over its nodes). */
  listClusters(): Promise<Array<{ id: string; nodes: number; teams: string[] }>>;
  /** The cluster's nodes (one entry per role of a host), or undefined when the cluster is unknown. */
  listNodes(cluster: string): Promise<FlinkNode[] | undefined>;
}

/** What the node agent left behind once its command ended. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
  /** Null when the exit code is not known (e.g. the local server restarted while the agent ran). */
  exitCode: number | null;
  /** Why the command ended without the agent finishing, in words for the user (time-outs, undeliverable, …). */
  failure?: string;
  /**
   * The stdout was this many bytes (at least), more than MAX_AGENT_STDOUT_BYTES (agent-output.ts): it was not read,
   * and `stdout` is empty.
   */
  stdoutTooLarge?: number;
  /**
   * No async-profiler session of this command can be running any more: the command never reached the agent (not
   * delivered, refused), or it ran past the step's limit, which is later than the session's own timeout.
   */
  sessionOver?: boolean;
}

export type CommandState =
  | { state: 'running' }
  | { state: 'ended'; output: CommandOutput }
  /** Nothing is known of the command any more: the run can only be failed, with this reason. */
  | { state: 'lost'; reason: string };

/** One run to start on its node. */
export interface DispatchRequest {
  run: Run;
  node: FlinkNode;
}

/** The command that runs a dispatched run, or why it could not be started. */
export type DispatchResult = { runId: string; commandId: string } | { runId: string; error: string };

/** Runs the node agent for runs on their nodes. */
export interface Dispatcher {
  /**
   * Starts the agent for each run (in as few commands as the backend allows) and answers for every run:
   * its command id, or the reason it could not be started. The end of each command reaches the completion
   * code later.
   */
  dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]>;
  /** Asks where a dispatched command is now (for reconciling runs whose completion never arrived). */
  inspect(run: Run): Promise<CommandState>;
  /**
   * The command already sent for a run whose command id was never recorded (the sender died between sending and
   * writing it down), found by the run's dispatch id in the command's parameters and the run's node (see
   * dispatch-id.ts); undefined when no such command was sent.
   */
  commandFor(run: Run): Promise<string | undefined>;
  /** What a command's parameters say about its runs, for an ended command that no stored run names yet. */
  parametersOf(commandId: string): Promise<CommandParameters | undefined>;
}

/** The parameters of a sent command that name its runs: with the instance it ran on they name one run. */
export interface CommandParameters {
  dispatchId: string;
  role: Role;
}

/** Structured logging, so the domain can report faults without knowing where logs go. */
export interface Logger {
  info(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/**
 * Keeps scheduled profiling rules: the source of truth for what fires when. Writes that could race are
 * conditional: a stale replace and a second claim of the same firing are refused, not applied.
 */
export interface RuleStore {
  /** Stores a new rule (its id must be new). */
  create(rule: Rule): Promise<void>;
  get(id: string): Promise<Rule | undefined>;
  /** Every rule, oldest first. */
  list(): Promise<Rule[]>;
  /**
   * Writes a rule's spec, `version`, `nextFireAt` and `updatedAt` if the stored rule is still at `expectedVersion`;
   * leaves its firing record alone. False when the rule is gone or was changed meanwhile.
   */
  replace(rule: Rule, expectedVersion: number): Promise<boolean>;
  /** Deletes a rule; false when there was none. */
  delete(id: string): Promise<boolean>;
  /**
   * Claims one firing: records `firedAt`, `scheduledAt` and the next fire time, in one conditional write, if the rule
   * is still at `version`, enabled, and has not fired for `scheduledAt` or a later time. False when refused: then
   * another firing (a duplicate invocation, a second scheduler, a restarted one) has it or the rule changed.
   */
  claimFiring(claim: FiringClaim): Promise<boolean>;
  /** Records what a claimed firing did, unless the rule has fired again since (or is gone). */
  recordFiring(ruleId: string, firing: RuleFiring): Promise<void>;
  /** Enabled rules whose next fire time is at or before `now`, earliest first. */
  listDue(now: number): Promise<Rule[]>;
}

/**
 * Makes rules fire on time: on AWS one EventBridge Scheduler schedule per rule, locally an in-process timer.
 * The rule store stays the source of truth; whatever fires re-reads the rule before it acts.
 */
export interface RuleScheduler {
  /** Creates or replaces the rule's schedule (a disabled rule keeps a disabled schedule). */
  put(rule: Rule): Promise<void>;
  /** Removes the rule's schedule; a rule without one is fine. */
  remove(ruleId: string): Promise<void>;
}
