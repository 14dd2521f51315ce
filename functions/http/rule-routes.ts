import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Rule } from '#domain/rule.ts';
import { ruleReplaceSchema, ruleSpecSchema } from '#domain/rule.ts';
import type { RuleService } from '#domain/rule-service.ts';
import { ErrorsSchema, RuleListSchema, RuleSchema } from './schemas.ts';

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
