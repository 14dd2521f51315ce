/**
 * Two clients that profile a Flink JVM the way a user does, from the request to the downloaded flame graph: one
 * through Flink's own REST profiler (`rest.profiling.enabled`), one through Flink Fleet Profiler's HTTP API. The
 * real-Flink e2e tests and the side-by-side benchmark use both, so that they are measured the same way.
 */

/** Flink's ProfilingInfo; ours adds `id`, `node`, `url`, … (read as needed). */
export interface ProfilingInfo {
  status: 'RUNNING' | 'FINISHED' | 'FAILED';
  mode: string;
  triggerTime: number;
  finishedTime: number | null;
  duration: number;
  message: string | null;
  outputFile: string | null;
}

export interface OurRun extends ProfilingInfo {
  id: string;
  cluster: string;
  node: string;
  role: 'jobmanager' | 'taskmanager';
  url?: string;
  downloadUrl?: string;
}

export interface ProfileOutcome<T extends ProfilingInfo> {
  /** The run as last read (FINISHED or FAILED). */
  info: T;
  /** The flame graph, when the run FINISHED. */
  html?: string;
  /** Bytes of the flame graph as downloaded (decoded HTML). */
  bytes?: number;
  /** From sending the request to holding the downloaded flame graph (or to reading FAILED). */
  requestToFileMs: number;
}

export interface PollOptions {
  /** How often the run is read while RUNNING. Default 100 ms. */
  pollMs?: number;
  /** How long past its duration a run may stay RUNNING before this throws. Default 60 s. */
  graceMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function json<T>(response: Response): Promise<T> {
  const text = await response.text();
  if (!response.ok) throw new Error(`${response.url}: HTTP ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Flink's REST profiler endpoint of a TaskManager (`resourceId`) or, without one, of the JobManager. */
export function flinkProfilerUrl(restUrl: string, resourceId?: string): string {
  return resourceId === undefined
    ? `${restUrl}/jobmanager/profiler`
    : `${restUrl}/taskmanagers/${encodeURIComponent(resourceId)}/profiler`;
}

/** Starts a profile through Flink's REST API; resolves with the RUNNING ProfilingInfo Flink answers. */
export async function startFlinkProfile(
  restUrl: string,
  resourceId: string | undefined,
  request: { mode: string; duration: number },
): Promise<ProfilingInfo> {
  return json<ProfilingInfo>(await postJson(flinkProfilerUrl(restUrl, resourceId), request));
}

/** Waits for a profile started through Flink's REST API to end, and downloads its flame graph. */
export async function awaitFlinkProfile(
  restUrl: string,
  resourceId: string | undefined,
  started: ProfilingInfo,
  startedAt: number,
  options: PollOptions = {},
): Promise<ProfileOutcome<ProfilingInfo>> {
  const base = flinkProfilerUrl(restUrl, resourceId);
  const deadline = startedAt + started.duration * 1000 + (options.graceMs ?? 60_000);
  for (;;) {
    const { profilingList } = await json<{ profilingList: ProfilingInfo[] }>(await fetch(base));
    // Flink's history has no id: a run is known by its trigger time.
    const info = profilingList.find((entry) => entry.triggerTime === started.triggerTime);
    if (info && info.status !== 'RUNNING') {
      if (info.status !== 'FINISHED' || !info.outputFile) {
        return { info, requestToFileMs: performance.now() - startedAt };
      }
      const download = await fetch(`${base}/${encodeURIComponent(info.outputFile)}`);
      const html = await download.text();
      if (!download.ok) throw new Error(`${download.url}: HTTP ${download.status} ${html}`);
      return { info, html, bytes: Buffer.byteLength(html), requestToFileMs: performance.now() - startedAt };
    }
    if (performance.now() > deadline) throw new Error(`Flink's profile ${JSON.stringify(started)} did not end`);
    await sleep(options.pollMs ?? 100);
  }
}

/** Profiles through Flink's REST API: request, poll its history, download the file. */
export async function profileWithFlink(
  restUrl: string,
  resourceId: string | undefined,
  request: { mode: string; duration: number },
  options: PollOptions = {},
): Promise<ProfileOutcome<ProfilingInfo>> {
  const startedAt = performance.now();
  const started = await startFlinkProfile(restUrl, resourceId, request);
  return awaitFlinkProfile(restUrl, resourceId, started, startedAt, options);
}

/** Our profiler endpoint of a node of a cluster (a TaskManager), or of the cluster's JobManager without a node. */
export function ourProfilerUrl(api: string, cluster: string, node?: string): string {
  return node === undefined
    ? `${api}/clusters/${encodeURIComponent(cluster)}/jobmanager/profiler`
    : `${api}/clusters/${encodeURIComponent(cluster)}/taskmanagers/${encodeURIComponent(node)}/profiler`;
}

/** Starts a run through our HTTP API; resolves with the RUNNING run (throws on a 4xx/5xx answer). */
export async function startOurProfile(
  api: string,
  cluster: string,
  node: string | undefined,
  request: { mode: string; duration: number },
): Promise<OurRun> {
  return json<OurRun>(await postJson(ourProfilerUrl(api, cluster, node), request));
}

/** Waits for one of our runs to end, and downloads its flame graph through the link the run carries. */
export async function awaitOurProfile(
  api: string,
  started: OurRun,
  startedAt: number,
  options: PollOptions = {},
): Promise<ProfileOutcome<OurRun>> {
  const deadline = startedAt + started.duration * 1000 + (options.graceMs ?? 60_000);
  let info = started;
  while (info.status === 'RUNNING') {
    if (performance.now() > deadline) throw new Error(`run ${started.id} did not end: ${JSON.stringify(info)}`);
    await sleep(options.pollMs ?? 100);
    info = await json<OurRun>(await fetch(`${api}/runs/${encodeURIComponent(started.id)}`));
  }
  if (info.status !== 'FINISHED' || !info.url) return { info, requestToFileMs: performance.now() - startedAt };
  const download = await fetch(info.url);
  const html = await download.text();
  if (!download.ok) throw new Error(`${download.url}: HTTP ${download.status} ${html}`);
  return { info, html, bytes: Buffer.byteLength(html), requestToFileMs: performance.now() - startedAt };
}

/** Profiles through our HTTP API: request, poll the run, download the file. */
export async function profileWithOurs(
  api: string,
  cluster: string,
  node: string | undefined,
  request: { mode: string; duration: number },
  options: PollOptions = {},
): Promise<ProfileOutcome<OurRun>> {
  const startedAt = performance.now();
  const started = await startOurProfile(api, cluster, node, request);
  return awaitOurProfile(api, started, startedAt, options);
}

/** Our node id (`<pid>-<start time>`) of the Flink JVM with this pid, from the cluster's node list. */
export async function ourNodeOf(api: string, pid: number, cluster = 'local'): Promise<string> {
  const { nodes } = await json<{ nodes: Array<{ id: string; pid?: number }> }>(
    await fetch(`${api}/clusters/${encodeURIComponent(cluster)}/nodes`),
  );
  const node = nodes.find((n) => n.pid === pid);
  if (!node) throw new Error(`pid ${pid} is not among the nodes of cluster ${cluster}: ${JSON.stringify(nodes)}`);
  return node.id;
}
