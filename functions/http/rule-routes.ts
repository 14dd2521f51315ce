import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { PROFILING_MODES } from '#domain/modes.ts';
import type { Rule } from '#domain/rule.ts';
import { ruleReplaceSchema, ruleSpecSchema } from '#domain/rule.ts';
import type { RuleService } from '#domain/rule-service.ts';
import { ROLES } from '#domain/run.ts';
import { ErrorsSchema } from './schemas.ts';

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

const RuleParams = z.object({
  id: z
    .string()
    .min(1)
    .openapi({ param: { name: 'id', in: 'path' }, example: '0d9c2f4e-4b7a-4a64-9d0b-3a4c5e6f7a8b' }),
});

const errors = (...statuses: Array<400 | 404 | 409>) =>
  Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        content: { 'application/json': { schema: ErrorsSchema } },
        description: {
          400: 'bad input: each entry names the field and the rule',
          404: 'unknown rule or cluster',
          409: 'the rule was changed since the version sent',
        }[status],
      },
    ]),
  );

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

/** A rule without internal bookkeeping. */
function toRuleView(rule: Rule): z.infer<typeof RuleSchema> {
  const { lastScheduledAt: _lastScheduledAt, ...visible } = rule;
  return visible;
}

/** Registers `/rules` and `/rules/{id}` (scheduled profiling rules) on the API app. */
export function registerRuleRoutes(app: OpenAPIHono, rules: RuleService, maxDurationSeconds: number): void {
  const body = <T extends z.ZodType>(schema: T) => ({
    body: { content: { 'application/json': { schema } }, required: true },
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rules',
      summary: 'Scheduled profiling rules, oldest first',
      responses: { 200: json(RuleListSchema, 'the rules') },
    }),
    async (c) => c.json({ rules: (await rules.list()).map(toRuleView) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/rules',
      summary: 'Create a scheduled profiling rule',
      request: body(ruleSpecSchema(maxDurationSeconds)),
      responses: { 201: json(RuleSchema, 'the new rule'), ...errors(400, 404) },
    }),
    async (c) => c.json(toRuleView(await rules.create(c.req.valid('json'))), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/rules/{id}',
      request: { params: RuleParams },
      responses: { 200: json(RuleSchema, 'the rule'), ...errors(404) },
    }),
    async (c) => c.json(toRuleView(await rules.get(c.req.valid('param').id)), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/rules/{id}',
      summary: 'Replace a rule (a rule read may be sent back as it is; its read-only fields are ignored)',
      request: { params: RuleParams, ...body(ruleReplaceSchema(maxDurationSeconds)) },
      responses: { 200: json(RuleSchema, 'the rule as stored'), ...errors(400, 404, 409) },
    }),
    async (c) => c.json(toRuleView(await rules.replace(c.req.valid('param').id, c.req.valid('json'))), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/rules/{id}',
      request: { params: RuleParams },
      responses: { 204: { description: 'deleted, with its schedule' }, ...errors(404) },
    }),
    async (c) => {
      await rules.delete(c.req.valid('param').id);
      return c.body(null, 204);
    },
  );
}
