import { describe, expect, it } from 'vitest';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import type { Caller } from '#domain/access.ts';
import type { FlinkNode, Logger, RuleScheduler } from '#domain/ports.ts';
import { RuleService } from '#domain/rule-service.ts';
import { createApp } from '#http/app.ts';
import { createTestService, silentLog } from '#test/support/unit-fakes.ts';

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

const node = (id: string, role: FlinkNode['role'], teams: string[]): FlinkNode => ({
  id,
  role,
  host: `${id}.internal`,
  reachable: true,
  teams,
});

const noSchedules: RuleScheduler = { put: async () => {}, remove: async () => {} };

/**
 * The API with callers named by a test header, standing in for the JWT authorizer (whose claim parsing has its
 * own tests), over the unit tier's real SQLite stores and a recording logger.
 */
function setup(options: { teamsInForce?: boolean } = {}) {
  const logged: Array<{ message: string; details?: Record<string, unknown> }> = [];
  const log: Logger = { ...silentLog, info: (message, details) => logged.push({ message, details }) };
  const service = createTestService({}, log);
  service.discovery.nodes = [node('jm-1', 'jobmanager', ['team-a']), node('tm-1', 'taskmanager', ['team-a'])];
  const rules = new RuleService({
    rules: new SqliteRuleStore(':memory:'),
    scheduler: noSchedules,
    profiler: service.profiler,
    discovery: service.discovery,
    teamsInForce: options.teamsInForce ?? true,
    log,
  });
  const callers: Record<string, Caller> = {
    alice: { user: 'alice', teams: ['team-a'], seesEverything: false },
    bob: { user: 'bob', teams: ['team-b'], seesEverything: false },
  };
  const app = createApp({
    profiler: service.profiler,
    rules,
    log: silentLog,
    caller: (c) => callers[c.req.header('x-test-user') ?? ''] ?? null,
  });
  const call = async (user: string | undefined, method: string, path: string, body?: unknown) => {
    const response = await app.request(`/api/v1${path}`, {
      method,
      headers: {
        ...(user ? { 'x-test-user': user } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : undefined };
  };
  return { ...service, call, logged, rules };
}

const rule = {
  name: 'nightly',
  cluster: 'local',
  target: { role: 'taskmanager' },
  mode: 'ITIMER',
  duration: 30,
  schedule: 'cron(0 3 * * ? *)',
  enabled: true,
};

describe('teams', () => {
  it('answers a request that names nobody with 401', async () => {
    const { call } = setup();
    expect(await call(undefined, 'GET', '/clusters')).toEqual({
      status: 401,
      body: { errors: ['Authorization: sign in first: the request carries no valid token'] },
    });
  });

  it('writes one audit line per profile start and per rule change: who, team, what, target', async () => {
    const { call, logged } = setup();
    const run = await call('alice', 'POST', '/clusters/local/taskmanagers/tm-1/profiler', { mode: 'CPU', duration: 5 });
    expect(run.status).toBe(200);
    const created = await call('alice', 'POST', '/rules', rule);
    expect(created.status).toBe(201);
    expect((await call('alice', 'DELETE', `/rules/${created.body.id}`)).status).toBe(204);
    const audit = logged.filter((line) => line.message === 'audit').map((line) => line.details);
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'profile.start',
        who: 'alice',
        teams: ['team-a'],
        runId: run.body.id,
        target: { cluster: 'local', role: 'taskmanager', node: 'tm-1' },
      }),
      expect.objectContaining({ action: 'rule.create', who: 'alice', team: 'team-a', ruleId: created.body.id }),
      expect.objectContaining({ action: 'rule.delete', who: 'alice', team: 'team-a', ruleId: created.body.id }),
    ]);
  });

  it("keeps a run to the teams its cluster had, and another team's run is unknown", async () => {
    const { call, discovery } = setup();
    const run = await call('alice', 'POST', '/clusters/local/jobmanager/profiler', { mode: 'CPU', duration: 5 });
    expect((await call('bob', 'GET', `/runs/${run.body.id}`)).status).toBe(404);
    // The cluster moves to team-b: new runs are team-b's, the old one stays alice's.
    discovery.nodes = discovery.nodes.map((n) => ({ ...n, teams: ['team-b'] }));
    expect((await call('alice', 'GET', `/runs/${run.body.id}`)).status).toBe(200);
    expect((await call('bob', 'GET', '/clusters/local/jobmanager/profiler')).body).toEqual({ profilingList: [] });
    expect((await call('alice', 'GET', '/clusters/local/jobmanager/profiler')).body.profilingList).toHaveLength(1);
    expect((await call('alice', 'GET', '/clusters/local/nodes')).status).toBe(404);
  });
});

describe('local mode', () => {
  it('has no teams: a rule naming one is refused, naming the field', async () => {
    const service = createTestService();
    const rules = new RuleService({
      rules: new SqliteRuleStore(':memory:'),
      scheduler: noSchedules,
      profiler: service.profiler,
      discovery: service.discovery,
      log: silentLog,
    });
    const app = createApp({ profiler: service.profiler, rules, log: silentLog });
    const post = (body: unknown) =>
      app.request('/api/v1/rules', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const refused = await post({ ...rule, team: 'team-a' });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ errors: ['team: this deployment has no teams (local mode); leave it out'] });
    const created = await post(rule);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ team: null, createdBy: null, updatedBy: null });
    expect(await (await app.request('/api/v1/me')).json()).toEqual({ user: null, teams: [], admin: true });
  });
});
