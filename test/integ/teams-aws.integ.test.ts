import { CreateTagsCommand, DeleteTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { CreateScheduleGroupCommand, GetScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SCHEDULED_TIME, scheduleNameOf } from '#adapters/aws/eventbridge-rule-scheduler.ts';
import { ENV } from '#shared/config.ts';
import {
  launchFlinkInstance as launchInstance,
  provisionFunctionEnvironment,
  uniqueName,
} from '#test/support/aws-resources.ts';
import { httpApiEvent, lambdaContext, userClaims } from '#test/support/lambda-events.ts';
import { installSsmAsAws, type SsmAsAws } from '#test/support/ssm-as-aws.ts';

/**
 * Teams on the AWS path, through the real API and tick Lambda handlers against a local AWS endpoint (moto_server,
 * or AWS_ENDPOINT_URL). Instances of two teams carry the team tag as operators set it; callers arrive with the
 * claims as API Gateway's JWT authorizer hands them over (every claim a string: `cognito:groups` is
 * `"[team-a team-b]"`). Each endpoint must answer another team's cluster, run or rule exactly like an unknown one.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

const ALICE = userClaims('alice', ['team-a']);
const BOB = userClaims('bob', ['team-b']);
const CAROL = userClaims('carol', ['team-a', 'team-b']);
const ADMIN = userClaims('root', ['flink-profiler-admins']);
const NOBODY = userClaims('dave', []);

/** Guardrails set lower than their defaults, so that a few instances reach them. */
const MAX_FAN_OUT = 3;
const MAX_FIRING_SECONDS = 500;

describe('teams through the Lambda handlers', () => {
  const ec2 = new EC2Client({});
  const scheduler = new SchedulerClient({});
  const alpha = uniqueName('alpha');
  const beta = uniqueName('beta');
  const shared = uniqueName('shared');
  const big = uniqueName('big');
  const group = uniqueName('ffp-rules');
  let api: Handler;
  let tick: Handler;
  let alphaTaskManagers: string[];
  let alphaInstances: string[];
  let betaTaskManager: string;

  /** SSM as AWS has it (moto describes no managed nodes): discovery lists the instances SSM manages. */
  let ssm: SsmAsAws;
  /** An instance tagged as a Flink node whose SSM agent registered. */
  const launchFlinkInstance = async (...args: Parameters<typeof launchInstance>) => {
    const id = await launchInstance(...args);
    ssm.register(id);
    return id;
  };

  beforeAll(async () => {
    ssm = installSsmAsAws();
    alphaTaskManagers = await Promise.all([
      launchFlinkInstance(alpha, 'taskmanager', 'team-a'),
      launchFlinkInstance(alpha, 'taskmanager', 'team-a'),
    ]);
    alphaInstances = [...alphaTaskManagers, await launchFlinkInstance(alpha, 'jobmanager', 'team-a')];
    betaTaskManager = await launchFlinkInstance(beta, 'taskmanager', 'team-b');
    await launchFlinkInstance(beta, 'jobmanager', 'team-b');
    // A cluster belongs to the union of its instances' teams; the tag takes spaces or commas.
    await launchFlinkInstance(shared, 'jobmanager', 'team-a');
    await launchFlinkInstance(shared, 'taskmanager', 'team-b,  ops');
    await Promise.all(Array.from({ length: MAX_FAN_OUT + 1 }, () => launchFlinkInstance(big, 'taskmanager', 'team-a')));
    await scheduler.send(new CreateScheduleGroupCommand({ Name: group }));
    await provisionFunctionEnvironment({
      [ENV.scheduleGroup]: group,
      [ENV.tickFunctionArn]: 'arn:aws:lambda:us-east-1:123456789012:function:flink-profiler-rule-tick',
      [ENV.schedulerRoleArn]: 'arn:aws:iam::123456789012:role/flink-profiler-rule-scheduler',
      [ENV.maxFanOut]: String(MAX_FAN_OUT),
      [ENV.maxFiringSeconds]: String(MAX_FIRING_SECONDS),
    });
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    tick = (await import('#lambda/tick.lambda.ts')).handler as Handler;
  });

  afterAll(() => {
    vi.restoreAllMocks();
    for (const name of [ENV.maxFanOut, ENV.maxFiringSeconds]) delete process.env[name];
  });

  const as = (claims: Record<string, string>) => async (method: string, path: string, body?: unknown) => {
    const result = await api(httpApiEvent(method, `/api/v1${path}`, { body, claims }), lambdaContext);
    return { status: result.statusCode as number, body: result.body ? JSON.parse(result.body) : undefined };
  };
  const alice = as(ALICE);
  const bob = as(BOB);
  const carol = as(CAROL);
  const admin = as(ADMIN);

  const ours = (clusters: Array<{ id: string }>) =>
    clusters.map((c) => c.id).filter((id) => [alpha, beta, shared, big].includes(id));

  it('lists only the clusters of the caller’s teams; an admin sees every one', async () => {
    expect(ours((await alice('GET', '/clusters')).body.clusters).sort()).toEqual([alpha, big, shared].sort());
    expect(ours((await bob('GET', '/clusters')).body.clusters).sort()).toEqual([beta, shared].sort());
    expect(ours((await admin('GET', '/clusters')).body.clusters).sort()).toEqual([alpha, beta, big, shared].sort());
    expect(ours((await as(NOBODY)('GET', '/clusters')).body.clusters)).toEqual([]);
    const listed = (await carol('GET', '/clusters')).body.clusters.find((c: Json) => c.id === shared);
    expect(listed).toEqual({ id: shared, nodes: 2, teams: ['ops', 'team-a', 'team-b'] });
  });

  it('tells who the caller is, with teams from the claim API Gateway hands over as a string', async () => {
    expect((await carol('GET', '/me')).body).toEqual({ user: 'carol', teams: ['team-a', 'team-b'], admin: false });
    expect((await admin('GET', '/me')).body).toEqual({ user: 'root', teams: [], admin: true });
  });

  it("answers another team's cluster, run and file exactly like unknown ones (404)", async () => {
    const started = await alice('POST', `/clusters/${alpha}/taskmanagers/${alphaTaskManagers[0]}/profiler`, {
      mode: 'ITIMER',
      duration: 30,
    });
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({ status: 'RUNNING', requestedBy: 'alice', cluster: alpha });
    const runId = started.body.id as string;
    const unknown = uniqueName('nosuch');
    const tm = alphaTaskManagers[1] as string;
    const probes: Array<[string, string, unknown?]> = [
      ['GET', '/clusters/{c}/nodes'],
      ['POST', '/clusters/{c}/jobmanager/profiler', { mode: 'ITIMER', duration: 30 }],
      ['GET', '/clusters/{c}/jobmanager/profiler'],
      ['POST', `/clusters/{c}/taskmanagers/${tm}/profiler`, { mode: 'ITIMER', duration: 30 }],
      ['GET', `/clusters/{c}/taskmanagers/${tm}/profiler`],
      ['GET', '/clusters/{c}/jobmanager/profiler/jobmanager_ITIMER_2026-11-27_10_15_00.html'],
      ['POST', '/clusters/{c}/profiler', { mode: 'ITIMER', duration: 30, role: 'taskmanager' }],
    ];
    for (const [method, path, body] of probes) {
      const foreign = await bob(method, path.replace('{c}', alpha), body);
      const missing = await bob(method, path.replace('{c}', unknown), body);
      expect(foreign.status, `${method} ${path}`).toBe(404);
      expect(missing.status, `${method} ${path}`).toBe(404);
      // The same words as for an unknown name: nothing tells that the cluster exists.
      expect(foreign.body.errors[0].replace(alpha, 'X'), `${method} ${path}`).toBe(
        missing.body.errors[0].replace(unknown, 'X'),
      );
    }
    expect((await bob('GET', `/runs/${runId}`)).status).toBe(404);
    expect((await bob('GET', `/runs/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await bob('GET', `/runs?cluster=${alpha}`)).body.runs).toEqual([]);
    expect((await bob('GET', '/runs')).body.runs.map((r: Json) => r.id)).not.toContain(runId);

    expect((await alice('GET', `/runs/${runId}`)).status).toBe(200);
    expect((await carol('GET', `/runs/${runId}`)).status).toBe(200);
    expect((await admin('GET', `/runs/${runId}`)).status).toBe(200);
    expect(
      (await alice('GET', `/clusters/${alpha}/taskmanagers/${alphaTaskManagers[0]}/profiler`)).body.profilingList,
    ).toHaveLength(1);
  });

  it('filters runs by the person who started them', async () => {
    const started = await bob('POST', `/clusters/${beta}/taskmanagers/${betaTaskManager}/profiler`, {
      mode: 'WALL',
      duration: 30,
    });
    expect(started.status).toBe(200);
    const mine = (await admin('GET', '/runs?requestedBy=bob')).body.runs;
    expect(mine.map((r: Json) => r.id)).toContain(started.body.id);
    expect(mine.every((r: Json) => r.requestedBy === 'bob')).toBe(true);
    expect((await admin('GET', '/runs?requestedBy=alice')).body.runs.map((r: Json) => r.id)).not.toContain(
      started.body.id,
    );
  });

  describe('names are names', () => {
    let taggingCalls: number;
    let ssmDescribesBefore: number;
    beforeEach(() => {
      taggingCalls = 0;
      ssmDescribesBefore = ssm.described.length;
      const send = ResourceGroupsTaggingAPIClient.prototype.send;
      vi.spyOn(ResourceGroupsTaggingAPIClient.prototype, 'send').mockImplementation(function (
        this: ResourceGroupsTaggingAPIClient,
        ...args: unknown[]
      ) {
        taggingCalls += 1;
        return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } as typeof send);
    });

    it('refuses wildcards and other non-names with 400 before any call to SSM or the Tagging API', async () => {
      const rule = 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
      const requests: Array<[string, string, unknown?]> = [
        ['GET', '/clusters/*/nodes'],
        ['GET', '/clusters/prod*/nodes'],
        ['GET', '/clusters/p%3Fod/nodes'],
        ['POST', '/clusters/*/profiler', { mode: 'ITIMER', duration: 30, role: 'taskmanager' }],
        ['POST', '/clusters/%2A/jobmanager/profiler', { mode: 'ITIMER', duration: 30 }],
        ['GET', `/clusters/${alpha}*/jobmanager/profiler`],
        ['POST', `/clusters/${alpha}/taskmanagers/i-*/profiler`, { mode: 'ITIMER', duration: 30 }],
      ];
      for (const [method, path, body] of requests) {
        const response = await admin(method, path, body);
        expect(response.status, path).toBe(400);
        expect(response.body.errors[0], path).toMatch(new RegExp(`^(cluster|node): ${escapeRegExp(rule)}$`));
      }
      expect((await admin('GET', '/runs?cluster=*')).body).toEqual({ errors: [`cluster: ${rule}`] });
      const fanOut = await admin('POST', `/clusters/${alpha}/profiler`, {
        mode: 'ITIMER',
        duration: 30,
        role: 'taskmanager',
        nodes: ['i-*'],
      });
      expect(fanOut).toEqual({ status: 400, body: { errors: [`nodes.0: ${rule}`] } });
      const ruleBody = { ...nightly(alpha), cluster: 'prod?' };
      expect((await admin('POST', '/rules', ruleBody)).body).toEqual({ errors: [`cluster: ${rule}`] });
      expect(taggingCalls).toBe(0);
      expect(ssm.described.length).toBe(ssmDescribesBefore);
    });
  });

  describe('guardrails', () => {
    it('refuses a fan-out over more targets than the limit, naming it', async () => {
      const response = await alice('POST', `/clusters/${big}/profiler`, {
        mode: 'ITIMER',
        duration: 30,
        role: 'taskmanager',
      });
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([
        `role: cluster '${big}' has ${MAX_FAN_OUT + 1} taskmanagers to profile, more than the limit of ${MAX_FAN_OUT} targets per fan-out; name at most ${MAX_FAN_OUT} of them in nodes`,
      ]);
      expect((await alice('GET', `/runs?cluster=${big}`)).body.runs).toEqual([]);
    });

    it('refuses a rule that fires more often than every 5 minutes, or profiles too long per firing', async () => {
      const often = await alice('POST', '/rules', { ...nightly(alpha), schedule: 'rate(4 minutes)' });
      expect(often.body).toEqual({
        errors: ['schedule: rate(4 minutes) fires every 4 min; rules may fire at most every 5 min'],
      });
      const cron = await alice('POST', '/rules', { ...nightly(alpha), schedule: 'cron(0,2 3 * * ? *)' });
      expect(cron.status).toBe(400);
      const long = await alice('POST', '/rules', { ...nightly(alpha), duration: 301 });
      expect(long.status).toBe(400);
      const heavy = await alice('POST', '/rules', { ...nightly(alpha), duration: 300 });
      expect(heavy.body).toEqual({
        errors: [
          `duration: 300 s × 2 targets = 600 s of profiling per firing, more than the limit of ${MAX_FIRING_SECONDS} s; shorten the duration or set target.sample`,
        ],
      });
    });
  });

  describe('rules belong to a team', () => {
    it('takes the caller’s one team, records who wrote it, and hides it from other teams', async () => {
      const created = await alice('POST', '/rules', nightly(alpha));
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ team: 'team-a', createdBy: 'alice', updatedBy: 'alice' });
      const id = created.body.id as string;

      expect((await bob('GET', '/rules')).body.rules.map((r: Json) => r.id)).not.toContain(id);
      for (const [method, body] of [
        ['GET', undefined],
        ['PUT', nightly(beta)],
        ['DELETE', undefined],
      ] as const) {
        expect(await bob(method, `/rules/${id}`, body)).toEqual({
          status: 404,
          body: { errors: [`rule '${id}' not found`] },
        });
      }
      expect((await alice('GET', `/rules/${id}`)).status).toBe(200);

      const edited = await carol('PUT', `/rules/${id}`, { ...created.body, name: 'renamed' });
      expect(edited.status).toBe(200);
      expect(edited.body).toMatchObject({ team: 'team-a', createdBy: 'alice', updatedBy: 'carol', version: 2 });
      expect((await admin('GET', '/rules')).body.rules.map((r: Json) => r.id)).toContain(id);
      expect((await admin('DELETE', `/rules/${id}`)).status).toBe(204);
    });

    it('asks a caller of several teams which team, and keeps a rule to clusters of its team', async () => {
      expect((await carol('POST', '/rules', nightly(alpha))).body).toEqual({
        errors: ['team: is required when you are in several teams (team-a, team-b)'],
      });
      expect((await carol('POST', '/rules', { ...nightly(alpha), team: 'team-b' })).body).toEqual({
        errors: [
          `cluster: cluster '${alpha}' does not belong to team 'team-b' (its teams: team-a); tag its instances for the team or choose another team`,
        ],
      });
      expect((await alice('POST', '/rules', { ...nightly(alpha), team: 'team-b' })).body).toEqual({
        errors: ["team: 'team-b' is not one of your teams (team-a)"],
      });
      expect((await bob('POST', '/rules', nightly(alpha))).status).toBe(404);
      const ok = await carol('POST', '/rules', { ...nightly(shared), target: { role: 'jobmanager' }, team: 'team-b' });
      expect(ok.status).toBe(201);
      expect(ok.body.team).toBe('team-b');
      expect((await alice('GET', `/rules/${ok.body.id}`)).status).toBe(404);
    });

    it("stops starting runs once the cluster loses the team's tag, and says why", async () => {
      const created = await alice('POST', '/rules', { ...nightly(alpha), schedule: 'rate(1 hour)' });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      await ec2.send(new DeleteTagsCommand({ Resources: alphaInstances, Tags: [{ Key: 'flink-profiler:team' }] }));
      try {
        const schedule = await scheduler.send(new GetScheduleCommand({ GroupName: group, Name: scheduleNameOf(id) }));
        const payload = JSON.parse((schedule.Target?.Input ?? '').replaceAll(SCHEDULED_TIME, new Date().toISOString()));
        const outcome = await tick(payload, lambdaContext);
        expect(outcome).toMatchObject({ fired: true, firing: { runIds: [] } });
        expect(outcome.firing.error).toBe(
          `cluster '${alpha}' no longer belongs to team 'team-a' (its instances' team tag does not name it); the rule starts no runs until it does`,
        );
        expect((await admin('GET', `/runs?ruleId=${id}`)).body.runs).toEqual([]);
        expect((await admin('GET', `/rules/${id}`)).body.lastFiring.error).toBe(outcome.firing.error);
      } finally {
        await ec2.send(
          new CreateTagsCommand({ Resources: alphaInstances, Tags: [{ Key: 'flink-profiler:team', Value: 'team-a' }] }),
        );
      }
    });
  });
});

/** A nightly rule on every TaskManager of `cluster`. */
function nightly(cluster: string) {
  return {
    name: 'nightly',
    cluster,
    target: { role: 'taskmanager' },
    mode: 'ITIMER',
    duration: 30,
    schedule: 'cron(0 3 * * ? *)',
    enabled: true,
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
