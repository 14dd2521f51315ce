/**
 * What the UI computes from profiles: shares, operator totals, comparisons between runs and between a rule's
 * firings. Pure functions over the API's answers (no DOM), so they are unit-tested on their own.
 */

/** One method of a profile: samples with it on top of the stack (`self`) and anywhere in it (`total`). */
export interface Frame {
  name: string;
  self: number;
  total: number;
}
/** The hottest methods of one run (`GET /runs/{id}/frames`), largest `self` first. */
export interface RunFrames {
  samples: number;
  frames: Frame[];
}
/** The hottest methods of a fan-out group's FINISHED runs merged (`GET /groups/{id}/frames`). */
export interface GroupFrames extends RunFrames {
  runs: number;
}
/** One thread of a run (`GET /runs/{id}/threads`): `operator` is the Flink operator chain of a task thread. */
export interface ThreadSamples {
  name: string;
  operator: string | null;
  samples: number;
}
/** One method's share of each profile's own samples (fractions), `delta` = target − base (> 0: grew). */
export interface DiffFrame {
  name: string;
  base: number;
  target: number;
  delta: number;
}
/** What these helpers read of a run (a ProfilingInfo has all of it). */
export interface RunSummary {
  id: string;
  cluster: string;
  node: string;
  role: string;
  status: string;
  mode: string;
  triggerTime: number;
  groupId?: string | null;
}

/** What the operator breakdown calls the threads that run no Flink task: the runtime's own and the JVM's. */
export const RUNTIME_THREADS = 'Flink runtime & JVM threads';

/** `part` as a fraction of `whole` (0 when there is nothing to divide). */
export function shareOf(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

/** A fraction as a percentage with one decimal: `0.1234` → `12.3 %`. */
export function formatShare(fraction: number): string {
  return `${(fraction * 100).toFixed(1)} %`;
}

export type Direction = 'grew' | 'shrank' | 'same';

/** Whether a change in share is a growth, a shrink, or too small to show (under 0.05 percentage points). */
export function directionOf(delta: number): Direction {
  if (Math.abs(delta) < 0.0005) return 'same';
  return delta > 0 ? 'grew' : 'shrank';
}

/** A change in share with its sign and arrow: `▲ +12.3 %`, `▼ −4.1 %`, `0.0 %`. */
export function formatChange(delta: number): string {
  const direction = directionOf(delta);
  const size = (Math.abs(delta) * 100).toFixed(1);
  if (direction === 'same') return `${size} %`;
  return direction === 'grew' ? `▲ +${size} %` : `▼ −${size} %`;
}

/** The frames whose name contains `text`, ignoring case: a plain substring, never read as a pattern. */
export function filterFrames<T extends { name: string }>(frames: readonly T[], text: string): T[] {
  const needle = text.trim().toLowerCase();
  if (needle === '') return [...frames];
  return frames.filter((frame) => frame.name.toLowerCase().includes(needle));
}

/** The readable end of a method name: `org/apache/flink/Foo.bar` or `org.apache.flink.Foo.bar` → `Foo.bar`. */
export function shortFrameName(name: string): string {
  // Only a Java method name is shortened; anything else (native, kernel, odd text) is shown as it is.
  if (!/^[\w$/.]+$/.test(name)) return name;
  const afterSlash = name.slice(name.lastIndexOf('/') + 1) || name;
  const dots = afterSlash.split('.');
  return dots.length > 2 ? dots.slice(-2).join('.') : afterSlash;
}

export interface OperatorShare {
  /** The Flink operator chain, or RUNTIME_THREADS for threads that run no task. */
  operator: string;
  threads: number;
  samples: number;
  /** Of all the run's thread samples. */
  share: number;
}

/** Sums a run's threads by the operator chain they run, largest first. */
export function operatorBreakdown(threads: readonly ThreadSamples[]): OperatorShare[] {
  const byOperator = new Map<string, { threads: number; samples: number }>();
  let all = 0;
  for (const thread of threads) {
    const operator = thread.operator ?? RUNTIME_THREADS;
    const sum = byOperator.get(operator) ?? { threads: 0, samples: 0 };
    sum.threads += 1;
    sum.samples += thread.samples;
    byOperator.set(operator, sum);
    all += thread.samples;
  }
  return [...byOperator]
    .map(([operator, sum]) => ({ operator, ...sum, share: shareOf(sum.samples, all) }))
    .sort((a, b) => b.samples - a.samples || a.operator.localeCompare(b.operator));
}

/**
 * The rows of a diff to show: the methods that grew, most first, then those that shrank, most first; methods
 * whose share did not change are left out. At most `limit` of each.
 */
export function orderDiff(frames: readonly DiffFrame[], limit = 25): DiffFrame[] {
  const grew = frames.filter((f) => directionOf(f.delta) === 'grew').sort((a, b) => b.delta - a.delta);
  const shrank = frames.filter((f) => directionOf(f.delta) === 'shrank').sort((a, b) => a.delta - b.delta);
  return [...grew.slice(0, limit), ...shrank.slice(0, limit)];
}

/** Whether two runs profiled the same JVM. */
export function sameTarget(a: RunSummary, b: RunSummary): boolean {
  return a.cluster === b.cluster && a.role === b.role && a.node === b.node;
}

export interface CompareCandidates<T extends RunSummary> {
  /** The same target's earlier FINISHED runs of the same mode, newest first. */
  earlier: T[];
  /** Every other FINISHED run of the same mode, newest first. */
  others: T[];
}

/** The runs `run` can be compared with: same mode, FINISHED, not itself; its own target's earlier runs first. */
export function compareCandidates<T extends RunSummary>(run: RunSummary, runs: readonly T[]): CompareCandidates<T> {
  const seen = new Set<string>([run.id]);
  const comparable = [...runs]
    .filter((r) => r.status === 'FINISHED' && r.mode === run.mode)
    .sort((a, b) => b.triggerTime - a.triggerTime)
    .filter((r) => {
      if (seen.has(r.id)) return false;
      seen.add(r.id);
      return true;
    });
  const earlier = comparable.filter((r) => sameTarget(r, run) && r.triggerTime < run.triggerTime);
  const others = comparable.filter((r) => !earlier.includes(r));
  return { earlier, others };
}

/** One firing of a rule: the runs it started (one fan-out group), newest firing first. */
export interface Firing<T extends RunSummary> {
  /** The firing's groupId, or the run's own id for a run that has none. */
  id: string;
  groupId: string | null;
  runs: T[];
  /** When its first run started. */
  firedAt: number;
  mode: T['mode'];
}

/** A rule's runs grouped into its firings (by groupId), newest firing first, each firing's runs in node order. */
export function firingsOf<T extends RunSummary>(runs: readonly T[]): Array<Firing<T>> {
  const byId = new Map<string, Firing<T>>();
  for (const run of runs) {
    const id = run.groupId ?? run.id;
    const firing = byId.get(id);
    if (firing) {
      firing.runs.push(run);
      firing.firedAt = Math.min(firing.firedAt, run.triggerTime);
    } else {
      byId.set(id, { id, groupId: run.groupId ?? null, runs: [run], firedAt: run.triggerTime, mode: run.mode });
    }
  }
  for (const firing of byId.values()) firing.runs.sort((a, b) => a.node.localeCompare(b.node));
  return [...byId.values()].sort((a, b) => b.firedAt - a.firedAt);
}

/** Each method's share of its profile's samples (`self / samples`). */
export function frameShares(profile: RunFrames): Map<string, number> {
  return new Map(profile.frames.map((frame: Frame) => [frame.name, shareOf(frame.self, profile.samples)]));
}

export interface FrameChange {
  name: string;
  before: number;
  after: number;
  delta: number;
}

/**
 * How the hottest methods changed from `previous` to `current` (shares of each profile's own samples): the
 * `top` largest changes, largest first. A method missing from one profile's list counts as 0 there, so only
 * lists long enough to hold the methods that matter (e.g. the top 20) give a fair picture.
 */
export function frameChanges(current: RunFrames, previous: RunFrames, top = 5): FrameChange[] {
  const after = frameShares(current);
  const before = frameShares(previous);
  const names = new Set([...after.keys(), ...before.keys()]);
  return [...names]
    .map((name) => {
      const a = after.get(name) ?? 0;
      const b = before.get(name) ?? 0;
      return { name, before: b, after: a, delta: a - b };
    })
    .filter((change) => directionOf(change.delta) !== 'same')
    .sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || x.name.localeCompare(y.name))
    .slice(0, top);
}
