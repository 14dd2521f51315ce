import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile as PprofProfile } from 'pprof-format';
import { describe, expect, it } from 'vitest';
import { runArtifactKeys } from '#domain/artifacts.ts';
import { diffFrames, hottestFrames, parseCollapsed } from '#domain/profile/index.ts';
import type { Run } from '#domain/run.ts';
import { createApp } from '#http/app.ts';
import { repoRoot } from '#test/support/paths.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout, silentLog, TM } from '#test/support/unit-fakes.ts';

/**
 * The comparison API over the real service (SQLite, a directory of artifacts) fed what the node agent prints:
 * collapsed stacks captured from real async-profiler output (test/fixtures/profiles, see its README).
 */

const fixture = (name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'profiles', name), 'utf8');
const HOT_A = fixture('cpu-hot-a.collapsed');
const HOT_B = fixture('cpu-hot-b.collapsed');
const TM_PROFILER = `/api/v1/clusters/local/taskmanagers/${TM.id}/profiler`;

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

function service(settings: Parameters<typeof createTestService>[0] = {}) {
  const test = createTestService(settings);
  const get = async (path: string, headers: Record<string, string> = {}): Promise<Response> =>
    test.app.request(`/api/v1${path}`, { headers });
  /** Starts a run of the TaskManager and ends it with what the agent printed. */
  const finishRun = async (stdout: string, mode = 'ITIMER'): Promise<Run> => {
    const response = await test.app.request(TM_PROFILER, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode, duration: 5 }),
    });
    const run = (await response.json()) as Run;
    test.clock.now += 6_000;
    const settled = await test.profiler.completeRun(run.id, { stdout, stderr: '', exitCode: 0 });
    if (!settled) throw new Error('not settled');
    return settled;
  };
  /** The stored file behind a link the API answered with (302), as the link serves it. */
  const follow = async (response: Response): Promise<Buffer> => {
    expect(response.status).toBe(302);
    const query = Object.fromEntries(new URL(response.headers.get('location') ?? '').searchParams);
    return (await test.artifacts.open(query)).body;
  };
  return { ...test, get, finishRun, follow };
}

describe('a run that comes with collapsed stacks and a recording', () => {
  it('keeps every format, compressed: the flame graph, collapsed without thread frames, pprof, the recording', async () => {
    const s = service();
    const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    expect(run).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful' });
    expect(run.formats).toEqual(['html', 'collapsed', 'pprof', 'jfr']);
    expect(((await (await s.get(`/runs/${run.id}`)).json()) as Json).formats).toEqual(run.formats);

    const html = gunzipSync(await s.follow(await s.get(`/runs/${run.id}/profile?format=html`))).toString('utf8');
    expect(html).toBe(FLAME_GRAPH);
    const collapsed = gunzipSync(await s.follow(await s.get(`/runs/${run.id}/profile?format=collapsed`))).toString();
    expect(
      collapsed
        .split('\n')
        .filter(Boolean)
        .every((line) => !line.startsWith('[')),
    ).toBe(true);
    // The same samples, thread frames summed away.
    expect(parseCollapsed(collapsed).samples).toBe(parseCollapsed(HOT_A).samples);
    const jfr = gunzipSync(await s.follow(await s.get(`/runs/${run.id}/profile?format=jfr`)));
    expect(jfr.subarray(0, 4).toString('latin1')).toBe('FLR\0');

    // pprof is its own gzip: stored as it is, decoded by the library that wrote it.
    const pprof = PprofProfile.decode(gunzipSync(await s.follow(await s.get(`/runs/${run.id}/profile?format=pprof`))));
    const strings = pprof.stringTable.strings;
    const total = pprof.sample.reduce((sum, sample) => sum + Number(sample.value[0]), 0);
    expect(total).toBe(parseCollapsed(HOT_A).samples);
    expect(strings).toContain('Busy.hotA');
  });

  it('answers a link as JSON for a client that asks for it (the UI sends its token in a header)', async () => {
    const s = service();
    const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    const response = await s.get(`/runs/${run.id}/profile?format=collapsed`, { accept: 'application/json' });
    expect(response.status).toBe(200);
    const link = (await response.json()) as Json;
    expect(link.url).toMatch(/^http:\/\/profiler\.test\/artifacts\/.*\.collapsed\?/);
    expect(link.expiresAt).toBe(s.clock.now + s.profiler.settings.linkTtlSeconds * 1000);
  });

  it('lists the hottest frames, the threads with their Flink operators, and what changed between two runs', async () => {
    const s = service();
    const a = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    const b = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_B }));

    const frames = (await s.get(`/runs/${a.id}/frames?limit=3`).then((r) => r.json())) as Json;
    expect(frames).toEqual(hottestFrames(parseCollapsed(HOT_A), 3));
    expect(frames.frames[0].name).toBe('Busy.hotA');

    const threads = (await s.get(`/runs/${a.id}/threads`).then((r) => r.json())) as Json;
    expect(threads.threads.map((t: Json) => t.operator)).toContain('Source: Orders -> Map');
    expect(threads.threads.find((t: Json) => t.name === 'main')?.operator ?? null).toBeNull();

    const diff = (await s.get(`/runs/${b.id}/diff?base=${a.id}&format=json`).then((r) => r.json())) as Json;
    expect(diff.frames).toEqual(diffFrames(parseCollapsed(HOT_A), parseCollapsed(HOT_B), 500).frames);
    const grew = diff.frames.find((f: Json) => f.name === 'Busy.hotB');
    const shrank = diff.frames.find((f: Json) => f.name === 'Busy.hotA');
    expect(grew.delta).toBeGreaterThan(0);
    expect(shrank.delta).toBeLessThan(0);

    const html = gunzipSync(await s.follow(await s.get(`/runs/${b.id}/diff?base=${a.id}`))).toString('utf8');
    expect(html).toContain('<meta name="flink-profiler-profile" content="diff">');
  });

  it('refuses a comparison across modes naming base, and answers 404 for an unknown run, group or format', async () => {
    const s = service();
    const cpu = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    const wall = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'WALL', { collapsed: HOT_B }), 'WALL');

    const modes = await s.get(`/runs/${wall.id}/diff?base=${cpu.id}&format=json`);
    expect(modes.status).toBe(400);
    expect(((await modes.json()) as Json).errors[0]).toMatch(/^base: run '.*' is a ITIMER profile and run '.*' a WALL/);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await s.get(`/runs/${wall.id}/diff?base=${unknown}`)).status).toBe(404);
    expect((await s.get(`/runs/${unknown}/frames`)).status).toBe(404);
    expect((await s.get(`/groups/${unknown}/frames`)).status).toBe(404);
    const badFormat = await s.get(`/runs/${cpu.id}/profile?format=svg`);
    expect(badFormat.status).toBe(400);
    expect(((await badFormat.json()) as Json).errors).toEqual(['format: must be one of html, collapsed, pprof, jfr']);
    const badBase = await s.get(`/runs/${cpu.id}/diff?base=..%2Fetc`);
    expect(badBase.status).toBe(400);
    expect(((await badBase.json()) as Json).errors[0]).toMatch(/^base: /);
    const badLimit = await s.get(`/runs/${cpu.id}/frames?limit=0`);
    expect(((await badLimit.json()) as Json).errors).toEqual(['limit: must be a whole number from 1 to 1000']);
  });

  it('shows another team nothing: their runs answer 404, as unknown ones do', async () => {
    const s = service();
    const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    const outsider = createApp({
      profiler: s.profiler,
      log: silentLog,
      caller: () => ({ user: 'eve', teams: ['other'], seesEverything: false }),
    });
    for (const path of ['frames', 'threads', 'profile?format=collapsed', `diff?base=${run.id}&format=json`]) {
      expect((await outsider.request(`/api/v1/runs/${run.id}/${path}`)).status, path).toBe(404);
    }
  });

  it('merges a group’s FINISHED runs into one profile and says how many runs it merges', async () => {
    const s = service();
    const second = { ...TM, id: '4343-100', pid: 4343 };
    s.discovery.nodes.push(second);
    const response = await s.app.request('/api/v1/clusters/local/profiler', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'ITIMER', duration: 5, role: 'taskmanager' }),
    });
    const fanOut = (await response.json()) as Json;
    expect(fanOut.runs).toHaveLength(2);
    const [first, other] = fanOut.runs as Run[];
    s.clock.now += 6_000;
    for (const [run, collapsed] of [
      [first, HOT_A],
      [other, HOT_B],
    ] as const) {
      const stdout = finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed });
      await s.profiler.completeRun(run?.id ?? '', { stdout, stderr: '', exitCode: 0 });
    }

    const merged = (await s.get(`/groups/${fanOut.groupId}/frames?limit=5`).then((r) => r.json())) as Json;
    expect(merged.runs).toBe(2);
    expect(merged.samples).toBe(parseCollapsed(HOT_A).samples + parseCollapsed(HOT_B).samples);
    const collapsed = gunzipSync(
      await s.follow(await s.get(`/groups/${fanOut.groupId}/profile?format=collapsed`)),
    ).toString();
    expect(parseCollapsed(collapsed).samples).toBe(merged.samples);
    const html = gunzipSync(await s.follow(await s.get(`/groups/${fanOut.groupId}/profile?format=html`))).toString();
    expect(html).toContain('2 runs merged');
  });
});

describe('what the node sends that cannot be trusted or is not there', () => {
  it('a run of a node without the converter has its flame graph only, and the other formats answer 404 saying why', async () => {
    const s = service();
    const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH));
    expect(run.formats).toEqual(['html']);
    for (const path of ['frames', 'threads', 'profile?format=jfr', 'profile?format=pprof']) {
      const response = await s.get(`/runs/${run.id}/${path}`);
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as Json).errors[0]).toMatch(/its node sent the flame graph only/);
    }
  });

  it('collapsed stacks or a recording that the line does not vouch for are refused; the flame graph is kept', async () => {
    for (const forge of ['collapsed', 'jfr'] as const) {
      const s = service();
      const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A, forge }));
      expect(run.status).toBe('FINISHED');
      expect(run.formats).toEqual(['html']);
      expect(run.message).toMatch(
        /^Profiling Successful \(flame graph only: the (collapsed stacks are|recording is) not what the result line vouches for/,
      );
      expect(existsSync(s.artifacts.fileOf(run.artifactKey ?? ''))).toBe(true);
    }
  });

  it('collapsed stacks that are no profile are refused with the reason; the flame graph is kept', async () => {
    const s = service();
    const run = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: 'a;b;c no-count\n' }));
    expect(run.formats).toEqual(['html']);
    expect(run.message).toMatch(/^Profiling Successful \(flame graph only: the collapsed stacks are not a profile \(/);
  });

  it('trimming a target’s history deletes every file of the runs it drops', async () => {
    const s = service({ historySize: 1 });
    const old = await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_A }));
    const keys = runArtifactKeys(old.artifactKey ?? '');
    expect(keys.filter((key) => existsSync(s.artifacts.fileOf(key)))).toHaveLength(5);
    await s.finishRun(finishedAgentStdout(FLAME_GRAPH, 'ITIMER', { collapsed: HOT_B }));
    expect(keys.filter((key) => existsSync(s.artifacts.fileOf(key)))).toEqual([]);
  });
});
