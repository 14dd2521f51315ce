import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import { LOCAL_CALLER } from '#domain/access.ts';
import type { FlinkNode, RuleScheduler } from '#domain/ports.ts';
import type { ProfilerSettings } from '#domain/profiler-service.ts';
import type { Rule, RuleSpecInput } from '#domain/rule.ts';
import { RuleService } from '#domain/rule-service.ts';
import { createApp } from '#http/app.ts';
import { LocalRuleTicker } from '#local/rule-ticker.ts';
import { createTestService, JM, silentLog, TM } from '#test/support/unit-fakes.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

/** A RuleScheduler that records what it was asked to do (the AWS and local ones have their own tests). */
class RecordingScheduler implements RuleScheduler {
  readonly puts: Rule[] = [];
  readonly removed: string[] = [];
  failWith?: Error;
  async put(rule: Rule) {
    if (this.failWith) throw this.failWith;
    this.puts.push(rule);
  }
  async remove(ruleId: string) {
    this.removed.push(ruleId);
  }
}

const taskManagers = (count: number): FlinkNode[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `tm-${i + 1}`,
    role: 'taskmanager' as const,
    host: `host-${i + 1}`,
    reachable: true,
  }));

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The profiler of the unit tier (SQLite in memory, a recording dispatcher, a clock the test moves) plus rules. */
function setup(options: { ruleFile?: string; random?: () => number; settings?: Partial<ProfilerSettings> } = {}) {
  // Local mode's shortest rule interval (a minute) unless a test sets the guardrails.
  const service = createTestService({ minRuleIntervalSeconds: 60, ...options.settings });
  dirs.push(service.dir);
  const store = new SqliteRuleStore(options.ruleFile ?? ':memory:');
  const scheduler = new RecordingScheduler();
  const rules = new RuleService({
    rules: store,
    scheduler,
    profiler: service.profiler,
    discovery: service.discovery,
    log: silentLog,
    now: () => service.clock.now,
    random: options.random,
  });
  const app = createApp({ profiler: service.profiler, rules, log: silentLog });
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.request(`/api/v1${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : undefined };
  };
  return { ...service, store, scheduler, rules, call };
}

const nightly: RuleSpecInput = {
  name: 'nightly TaskManagers',
  cluster: 'local',
  target: { role: 'taskmanager' },
  mode: 'ITIMER',
  duration: 30,
  schedule: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Berlin',
  enabled: true,
};

describe('rules API', () => {
  it('creates a rule (201) with its next fire time and a schedule, and lists and reads it', async () => {
    const { call, scheduler, clock } = setup();
    clock.now = Date.parse('2026-11-27T10:00:00Z');
    const created = await call('POST', '/rules', nightly);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      ...nightly,
      id: expect.any(String),
      version: 1,
      lastFiredAt: null,
      nextFireAt: Date.parse('2026-11-28T02:00:00Z'), // 03:00 in Berlin (CET)
      lastFiring: null,
    });
    expect(created.body).not.toHaveProperty('lastScheduledAt');
    expect(scheduler.puts.map((r) => r.id)).toEqual([created.body.id]);

    const list = await call('GET', '/rules');
    expect(list.body.rules.map((r: Json) => r.id)).toEqual([created.body.id]);
    expect((await call('GET', `/rules/${created.body.id}`)).body).toEqual(created.body);
  });

  it('defaults the time zone to UTC and fires a rate rule at once, as EventBridge Scheduler does', async () => {
    const { call, clock } = setup();
    const { timezone: _tz, ...withoutZone } = nightly;
    const created = await call('POST', '/rules', { ...withoutZone, schedule: 'rate(1 hour)' });
    expect(created.body).toMatchObject({ timezone: 'UTC', nextFireAt: clock.now });
  });

  it.each([
    [{ schedule: 'cron(0 3 * * MOX *)' }, "schedule: cron day-of-week field 'MOX' is not a weekday (1-7 or SUN-SAT)"],
    [{ schedule: 'rate(5 minute)' }, 'schedule: rate unit must be plural for 5: rate(5 minutes)'],
    [
      { timezone: 'Europe/Berln' },
      "timezone: 'Europe/Berln' is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)",
    ],
    [
      { target: { role: 'taskmanager', nodes: ['a', 'b'], sample: 3 } },
      'target.sample: must not exceed the 2 nodes listed in target.nodes',
    ],
    [{ target: { role: 'worker' } }, 'target.role: must be one of jobmanager, taskmanager'],
    [
      { target: { role: 'taskmanager', sample: 0 } },
      'target.sample: must be a whole number from 1 to 200 (at most 200 targets per firing)',
    ],
    [{ mode: 'cpu' }, 'mode: must be one of CPU, ALLOC, LOCK, WALL, ITIMER (upper case)'],
    [{ duration: 301 }, 'duration: must be a whole number of seconds from 1 to 300'],
    [{ enabled: undefined }, 'enabled: is required'],
    [{ name: '  ' }, 'name: must be a text of 1 to 100 characters'],
    [
      { owner: 'me' },
      'owner: unknown field; only name, cluster, target, mode, duration, schedule, timezone, enabled and team are accepted',
    ],
    [
      { schedule: 'at(2026-03-29T02:30:00)' },
      'schedule: 2026-03-29T02:30:00 does not exist in Europe/Berlin: the clocks skip it (daylight saving time)',
    ],
    [{ schedule: 'at(2020-01-01T00:00:00)' }, 'schedule: at(2020-01-01T00:00:00) is in the past in Europe/Berlin'],
  ])('answers 400 naming the field and the rule: %j', async (change, reason) => {
    const { call, scheduler } = setup();
    const response = await call('POST', '/rules', { ...nightly, ...change });
    expect(response).toEqual({ status: 400, body: { errors: [reason] } });
    expect(scheduler.puts).toEqual([]);
  });

  it('answers 404 for an unknown cluster and an unknown rule', async () => {
    const { call } = setup();
    expect(await call('POST', '/rules', { ...nightly, cluster: 'prod' })).toEqual({
      status: 404,
      body: { errors: ["cluster 'prod' not found"] },
    });
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', nightly],
      ['DELETE', undefined],
    ] as const) {
      const unknown = crypto.randomUUID();
      expect(await call(method, `/rules/${unknown}`, body)).toEqual({
        status: 404,
        body: { errors: [`rule '${unknown}' not found`] },
      });
      expect(await call(method, '/rules/nope', body)).toEqual({
        status: 400,
        body: { errors: ['id: must be an id this service handed out (a lower-case UUID)'] },
      });
    }
  });

  it('replaces a rule: a rule read can be sent back; a stale version is refused with 409', async () => {
    const { call, scheduler, clock } = setup();
    const created = (await call('POST', '/rules', nightly)).body;
    clock.now += 1000;
    const edited = await call('PUT', `/rules/${created.id}`, { ...created, name: 'renamed' });
    expect(edited.status).toBe(200);
    // Same schedule and zone: the next fire time stays.
    expect(edited.body).toMatchObject({ name: 'renamed', version: 2, nextFireAt: created.nextFireAt });
    expect(scheduler.puts.map((r) => r.version)).toEqual([1, 2]);

    const stale = await call('PUT', `/rules/${created.id}`, { ...created, name: 'stale' });
    expect(stale.status).toBe(409);
    expect(stale.body.errors[0]).toMatch(/was changed since version 1 \(it is at version 2\)/);

    const disabled = await call('PUT', `/rules/${created.id}`, { ...nightly, enabled: false });
    expect(disabled.body).toMatchObject({ enabled: false, nextFireAt: null, version: 3 });
    expect(scheduler.puts.at(-1)).toMatchObject({ enabled: false });

    const wrongId = await call('PUT', `/rules/${created.id}`, { ...nightly, id: 'other' });
    expect(wrongId.body.errors).toEqual([
      `id: 'other' is not the id of the rule addressed ('${created.id}'); leave it out`,
    ]);
  });

  it('deletes a rule with its schedule (204), then answers 404', async () => {
    const { call, scheduler } = setup();
    const created = (await call('POST', '/rules', nightly)).body;
    expect((await call('DELETE', `/rules/${created.id}`)).status).toBe(204);
    expect(scheduler.removed).toEqual([created.id]);
    expect((await call('GET', `/rules/${created.id}`)).status).toBe(404);
  });

  it('keeps no rule whose schedule could not be created', async () => {
    const { call, scheduler } = setup();
    scheduler.failWith = new Error('scheduler down');
    expect((await call('POST', '/rules', nightly)).status).toBe(500);
    expect((await call('GET', '/rules')).body.rules).toEqual([]);
  });

  it('describes the rules endpoints in the OpenAPI document', async () => {
    const { call } = setup();
    const doc = (await call('GET', '/openapi.json')).body;
    expect(Object.keys(doc.paths['/api/v1/rules'])).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/rules/{id}'])).toEqual(['get', 'put', 'delete']);
    expect(doc.components.schemas.Rule.properties).toHaveProperty('nextFireAt');
  });
});

describe('firing a rule', () => {
  it('starts one run per target in one batch, tagged with the rule; a busy target is skipped, not failed', async () => {
    const s = setup();
    s.discovery.nodes = [JM, ...taskManagers(3)];
    const dispatch = vi.spyOn(s.dispatcher, 'dispatch');
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    // tm-2 is busy with a run somebody started by hand.
    const busy = await s.profiler.startRun({
      caller: LOCAL_CALLER,
      cluster: 'local',
      role: 'taskmanager',
      node: 'tm-2',
      mode: 'CPU',
      duration: 60,
    });
    dispatch.mockClear();

    const outcome = await s.rules.fireRule(rule.id);
    expect(outcome.fired).toBe(true);
    expect(dispatch).toHaveBeenCalledTimes(1);
    expect(dispatch.mock.calls[0]?.[0].map((r) => r.node.id).sort()).toEqual(['tm-1', 'tm-3']);

    const read = await s.call('GET', `/rules/${rule.id}`);
    expect(read.body).toMatchObject({
      lastFiredAt: s.clock.now,
      nextFireAt: s.clock.now + 3_600_000,
      lastFiring: {
        at: s.clock.now,
        scheduledAt: s.clock.now,
        runIds: expect.any(Array),
        skipped: [{ node: 'tm-2', reason: expect.stringContaining('is busy'), runningRunId: busy.id }],
        skippedCount: 1,
      },
    });
    const runs = (await s.call('GET', `/runs?ruleId=${rule.id}`)).body.runs;
    expect(runs.map((r: Json) => r.node).sort()).toEqual(['tm-1', 'tm-3']);
    expect(runs.map((r: Json) => r.status)).toEqual(['RUNNING', 'RUNNING']);
    expect(runs.map((r: Json) => r.id).sort()).toEqual([...read.body.lastFiring.runIds].sort());
    expect(runs[0]).toMatchObject({
      ruleId: rule.id,
      requestedBy: `rule:${rule.id}`,
      mode: 'ITIMER',
      duration: 30,
    });
  });

  it('profiles the listed nodes, reporting those not found; samples N at random per firing', async () => {
    const s = setup({ random: () => 0.999 });
    s.discovery.nodes = taskManagers(5);
    const listed = await s.rules.create(LOCAL_CALLER, {
      ...nightly,
      schedule: 'rate(1 hour)',
      target: { role: 'taskmanager', nodes: ['tm-1', 'tm-9'] },
    });
    const firing = await s.rules.fireRule(listed.id);
    expect(firing.fired && firing.firing.skipped).toEqual([
      { node: 'tm-9', reason: "taskmanager 'tm-9' not found in cluster 'local'" },
    ]);
    expect(firing.fired && firing.firing.runIds).toHaveLength(1);

    const sampled = await s.rules.create(LOCAL_CALLER, {
      ...nightly,
      mode: 'WALL',
      schedule: 'rate(1 hour)',
      target: { role: 'taskmanager', sample: 2 },
    });
    for (const run of await s.runs.listRunning())
      await s.profiler.completeRun(run.id, { stdout: '', stderr: '', exitCode: 1 });
    const before = s.dispatcher.dispatched.length;
    const picked = await s.rules.fireRule(sampled.id);
    expect(picked.fired && picked.firing.runIds).toHaveLength(2);
    // random() = 0.999: each draw takes the last place left of the pool tm-1 … tm-5.
    expect(s.dispatcher.dispatched.slice(before).map((d) => d.node.id)).toEqual(['tm-5', 'tm-1']);
  });

  it('records why nothing started: an unknown cluster, or no node of the role', async () => {
    const s = setup();
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    s.discovery.nodes = [JM];
    const outcome = await s.rules.fireRule(rule.id);
    expect(outcome.fired && outcome.firing).toMatchObject({
      runIds: [],
      error: "no taskmanager found in cluster 'local'",
    });
  });

  it('skips a stale trigger, a disabled rule and a deleted one', async () => {
    const s = setup();
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    await s.rules.replace(LOCAL_CALLER, rule.id, { ...nightly, schedule: 'rate(2 hours)' });
    expect(await s.rules.fireRule(rule.id, { version: 1 })).toEqual({
      ruleId: rule.id,
      fired: false,
      reason: 'stale trigger: version 1, rule is at 2',
    });
    await s.rules.replace(LOCAL_CALLER, rule.id, { ...nightly, enabled: false });
    expect(await s.rules.fireRule(rule.id, { version: 3 })).toMatchObject({
      fired: false,
      reason: 'the rule is disabled',
    });
    await s.rules.delete(LOCAL_CALLER, rule.id);
    expect(await s.rules.fireRule(rule.id)).toMatchObject({
      fired: false,
      reason: 'the rule does not exist (deleted)',
    });
    expect(s.dispatcher.dispatched).toEqual([]);
  });

  it('refuses a second firing for the same scheduled time (a retried tick)', async () => {
    const s = setup();
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    const scheduledAt = rule.nextFireAt as number;
    expect((await s.rules.fireRule(rule.id, { version: 1, scheduledAt })).fired).toBe(true);
    expect(await s.rules.fireRule(rule.id, { version: 1, scheduledAt })).toMatchObject({
      fired: false,
      reason: `already fired for ${new Date(scheduledAt).toISOString()}`,
    });
    expect(s.dispatcher.dispatched).toHaveLength(1);
  });

  it('keeps per-target history trimming for the runs it starts', async () => {
    const s = setup();
    const historySize = s.profiler.settings.historySize;
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)', duration: 1 });
    for (let i = 0; i < historySize + 3; i++) {
      await s.rules.fireRule(rule.id);
      for (const run of await s.runs.listRunning())
        await s.profiler.completeRun(run.id, { stdout: '', stderr: '', exitCode: 1 });
      s.clock.now += 3_600_000;
    }
    expect(await s.runs.listForTarget({ cluster: 'local', role: 'taskmanager', node: TM.id }, 100)).toHaveLength(
      historySize,
    );
  });
});

describe('local scheduling across restarts (injected clock, one SQLite file)', () => {
  const ruleFile = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ffp-rules-'));
    dirs.push(dir);
    return join(dir, 'runs.sqlite');
  };

  it('fires due rules on time, never twice for one time, and once for all the times missed while down', async () => {
    const file = ruleFile();
    const first = setup({ ruleFile: file });
    const t0 = Date.parse('2026-11-27T10:00:00Z');
    first.clock.now = t0;
    const rule = await first.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'cron(0/15 * * * ? *)', duration: 1 });
    expect(rule.nextFireAt).toBe(t0); // 10:00 matches

    expect(await first.rules.fireDue()).toHaveLength(1);
    expect(await first.rules.fireDue()).toEqual([]); // nothing more is due
    first.clock.now = t0 + 15 * 60_000;
    expect((await first.rules.fireDue()).map((o) => o.fired)).toEqual([true]);
    first.store.close();

    // Restart at the same instant: the firing of 10:15 is on record, so the new server does not repeat it.
    const second = setup({ ruleFile: file });
    second.clock.now = t0 + 15 * 60_000 + 500;
    expect(await second.rules.fireDue()).toEqual([]);

    // Down from 10:16 to 11:07: four firings missed (10:30 … 11:00): one firing at start-up, then on time.
    second.clock.now = t0 + 67 * 60_000;
    const caughtUp = await second.rules.fireDue();
    expect(caughtUp).toHaveLength(1);
    expect(caughtUp[0]?.fired && caughtUp[0].firing.scheduledAt).toBe(t0 + 30 * 60_000);
    const after = await second.rules.get(LOCAL_CALLER, rule.id);
    expect(after).toMatchObject({ lastFiredAt: t0 + 67 * 60_000, nextFireAt: t0 + 75 * 60_000 });
    expect(await second.rules.fireDue()).toEqual([]);
  });

  it('lets two schedulers on one file fire a due rule once: the same runs, whichever gets there', async () => {
    const file = ruleFile();
    const a = setup({ ruleFile: file });
    const b = setup({ ruleFile: file });
    b.clock.now = a.clock.now;
    await a.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 minute)' });
    const outcomes = (await Promise.all([a.rules.fireDue(), b.rules.fireDue()])).flat();
    // The second may finish what the first claimed (it cannot tell a slow scheduler from a dead one), but the
    // runs it names are the same ones: their ids derive from the rule, the scheduled time and the target.
    const runIds = outcomes.flatMap((o) => (o.fired ? [o.firing.runIds.join(',')] : []));
    expect(runIds.length).toBeGreaterThanOrEqual(1);
    expect(new Set(runIds).size).toBe(1);
  });

  it('finishes a firing whose tick died after claiming it, creating each run once', async () => {
    const s = setup();
    s.discovery.nodes = [JM, TM];
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    const scheduledAt = rule.nextFireAt as number;
    // The first try dies right after its runs are stored and sent, before it records the firing.
    const record = vi.spyOn(s.store, 'recordFiring').mockRejectedValueOnce(new Error('the tick was killed'));
    await expect(s.rules.fireRule(rule.id, { scheduledAt })).rejects.toThrow('the tick was killed');
    const sent = s.dispatcher.dispatched.length;
    expect(sent).toBe(1);
    record.mockRestore();

    // At-least-once delivery tries again: the same run, not a second one, and nothing sent twice.
    const retried = await s.rules.fireRule(rule.id, { scheduledAt });
    expect(retried.fired).toBe(true);
    const runs = (await s.call('GET', `/runs?ruleId=${rule.id}`)).body.runs;
    expect(runs).toHaveLength(1);
    expect(retried.fired && retried.firing.runIds).toEqual([runs[0].id]);
    expect(s.dispatcher.dispatched).toHaveLength(sent);
    // Once recorded, the firing is done: a third delivery does nothing.
    expect(await s.rules.fireRule(rule.id, { scheduledAt })).toMatchObject({ fired: false });
  });

  it('sends the runs a dead tick stored but never sent', async () => {
    const s = setup();
    s.discovery.nodes = [JM, TM];
    const rule = await s.rules.create(LOCAL_CALLER, { ...nightly, schedule: 'rate(1 hour)' });
    const scheduledAt = rule.nextFireAt as number;
    // The first try dies between storing its run and sending it: nothing after that point happens.
    vi.spyOn(s.runs, 'trimTarget').mockRejectedValueOnce(new Error('the tick was killed'));
    vi.spyOn(s.store, 'recordFiring').mockRejectedValueOnce(new Error('the tick was killed'));
    await expect(s.rules.fireRule(rule.id, { scheduledAt })).rejects.toThrow('the tick was killed');
    expect(s.dispatcher.dispatched).toHaveLength(0);
    vi.restoreAllMocks();

    const retried = await s.rules.fireRule(rule.id, { scheduledAt });
    expect(s.dispatcher.dispatched).toHaveLength(1);
    const runs = (await s.call('GET', `/runs?ruleId=${rule.id}`)).body.runs;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'RUNNING' });
    expect(retried.fired && retried.firing.runIds).toEqual([runs[0].id]);
  });

  it('the local ticker fires what is due at start, then on each tick, one pass at a time', async () => {
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    const ticker = new LocalRuleTicker(
      async () => {
        calls += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 15));
        inFlight -= 1;
      },
      silentLog,
      5,
    );
    ticker.start();
    expect(calls).toBe(1); // at once, not after the first interval
    await new Promise((r) => setTimeout(r, 100));
    await ticker.stop();
    const stopped = calls;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBeGreaterThan(2);
    expect(calls).toBe(stopped);
    expect(most).toBe(1);
  });
});
