import { z } from '@hono/zod-openapi';
import { PROFILE_FORMATS } from '#domain/artifacts.ts';
import { MODE_DESCRIPTIONS, PROFILING_MODES } from '#domain/modes.ts';
import { NAME_PATTERNS, type NameKind } from '#domain/names.ts';
import { ROLES, RUN_STATUSES } from '#domain/run.ts';
import { nameSchema } from '#domain/validation.ts';

/** Every error response (contract): one entry per problem; 4xx entries name the field and the rule. */
export const ErrorsSchema = z
  .object({
    errors: z.array(z.string()).openapi({ example: ['duration: must be a whole number of seconds from 1 to 300'] }),
  })
  .openapi('Errors');

const ModeSchema = z.enum(PROFILING_MODES).openapi({
  description: Object.values(MODE_DESCRIPTIONS).join('\n'),
});

/** Flink's ProfilingInfo, field for field, plus where the run lives and links to its flame graph. */
export const ProfilingInfoSchema = z
  .object({
    id: z.string(),
    cluster: z.string(),
    node: z.string(),
    role: z.enum(ROLES),
    status: z.enum(RUN_STATUSES),
    mode: ModeSchema,
    triggerTime: z.number().int().openapi({ description: 'epoch milliseconds' }),
    finishedTime: z.number().int().nullable().openapi({ description: 'epoch milliseconds; null while RUNNING' }),
    duration: z.number().int().openapi({ description: 'seconds' }),
    message: z.string().nullable().openapi({
      description:
        '"Profiling Successful" (with a note when the agent changed the mode: CPU fell back to ITIMER), or why the run failed',
    }),
    outputFile: z.string().nullable(),
    url: z.string().optional().openapi({ description: 'short-lived link that opens the flame graph (FINISHED only)' }),
    downloadUrl: z
      .string()
      .optional()
      .openapi({ description: 'short-lived link that downloads the flame graph as outputFile (FINISHED only)' }),
    ruleId: z.string().nullable(),
    requestedBy: z.string().nullable(),
    groupId: z.string().nullable().openapi({
      description: 'shared by the runs of one fan-out (POST /clusters/{cluster}/profiler); null otherwise',
    }),
    formats: z
      .array(z.enum(PROFILE_FORMATS))
      .optional()
      .openapi({ description: 'the formats GET /runs/{id}/profile has for this run (FINISHED only)' }),
  })
  .openapi('ProfilingInfo');

export const ProfilingListSchema = z.object({ profilingList: z.array(ProfilingInfoSchema) }).openapi('ProfilingList');

export const RunListSchema = z
  .object({ runs: z.array(ProfilingInfoSchema), nextToken: z.string().optional() })
  .openapi('RunList');

/** What a fan-out started (one run per free target, sharing `groupId`) and which targets it skipped, and why. */
export const FanOutResultSchema = z
  .object({
    groupId: z.string().openapi({ description: 'the groupId of every run started by this request' }),
    runs: z.array(ProfilingInfoSchema),
    skipped: z.array(
      z.object({
        node: z.string(),
        role: z.enum(ROLES),
        reason: z
          .string()
          .openapi({ example: "taskmanager 'i-0abc' of cluster 'prod' is busy: run … is still RUNNING" }),
        runningRunId: z.string().optional().openapi({ description: 'the run that keeps the target busy' }),
      }),
    ),
  })
  .openapi('FanOutResult');

/** What the UI needs to know of the service's settings. */
export const ServiceConfigSchema = z
  .object({
    maxDurationSeconds: z.number().int().openapi({ description: 'largest accepted duration in seconds' }),
    historySize: z.number().int().openapi({ description: 'runs kept per target' }),
    defaultMode: ModeSchema,
    modes: z.array(z.object({ mode: ModeSchema, description: z.string() })),
  })
  .openapi('ServiceConfig');

export const ClustersSchema = z
  .object({
    clusters: z.array(
      z.object({
        id: z.string(),
        nodes: z.number().int(),
        teams: z
          .array(z.string())
          .openapi({ description: "the teams named by the cluster's instances (none locally)" }),
      }),
    ),
  })
  .openapi('Clusters');

/** Who the caller is, as the API sees them. */
export const MeSchema = z
  .object({
    user: z.string().nullable().openapi({ description: 'the signed-in user; null in local mode' }),
    teams: z.array(z.string()).openapi({ description: "the caller's teams (Cognito groups)" }),
    admin: z.boolean().openapi({ description: 'sees every cluster, run and rule (admins, and local mode)' }),
  })
  .openapi('Me');

export const NodesSchema = z
  .object({
    nodes: z.array(
      z.object({
        id: z.string(),
        role: z.enum(ROLES),
        host: z.string(),
        pid: z.number().int().optional(),
        reachable: z.boolean(),
        runningRunId: z.string().optional(),
      }),
    ),
  })
  .openapi('Nodes');

/** A JSON response of the OpenAPI document: its schema and what it is. */
export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

/**
 * The error responses of a group of routes, each an {@link ErrorsSchema} body with what the status means there:
 * `const errors = errorResponsesOf({ 404: 'unknown rule' })`, then `...errors(404)` in a route's responses.
 */
export const errorResponsesOf =
  <S extends 400 | 404 | 409>(descriptions: Record<S, string>) =>
  (...statuses: S[]) =>
    Object.fromEntries(statuses.map((status) => [status, jsonContent(ErrorsSchema, descriptions[status])])) as Record<
      S,
      ReturnType<typeof jsonContent<typeof ErrorsSchema>>
    >;

/** A path parameter of one kind of id: its one pattern (shown in the OpenAPI document) and its rule as the error. */
export const pathParam = (kind: NameKind, name: string, example: string) =>
  nameSchema(kind).openapi({
    param: { name, in: 'path' },
    example,
    description: `${NAME_PATTERNS[kind].rule} (pattern ${NAME_PATTERNS[kind].pattern.source})`,
  });

export const ClusterParams = z.object({ cluster: pathParam('cluster', 'cluster', 'local') });
export const NodeParams = ClusterParams.extend({ node: pathParam('node', 'node', '4242-1234567') });
export const OutputFileParams = ClusterParams.extend({
  outputFile: pathParam('outputFile', 'outputFile', 'jobmanager_ITIMER_2026-11-27_10_15_00.html'),
});
export const NodeOutputFileParams = NodeParams.extend({ outputFile: OutputFileParams.shape.outputFile });
export const RunParams = z.object({ id: pathParam('id', 'id', '5f0c6a1e-8d8e-4c39-9a57-9a1b2c3d4e5f') });

const USER_NAME_RULE = 'must be a user name of 1 to 256 characters, or rule:<id>';

export const RunQuery = z.strictObject({
  cluster: nameSchema('cluster').optional(),
  node: nameSchema('node').optional(),
  role: z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` }).optional(),
  status: z.enum(RUN_STATUSES, { error: `must be one of ${RUN_STATUSES.join(', ')}` }).optional(),
  ruleId: nameSchema('id').optional(),
  groupId: nameSchema('id').optional().openapi({ description: 'only the runs of one fan-out or rule firing' }),
  requestedBy: z
    .string({ error: USER_NAME_RULE })
    .min(1, { error: USER_NAME_RULE })
    .max(256, { error: USER_NAME_RULE })
    .optional()
    .openapi({ description: 'only the runs this person started (their user name), or a rule (rule:<id>)' }),
  limit: z.coerce
    .number({ error: 'must be a whole number from 1 to 100' })
    .int({ error: 'must be a whole number from 1 to 100' })
    .min(1, { error: 'must be a whole number from 1 to 100' })
    .max(100, { error: 'must be a whole number from 1 to 100' })
    .optional(),
  nextToken: z.string().min(1).optional(),
});

const epochMs = (description: string) => z.number().int().nullable().openapi({ description });

/** A rule as the API shows it (contract: the rule's fields plus id, lastFiredAt, nextFireAt). */
export const RuleSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    cluster: z.string(),
    target: z.object({
      role: z.enum(ROLES),
      nodes: z.array(z.string()).optional().openapi({ description: 'left out: every node of the role' }),
      sample: z
        .number()
        .int()
        .optional()
        .openapi({ description: 'profile this many of them, picked at random per firing' }),
    }),
    mode: z.enum(PROFILING_MODES),
    duration: z.number().int().openapi({ description: 'seconds' }),
    schedule: z.string().openapi({ example: 'cron(0 3 * * ? *)' }),
    timezone: z.string().openapi({ example: 'Europe/Berlin', description: 'IANA time zone; UTC when none was given' }),
    enabled: z.boolean(),
    team: z.string().nullable().openapi({
      description: 'the team (Cognito group) the rule belongs to: only it and admins see or change it; null locally',
    }),
    createdBy: z.string().nullable().openapi({ description: 'who created the rule (null in local mode)' }),
    updatedBy: z.string().nullable().openapi({ description: 'who last changed it (null in local mode)' }),
    version: z
      .number()
      .int()
      .openapi({ description: 'counts changes; send it back with PUT to refuse a stale update' }),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
    lastFiredAt: epochMs('when the rule last fired (epoch ms), or null'),
    nextFireAt: epochMs('when it fires next (epoch ms), or null (disabled, or an at() rule that has fired)'),
    lastFiring: z
      .object({
        at: z.number().int().openapi({ description: 'when it fired (epoch ms)' }),
        scheduledAt: z.number().int().openapi({ description: 'the time it was due (epoch ms)' }),
        runIds: z.array(z.string()).openapi({ description: 'the runs it started; GET /runs?ruleId= lists them' }),
        skipped: z
          .array(z.object({ node: z.string(), reason: z.string(), runningRunId: z.string().optional() }))
          .openapi({ description: 'targets not profiled (busy, not found), at most 200 of them' }),
        skippedCount: z.number().int(),
        error: z.string().optional().openapi({ description: 'why the firing started nothing at all' }),
      })
      .nullable()
      .openapi({ description: 'what the last firing did, or null before the first' }),
  })
  .openapi('Rule');

export const RuleListSchema = z.object({ rules: z.array(RuleSchema) }).openapi('RuleList');
