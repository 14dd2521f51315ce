import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Caller } from '#domain/access.ts';
import { PROFILE_FORMATS } from '#domain/artifacts.ts';
import type { Link, ProfileReader } from '#domain/profile-read.ts';
import { nameSchema } from '#domain/validation.ts';
import { errorResponsesOf, jsonContent, pathParam, RunParams } from './schemas.ts';

const GroupParams = z.object({ groupId: pathParam('id', 'groupId', '0d9c2f4e-4b7a-4a64-9d0b-3a4c5e6f7a8b') });

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

const FRAMES_LIMIT_RULE = 'must be a whole number from 1 to 1000';
const FramesQuery = z.strictObject({
  limit: z.coerce
    .number({ error: FRAMES_LIMIT_RULE })
    .int({ error: FRAMES_LIMIT_RULE })
    .min(1, { error: FRAMES_LIMIT_RULE })
    .max(1000, { error: FRAMES_LIMIT_RULE })
    .optional()
    .openapi({ description: 'how many frames (default 50)' }),
});
const DEFAULT_FRAMES = 50;

const FrameSchema = z.object({
  name: z.string().openapi({ example: 'org/apache/flink/streaming/runtime/tasks/StreamTask.runMailboxLoop' }),
  self: z.number().int().openapi({ description: 'samples with this frame on top' }),
  total: z.number().int().openapi({ description: 'samples with this frame anywhere in the stack' }),
});
const FramesSchema = z
  .object({ samples: z.number().int().openapi({ description: "the profile's samples" }), frames: z.array(FrameSchema) })
  .openapi('Frames');
const GroupFramesSchema = FramesSchema.extend({
  runs: z.number().int().openapi({ description: 'how many FINISHED runs of the group the profile merges' }),
}).openapi('GroupFrames');
const DiffSchema = z
  .object({
    frames: z.array(
      z.object({
        name: z.string(),
        base: z.number().openapi({ description: "the frame's self samples as a fraction of the base run's samples" }),
        target: z.number().openapi({ description: "the same in this run's profile" }),
        delta: z.number().openapi({ description: 'target − base: above 0 the frame grew' }),
      }),
    ),
  })
  .openapi('Diff');
const ThreadsSchema = z
  .object({
    threads: z.array(
      z.object({
        name: z.string().openapi({ example: 'Source: Orders -> Map (1/4)#0' }),
        operator: z
          .string()
          .nullable()
          .openapi({ description: "the Flink operator chain of a task thread; null for Flink's own and JVM threads" }),
        samples: z.number().int(),
      }),
    ),
  })
  .openapi('Threads');
const LinkSchema = z
  .object({ url: z.string(), expiresAt: z.number().int().openapi({ description: 'epoch milliseconds' }) })
  .openapi('Link');

const errors = errorResponsesOf({
  400: 'bad input: each entry names the field and the rule',
  404: 'unknown run or group (or one of another team), or a run without that profile, saying why',
});
const json = jsonContent;

/**
 * A link answer: 302 to the link, as downloads are; or, for a client that asks for JSON (`Accept:
 * application/json`: the UI, which sends its token in a header and so cannot follow a redirect with it), the link.
 */
const linkResponses = (what: string) => ({
  200: json(LinkSchema, `with Accept: application/json: the short-lived link to ${what}`),
  302: { description: `redirect to a short-lived link to ${what}` },
});
const answerLink = (c: Context, link: Link) =>
  /\bapplication\/json\b/.test(c.req.header('accept') ?? '') ? c.json(link, 200) : c.redirect(link.url, 302);

/** Registers the comparison endpoints: exports, frames, threads, differences and merged group profiles. */
export function registerProfileRoutes(app: OpenAPIHono, profiles: ProfileReader, who: (c: Context) => Caller): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}/profile',
      summary: "A run's profile in one format: html (the flame graph), collapsed, pprof or jfr",
      request: {
        params: RunParams,
        query: z.strictObject({
          format: oneOf(PROFILE_FORMATS).openapi({
            description:
              "html: the flame graph; collapsed: async-profiler's collapsed stacks (no thread frames); pprof: gzip-compressed protobuf for `go tool pprof`; jfr: the recording, where the node made one",
          }),
        }),
      },
      responses: { ...linkResponses('the file'), ...errors(400, 404) },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return answerLink(c, await profiles.profileLink(who(c), id, c.req.valid('query').format));
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}/frames',
      summary: "A run's hottest methods by self samples, largest first",
      request: { params: RunParams, query: FramesQuery },
      responses: { 200: json(FramesSchema, 'the frames'), ...errors(400, 404) },
    }),
    async (c) => {
      const limit = c.req.valid('query').limit ?? DEFAULT_FRAMES;
      return c.json(await profiles.frames(who(c), c.req.valid('param').id, limit), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}/threads',
      summary: "A run's samples per thread, with the Flink operator chain of each task thread, largest first",
      request: { params: RunParams },
      responses: { 200: json(ThreadsSchema, 'the threads'), ...errors(404) },
    }),
    async (c) => c.json(await profiles.threads(who(c), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}/diff',
      summary:
        'What changed from run `base` to this run: a differential flame graph, or (format=json) the frames whose share of samples changed, largest change first',
      request: {
        params: RunParams,
        query: z.strictObject({
          base: nameSchema('id').openapi({ description: 'the run to compare with (same mode)' }),
          format: oneOf(['html', 'json']).optional().openapi({ description: 'html (default) or json' }),
        }),
      },
      responses: {
        ...linkResponses('the differential flame graph'),
        200: {
          content: { 'application/json': { schema: z.union([DiffSchema, LinkSchema]) } },
          description:
            "format=json: the frames, as fractions of each profile's own samples; else, with Accept: application/json, the link",
        },
        ...errors(400, 404),
      },
    }),
    async (c) => {
      const { base, format } = c.req.valid('query');
      const { id } = c.req.valid('param');
      if (format === 'json') return c.json(await profiles.diffFrames(who(c), id, base), 200);
      return answerLink(c, await profiles.diffLink(who(c), id, base));
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/groups/{groupId}/profile',
      summary: "One merged profile of a fan-out group's (or a rule firing's) FINISHED runs",
      request: {
        params: GroupParams,
        query: z.strictObject({
          format: oneOf(['html', 'collapsed']).openapi({ description: 'html (a flame graph) or collapsed' }),
        }),
      },
      responses: { ...linkResponses('the merged profile'), ...errors(400, 404) },
    }),
    async (c) => {
      const { groupId } = c.req.valid('param');
      return answerLink(c, await profiles.groupProfileLink(who(c), groupId, c.req.valid('query').format));
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/groups/{groupId}/frames',
      summary: "The hottest methods of a group's FINISHED runs merged, and how many runs that merges",
      request: { params: GroupParams, query: FramesQuery },
      responses: { 200: json(GroupFramesSchema, 'the frames'), ...errors(400, 404) },
    }),
    async (c) => {
      const limit = c.req.valid('query').limit ?? DEFAULT_FRAMES;
      return c.json(await profiles.groupFrames(who(c), c.req.valid('param').groupId, limit), 200);
    },
  );
}
