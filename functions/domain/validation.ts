import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { PROFILING_MODES } from './modes.ts';

/** Flink's largest accepted duration by default (`rest.profiling.duration-max`: 5 min). */
export const DEFAULT_MAX_DURATION_SECONDS = 300;

const isMissing = (input: unknown) => input === undefined;

/** The body of a profiling request, `{mode, duration}`, as Flink takes it; `maxDuration` comes from the config. */
export function runRequestSchema(maxDuration: number) {
  const durationRule = `must be a whole number of seconds from 1 to ${maxDuration}`;
  return z.strictObject(
    {
      mode: z.enum(PROFILING_MODES, {
        error: (issue) =>
          isMissing(issue.input) ? 'is required' : `must be one of ${PROFILING_MODES.join(', ')} (upper case)`,
      }),
      duration: z
        .number({ error: (issue) => (isMissing(issue.input) ? 'is required' : durationRule) })
        .int({ error: durationRule })
        .min(1, { error: durationRule })
        .max(maxDuration, { error: durationRule }),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown field; only mode and duration are accepted`
          : 'must be a JSON object with mode and duration',
    },
  );
}

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
