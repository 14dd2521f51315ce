import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import type { SendCommandCommandInput } from '@aws-sdk/client-ssm';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SCHEDULED_TIME, scheduleNameOf } from '#adapters/aws/eventbridge-rule-scheduler.ts';
import { ENV } from '#shared/config.ts';
import { launchFlinkInstance, provisionFunctionEnvironment, uniqueName } from '#test/support/aws-resources.ts';
import { httpApiEvent, lambdaContext } from '#test/support/lambda-events.ts';
import { repoRoot } from '#test/support/paths.ts';
import { installSsmAsAws } from '#test/support/ssm-as-aws.ts';
import { lambdaBuildOptions } from '../../infra/lambda-bundles.ts';

/**
 * Scheduled profiling rules on the AWS path, through the real Lambda handlers against a local AWS endpoint
 * (moto_server, or whatever AWS_ENDPOINT_URL names). Rule CRUD through the API function is mirrored by one
 * EventBridge Scheduler schedule per rule, read back with GetSchedule/ListSchedules. moto never fires a schedule:
 * the tick function is called here with the payload a schedule sends it — the schedule's Input as stored, with
 * `<aws.scheduler.scheduled-time>` filled in as EventBridge Scheduler does at each invocation.
 */

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;
type Handler = (event: unknown, context: unknown) => Promise<Json>;

const TICK_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:flink-profiler-rule-tick';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/flink-profiler-rule-scheduler';

describe('scheduled profiling rules through the Lambda handlers', () => {
  const scheduler = new SchedulerClient({});
  const cluster = uniqueName('sched');
  const group = uniqueName('ffp-rules');
  let api: Handler;
  let tick: Handler;
  let taskManagers: string[];
  let sendCommandInputs: SendCommandCommandInput[] = [];

  beforeAll(async () => {
    // SSM as AWS has it (moto describes no managed nodes): discovery lists the instances SSM manages.
    const ssm = installSsmAsAws();
    taskManagers = (
      await Promise.all([launchFlinkInstance(cluster, 'taskmanager'), launchFlinkInstance(cluster, 'taskmanager')])
    ).sort();
    const jobManager = await launchFlinkInstance(cluster, 'jobmanager');
    for (const id of [...taskManagers, jobManager]) ssm.register(id);
    await scheduler.send(new CreateScheduleGroupCommand({ Name: group }));
    await provisionFunctionEnvironment({
      [ENV.scheduleGroup]: group,
      [ENV.tickFunctionArn]: TICK_ARN,
      [ENV.schedulerRoleArn]: ROLE_ARN,
    });
    sendCommandInputs = ssm.sent;
    api = (await import('#lambda/api.lambda.ts')).handler as Handler;
    tick = (await import('#lambda/tick.lambda.ts')).handler as Handler;
  });

  afterAll(() => {
    vi.restoreAllMocks();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const result = await api(httpApiEvent(method, path, { body }), lambdaContext);
    return { status: result.statusCode as number, body: result.body ? JSON.parse(result.body) : undefined };
  };
  const getSchedule = (ruleId: string) =>
    scheduler.send(new GetScheduleCommand({ Name: scheduleNameOf(ruleId), GroupName: group }));
  const listSchedules = async () =>
    ((await scheduler.send(new ListSchedulesCommand({ GroupName: group }))).Schedules ?? []).map((s) => s.Name);
  /** What EventBridge Scheduler hands the tick function when the schedule fires for `scheduledTime`. */
  const tickPayload = async (ruleId: string, scheduledTime: string) =>
    JSON.parse(((await getSchedule(ruleId)).Target?.Input ?? '').replaceAll(SCHEDULED_TIME, scheduledTime));

  const rule = {
    name: 'hourly TaskManagers',
    cluster,
    target: { role: 'taskmanager' },
    mode: 'ITIMER',
    duration: 30,
    schedule: 'cron(0 * * * ? *)',
    timezone: 'Europe/Berlin',
    enabled: true,
  };

  it('creates, updates and deletes one schedule per rule in our group, with the rule', async () => {
    const created = await call('POST', '/api/v1/rules', rule);
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    const schedule = await getSchedule(id);
    expect(schedule).toMatchObject({
      Name: scheduleNameOf(id),
      GroupName: group,
      ScheduleExpression: 'cron(0 * * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      ActionAfterCompletion: 'NONE',
      Target: { Arn: TICK_ARN, RoleArn: ROLE_ARN },
    });
    expect(JSON.parse(schedule.Target?.Input ?? '')).toEqual({ ruleId: id, version: 1, scheduledTime: SCHEDULED_TIME });
    expect(await listSchedules()).toContain(scheduleNameOf(id));

    const updated = await call('PUT', `/api/v1/rules/${id}`, {
      ...rule,
      schedule: 'rate(6 hours)',
      timezone: 'America/New_York',
      enabled: false,
    });
    expect(updated.status).toBe(200);
    const changed = await getSchedule(id);
    expect(changed).toMatchObject({
      ScheduleExpression: 'rate(6 hours)',
      ScheduleExpressionTimezone: 'America/New_York',
      State: 'DISABLED',
    });
    expect(JSON.parse(changed.Target?.Input ?? '').version).toBe(2);

    // A bad rule leaves no schedule behind.
    const bad = await call('POST', '/api/v1/rules', { ...rule, schedule: 'cron(0 3 * * MOX *)' });
    expect(bad).toEqual({
      status: 400,
      body: { errors: ["schedule: cron day-of-week field 'MOX' is not a weekday (1-7 or SUN-SAT)"] },
    });
    expect(await listSchedules()).toEqual([scheduleNameOf(id)]);

    expect((await call('DELETE', `/api/v1/rules/${id}`)).status).toBe(204);
    await expect(getSchedule(id)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(await listSchedules()).toEqual([]);
    expect((await call('GET', `/api/v1/rules/${id}`)).status).toBe(404);
  });

  it('fires a rule from the schedule payload: one run per target in one SendCommand, once per scheduled time', async () => {
    const id = (await call('POST', '/api/v1/rules', rule)).body.id as string;
    const sentBefore = sendCommandInputs.length;

    const payload = await tickPayload(id, '2026-11-27T10:00:00Z');
    const outcome = await tick(payload, lambdaContext);
    expect(outcome).toMatchObject({ ruleId: id, fired: true, firing: { skipped: [], skippedCount: 0 } });
    expect(outcome.firing.runIds).toHaveLength(2);

    // One SendCommand of our document to both TaskManagers (the dispatcher batches up to 50 instances).
    const sent = sendCommandInputs.slice(sentBefore);
    expect(sent).toHaveLength(1);
    expect([...(sent[0]?.InstanceIds ?? [])].sort()).toEqual(taskManagers);
    expect(sent[0]).toMatchObject({ DocumentName: process.env[ENV.documentName], Parameters: { mode: ['ITIMER'] } });

    const runs = (await call('GET', `/api/v1/runs?ruleId=${id}`)).body.runs;
    expect(runs.map((r: Json) => r.node).sort()).toEqual(taskManagers);
    expect(runs.every((r: Json) => r.ruleId === id && r.status === 'RUNNING')).toBe(true);
    const read = (await call('GET', `/api/v1/rules/${id}`)).body;
    expect(read).toMatchObject({
      lastFiredAt: expect.any(Number),
      nextFireAt: expect.any(Number),
      lastFiring: { scheduledAt: Date.parse('2026-11-27T10:00:00Z'), runIds: outcome.firing.runIds },
    });

    // EventBridge Scheduler delivers at least once: a retried invocation of the same time fires nothing.
    expect(await tick(payload, lambdaContext)).toMatchObject({
      fired: false,
      reason: expect.stringMatching(/already fired/),
    });
    expect(sendCommandInputs).toHaveLength(sentBefore + 1);
  });

  it('skips busy targets (recorded, not failed), stale schedule versions and disabled rules', async () => {
    const id = (await call('POST', '/api/v1/rules', { ...rule, name: 'busy' })).body.id as string;
    // Both TaskManagers still run the previous test's runs (moto ran no agent to finish them).
    const outcome = await tick(await tickPayload(id, '2026-11-27T11:00:00Z'), lambdaContext);
    expect(outcome.fired).toBe(true);
    expect(outcome.firing.runIds).toEqual([]);
    expect(outcome.firing.skipped.map((s: Json) => s.node).sort()).toEqual(taskManagers);
    expect(outcome.firing.skipped[0].reason).toMatch(/is busy: run .* is still RUNNING/);
    expect((await call('GET', `/api/v1/runs?ruleId=${id}`)).body.runs).toEqual([]);

    const stalePayload = await tickPayload(id, '2026-11-27T12:00:00Z');
    await call('PUT', `/api/v1/rules/${id}`, { ...rule, name: 'busy', duration: 10 });
    expect(await tick(stalePayload, lambdaContext)).toMatchObject({
      fired: false,
      reason: 'stale trigger: version 1, rule is at 2',
    });
    await call('PUT', `/api/v1/rules/${id}`, { ...rule, enabled: false });
    expect(await tick(await tickPayload(id, '2026-11-27T13:00:00Z'), lambdaContext)).toMatchObject({
      fired: false,
      reason: 'the rule is disabled',
    });
    expect(await tick({ hello: 'world' }, lambdaContext)).toMatchObject({ fired: false });
  });

  it('bundles the tick function as the other functions are, without local-mode code', async () => {
    const outfile = join(mkdtempSync(join(tmpdir(), 'ffp-tick-')), 'tick.mjs');
    await build({
      ...lambdaBuildOptions(join(repoRoot, 'functions/lambda/tick.lambda.ts'), outfile),
      absWorkingDir: repoRoot,
    });
    expect(readFileSync(outfile, 'utf8')).not.toContain('better-sqlite3');
    // Loaded in a fresh process like a cold start, with the functions' configuration (no scheduler settings).
    const script = `
      const { handler } = await import(${JSON.stringify(outfile)});
      process.stdout.write('RESULT:' + JSON.stringify(await handler({}, {})));`;
    const env = { ...process.env, [ENV.scheduleGroup]: '', [ENV.tickFunctionArn]: '', [ENV.schedulerRoleArn]: '' };
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout.slice(child.stdout.lastIndexOf('RESULT:') + 'RESULT:'.length))).toEqual({
      fired: false,
      reason: 'the event names no ruleId and version',
    });
  });
});
