/**
 * The API client of the UI. Paths are relative (`api/v1/...`): the UI and the API share one origin, the local
 * server's or CloudFront's. The response types come from the API's own zod schemas (type imports only: no zod
 * in the bundle).
 */
import type { z } from '@hono/zod-openapi';
import type {
  ClustersSchema,
  FanOutResultSchema,
  MeSchema,
  NodesSchema,
  ProfilingInfoSchema,
  ProfilingListSchema,
  RuleListSchema,
  RuleSchema,
  RunListSchema,
  ServiceConfigSchema,
} from '#http/schemas.ts';
import { authorizationHeader, reportUnauthorized, retryAfterUnauthorized } from './auth.ts';
import { SignInServiceError } from './oidc.ts';
import type { DiffFrame, GroupFrames, RunFrames, ThreadSamples } from './profiles.ts';
import type { Target } from './target.ts';

export type ProfilingInfo = z.infer<typeof ProfilingInfoSchema>;
export type FlinkNodeInfo = z.infer<typeof NodesSchema>['nodes'][number];
export type ServiceConfig = z.infer<typeof ServiceConfigSchema>;
export type FanOutResult = z.infer<typeof FanOutResultSchema>;
export type Role = ProfilingInfo['role'];
export type Mode = ProfilingInfo['mode'];
export type Rule = z.infer<typeof RuleSchema>;
/** A rule as the UI sends it: the fields are sent as entered, for the API to check. */
export interface RuleBody {
  name: string;
  cluster: string;
  target: { role: string; nodes?: string[]; sample?: number };
  mode: string;
  duration?: number;
  schedule: string;
  timezone: string;
  enabled: boolean;
  /** The team the rule belongs to; left out, the caller's only team (none in local mode). */
  team?: string;
  version?: number;
}

export type { DiffFrame, Frame, GroupFrames, RunFrames, ThreadSamples } from './profiles.ts';
export type { Target } from './target.ts';

/** The export formats a run can have (`formats` of a FINISHED run; a run of an older node has just `html`). */
export type ExportFormat = NonNullable<ProfilingInfo['formats']>[number];
/** The JSON form of a redirecting endpoint: the short-lived link it would redirect to. */
export interface Link {
  url: string;
  expiresAt: number;
}

const BASE = 'api/v1';

/** An answer other than 2xx, with the API's own reasons (`{"errors": [...]}`), or why the API was not reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join('; '));
    this.name = 'ApiError';
  }
}

/** How far the server's clock is ahead of the browser's, from the Date header (1 s resolution, so only larger skews count). */
let clockOffsetMs = 0;

/** The time on the server's clock, to measure a run's progress from its triggerTime. */
export function serverNow(): number {
  return Date.now() + clockOffsetMs;
}

function noteServerClock(response: Response): void {
  const date = Date.parse(response.headers.get('date') ?? '');
  if (Number.isNaN(date)) return;
  const offset = date + 500 - Date.now();
  clockOffsetMs = Math.abs(offset) > 1500 ? offset : 0;
}

function isErrors(value: unknown): value is { errors: string[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { errors?: unknown }).errors) &&
    (value as { errors: unknown[] }).errors.every((e) => typeof e === 'string')
  );
}

/** The API's reasons (`{"errors": [...]}`); API Gateway's own answers carry `{"message": "..."}` instead. */
function reasonsOf(data: unknown, response: Response): string[] {
  if (isErrors(data) && data.errors.length > 0) return data.errors;
  const message = (data as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string' && message) return [message];
  return [`HTTP ${response.status} ${response.statusText}`.trim()];
}

async function request<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const send = async () =>
    fetch(`${BASE}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(await authorizationHeader()),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      cache: 'no-store',
    });
  let response: Response;
  try {
    response = await send();
    // An access token refused before its time (revoked, a clock ahead): once more with freshly refreshed tokens.
    if (response.status === 401 && (await retryAfterUnauthorized())) response = await send();
  } catch (error) {
    if (error instanceof SignInServiceError) throw new ApiError(0, [error.message]);
    throw new ApiError(0, ['The profiler service cannot be reached; check that it is running, then try again.']);
  }
  noteServerClock(response);
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, reasonsOf(data, response));
    if (response.status === 401) reportUnauthorized(error.errors);
    throw error;
  }
  return data as T;
}

const enc = encodeURIComponent;

/** The API path of a target's profiler (Flink's endpoints, per cluster). */
export function profilerPath(target: Target): string {
  return target.role === 'jobmanager'
    ? `/clusters/${enc(target.cluster)}/jobmanager/profiler`
    : `/clusters/${enc(target.cluster)}/taskmanagers/${enc(target.node)}/profiler`;
}

let config: Promise<ServiceConfig> | undefined;

export const api = {
  /** The service's settings; read once per page load (a failed read is retried on the next call). */
  config(): Promise<ServiceConfig> {
    config ??= request<ServiceConfig>('/config').catch((error: unknown) => {
      config = undefined;
      throw error;
    });
    return config;
  },
  /** Who is signed in and their teams (AWS mode). */
  me: () => request<z.infer<typeof MeSchema>>('/me'),
  clusters: () => request<z.infer<typeof ClustersSchema>>('/clusters'),
  nodes: (cluster: string) => request<z.infer<typeof NodesSchema>>(`/clusters/${enc(cluster)}/nodes`),
  async history(target: Target): Promise<z.infer<typeof ProfilingListSchema>> {
    if (target.role === 'jobmanager' && target.node !== undefined) {
      // Flink's endpoint has no node for a JobManager: one of several is read through the runs list.
      const { historySize } = await api.config();
      const { runs } = await api.runs({ ...target, limit: String(historySize) });
      return { profilingList: runs };
    }
    return request(profilerPath(target));
  },
  async createRun(target: Target, body: { mode: string; duration?: number }): Promise<ProfilingInfo> {
    if (target.role === 'jobmanager' && target.node !== undefined) {
      // One of several JobManagers: a fan-out to that one node, refused (409) when it is busy.
      const result = await api.fanOut(target.cluster, { ...body, role: 'jobmanager', nodes: [target.node] });
      const [run] = result.runs;
      if (!run)
        throw new ApiError(
          409,
          result.skipped.map((s) => s.reason),
        );
      return run;
    }
    return request(profilerPath(target), { method: 'POST', body });
  },
  fanOut: (cluster: string, body: { mode: string; duration?: number; role: Role; nodes?: string[] }) =>
    request<FanOutResult>(`/clusters/${enc(cluster)}/profiler`, { method: 'POST', body }),
  runs: (query: Record<string, string>) =>
    request<z.infer<typeof RunListSchema>>(`/runs?${new URLSearchParams(query).toString()}`),
  run: (id: string) => request<ProfilingInfo>(`/runs/${enc(id)}`),
  runFrames: (id: string, limit: number) => request<RunFrames>(`/runs/${enc(id)}/frames?limit=${limit}`),
  runThreads: (id: string) => request<{ threads: ThreadSamples[] }>(`/runs/${enc(id)}/threads`),
  /** A short-lived link to one export of a run (the JSON form of the redirect). */
  runProfileLink: (id: string, format: ExportFormat) => request<Link>(`/runs/${enc(id)}/profile?format=${enc(format)}`),
  /** How run `id` differs from run `base`: the frames whose share changed most, largest |delta| first. */
  diff: (id: string, base: string) =>
    request<{ frames: DiffFrame[] }>(`/runs/${enc(id)}/diff?base=${enc(base)}&format=json`),
  /** A short-lived link to the differential flame graph of run `id` against run `base`. */
  diffLink: (id: string, base: string) => request<Link>(`/runs/${enc(id)}/diff?base=${enc(base)}`),
  groupFrames: (groupId: string, limit: number) =>
    request<GroupFrames>(`/groups/${enc(groupId)}/frames?limit=${limit}`),
  /** A short-lived link to the merged profile of a group's FINISHED runs. */
  groupProfileLink: (groupId: string, format: 'html' | 'collapsed') =>
    request<Link>(`/groups/${enc(groupId)}/profile?format=${enc(format)}`),
  rules: () => request<z.infer<typeof RuleListSchema>>('/rules'),
  rule: (id: string) => request<Rule>(`/rules/${enc(id)}`),
  createRule: (body: RuleBody) => request<Rule>('/rules', { method: 'POST', body }),
  /** Replaces a rule; a rule read may be sent back as it is (its `version` refuses a stale update with 409). */
  updateRule: (id: string, body: RuleBody | Rule) => request<Rule>(`/rules/${enc(id)}`, { method: 'PUT', body }),
  deleteRule: (id: string) => request<void>(`/rules/${enc(id)}`, { method: 'DELETE' }),
};

/** Splits API errors by the field they name (`"duration: must be …"`); the rest go under `''`. */
export function errorsByField(errors: string[], fields: readonly string[]): Map<string, string[]> {
  const byField = new Map<string, string[]>();
  for (const error of errors) {
    const field = fields.find((f) => error.startsWith(`${f}:`) || error.startsWith(`${f}.`)) ?? '';
    byField.set(field, [...(byField.get(field) ?? []), error]);
  }
  return byField;
}
