import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Caller } from '#domain/access.ts';
import type { Rule } from '#domain/rule.ts';
import { ruleReplaceSchema, ruleSpecSchema } from '#domain/rule.ts';
import type { RuleService } from '#domain/rule-service.ts';
import { errorResponsesOf, jsonContent, pathParam, RuleListSchema, RuleSchema } from './schemas.ts';

const RuleParams = z.object({ id: pathParam('id', 'id', '0d9c2f4e-4b7a-4a64-9d0b-3a4c5e6f7a8b') });

const errors = errorResponsesOf({
  400: 'bad input: each entry names the field and the rule',
  404: "unknown rule or cluster (or one of another team's)",
  409: 'the rule was changed since the version sent',
});
const json = jsonContent;

/** A rule without internal bookkeeping. */
function toRuleView(rule: Rule): z.infer<typeof RuleSchema> {
  const { lastScheduledAt: _lastScheduledAt, ...visible } = rule;
  return visible;
}

/** Registers `/rules` and `/rules/{id}` (scheduled profiling rules) on the API app. */
export function registerRuleRoutes(app: OpenAPIHono, rules: RuleService, who: (c: Context) => Caller): void {
  const limits = rules.bodyLimits;
  const body = <T extends z.ZodType>(schema: T) => ({
    body: { content: { 'application/json': { schema } }, required: true },
  });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/rules',
      summary: "Scheduled profiling rules of the caller's teams, oldest first",
      responses: { 200: json(RuleListSchema, 'the rules') },
    }),
    async (c) => c.json({ rules: (await rules.list(who(c))).map(toRuleView) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/rules',
      summary: 'Create a scheduled profiling rule',
      request: body(ruleSpecSchema(limits)),
      responses: { 201: json(RuleSchema, 'the new rule'), ...errors(400, 404) },
    }),
    async (c) => c.json(toRuleView(await rules.create(who(c), c.req.valid('json'))), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/rules/{id}',
      request: { params: RuleParams },
      responses: { 200: json(RuleSchema, 'the rule'), ...errors(404) },
    }),
    async (c) => c.json(toRuleView(await rules.get(who(c), c.req.valid('param').id)), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/rules/{id}',
      summary: 'Replace a rule (a rule read may be sent back as it is; its read-only fields are ignored)',
      request: { params: RuleParams, ...body(ruleReplaceSchema(limits)) },
      responses: { 200: json(RuleSchema, 'the rule as stored'), ...errors(400, 404, 409) },
    }),
    async (c) => c.json(toRuleView(await rules.replace(who(c), c.req.valid('param').id, c.req.valid('json'))), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/rules/{id}',
      request: { params: RuleParams },
      responses: { 204: { description: 'deleted, with its schedule' }, ...errors(404) },
    }),
    async (c) => {
      await rules.delete(who(c), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );
}
