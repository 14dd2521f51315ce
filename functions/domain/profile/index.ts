/** Collapsed profiles: parse, merge, compare, and render (pprof, flame graphs). Pure: no I/O. */
export {
  type DiffSummary,
  diffFlameGraphHtml,
  type FlameGraphKind,
  type FlameGraphOptions,
  flameGraphHtml,
  scriptSafeJson,
} from './flame-graph.ts';
export { type PprofOptions, toPprof } from './pprof.ts';
export {
  mergeProfiles,
  PROFILE_LIMITS,
  type Profile,
  ProfileDataError,
  parseCollapsed,
  type Stack,
  toCollapsed,
} from './profile.ts';
export {
  diffFrames,
  type FrameDelta,
  type FrameStat,
  hottestFrames,
  NO_THREAD,
  operatorOf,
  type ThreadStat,
  threadBreakdown,
} from './stats.ts';
