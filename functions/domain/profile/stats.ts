import type { Profile } from './profile.ts';

/** A frame's samples: `self` where it is the leaf, `total` in stacks that contain it (once per stack). */
export interface FrameStat {
  name: string;
  self: number;
  total: number;
}

/** A frame's self samples as a fraction of each profile's samples, and the change. */
export interface FrameDelta {
  name: string;
  base: number;
  target: number;
  delta: number;
}

/** A thread's samples, with the Flink operator it runs when it is a task thread. */
export interface ThreadStat {
  name: string;
  operator: string | null;
  samples: number;
}

/** The name {@link threadBreakdown} gives stacks that have no thread frame. */
export const NO_THREAD = '(no thread)';

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Self samples per frame name (the leaf of each stack). */
function selfCounts(profile: Profile): Map<string, number> {
  const self = new Map<string, number>();
  for (const stack of profile.stacks) {
    const leaf = stack.frames[stack.frames.length - 1];
    if (leaf !== undefined) self.set(leaf, (self.get(leaf) ?? 0) + stack.count);
  }
  return self;
}

/**
 * The `limit` hottest frames: by self samples desc, then total desc, then name. A frame that recurs in a stack
 * counts that stack once in its total.
 */
export function hottestFrames(profile: Profile, limit: number): { samples: number; frames: FrameStat[] } {
  const stats = new Map<string, FrameStat & { seen: number }>();
  profile.stacks.forEach((stack, index) => {
    for (const name of stack.frames) {
      let stat = stats.get(name);
      if (stat === undefined) {
        stat = { name, self: 0, total: 0, seen: -1 };
        stats.set(name, stat);
      }
      if (stat.seen !== index) {
        stat.seen = index;
        stat.total += stack.count;
      }
    }
    const leaf = stack.frames[stack.frames.length - 1];
    if (leaf !== undefined) (stats.get(leaf) as FrameStat).self += stack.count;
  });
  const frames = [...stats.values()]
    .sort((a, b) => b.self - a.self || b.total - a.total || byName(a.name, b.name))
    .slice(0, Math.max(0, limit))
    .map(({ name, self, total }) => ({ name, self, total }));
  return { samples: profile.samples, frames };
}

/**
 * How each frame's share of self samples changed from `base` to `target`, each normalised by its own profile's
 * samples (so profiles of different lengths compare): largest |delta| first, ties by name; unchanged frames left out.
 */
export function diffFrames(base: Profile, target: Profile, limit: number): { frames: FrameDelta[] } {
  const baseSelf = selfCounts(base);
  const targetSelf = selfCounts(target);
  const fraction = (count: number | undefined, samples: number) => (samples > 0 && count ? count / samples : 0);
  const frames: FrameDelta[] = [];
  for (const name of new Set([...baseSelf.keys(), ...targetSelf.keys()])) {
    const b = fraction(baseSelf.get(name), base.samples);
    const t = fraction(targetSelf.get(name), target.samples);
    if (t !== b) frames.push({ name, base: b, target: t, delta: t - b });
  }
  frames.sort((x, y) => Math.abs(y.delta) - Math.abs(x.delta) || byName(x.name, y.name));
  return { frames: frames.slice(0, Math.max(0, limit)) };
}

/** Samples per thread, largest first, ties by name; stacks without a thread count under {@link NO_THREAD}. */
export function threadBreakdown(profile: Profile): { threads: ThreadStat[] } {
  const samples = new Map<string | null, number>();
  for (const stack of profile.stacks) samples.set(stack.thread, (samples.get(stack.thread) ?? 0) + stack.count);
  const threads = [...samples].map(([thread, count]) => ({
    name: thread ?? NO_THREAD,
    operator: thread === null ? null : operatorOf(thread),
    samples: count,
  }));
  threads.sort((a, b) => b.samples - a.samples || byName(a.name, b.name));
  return { threads };
}

/** `<task name> (<subtask>/<parallelism>)` with an optional `#<attempt>`: how Flink names a task's thread. */
const TASK_THREAD = /^(.+) \(([1-9]\d{0,8})\/([1-9]\d{0,8})\)(?:#\d{1,9})?$/s;

/**
 * The Flink operator (chain) a task thread runs: `Source: Orders -> Map (1/4)#0` → `Source: Orders -> Map`, also
 * without `#attempt`; null for any other thread (`GC Thread#0`, `Flink Netty Server (0) Thread 0`, `main`, …).
 */
export function operatorOf(threadName: string): string | null {
  const match = TASK_THREAD.exec(threadName);
  if (!match) return null;
  const [, operator, subtask, parallelism] = match;
  return Number(subtask) <= Number(parallelism) ? (operator as string) : null;
}
