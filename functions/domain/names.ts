/**
 * The one pattern of every id a user types or a URL carries (contract). Each is anchored and has no wildcard
 * character, so a value that matches is a name and never a pattern: EC2 tag filters read `*` and `?` as
 * wildcards, and a lock keyed by `prod*` would be a second lock on the same JVM as `prod`. Plain regular
 * expressions (no zod) so the web UI can import them too.
 */
import { PROFILING_MODES } from './modes.ts';

/** A name made of letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most `max` long. */
const simpleName = (max: number) => `[A-Za-z0-9][A-Za-z0-9._-]{0,${max - 1}}`;

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

const anchored = (source: string) => new RegExp(`^${source}$`);

/** Each kind of id, its pattern and the rule a user is told when a value breaks it. */
export const NAME_PATTERNS = {
  /** A cluster: the value of an instance's `flink-profiler:cluster` tag, or `local`. */
  cluster: {
    pattern: anchored(simpleName(64)),
    rule: 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  },
  /** A node: an EC2 instance id (`i-0abc…`), or `<pid>-<start time>` in local mode. */
  node: {
    pattern: anchored(simpleName(64)),
    rule: 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  },
  /** A team: a Cognito group named in an instance's `flink-profiler:team` tag. */
  team: {
    pattern: anchored(simpleName(128)),
    rule: 'must be 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit',
  },
  /** A run, a rule or a fan-out group: ids this service made (lower-case UUIDs). */
  id: { pattern: anchored(UUID), rule: 'must be an id this service handed out (a lower-case UUID)' },
  /** A flame graph's file name (contract): `<role-or-node>_<MODE>_<yyyy-MM-dd_HH_mm_ss>.html`. */
  outputFile: {
    pattern: anchored(
      `${simpleName(64)}_(${PROFILING_MODES.join('|')})_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html`,
    ),
    rule: 'must be a flame graph file name like taskmanager_CPU_2026-11-27_10_15_00.html',
  },
} as const;

export type NameKind = keyof typeof NAME_PATTERNS;

/** Whether `value` is a valid id of `kind`. */
export function isName(kind: NameKind, value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERNS[kind].pattern.test(value);
}
