import type { ProfileFormat } from './artifacts.ts';
import type { ProfilingMode } from './modes.ts';

export const ROLES = ['jobmanager', 'taskmanager'] as const;
export type Role = (typeof ROLES)[number];

export const RUN_STATUSES = ['RUNNING', 'FINISHED', 'FAILED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** One Flink JVM: the unit that can be profiled, at most once at a time. */
export interface Target {
  cluster: string;
  node: string;
  role: Role;
}

/** One profiling of one target. Times are epoch milliseconds, duration is seconds. */
export interface Run extends Target {
  id: string;
  mode: ProfilingMode;
  duration: number;
  status: RunStatus;
  triggerTime: number;
  finishedTime: number | null;
  message: string | null;
  outputFile: string | null;
  commandId: string | null;
  artifactKey: string | null;
  /**
   * The formats stored for a FINISHED run, under keys derived from `artifactKey` (`html` always; `collapsed`,
   * `pprof` and `jfr` where the node could convert its recording). Absent on runs stored before there were others.
   */
  formats?: ProfileFormat[];
  requestedBy: string | null;
  ruleId: string | null;
  /**
   * Runs started together by one fan-out (`POST /clusters/{cluster}/profiler`) share this id; absent on a run
   * started alone. Optional so that a store that does not keep it yet still holds runs.
   */
  groupId?: string;
  /**
   * The teams that may see the run: its cluster's teams when it was started (none in local mode). Optional so
   * that runs stored before teams existed still read; those are visible to admins only.
   */
  teams?: string[];
}

/** Flink's message for a finished run (contract). */
export const SUCCESS_MESSAGE = 'Profiling Successful';

export function sameTarget(a: Target, b: Target): boolean {
  return a.cluster === b.cluster && a.node === b.node && a.role === b.role;
}

export function describeTarget(target: Target): string {
  return `${target.role} '${target.node}' of cluster '${target.cluster}'`;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/**
 * Flink's output file name, `<resourceId>_<MODE>_<yyyy-MM-dd_HH_mm_ss>.html`, stamped with the time the
 * profile ended (UTC here: the service spans time zones). The node id stands in for Flink's resource id,
 * which keeps names unique per target: a target runs one profile at a time, each at least a second long.
 */
export function outputFileName(run: Pick<Run, 'node' | 'mode'>, finishedTime: number): string {
  const t = new Date(finishedTime);
  const stamp = `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}_${pad(t.getUTCHours())}_${pad(
    t.getUTCMinutes(),
  )}_${pad(t.getUTCSeconds())}`;
  return `${run.node}_${run.mode}_${stamp}.html`;
}

/**
 * Where a run's flame graph is stored: one prefix per target, so a target's files sit together, and one per run
 * below it, so no other run's settle (or a duplicate that lost a race) can ever name the same object.
 */
export function artifactKeyFor(run: Target & Pick<Run, 'id'>, outputFile: string): string {
  return `profiles/${encodeURIComponent(run.cluster)}/${run.role}/${encodeURIComponent(run.node)}/${run.id}/${outputFile}`;
}
