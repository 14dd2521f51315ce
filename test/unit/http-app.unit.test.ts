import { existsSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { LOCAL_CALLER } from '#domain/access.ts';
import type { FlinkNode } from '#domain/ports.ts';
import { aRun } from '#test/support/runs.ts';
import { createTestService, FLAME_GRAPH, finishedAgentStdout, JM, TM } from '#test/support/unit-fakes.ts';

const TM_PROFILER = `/api/v1/clusters/local/taskmanagers/${TM.id}/profiler`;
const JM_PROFILER = '/api/v1/clusters/local/jobmanager/profiler';

/** A response body as JSON; `any` because each test checks the shape it reads. */
// biome-ignore lint/suspicious/noExplicitAny: test helper, shapes are asserted field by field
async function jsonOf(response: Response | Promise<Response>): Promise<any> {
  return (await response).json();
}

async function post(app: ReturnType<typeof createTestService>['app'], path: string, body: unknown): Promise<Response> {
  return app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function errorsOf(response: Response | Promise<Response>): Promise<string[]> {
  return ((await (await response).json()) as { errors: string[] }).errors;
}

describe('POST profiler: validation (400 names the field and the rule)', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['duration 0', { mode: 'ITIMER', duration: 0 }, /^duration: must be a whole number of seconds from 1 to 300$/],
    ['duration 301', { mode: 'ITIMER', duration: 301 }, /^duration: must be a whole number of seconds from 1 to 300$/],
    ['duration "abc"', { mode: 'ITIMER', duration: 'abc' }, /^duration: must be a whole number of seconds/],
    ['duration 1.5', { mode: 'ITIMER', duration: 1.5 }, /^duration: must be a whole number of seconds/],
    ['missing duration', { mode: 'ITIMER' }, /^duration: is required$/],
    ['missing mode', { duration: 30 }, /^mode: is required$/],
    ['unknown mode', { mode: 'HEAP', duration: 30 }, /^mode: must be one of CPU, ALLOC, LOCK, WALL, ITIMER/],
    ['lower-case mode', { mode: 'itimer', duration: 30 }, /^mode: must be one of/],
    ['unknown field', { mode: 'ITIMER', duration: 30, durration: 3 }, /^durration: unknown field/],
    ['not an object', [1, 2], /^body: /],
    ['malformed JSON', '{"mode": "ITIMER",', /^body: /],
  ];
  for (const [name, body, expected] of cases) {
    it(`refuses ${name}`, async () => {
      const { app, dispatcher } = createTestService();
      const response = await post(app, TM_PROFILER, body);
      expect(response.status).toBe(400);
      const errors = await errorsOf(response);
      expect(
        errors.some((e) => expected.test(e)),
        errors.join(' | '),
      ).toBe(true);
      expect(dispatcher.dispatched).toHaveLength(0);
    });
  }

  it('asks for JSON when the body is sent as a form (curl -d without a Content-Type)', async () => {
    const { app } = createTestService();
    const response = await app.request(TM_PROFILER, {
      method: 'POST',
      body: 'mode=ITIMER&duration=30',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(415);
    expect(await errorsOf(response)).toEqual(['Content-Type: must be application/json']);
  });

  it('reports every bad field at once', async () => {
    const { app } = createTestService();
    const errors = await errorsOf(await post(app, TM_PROFILER, { mode: 'X', duration: -1 }));
    expect(errors.map((e) => e.split(':')[0]).sort()).toEqual(['duration', 'mode']);
  });

  it('takes the largest duration from the configuration', async () => {
    const { app } = createTestService({ maxDurationSeconds: 60 });
    const errors = await errorsOf(await post(app, TM_PROFILER, { mode: 'WALL', duration: 61 }));
    expect(errors).toEqual(['duration: must be a whole number of seconds from 1 to 60']);
  });
});

describe('POST profiler: targets', () => {
  it('starts a RUNNING run with Flink fields and dispatches the agent to the node', async () => {
    const { app, dispatcher, clock } = createTestService();
    const response = await post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 });
    expect(response.status).toBe(200);
    const info = await jsonOf(response);
    expect(info).toMatchObject({
      status: 'RUNNING',
      mode: 'ITIMER',
      duration: 30,
      triggerTime: clock.now,
      finishedTime: null,
      message: null,
      outputFile: null,
      cluster: 'local',
      node: TM.id,
      role: 'taskmanager',
    });
    expect(info).not.toHaveProperty('url');
    expect(info).not.toHaveProperty('commandId');
    expect(dispatcher.dispatched.map((d) => [d.run.id, d.node.pid])).toEqual([[info.id, TM.pid]]);
  });

  it('refuses a second run on a busy target with 409 naming the running run', async () => {
    const { app, dispatcher } = createTestService();
    const first = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 }));
    const second = await post(app, TM_PROFILER, { mode: 'WALL', duration: 10 });
    expect(second.status).toBe(409);
    expect((await errorsOf(second))[0]).toContain(first.id);
    expect(dispatcher.dispatched).toHaveLength(1);
    // Another target is not busy.
    expect((await post(app, JM_PROFILER, { mode: 'ITIMER', duration: 30 })).status).toBe(200);
  });

  it('lets only one of many simultaneous requests through', async () => {
    const { app } = createTestService();
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () => post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
  });

  it('answers 404 for an unknown cluster or node', async () => {
    const { app } = createTestService();
    const unknownCluster = await post(app, '/api/v1/clusters/prod/jobmanager/profiler', {
      mode: 'ITIMER',
      duration: 30,
    });
    expect(unknownCluster.status).toBe(404);
    expect(await errorsOf(unknownCluster)).toEqual(["cluster 'prod' not found"]);
    const unknownNode = await post(app, '/api/v1/clusters/local/taskmanagers/nope/profiler', {
      mode: 'ITIMER',
      duration: 30,
    });
    expect(unknownNode.status).toBe(404);
    expect(await errorsOf(unknownNode)).toEqual(["taskmanager 'nope' not found in cluster 'local'"]);
    // A JobManager's node id is not a TaskManager.
    const wrongRole = await post(app, `/api/v1/clusters/local/taskmanagers/${JM.id}/profiler`, {
      mode: 'ITIMER',
      duration: 30,
    });
    expect(wrongRole.status).toBe(404);
  });

  it('fails the run, not the request, when the agent cannot be dispatched', async () => {
    const { app, dispatcher } = createTestService();
    dispatcher.failWith = new Error('spawn bash ENOENT');
    const response = await post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 });
    expect(response.status).toBe(200);
    const info = await jsonOf(response);
    expect(info.status).toBe('FAILED');
    expect(info.message).toMatch(/^Start profiler failed\. .*spawn bash ENOENT/);
    dispatcher.failWith = undefined;
    expect((await post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 })).status).toBe(200);
  });
});

describe('completion, links and history', () => {
  it('finishes a run from the agent output, with links that serve the flame graph', async () => {
    const { app, profiler, artifacts, clock } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 }));
    clock.now += 30_500;
    await profiler.completeRun(run.id, { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 });

    const list = await jsonOf(app.request(TM_PROFILER));
    expect(list.profilingList).toHaveLength(1);
    const [info] = list.profilingList;
    expect(info).toMatchObject({ status: 'FINISHED', message: 'Profiling Successful', finishedTime: clock.now });
    expect(info.outputFile).toBe(`${TM.id}_ITIMER_2026-11-27_10_00_30.html`);

    const url = new URL(info.url);
    const opened = await artifacts.open(Object.fromEntries(url.searchParams));
    expect(opened.disposition).toBe('inline');
    expect(opened.fileName).toBe(info.outputFile);
    expect(new URL(info.downloadUrl).searchParams.get('disposition')).toBe('attachment');

    const download = await app.request(`${TM_PROFILER}/${info.outputFile}`);
    expect(download.status).toBe(302);
    expect(new URL(download.headers.get('location') ?? '').searchParams.get('key')).toBe(url.searchParams.get('key'));
    expect((await app.request(`${TM_PROFILER}/taskmanager_CPU_2020-01-01_00_00_00.html`)).status).toBe(404);
    expect((await app.request(`${TM_PROFILER}/other.html`)).status).toBe(400);
  });

  it('fails a run with the agent message, and ignores a repeated completion', async () => {
    const { app, profiler } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'CPU', duration: 5 }));
    const failed =
      'FLINK_PROFILER_RESULT status=FAILED pid=4242 mode=CPU message=Start profiler failed. Perf events unavailable.\n';
    await profiler.completeRun(run.id, { stdout: failed, stderr: '', exitCode: 5 });
    await profiler.completeRun(run.id, { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 });
    const info = await jsonOf(app.request(`/api/v1/runs/${run.id}`));
    expect(info).toMatchObject({
      status: 'FAILED',
      message: 'Start profiler failed. Perf events unavailable.',
      outputFile: null,
    });
  });

  it('fails a run whose agent died without a result, quoting its last error', async () => {
    const { app, profiler } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'CPU', duration: 5 }));
    await profiler.completeRun(run.id, {
      stdout: '',
      stderr: 'line 1\nbash: asprof: Permission denied\n',
      exitCode: 126,
    });
    const info = await jsonOf(app.request(`/api/v1/runs/${run.id}`));
    expect(info.message).toBe('The node agent exited with code 126 without a result: bash: asprof: Permission denied');
  });

  it('refuses a flame graph damaged in transit (it no longer matches its digest) instead of storing it', async () => {
    const { app, profiler } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'CPU', duration: 5 }));
    const truncated = finishedAgentStdout(FLAME_GRAPH).replace(
      /-----BEGIN FLINK PROFILE-----\n(.{20}).*/s,
      '-----BEGIN FLINK PROFILE-----\n$1\n-----END FLINK PROFILE-----\n',
    );
    await profiler.completeRun(run.id, { stdout: truncated, stderr: '', exitCode: 0 });
    const info = await jsonOf(app.request(`/api/v1/runs/${run.id}`));
    expect(info.status).toBe('FAILED');
    expect(info.message).toMatch(
      /^Stop profiler failed\. The flame graph that arrived is not the one the node agent wrote/,
    );
  });

  it('keeps historySize runs per target and deletes the trimmed flame graphs', async () => {
    const { app, profiler, artifacts, clock } = createTestService({ historySize: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 1 }));
      ids.push(run.id);
      clock.now += 2000;
      await profiler.completeRun(run.id, { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 });
    }
    const firstTwo = await Promise.all(ids.slice(0, 2).map((id) => app.request(`/api/v1/runs/${id}`)));
    expect(firstTwo.map((r) => r.status)).toEqual([404, 404]);
    const list = (await jsonOf(app.request(TM_PROFILER))).profilingList;
    expect(list.map((r: { id: string }) => r.id)).toEqual(ids.slice(2).reverse());
    // Only the kept runs' files remain in the store.
    const kept = await Promise.all(ids.slice(2).map((id) => profiler.getRun(LOCAL_CALLER, id)));
    for (const run of kept) expect(existsSync(artifacts.fileOf(run.artifactKey as string))).toBe(true);
    const keyOf = (i: number) =>
      `profiles/local/taskmanager/${TM.id}/${TM.id}_ITIMER_2026-11-27_10_00_0${2 * (i + 1)}.html`;
    expect(existsSync(artifacts.fileOf(keyOf(0)))).toBe(false);
    expect(existsSync(artifacts.fileOf(keyOf(1)))).toBe(false);
  });
});

describe('reconciling', () => {
  it('fails a run whose command is lost once its duration is over, and frees the target', async () => {
    const { app, profiler, dispatcher, clock } = createTestService({ graceSeconds: 60 });
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 }));
    dispatcher.states.set(run.id, { state: 'lost', reason: 'The node agent left no output; start a new run.' });
    clock.now += 29_000;
    expect(await profiler.reconcile('overdue')).toEqual([]);
    clock.now += 2_000;
    const settled = await profiler.reconcile('overdue');
    expect(settled.map((r) => [r.id, r.status, r.message])).toEqual([
      [run.id, 'FAILED', 'The node agent left no output; start a new run.'],
    ]);
    expect((await post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 })).status).toBe(200);
  });

  it('fails a run whose agent still runs past the deadline its command’s time limits give', async () => {
    const { app, profiler, clock } = createTestService({ graceSeconds: 10, deliveryTimeoutSeconds: 30 });
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 5 }));
    // Delivery (30 s) + the step's limit (5 s + 210 s) + the margin (10 s): 255 s.
    clock.now += 255_000;
    expect(await profiler.reconcile('overdue')).toEqual([]);
    clock.now += 1_000;
    const [settled] = await profiler.reconcile('overdue');
    expect(settled?.id).toBe(run.id);
    expect(settled?.message).toMatch(/no result within 255 s/);
  });

  it('fails a run past its deadline whatever reading its command answers', async () => {
    const { app, profiler, dispatcher, clock } = createTestService({ graceSeconds: 10 });
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 5 }));
    vi.spyOn(dispatcher, 'inspect').mockRejectedValue(new Error('the output of command c-1 is not in S3 yet'));
    clock.now += 60_000;
    expect(await profiler.reconcile('overdue')).toEqual([]);
    expect((await profiler.getRun(LOCAL_CALLER, run.id)).status).toBe('RUNNING');
    clock.now += 170_000;
    const [settled] = await profiler.reconcile('overdue');
    expect(settled).toMatchObject({ id: run.id, status: 'FAILED' });
    expect(settled?.message).toMatch(/Last heard: the output of command c-1 is not in S3 yet$/);
  });

  it('leaves a run whose dispatch is still under way, and fails it once overdue', async () => {
    const { profiler, runs, dispatcher, clock } = createTestService({ graceSeconds: 10 });
    // What the store holds between the insert and the end of the dispatch: a RUNNING run with no command.
    const run = aRun({ cluster: 'local', node: TM.id, duration: 5, triggerTime: clock.now });
    await runs.insertRunning(run);
    dispatcher.states.set(run.id, { state: 'lost', reason: 'never dispatched' });
    expect(await profiler.reconcile('all')).toEqual([]);
    expect((await profiler.getRun(LOCAL_CALLER, run.id)).status).toBe('RUNNING');
    clock.now += 226_000;
    const [settled] = await profiler.reconcile('all');
    expect(settled).toMatchObject({ id: run.id, status: 'FAILED', message: 'never dispatched' });
  });

  it('finishes a run from the output of a command that ended while nobody listened', async () => {
    const { app, profiler, dispatcher } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 5 }));
    dispatcher.states.set(run.id, {
      state: 'ended',
      output: { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: null },
    });
    expect(await profiler.reconcile('overdue')).toEqual([]);
    const [settled] = await profiler.reconcile('all');
    expect(settled).toMatchObject({ id: run.id, status: 'FINISHED' });
  });
});

describe('reading', () => {
  it('lists clusters and nodes with the run in progress', async () => {
    const { app } = createTestService();
    const run = await jsonOf(post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 }));
    expect(await jsonOf(app.request('/api/v1/clusters'))).toEqual({ clusters: [{ id: 'local', nodes: 2, teams: [] }] });
    const { nodes } = await jsonOf(app.request('/api/v1/clusters/local/nodes'));
    expect(nodes).toEqual([{ ...JM }, { ...TM, runningRunId: run.id }]);
    expect((await app.request('/api/v1/clusters/prod/nodes')).status).toBe(404);
  });

  it('lists runs across targets newest first, filtered and paged', async () => {
    const { app, profiler, clock } = createTestService();
    const created: string[] = [];
    for (const path of [TM_PROFILER, JM_PROFILER, TM_PROFILER]) {
      const run = await jsonOf(post(app, path, { mode: 'ITIMER', duration: 1 }));
      created.push(run.id);
      clock.now += 1500;
      await profiler.completeRun(run.id, { stdout: finishedAgentStdout(FLAME_GRAPH), stderr: '', exitCode: 0 });
    }
    const page1 = await jsonOf(app.request('/api/v1/runs?limit=2'));
    expect(page1.runs.map((r: { id: string }) => r.id)).toEqual([created[2], created[1]]);
    const page2 = await jsonOf(app.request(`/api/v1/runs?limit=2&nextToken=${page1.nextToken}`));
    expect(page2.runs.map((r: { id: string }) => r.id)).toEqual([created[0]]);
    expect(page2.nextToken).toBeUndefined();
    const tms = await jsonOf(app.request('/api/v1/runs?role=taskmanager&status=FINISHED'));
    expect(tms.runs.map((r: { id: string }) => r.id)).toEqual([created[2], created[0]]);
    expect(tms.runs[0].url).toMatch(/^http:\/\/profiler\.test\/artifacts\//);
  });

  it('refuses bad list filters naming the parameter', async () => {
    const { app } = createTestService();
    const response = await app.request('/api/v1/runs?status=DONE&limit=0');
    expect(response.status).toBe(400);
    expect((await errorsOf(response)).sort()).toEqual([
      'limit: must be a whole number from 1 to 100',
      'status: must be one of RUNNING, FINISHED, FAILED',
    ]);
    expect(await errorsOf(await app.request('/api/v1/runs?nextToken=garbage'))).toEqual([
      'nextToken: is not a token this service handed out for this query',
    ]);
    expect((await app.request(`/api/v1/runs/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await app.request('/api/v1/runs/unknown')).status).toBe(400);
  });

  it('answers a fault with a generic 500 and keeps the details out of the response', async () => {
    const { app, runs } = createTestService();
    runs.close();
    const response = await app.request('/api/v1/runs');
    expect(response.status).toBe(500);
    expect(await errorsOf(response)).toEqual(['Internal server error; the details are in the service log.']);
  });

  it('serves an OpenAPI document of every endpoint, from the same schemas', async () => {
    const { app } = createTestService();
    const doc = await jsonOf(app.request('/api/v1/openapi.json'));
    const paths = Object.keys(doc.paths).sort();
    expect(paths).toEqual(
      [
        '/api/v1/clusters',
        '/api/v1/clusters/{cluster}/jobmanager/profiler',
        '/api/v1/clusters/{cluster}/jobmanager/profiler/{outputFile}',
        '/api/v1/clusters/{cluster}/nodes',
        '/api/v1/clusters/{cluster}/profiler',
        '/api/v1/config',
        '/api/v1/me',
        '/api/v1/clusters/{cluster}/taskmanagers/{node}/profiler',
        '/api/v1/clusters/{cluster}/taskmanagers/{node}/profiler/{outputFile}',
        '/api/v1/runs',
        '/api/v1/runs/{id}',
        '/api/v1/runs/{id}/profile',
        '/api/v1/runs/{id}/frames',
        '/api/v1/runs/{id}/threads',
        '/api/v1/runs/{id}/diff',
        '/api/v1/groups/{groupId}/profile',
        '/api/v1/groups/{groupId}/frames',
      ].sort(),
    );
    const body =
      doc.paths['/api/v1/clusters/{cluster}/jobmanager/profiler'].post.requestBody.content['application/json'].schema;
    expect(body.properties.duration).toMatchObject({ type: 'integer', minimum: 1, maximum: 300 });
    expect(body.properties.mode.enum).toEqual(['CPU', 'ALLOC', 'LOCK', 'WALL', 'ITIMER']);
  });
});

describe('GET config', () => {
  it("tells clients the duration limit, the history size and every mode with Flink's description", async () => {
    const { app } = createTestService({ maxDurationSeconds: 120, historySize: 7 });
    const config = await jsonOf(app.request('/api/v1/config'));
    expect(config).toMatchObject({ maxDurationSeconds: 120, historySize: 7, defaultMode: 'ITIMER' });
    expect(config.modes.map((m: { mode: string }) => m.mode)).toEqual(['CPU', 'ALLOC', 'LOCK', 'WALL', 'ITIMER']);
    expect(config.modes.find((m: { mode: string }) => m.mode === 'ITIMER').description).toMatch(/no perf_events/);
  });
});

describe('POST fan-out: one run per target', () => {
  const FAN_OUT = '/api/v1/clusters/local/profiler';
  const TM2: FlinkNode = { id: '4343-110', role: 'taskmanager', host: 'test-host-2', pid: 4343, reachable: true };
  const TM3: FlinkNode = { id: '4444-120', role: 'taskmanager', host: 'test-host-3', pid: 4444, reachable: true };
  const withThreeTaskManagers = () => {
    const service = createTestService();
    service.discovery.nodes.push(TM2, TM3);
    return service;
  };

  it('starts a RUNNING run on every TaskManager, sharing one groupId, dispatched in one batch', async () => {
    const { app, dispatcher } = withThreeTaskManagers();
    const dispatch = vi.spyOn(dispatcher, 'dispatch');
    const response = await post(app, FAN_OUT, { mode: 'ITIMER', duration: 30, role: 'taskmanager' });
    expect(response.status).toBe(200);
    const result = await jsonOf(response);
    expect(result.skipped).toEqual([]);
    expect(result.runs.map((r: { node: string }) => r.node)).toEqual([TM.id, TM2.id, TM3.id]);
    for (const run of result.runs) {
      expect(run).toMatchObject({ status: 'RUNNING', mode: 'ITIMER', duration: 30, role: 'taskmanager' });
      expect(run.groupId).toBe(result.groupId);
    }
    expect(dispatch).toHaveBeenCalledTimes(1);
    expect(dispatch.mock.calls[0]?.[0].map((r) => r.node.pid)).toEqual([TM.pid, TM2.pid, TM3.pid]);
    // The group id is kept with each run, and a run started alone has none.
    const single = await jsonOf(post(app, JM_PROFILER, { mode: 'WALL', duration: 5 }));
    expect(single.groupId).toBeNull();
    const listed = await jsonOf(app.request('/api/v1/runs?role=taskmanager'));
    expect(listed.runs.map((r: { groupId: string }) => r.groupId)).toEqual(Array(3).fill(result.groupId));
  });

  it('skips a busy target and reports why, starting the others', async () => {
    const { app, dispatcher } = withThreeTaskManagers();
    const busy = await jsonOf(post(app, TM_PROFILER, { mode: 'WALL', duration: 60 }));
    const response = await post(app, FAN_OUT, { mode: 'ITIMER', duration: 10, role: 'taskmanager' });
    expect(response.status).toBe(200);
    const result = await jsonOf(response);
    expect(result.runs.map((r: { node: string }) => r.node)).toEqual([TM2.id, TM3.id]);
    expect(result.skipped).toEqual([
      {
        node: TM.id,
        role: 'taskmanager',
        runningRunId: busy.id,
        reason: `taskmanager '${TM.id}' of cluster 'local' is busy: run ${busy.id} is still RUNNING; wait for it to finish`,
      },
    ]);
    expect(dispatcher.dispatched.map((d) => d.node.id)).toEqual([TM.id, TM2.id, TM3.id]);
  });

  it('profiles only the nodes named, once each, and reports unknown names', async () => {
    const { app } = withThreeTaskManagers();
    const result = await jsonOf(
      post(app, FAN_OUT, { mode: 'ALLOC', duration: 5, role: 'taskmanager', nodes: [TM3.id, 'gone', TM3.id, TM.id] }),
    );
    expect(result.runs.map((r: { node: string }) => r.node)).toEqual([TM3.id, TM.id]);
    expect(result.skipped).toEqual([
      { node: 'gone', role: 'taskmanager', reason: "taskmanager 'gone' not found in cluster 'local'" },
    ]);
  });

  it('answers every target with nothing started when all are busy', async () => {
    const { app, dispatcher } = createTestService();
    await post(app, TM_PROFILER, { mode: 'ITIMER', duration: 30 });
    const dispatch = vi.spyOn(dispatcher, 'dispatch');
    const result = await jsonOf(post(app, FAN_OUT, { mode: 'ITIMER', duration: 30, role: 'taskmanager' }));
    expect(result.runs).toEqual([]);
    expect(result.skipped.map((s: { node: string }) => s.node)).toEqual([TM.id]);
    expect(dispatch).not.toHaveBeenCalled();
  });

  it('fails the runs, not the request, when the batch cannot be dispatched', async () => {
    const { app, dispatcher } = withThreeTaskManagers();
    dispatcher.failWith = new Error('ThrottlingException: Rate exceeded');
    const result = await jsonOf(post(app, FAN_OUT, { mode: 'ITIMER', duration: 30, role: 'taskmanager' }));
    expect(result.runs.map((r: { status: string }) => r.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);
    expect(result.runs[0].message).toMatch(/^Start profiler failed\. .*Rate exceeded/);
  });

  it('refuses bad input with 400 naming each field', async () => {
    const { app, dispatcher } = withThreeTaskManagers();
    const cases: Array<[unknown, string[]]> = [
      [{ mode: 'ITIMER', duration: 30 }, ['role: is required']],
      [
        { mode: 'ITIMER', duration: 0, role: 'worker' },
        ['duration: must be a whole number of seconds from 1 to 300', 'role: must be one of jobmanager, taskmanager'],
      ],
      [
        { mode: 'ITIMER', duration: 30, role: 'taskmanager', nodes: [] },
        ['nodes: must be a list of 1 to 200 node ids (at most 200 targets per fan-out)'],
      ],
      [
        { mode: 'ITIMER', duration: 30, role: 'taskmanager', nodes: [''] },
        ['nodes.0: must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit'],
      ],
      [
        { mode: 'ITIMER', duration: 30, role: 'taskmanager', sample: 2 },
        ['sample: unknown field; only mode, duration, role and nodes are accepted'],
      ],
    ];
    for (const [body, expected] of cases) {
      const response = await post(app, FAN_OUT, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await errorsOf(response)).sort()).toEqual(expected);
    }
    expect(dispatcher.dispatched).toHaveLength(0);
  });

  it('answers 404 for an unknown cluster, or a cluster with no node of the role', async () => {
    const { app, discovery } = createTestService();
    const unknown = await post(app, '/api/v1/clusters/prod/profiler', {
      mode: 'ITIMER',
      duration: 30,
      role: 'taskmanager',
    });
    expect(unknown.status).toBe(404);
    expect(await errorsOf(unknown)).toEqual(["cluster 'prod' not found"]);
    discovery.nodes = [JM];
    const none = await post(app, FAN_OUT, { mode: 'ITIMER', duration: 30, role: 'taskmanager' });
    expect(none.status).toBe(404);
    expect(await errorsOf(none)).toEqual(["no taskmanager found in cluster 'local'"]);
  });

  it('describes the fan-out in the OpenAPI document', async () => {
    const { app } = createTestService();
    const doc = await jsonOf(app.request('/api/v1/openapi.json'));
    const route = doc.paths['/api/v1/clusters/{cluster}/profiler'].post;
    const body = route.requestBody.content['application/json'].schema;
    expect(body.required.sort()).toEqual(['duration', 'mode', 'role']);
    expect(body.properties.role.enum).toEqual(['jobmanager', 'taskmanager']);
    expect(Object.keys(route.responses).sort()).toEqual(['200', '400', '404']);
    expect(doc.components.schemas.FanOutResult.required.sort()).toEqual(['groupId', 'runs', 'skipped']);
    expect(doc.components.schemas.ServiceConfig.properties.maxDurationSeconds.type).toBe('integer');
  });
});
