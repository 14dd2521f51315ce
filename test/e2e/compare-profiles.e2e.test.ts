import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  alternateMapFrame,
  busyMapFrame,
  type FlinkCluster,
  jobOperatorNames,
  startFlinkCluster,
} from '#test/support/flink-cluster.ts';
import { type LocalServerProcess, startLocalServerProcess } from '#test/support/local-server-process.ts';

/**
 * Comparing profiles end to end on a real Flink cluster: two TaskManagers run the fixture job as user flink, the
 * local server (as `npm start` runs it) profiles them through the real node agent, which records JFR with the real
 * async-profiler and converts it with async-profiler's converter in the TaskManager's own java. Between two runs of
 * one TaskManager the job's hot path changes (as after a deploy); the API must say which method grew.
 */

const execFileAsync = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

async function request(url: string, init: RequestInit = {}): Promise<{ status: number; body: Json; location: string }> {
  const response = await fetch(url, { redirect: 'manual', ...init });
  const text = await response.text();
  const isJson = (response.headers.get('content-type') ?? '').includes('json');
  return {
    status: response.status,
    body: isJson && text ? JSON.parse(text) : text,
    location: response.headers.get('location') ?? '',
  };
}

const post = (url: string, body: unknown) =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Follows a 302 answer's link and returns the file as the browser would store it. */
async function download(url: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const answer = await request(url);
  expect(answer.status, JSON.stringify(answer.body)).toBe(302);
  const response = await fetch(answer.location);
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: Buffer.from(await response.arrayBuffer()),
  };
}

async function waitForRun(api: string, id: string, output: () => string): Promise<Json> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const { body } = await request(`${api}/runs/${id}`);
    if (body.status !== 'RUNNING') return body;
    if (Date.now() > deadline) throw new Error(`run ${id} still RUNNING:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('comparing profiles on a real Flink cluster (two TaskManagers, user flink)', () => {
  let cluster: FlinkCluster;
  let server: LocalServerProcess;
  let dataDir: string;
  let agentTmp: string;
  let api: string;
  const tmNodes: string[] = [];
  let before: Json;
  let after: Json;

  const profileTaskManager = async (node: string): Promise<Json> => {
    const created = await post(`${api}/clusters/local/taskmanagers/${node}/profiler`, { mode: 'ITIMER', duration: 4 });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    const run = await waitForRun(api, created.body.id, server.output);
    expect(run.status, run.message).toBe('FINISHED');
    return run;
  };

  beforeAll(async () => {
    cluster = await startFlinkCluster({
      taskManagers: 2,
      runAsUser: 'flink',
      busyPercent: 60,
      // The job's two hot paths must stay frames of their own: once the branch to the second is taken, the JIT
      // recompiles `map` with it inlined and its samples land on `map` (even with -XX:+DebugNonSafepoints).
      extraTaskManagerJvmArgs: [
        '-XX:+UnlockDiagnosticVMOptions',
        '-XX:+DebugNonSafepoints',
        '-XX:CompileCommand=quiet',
        '-XX:CompileCommand=dontinline,fleetprofiler.job.BusyMapFunction::fleetProfiler*',
      ],
    });
    dataDir = await mkdtemp(join(tmpdir(), 'ffp-compare-'));
    agentTmp = await mkdtemp(join(tmpdir(), 'ffp-compare-agent-'));
    await chmod(agentTmp, 0o755);
    server = await startLocalServerProcess({
      ASPROF: inject('asprofPath'),
      FLINK_PROFILER_DATA: dataDir,
      FLINK_PROFILER_TMPDIR: agentTmp,
    });
    api = server.api;
    const { body } = await request(`${api}/clusters/local/nodes`);
    for (const tm of cluster.taskManagers) {
      const node = body.nodes.find((n: Json) => n.pid === tm.pid && n.role === 'taskmanager');
      if (!node) throw new Error(`TaskManager pid ${tm.pid} is not among the nodes: ${JSON.stringify(body)}`);
      tmNodes.push(node.id);
    }

    // The same TaskManager before and after the job's hot path changes.
    await cluster.setHotPath('busyMap');
    before = await profileTaskManager(tmNodes[0] ?? '');
    await cluster.setHotPath('alternate');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    after = await profileTaskManager(tmNodes[0] ?? '');
  });

  afterAll(async () => {
    await server?.stop();
    await cluster?.stop();
    await Promise.all([dataDir, agentTmp].filter(Boolean).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('keeps every format of a run: the flame graph without thread frames, collapsed, pprof and the recording', async () => {
    expect(after.formats).toEqual(['html', 'collapsed', 'pprof', 'jfr']);
    const html = await download(`${api}/runs/${after.id}/profile?format=html`);
    expect(html.type).toMatch(/^text\/html/);
    expect(html.body.toString('utf8')).toContain('<h1>CPU profile</h1>');

    const collapsed = (await download(`${api}/runs/${after.id}/profile?format=collapsed`)).body.toString('utf8');
    const lines = collapsed.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    // async-profiler's format without thread frames: `frame;frame;… count`.
    expect(lines.every((line) => /^[^[].* \d+$/.test(line))).toBe(true);
    expect(lines.some((line) => line.includes(alternateMapFrame))).toBe(true);

    const jfr = await download(`${api}/runs/${after.id}/profile?format=jfr`);
    expect(jfr.body.subarray(0, 4).toString('latin1')).toBe('FLR\0');
  });

  it('exports a pprof profile that `go tool pprof` reads, with the hot method on top', async () => {
    const pprof = await download(`${api}/runs/${after.id}/profile?format=pprof`);
    expect([...pprof.body.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const file = join(dataDir, 'after.pb.gz');
    await writeFile(file, pprof.body);
    const { stdout } = await execFileAsync('go', ['tool', 'pprof', '-top', file], { timeout: 120_000 });
    const top = stdout
      .split('\n')
      .filter((line) => /^\s*\d/.test(line))
      .slice(0, 3)
      .join('\n');
    expect(top).toContain(alternateMapFrame);
  });

  it('lists the hottest frames: after the change the alternate hot path leads', async () => {
    const { status, body } = await request(`${api}/runs/${after.id}/frames?limit=5`);
    expect(status).toBe(200);
    expect(body.samples).toBeGreaterThan(0);
    expect(body.frames[0]).toMatchObject({ name: alternateMapFrame });
    const beforeFrames = (await request(`${api}/runs/${before.id}/frames?limit=5`)).body;
    expect(beforeFrames.frames[0]).toMatchObject({ name: busyMapFrame });
  });

  it('says which method grew and which shrank, each profile normalised by its own samples', async () => {
    const { status, body } = await request(`${api}/runs/${after.id}/diff?base=${before.id}&format=json`);
    expect(status, JSON.stringify(body)).toBe(200);
    const grew = body.frames.find((frame: Json) => frame.name === alternateMapFrame);
    const shrank = body.frames.find((frame: Json) => frame.name === busyMapFrame);
    expect(grew.delta).toBeGreaterThan(0.3);
    expect(shrank.delta).toBeLessThan(-0.3);
    expect(body.frames[0].name === alternateMapFrame || body.frames[0].name === busyMapFrame).toBe(true);
    for (const frame of body.frames) {
      expect(frame.delta).toBeCloseTo(frame.target - frame.base, 12);
      expect(frame.base).toBeGreaterThanOrEqual(0);
      expect(frame.target).toBeLessThanOrEqual(1);
    }

    const html = (await download(`${api}/runs/${after.id}/diff?base=${before.id}`)).body.toString('utf8');
    expect(html).toContain('<meta name="flink-profiler-profile" content="diff">');

    const link = await request(`${api}/runs/${after.id}/diff?base=${before.id}`, {
      headers: { accept: 'application/json' },
    });
    expect(link.status).toBe(200);
    expect(link.body).toMatchObject({ url: expect.stringContaining('/artifacts/'), expiresAt: expect.any(Number) });
  });

  it('names the job’s operators from Flink’s task thread names', async () => {
    const { status, body } = await request(`${api}/runs/${after.id}/threads`);
    expect(status).toBe(200);
    const operators = body.threads.filter((thread: Json) => thread.operator !== null);
    expect(operators.length).toBeGreaterThan(0);
    const [task] = operators;
    for (const name of jobOperatorNames) expect(task.operator).toContain(name);
    expect(task.name).toMatch(/ \(\d+\/2\)(#\d+)?$/);
    // The task thread holds the job's hot path: most samples of the run.
    expect(task.samples).toBe(Math.max(...body.threads.map((thread: Json) => thread.samples)));
    expect(body.threads.some((thread: Json) => thread.operator === null)).toBe(true);
  });

  it('merges a fan-out over every TaskManager into one profile, saying how many runs it merges', async () => {
    const fanOut = await post(`${api}/clusters/local/profiler`, { mode: 'ITIMER', duration: 3, role: 'taskmanager' });
    expect(fanOut.status, JSON.stringify(fanOut.body)).toBe(200);
    expect(fanOut.body.runs).toHaveLength(2);
    const runs = await Promise.all(fanOut.body.runs.map((run: Json) => waitForRun(api, run.id, server.output)));
    expect(runs.map((run) => run.status)).toEqual(['FINISHED', 'FINISHED']);
    expect(runs.map((run) => run.node).sort()).toEqual([...tmNodes].sort());
    const groupId = fanOut.body.groupId;

    const listed = (await request(`${api}/runs?groupId=${groupId}`)).body;
    expect(listed.runs.map((run: Json) => run.id).sort()).toEqual(runs.map((run) => run.id).sort());

    const merged = (await request(`${api}/groups/${groupId}/frames?limit=3`)).body;
    const each = await Promise.all(runs.map(async (run) => (await request(`${api}/runs/${run.id}/frames`)).body));
    expect(merged.runs).toBe(2);
    expect(merged.samples).toBe(each[0].samples + each[1].samples);
    expect(merged.frames[0].name).toBe(alternateMapFrame);

    const html = (await download(`${api}/groups/${groupId}/profile?format=html`)).body.toString('utf8');
    expect(html).toContain('<meta name="flink-profiler-profile" content="flame">');
    expect(html).toContain('2 runs merged');
    const collapsed = gunzipSafe(await download(`${api}/groups/${groupId}/profile?format=collapsed`));
    const total = collapsed
      .split('\n')
      .filter(Boolean)
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    expect(total).toBe(merged.samples);
  });

  it('refuses bad comparisons with the field and the rule', async () => {
    const wall = await post(`${api}/clusters/local/taskmanagers/${tmNodes[1]}/profiler`, { mode: 'WALL', duration: 1 });
    const wallRun = await waitForRun(api, wall.body.id, server.output);
    expect(wallRun.status, wallRun.message).toBe('FINISHED');

    const modes = await request(`${api}/runs/${after.id}/diff?base=${wallRun.id}&format=json`);
    expect(modes.status).toBe(400);
    expect(modes.body.errors[0]).toMatch(/^base: .*WALL.*ITIMER|^base: .*ITIMER.*WALL/);

    const unknown = await request(`${api}/runs/${after.id}/diff?base=00000000-0000-4000-8000-000000000000`);
    expect(unknown.status).toBe(404);
    const format = await request(`${api}/runs/${after.id}/profile?format=svg`);
    expect(format.status).toBe(400);
    expect(format.body.errors[0]).toMatch(/^format: must be one of html, collapsed, pprof, jfr/);
    const group = await request(`${api}/groups/00000000-0000-4000-8000-000000000000/frames`);
    expect(group.status).toBe(404);
  });
});

/** A downloaded file as its text: the local server sends gzip-encoded files to clients that accept gzip. */
function gunzipSafe(file: { body: Buffer }): string {
  const { body } = file;
  return (body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : body).toString('utf8');
}
