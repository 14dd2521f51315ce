import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { verifyWithJwks } from 'hono/utils/jwt/jwt';
import { DirectoryArtifactStore } from '#adapters/local/directory-artifact-store.ts';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import { SqliteRunStore } from '#adapters/local/sqlite-run-store.ts';
import type { Caller } from '#domain/access.ts';
import { teamsOf } from '#domain/cluster-access.ts';
import type {
  CommandState,
  Discovery,
  Dispatcher,
  DispatchRequest,
  DispatchResult,
  FlinkNode,
  Logger,
  RuleScheduler,
} from '#domain/ports.ts';
import { DEFAULT_SETTINGS, ProfilerService } from '#domain/profiler-service.ts';
import { RuleService } from '#domain/rule-service.ts';
import { API_BASE_PATH, createApp } from '#http/app.ts';
import { PAGE_CSP, WebAssets } from '#local/web-assets.ts';
import { WEB_AUTH_CONFIG_FILE, type WebAuthConfig } from '#shared/web-auth-config.ts';
import { FLAME_GRAPH, finishedAgentStdout } from './unit-fakes.ts';

/**
 * The deployment as a browser sees it, on one loopback origin like CloudFront's: the built UI (web/dist) with its
 * `auth.json`, and under `/api/v1` the real API app over the real local adapters (SQLite, a directory), behind a
 * stand-in for API Gateway's JWT authorizer. Two AWS parts cannot run here and have stand-ins:
 *
 * - EC2 discovery by tag → `TaggedFleetDiscovery`: fixed clusters whose nodes carry the teams their instances'
 *   team tag would name (no EC2 instances exist on this machine, and moto runs none);
 * - SSM RunCommand, the agent on the node and the completion function → `RecordingSsm`: records each command it
 *   is sent and, a moment later, completes the run with the agent's output for a small flame graph (no SSM agent
 *   can run here; the real agent and completion are tested end to end elsewhere).
 */

/** Claims as API Gateway's JWT authorizer hands them to the function: every value a string, arrays as `[a b]`. */
export type GatewayClaims = Record<string, string>;

/** The `c.env` that Hono's Lambda adapter gives the app for an HTTP API (payload 2.0) request, as far as the API reads it. */
export interface GatewayEnv {
  event: { requestContext: { authorizer: { jwt: { claims: GatewayClaims; scopes: string[] | null } } } };
}

/** Decides a request's credentials before the API runs, as API Gateway's authorizer does: the claims, or null for 401. */
export type Authorizer = (authorization: string | undefined) => Promise<GatewayClaims | null>;

/** How API Gateway stringifies a claim: arrays become `[a b]`, numbers and booleans their text. */
export function gatewayClaim(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(String).join(' ')}]`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/**
 * Stands in for API Gateway's JWT authorizer in front of the API: a bearer token whose RS256 signature checks out
 * against the issuer's JWKS (fetched once, as API Gateway caches it), whose `iss` is the issuer, that has not
 * expired, and whose `client_id` (Cognito access tokens carry no `aud`) is the app client's.
 */
export function jwtAuthorizer(options: { issuer: string; jwksUri: string; clientId: string }): Authorizer {
  let keys: Promise<Array<Record<string, unknown>>> | undefined;
  return async (authorization) => {
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
    if (!token) return null;
    keys ??= fetch(options.jwksUri)
      .then((response) => response.json() as Promise<{ keys: Array<Record<string, unknown>> }>)
      .then((jwks) => jwks.keys);
    try {
      const claims = await verifyWithJwks(token, {
        keys: (await keys) as never,
        verification: { iss: options.issuer },
        allowedAlgorithms: ['RS256'],
      });
      if (claims.client_id !== options.clientId) return null;
      return Object.fromEntries(Object.entries(claims).map(([name, value]) => [name, gatewayClaim(value)]));
    } catch {
      return null;
    }
  };
}

/** The claims API Gateway handed the request (see GatewayEnv); undefined when the request did not come through it. */
export function gatewayClaims(c: Context): GatewayClaims | undefined {
  return (c.env as Partial<GatewayEnv> | undefined)?.event?.requestContext?.authorizer?.jwt?.claims;
}

/** Stands in for EC2 discovery by tag: fixed clusters of nodes, each node with its instance's teams. */
export class TaggedFleetDiscovery implements Discovery {
  constructor(private readonly clusters: Record<string, FlinkNode[]>) {}
  async listClusters() {
    return Object.entries(this.clusters).map(([id, nodes]) => ({ id, nodes: nodes.length, teams: teamsOf(nodes) }));
  }
  async listNodes(cluster: string) {
    return Object.hasOwn(this.clusters, cluster) ? this.clusters[cluster] : undefined;
  }
}

/** Stands in for SSM RunCommand + the node agent + the completion function (see the file's comment). */
export class RecordingSsm implements Dispatcher {
  readonly sent: DispatchRequest[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  complete: (runId: string, stdout: string) => Promise<unknown> = async () => undefined;

  constructor(private readonly completeAfterMs: number) {}

  async dispatch(requests: DispatchRequest[]): Promise<DispatchResult[]> {
    return requests.map(({ run, node }) => {
      this.sent.push({ run, node });
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.complete(run.id, finishedAgentStdout(FLAME_GRAPH, run.mode));
      }, this.completeAfterMs);
      this.timers.add(timer);
      return { runId: run.id, commandId: `command-${this.sent.length}` };
    });
  }

  async inspect(): Promise<CommandState> {
    return { state: 'running' };
  }

  // Every command id is recorded as it is sent here: none is ever to be found from its parameters.
  async commandFor(): Promise<undefined> {
    return undefined;
  }

  async parametersOf(): Promise<undefined> {
    return undefined;
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
  }
}

/** Stands in for EventBridge Scheduler, which cannot run here: keeps no schedule (no rule fires in these tests). */
const noSchedules: RuleScheduler = { put: async () => {}, remove: async () => {} };

export interface FleetServerOptions {
  /** The UI's `auth.json`, given the server's own URL (`http://127.0.0.1:<port>`). */
  auth: (url: string) => WebAuthConfig;
  authorizer: Authorizer;
  /** Who the API takes the caller for, from the claims the authorizer handed over (the app's `caller`). */
  caller: (c: Context) => Caller | null;
  clusters: Record<string, FlinkNode[]>;
  /** Whether rules belong to teams, as in AWS mode (the Lambda wiring's `teamsInForce`); local mode has none. */
  teams: boolean;
  /** Origins the page may also fetch from (the token endpoint's), added to the UI's own CSP `connect-src`. */
  connectSrc?: string[];
}

export interface ApiRequestRecord {
  method: string;
  path: string;
  authorization?: string;
  /** When it arrived (epoch ms). */
  at: number;
  /**
   * 401 when the authorizer refused the request, else the API's status; undefined while it is on its way (a view's
   * poll may be, when a test reads the record).
   */
  status?: number;
  claims?: GatewayClaims;
}

export interface FleetServer {
  url: string;
  /** Every API request, in order. */
  readonly requests: ApiRequestRecord[];
  readonly ssm: RecordingSsm;
  readonly profiler: ProfilerService;
  /** Answers the next API request whose claims match with 401, as if its token had been revoked. */
  refuseNext(match: (claims: GatewayClaims) => boolean): void;
  close(): Promise<void>;
}

/**
 * The UI's CSP as local mode and CloudFront send it (PAGE_CSP), with `connect-src` widened to `origins`: the
 * page's code fetches the token endpoint, which lives on the sign-in service's origin.
 */
export function pageCspAllowing(origins: string[]): string {
  const own = "connect-src 'self'";
  if (!PAGE_CSP.includes(`${own};`)) throw new Error(`PAGE_CSP has no plain ${own}: ${PAGE_CSP}`);
  return origins.length === 0 ? PAGE_CSP : PAGE_CSP.replace(own, `${own} ${origins.join(' ')}`);
}

const silent: Logger = { info() {}, warn() {}, error() {} };

export async function startFleetServer(options: FleetServerOptions): Promise<FleetServer> {
  const web = await WebAssets.load();
  if (!web) throw new Error('web/dist is missing: build the UI first (buildWeb())');
  const dir = mkdtempSync(join(tmpdir(), 'ffp-oidc-fleet-'));
  let url = '';
  const runs = new SqliteRunStore(join(dir, 'runs.sqlite'));
  const ruleStore = new SqliteRuleStore(join(dir, 'runs.sqlite'));
  const artifacts = new DirectoryArtifactStore(join(dir, 'artifacts'), Buffer.alloc(32, 7), () => url);
  const discovery = new TaggedFleetDiscovery(options.clusters);
  const ssm = new RecordingSsm(1500);
  const profiler = new ProfilerService({
    runs,
    artifacts,
    dispatcher: ssm,
    discovery,
    settings: DEFAULT_SETTINGS,
    log: silent,
  });
  ssm.complete = (runId, stdout) => profiler.completeRun(runId, { stdout, stderr: '', exitCode: 0 });
  const rules = new RuleService({
    rules: ruleStore,
    scheduler: noSchedules,
    profiler,
    discovery,
    log: silent,
    teamsInForce: options.teams,
  });
  const api = createApp({ profiler, rules, log: silent, caller: options.caller });

  const requests: ApiRequestRecord[] = [];
  const refusals: Array<(claims: GatewayClaims) => boolean> = [];
  const csp = pageCspAllowing(options.connectSrc ?? []);
  const root = new Hono();

  const gateway = async (c: Context) => {
    const authorization = c.req.header('authorization');
    const record: ApiRequestRecord = {
      method: c.req.method,
      path: c.req.path,
      authorization,
      at: Date.now(),
    };
    requests.push(record);
    const claims = await options.authorizer(authorization);
    const refusal = claims ? refusals.findIndex((match) => match(claims)) : -1;
    if (refusal >= 0) refusals.splice(refusal, 1);
    // API Gateway's own answer: the function never runs.
    if (!claims || refusal >= 0) {
      record.status = 401;
      return c.json({ message: 'Unauthorized' }, 401);
    }
    record.claims = claims;
    const env: GatewayEnv = { event: { requestContext: { authorizer: { jwt: { claims, scopes: null } } } } };
    const response = await api.fetch(c.req.raw, env);
    record.status = response.status;
    return response;
  };
  root.all(API_BASE_PATH, gateway);
  root.all(`${API_BASE_PATH}/*`, gateway);
  root.get(`/${WEB_AUTH_CONFIG_FILE}`, (c) => c.json(options.auth(url), 200, { 'Cache-Control': 'no-store' }));
  const page = (c: Context, path: string) => {
    const response = web.serve(c, path);
    if (!response) return c.text('Not Found', 404);
    if (response.headers.has('Content-Security-Policy')) response.headers.set('Content-Security-Policy', csp);
    return response;
  };
  root.get('/', (c) => page(c, '/'));
  root.get('/index.html', (c) => page(c, '/'));
  root.get('/assets/*', (c) => page(c, c.req.path));

  const server = serve({ fetch: root.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    ssm,
    profiler,
    refuseNext: (match) => refusals.push(match),
    close: async () => {
      ssm.stop();
      await new Promise<void>((done) => server.close(() => done()));
      runs.close();
      ruleStore.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
