import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { SESSION_START_MARGIN_SECONDS } from '#domain/deadline.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { flameGraphFrames } from '#test/support/flame-graph.ts';
import { type LocalServerProcess, startLocalServerProcess } from '#test/support/local-server-process.ts';

/**
 * The local mode end to end: the real server process (as `npm start` runs it), the real node agent script,
 * the real async-profiler, attached to real JVMs that run under Flink's main-class names.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

async function request(method: string, url: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function nodeOf(server: LocalServerProcess, jvm: FakeFlinkJvm): Promise<string> {
  const { body } = await request('GET', `${server.api}/clusters/local/nodes`);
  const node = body.nodes.find((n: Json) => n.pid === jvm.pid);
  if (!node) throw new Error(`pid ${jvm.pid} not among the nodes: ${JSON.stringify(body)}`);
  return node.id;
}

/** Polls a run until it leaves RUNNING (or the time is up), the way a curl user would. */
async function waitForRun(server: LocalServerProcess, id: string, timeoutMs = 60_000): Promise<Json> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await request('GET', `${server.api}/runs/${id}`);
    if (body.status !== 'RUNNING') return body;
    if (Date.now() > deadline) throw new Error(`run ${id} still RUNNING after ${timeoutMs} ms:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function fetchFlameGraph(
  url: string,
): Promise<{ status: number; type: string | null; html: string; frames: string[] }> {
  const response = await fetch(url);
  const html = await response.text();
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    html,
    frames: response.ok ? flameGraphFrames(html) : [],
  };
}

/** Whether a flame graph has a frame of the fixture's method (frame names are compressed in the HTML: decode them). */
const hasMethod = (frames: string[], method: string) => frames.some((frame) => frame.endsWith(`.${method}`));

const tmRunsPath = (server: LocalServerProcess, node: string) =>
  `${server.api}/clusters/local/taskmanagers/${node}/profiler`;
const jmRunsPath = (server: LocalServerProcess) => `${server.api}/clusters/local/jobmanager/profiler`;

describe('local mode through the HTTP API', () => {
  const jvms: FakeFlinkJvm[] = [];
  let dataDir: string;
  let server: LocalServerProcess | undefined;

  const startServer = async (env: Record<string, string> = {}) => {
    // Scratch directories inside the data directory, so that what a killed agent leaves behind is removed with it.
    const agentTmp = join(dataDir, 'agent-tmp');
    mkdirSync(agentTmp, { recursive: true });
    server = await startLocalServerProcess({
      ASPROF: inject('asprofPath'),
      FLINK_PROFILER_DATA: dataDir,
      FLINK_PROFILER_TMPDIR: agentTmp,
      ...env,
    });
    return server;
  };
  const startJvm = async (options: Parameters<typeof startFakeFlinkJvm>[0]) => {
    const jvm = await startFakeFlinkJvm(options);
    jvms.push(jvm);
    return jvm;
  };

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'ffp-e2e-'));
  });
  afterEach(async () => {
    await server?.stop('SIGKILL');
    server = undefined;
    await Promise.all(jvms.splice(0).map((jvm) => jvm.stop()));
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = mkdtempSync(join(tmpdir(), 'ffp-e2e-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('profiles a TaskManager in ITIMER mode: RUNNING, then FINISHED with a flame graph of its hot method', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    const s = await startServer();
    const node = await nodeOf(s, tm);

    const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 2 });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ status: 'RUNNING', mode: 'ITIMER', duration: 2, node, finishedTime: null });

    const run = await waitForRun(s, created.body.id);
    expect(run).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(run.outputFile).toMatch(new RegExp(`^${node}_ITIMER_\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2}_\\d{2}\\.html$`));

    const graph = await fetchFlameGraph(run.url);
    expect(graph.status).toBe(200);
    expect(graph.type).toMatch(/^text\/html/);
    expect(graph.html).toContain('async-profiler');
    expect(hasMethod(graph.frames, 'fakeFlinkHotLoop')).toBe(true);

    // Flink's download endpoint redirects to a download link of the same file.
    const download = await fetch(`${tmRunsPath(s, node)}/${run.outputFile}`, { redirect: 'manual' });
    expect(download.status).toBe(302);
    const attachment = await fetch(download.headers.get('location') as string);
    expect(attachment.headers.get('content-disposition')).toBe(`attachment; filename="${run.outputFile}"`);
    expect(await attachment.text()).toBe(graph.html);

    const history = await request('GET', tmRunsPath(s, node));
    expect(history.body.profilingList.map((r: Json) => r.id)).toEqual([run.id]);
  });

  it('profiles the JobManager in WALL mode, seeing its sleeping threads', async () => {
    const jm = await startJvm({ role: 'jobmanager' });
    await startJvm({ role: 'taskmanager' });
    const s = await startServer();
    const created = await request('POST', jmRunsPath(s), { mode: 'WALL', duration: 2 });
    expect(created.status).toBe(200);
    expect(created.body.node).toBe(await nodeOf(s, jm));
    const run = await waitForRun(s, created.body.id);
    expect(run.status).toBe('FINISHED');
    const graph = await fetchFlameGraph(run.url);
    expect(hasMethod(graph.frames, 'fakeFlinkIdleWait')).toBe(true);
  });

  it('answers 409 while the target runs, and 400 / 404 for bad requests', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    const s = await startServer();
    const node = await nodeOf(s, tm);
    const first = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 3 });
    expect(first.status).toBe(200);

    const busy = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 3 });
    expect(busy.status).toBe(409);
    expect(busy.body.errors[0]).toContain(first.body.id);

    const bad: Array<[unknown, string]> = [
      [{ mode: 'ITIMER', duration: 0 }, 'duration: '],
      [{ mode: 'ITIMER', duration: 301 }, 'duration: '],
      [{ mode: 'ITIMER', duration: 'abc' }, 'duration: '],
      [{ mode: 'ITIMER' }, 'duration: is required'],
      [{ mode: 'HEAP', duration: 3 }, 'mode: must be one of CPU, ALLOC, LOCK, WALL, ITIMER'],
    ];
    for (const [body, reason] of bad) {
      const response = await request('POST', tmRunsPath(s, node), body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.errors.join(' | ')).toContain(reason);
    }
    expect(
      (await request('POST', `${s.api}/clusters/nope/jobmanager/profiler`, { mode: 'ITIMER', duration: 3 })).status,
    ).toBe(404);
    expect((await request('POST', tmRunsPath(s, 'no-such-node'), { mode: 'ITIMER', duration: 3 })).status).toBe(404);

    expect((await waitForRun(s, first.body.id)).status).toBe('FINISHED');
    expect((await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 1 })).status).toBe(200);
  });

  it('keeps historySize runs per target and deletes the trimmed flame graphs from disk', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    const s = await startServer({ FLINK_PROFILER_HISTORY_SIZE: '2' });
    const node = await nodeOf(s, tm);
    const runs: Json[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 1 });
      runs.push(await waitForRun(s, created.body.id));
    }
    expect(runs.map((r) => r.status)).toEqual(['FINISHED', 'FINISHED', 'FINISHED']);
    const fileOf = (run: Json) =>
      join(dataDir, 'artifacts', 'profiles', 'local', 'taskmanager', node, run.id, run.outputFile);
    expect(runs.map((run) => existsSync(fileOf(run)))).toEqual([false, true, true]);

    const history = await request('GET', tmRunsPath(s, node));
    expect(history.body.profilingList.map((r: Json) => r.id)).toEqual([runs[2].id, runs[1].id]);
    expect((await request('GET', `${s.api}/runs/${runs[0].id}`)).status).toBe(404);
    expect((await fetch(`${tmRunsPath(s, node)}/${runs[0].outputFile}`, { redirect: 'manual' })).status).toBe(404);
  });

  it('fails the run with a message when the JVM exits mid-profile', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    const s = await startServer();
    const node = await nodeOf(s, tm);
    const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 6 });
    expect(created.body.status).toBe('RUNNING');
    // Let the agent attach, then take the JVM away as a crash would.
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(tm.pid, 'SIGKILL');
    const run = await waitForRun(s, created.body.id);
    expect(run.status).toBe('FAILED');
    expect(run.message).toMatch(/exited/);
    expect(run.url).toBeUndefined();
  });

  it('keeps history and working links across a restart; links expire and refuse tampering', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    let s = await startServer();
    const node = await nodeOf(s, tm);
    const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 1 });
    const before = await waitForRun(s, created.body.id);
    expect(before.status).toBe('FINISHED');
    await s.stop();

    s = await startServer({ FLINK_PROFILER_LINK_TTL: '2', PORT: new URL(before.url).port });
    const after = await request('GET', tmRunsPath(s, node));
    expect(after.body.profilingList).toMatchObject([
      { id: before.id, status: 'FINISHED', outputFile: before.outputFile },
    ]);
    // The link handed out before the restart still opens the flame graph.
    const old = await fetchFlameGraph(before.url);
    expect(old.status).toBe(200);
    expect(hasMethod(old.frames, 'fakeFlinkHotLoop')).toBe(true);

    const tampered = new URL(before.url);
    tampered.searchParams.set('key', tampered.searchParams.get('key')?.replace('.html', 'x.html') ?? '');
    expect((await fetch(tampered)).status).toBe(403);
    const later = tampered;
    later.searchParams.set('expires', String(Number(new URL(before.url).searchParams.get('expires')) + 3600));
    expect((await fetch(later)).status).toBe(403);

    const shortLived = after.body.profilingList[0].url;
    expect((await fetch(shortLived)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 3100));
    const expired = await fetch(shortLived);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as Json).errors[0]).toMatch(/expired/);
  });

  it('settles a run whose server was SIGKILLed mid-profile: FINISHED when the profile landed', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    let s = await startServer();
    const node = await nodeOf(s, tm);
    const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 3 });
    await new Promise((r) => setTimeout(r, 1000));
    await s.stop('SIGKILL');

    s = await startServer();
    const run = await waitForRun(s, created.body.id);
    expect(run.status).toBe('FINISHED');
    expect(hasMethod((await fetchFlameGraph(run.url)).frames, 'fakeFlinkHotLoop')).toBe(true);
    expect((await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 1 })).status).toBe(200);
  });

  it('settles a run whose server and agent were SIGKILLed mid-profile: FAILED with a message', async () => {
    const tm = await startJvm({ role: 'taskmanager' });
    let s = await startServer();
    const node = await nodeOf(s, tm);
    const created = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 3 });
    await new Promise((r) => setTimeout(r, 1000));
    await s.stop('SIGKILL');
    // The agent runs in its own process group so that it survives the server; kill it too.
    const commandDir = join(dataDir, 'commands', (await readCommandId(created.body.id)) as string);
    const agent = JSON.parse(readFileSync(join(commandDir, 'agent.json'), 'utf8'));
    process.kill(-agent.pid, 'SIGKILL');

    s = await startServer();
    const run = await waitForRun(s, created.body.id);
    expect(run.status).toBe('FAILED');
    expect(run.message).toMatch(/node agent/i);
    // async-profiler's session in the JVM outlives the killed agent: the target says until when it is busy, at most
    // the session's own timeout after the agent could have started it, instead of a next run that fails inside.
    const next = await request('POST', tmRunsPath(s, node), { mode: 'ITIMER', duration: 1 });
    expect(next.status).toBe(409);
    const [reason] = next.body.errors as string[];
    expect(reason).toMatch(/is busy until \S+Z: run \S+ ended before its agent could stop async-profiler/);
    const until = Date.parse(/busy until (\S+Z)/.exec(reason as string)?.[1] ?? '');
    expect(until).toBeLessThanOrEqual(run.triggerTime + (SESSION_START_MARGIN_SECONDS + 3) * 1000);
    expect(run.message).toContain('async-profiler may still be profiling the JVM until');
  });

  /** The command id the server recorded for a run (kept internal by the API), read from the SQLite file. */
  async function readCommandId(runId: string): Promise<string | null> {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dataDir, 'runs.sqlite'), { readonly: true });
    try {
      return (db.prepare('SELECT command_id FROM runs WHERE id = ?').get(runId) as { command_id: string | null })
        .command_id;
    } finally {
      db.close();
    }
  }
});
