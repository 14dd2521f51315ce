/** Flink's profiling modes (contract): the async-profiler event is the lower-case name. */
export const PROFILING_MODES = ['CPU', 'ALLOC', 'LOCK', 'WALL', 'ITIMER'] as const;
export type ProfilingMode = (typeof PROFILING_MODES)[number];

/** The default mode of Flink's profiler tab: needs no perf_events, so it works everywhere. */
export const DEFAULT_MODE: ProfilingMode = 'ITIMER';

/** What each mode shows, in the words of Flink's profiler tab. */
export const MODE_DESCRIPTIONS: Record<ProfilingMode, string> = {
  CPU: 'CPU: samples Java methods, native calls, JVM code and kernel functions (needs perf_events).',
  ALLOC:
    'Allocation: the top frame is the class of the allocated object; the counter is heap pressure (TLAB sizes, or sizes of objects allocated outside TLABs).',
  LOCK: 'Lock: the top frame is the lock or monitor class; the counter is the nanoseconds spent entering it.',
  WALL: 'Wall-Clock: samples all threads equally, whatever their state (running, sleeping or blocked); good for start-up time.',
  ITIMER: 'ITIMER: like CPU, but needs no perf_events; no kernel stack traces.',
};

export function isProfilingMode(value: unknown): value is ProfilingMode {
  return typeof value === 'string' && (PROFILING_MODES as readonly string[]).includes(value);
}
