import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { PROFILING_MODES } from './modes.ts';
import { NAME_PATTERNS, type NameKind } from './names.ts';
import { ROLES } from './run.ts';

/** Flink's largest accepted duration by default (`rest.profiling.duration-max`: 5 min). */
export const DEFAULT_MAX_DURATION_SECONDS = 300;

const isMissing = (input: unknown) => input === undefined;

/** An id of one kind (cluster, node, team, id, outputFile): its one pattern, and its rule as the error. */
export function nameSchema(kind: NameKind) {
  const { pattern, rule } = NAME_PATTERNS[kind];
  return z
    .string({ error: (issue) => (isMissing(issue.input) ? 'is required' : rule) })
    .regex(pattern, { error: rule });
}

/** Most targets one fan-out may start runs on, unless configured otherwise (`FLINK_PROFILER_MAX_FAN_OUT`). */
export const DEFAULT_MAX_FAN_OUT = 200;

/** A list of 1 to `max` node ids, each a name. */
export function nodeListSchema(max: number) {
  const nodesRule = `must be a list of 1 to ${max} node ids (at most ${max} targets per fan-out)`;
  return z.array(nameSchema('node'), { error: nodesRule }).min(1, { error: nodesRule }).max(max, { error: nodesRule });
}

/** The rules of `mode` and `duration`, shared by every request that starts runs. */
function runFields(maxDuration: number) {
  const durationRule = `must be a whole number of seconds from 1 to ${maxDuration}`;
  return {
    mode: z.enum(PROFILING_MODES, {
      error: (issue) =>
        isMissing(issue.input) ? 'is required' : `must be one of ${PROFILING_MODES.join(', ')} (upper case)`,
    }),
    duration: z
      .number({ error: (issue) => (isMissing(issue.input) ? 'is required' : durationRule) })
      .int({ error: durationRule })
      .min(1, { error: durationRule })
      .max(maxDuration, { error: durationRule }),
  };
}

/** A JSON object with exactly `shape`'s fields; an unknown field is named with the list of those accepted. */
function strictBody<T extends z.core.$ZodLooseShape>(shape: T, accepted: string) {
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field; only ${accepted} are accepted`
        : `must be a JSON object with ${accepted}`,
  });
}

/** The body of a profiling request, `{mode, duration}`, as Flink takes it; `maxDuration` comes from the config. */
export function runRequestSchema(maxDuration: number) {
  return strictBody(runFields(maxDuration), 'mode and duration');
}

/**
 * The body of a fan-out, `{mode, duration, role, nodes?}`: one run per node of `role` in the cluster, or per
 * node named in `nodes` (at most `maxFanOut` of them).
 */
export function fanOutRequestSchema(maxDuration: number, maxFanOut: number) {
  return strictBody(
    {
      ...runFields(maxDuration),
      role: z.enum(ROLES, {
        error: (issue) => (isMissing(issue.input) ? 'is required' : `must be one of ${ROLES.join(', ')}`),
      }),
      nodes: nodeListSchema(maxFanOut).optional(),
    },
    'mode, duration, role and nodes',
  );
}

export type FanOutRequest = z.infer<ReturnType<typeof fanOutRequestSchema>>;

export type RunRequest = z.infer<ReturnType<typeof runRequestSchema>>;

/** Turns zod's issues into our reasons, each starting with the field it is about. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => `${[...issue.path, key].join('.')}: ${issue.message}`);
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    return [`${field}: ${issue.message}`];
  });
}

/** Parses `input` with `schema` or throws a ValidationError naming every bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(describeIssues(result.error));
  return result.data;
}
