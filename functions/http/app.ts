import { createRoute, OpenAPIHono, type z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { type Caller, LOCAL_CALLER } from '#domain/access.ts';
import { DomainError, UnauthorizedError, ValidationError } from '#domain/errors.ts';
import { DEFAULT_MODE, MODE_DESCRIPTIONS, PROFILING_MODES } from '#domain/modes.ts';
import type { Logger } from '#domain/ports.ts';
import type { ProfilerService, RunView } from '#domain/profiler-service.ts';
import type { RuleService } from '#domain/rule-service.ts';
import type { Role } from '#domain/run.ts';
import { describeIssues, fanOutRequestSchema, runRequestSchema } from '#domain/validation.ts';
import { registerProfileRoutes } from './profile-routes.ts';
import { registerRuleRoutes } from './rule-routes.ts';
import {
  ClusterParams,
  ClustersSchema,
  errorResponsesOf,
  FanOutResultSchema,
  jsonContent,
  MeSchema,
  NodeOutputFileParams,
  NodeParams,
  NodesSchema,
  OutputFileParams,
  ProfilingInfoSchema,
  ProfilingListSchema,
  RunListSchema,
  RunParams,
  RunQuery,
  ServiceConfigSchema,
} from './schemas.ts';

/** The base path of the API (contract). */
export const API_BASE_PATH = '/api/v1';

export interface AppDependencies {
  profiler: ProfilerService;
  /** Scheduled profiling rules (`/rules`); left out, the API has no rules endpoints. */
  rules?: RuleService;
  log: Logger;
  /**
   * Who is asking, from the request's credentials (AWS: the JWT's claims); null answers 401. Left out, every
   * request is local mode's one implicit user, who sees everything.
   */
  caller?: (c: Context) => Caller | null;
}

type ProfilingInfo = z.infer<typeof ProfilingInfoSchema>;

/** A run as the API shows it: Flink's ProfilingInfo fields plus ours, without internal bookkeeping. */
function toProfilingInfo(run: RunView): ProfilingInfo {
  const { commandId: _commandId, artifactKey: _artifactKey, teams: _teams, groupId, ...visible } = run;
  return { ...visible, groupId: groupId ?? null };
}

const errorResponses = errorResponsesOf({
  400: 'bad input: each entry names the field and the rule',
  404: 'unknown cluster, node, run or file',
  409: 'the target is busy with another run',
});
const json = jsonContent;

/**
 * The HTTP API, one Hono app for every way it runs: Lambda (`handle(app)`), the local server and tests
 * (`app.request`). Bodies, paths and queries are validated by the same zod schemas the OpenAPI document
 * at `/openapi.json` is made of.
 */
export function createApp({ profiler, rules, log, caller = () => LOCAL_CALLER }: AppDependencies): OpenAPIHono {
  /** The caller of a request; nobody (no credentials) is 401. */
  const who = (c: Context): Caller => {
    const found = caller(c);
    if (!found) throw new UnauthorizedError('Authorization: sign in first: the request carries no valid token');
    return found;
  };
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw new ValidationError(describeIssues(result.error));
    },
  }).basePath(API_BASE_PATH) as unknown as OpenAPIHono;

  const runBody = {
    body: {
      content: { 'application/json': { schema: runRequestSchema(profiler.settings.maxDurationSeconds) } },
      required: true,
    },
  };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/config',
      summary: "The service's settings that clients need: duration limit, history size, modes",
      responses: { 200: json(ServiceConfigSchema, 'the settings') },
    }),
    (c) =>
      c.json(
        {
          maxDurationSeconds: profiler.settings.maxDurationSeconds,
          historySize: profiler.settings.historySize,
          defaultMode: DEFAULT_MODE,
          modes: PROFILING_MODES.map((mode) => ({ mode, description: MODE_DESCRIPTIONS[mode] })),
        },
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      summary: 'Who the API takes the caller for: user name, teams, and whether they see everything',
      responses: { 200: json(MeSchema, 'the caller') },
    }),
    (c) => {
      const { user, teams, seesEverything } = who(c);
      return c.json({ user, teams: [...teams], admin: seesEverything }, 200);
    },
  );

  // Fleet
  app.openapi(
    createRoute({
      method: 'get',
      path: '/clusters',
      summary: "The clusters of the caller's teams",
      responses: { 200: json(ClustersSchema, 'the clusters') },
    }),
    async (c) => c.json({ clusters: await profiler.listClusters(who(c)) }, 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/clusters/{cluster}/nodes',
      request: { params: ClusterParams },
      responses: { 200: json(NodesSchema, "the cluster's Flink JVMs"), ...errorResponses(404) },
    }),
    async (c) => c.json({ nodes: await profiler.listNodes(who(c), c.req.valid('param').cluster) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/clusters/{cluster}/profiler',
      summary: 'Fan-out: start one run per node of a role (or per node named), sharing one groupId',
      request: {
        params: ClusterParams,
        body: {
          content: {
            'application/json': {
              schema: fanOutRequestSchema(profiler.settings.maxDurationSeconds, profiler.settings.maxFanOut),
            },
          },
          required: true,
        },
      },
      responses: {
        200: json(FanOutResultSchema, 'the runs started, and the targets skipped (busy or unknown) with the reason'),
        ...errorResponses(400, 404),
      },
    }),
    async (c) => {
      const result = await profiler.startRuns({
        caller: who(c),
        cluster: c.req.valid('param').cluster,
        ...c.req.valid('json'),
      });
      return c.json({ ...result, runs: result.runs.map(toProfilingInfo) }, 200);
    },
  );

  // Flink-compatible profiler endpoints, for the JobManager and for each TaskManager.
  const profilerRoutes = (role: Role) => {
    const base =
      role === 'jobmanager'
        ? '/clusters/{cluster}/jobmanager/profiler'
        : '/clusters/{cluster}/taskmanagers/{node}/profiler';
    const params = role === 'jobmanager' ? ClusterParams : NodeParams;
    const fileParams = role === 'jobmanager' ? OutputFileParams : NodeOutputFileParams;
    const nodeOf = (p: { node?: string }) => p.node;

    app.openapi(
      createRoute({
        method: 'post',
        path: base,
        summary: `Start profiling the ${role}`,
        request: { params, ...runBody },
        responses: {
          200: json(ProfilingInfoSchema, 'the new run (RUNNING, or FAILED if the agent could not start)'),
          ...errorResponses(400, 404, 409),
        },
      }),
      async (c) => {
        const p = c.req.valid('param') as { cluster: string; node?: string };
        const { mode, duration } = c.req.valid('json');
        const run = await profiler.startRun({
          caller: who(c),
          cluster: p.cluster,
          role,
          node: nodeOf(p),
          mode,
          duration,
        });
        return c.json(toProfilingInfo(run), 200);
      },
    );
    app.openapi(
      createRoute({
        method: 'get',
        path: base,
        summary: `The ${role}'s profiling history, newest first`,
        request: { params },
        responses: { 200: json(ProfilingListSchema, 'the history'), ...errorResponses(404) },
      }),
      async (c) => {
        const p = c.req.valid('param') as { cluster: string; node?: string };
        const runs = await profiler.listTargetRuns(who(c), p.cluster, role, nodeOf(p));
        return c.json({ profilingList: runs.map(toProfilingInfo) }, 200);
      },
    );
    app.openapi(
      createRoute({
        method: 'get',
        path: `${base}/{outputFile}`,
        summary: 'Download a flame graph by its file name',
        request: { params: fileParams },
        responses: { 302: { description: 'redirect to a short-lived download link' }, ...errorResponses(404) },
      }),
      async (c) => {
        const p = c.req.valid('param') as { cluster: string; node?: string; outputFile: string };
        return c.redirect(await profiler.downloadLink(who(c), p.cluster, role, nodeOf(p), p.outputFile), 302);
      },
    );
  };
  profilerRoutes('jobmanager');
  profilerRoutes('taskmanager');

  // Runs across targets
  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}',
      request: { params: RunParams },
      responses: { 200: json(ProfilingInfoSchema, 'the run'), ...errorResponses(404) },
    }),
    async (c) => c.json(toProfilingInfo(await profiler.getRun(who(c), c.req.valid('param').id)), 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/runs',
      request: { query: RunQuery },
      responses: { 200: json(RunListSchema, 'runs, newest first'), ...errorResponses(400) },
    }),
    async (c) => {
      const { limit, nextToken, ...filter } = c.req.valid('query');
      const page = await profiler.listRuns(who(c), filter, limit ?? 50, nextToken);
      return c.json({ ...page, runs: page.runs.map(toProfilingInfo) }, 200);
    },
  );

  registerProfileRoutes(app, profiler.profiles, who);
  if (rules) registerRuleRoutes(app, rules, who);

  app.doc('/openapi.json', {
    openapi: '3.0.3',
    info: {
      title: 'Flink Fleet Profiler API',
      version: '1',
      description: "Flink's profiler endpoints for whole fleets of clusters, with history that survives restarts.",
    },
  });

  app.notFound((c) => c.json({ errors: [`no such endpoint: ${c.req.method} ${c.req.path}`] }, 404));
  app.onError((error, c) => {
    if (error instanceof DomainError) return c.json({ errors: error.reasons }, error.status);
    if (error instanceof HTTPException && error.status === 415) {
      return c.json({ errors: ['Content-Type: must be application/json'] }, 415);
    }
    if (error instanceof HTTPException && error.status < 500) {
      return c.json({ errors: [`body: ${error.message}`] }, error.status);
    }
    log.error('request failed', {
      method: c.req.method,
      path: c.req.path,
      error: String(error),
      stack: (error as Error).stack,
    });
    return c.json({ errors: ['Internal server error; the details are in the service log.'] }, 500);
  });
  return app;
}
