import {
  CreateScheduleCommand,
  DeleteScheduleCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeRuleScheduler, SCHEDULED_TIME, scheduleNameOf } from '#adapters/aws/eventbridge-rule-scheduler.ts';
import type { Rule } from '#domain/rule.ts';

/**
 * The EventBridge Scheduler adapter's own choices, with the SDK client mocked: create-or-update, idempotent delete,
 * and when a rate schedule gets a StartDate. The integration tier runs it against moto (test/integ/rules-aws).
 */

const client = mockClient(SchedulerClient);
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

const scheduler = () =>
  new EventBridgeRuleScheduler(new SchedulerClient({}), {
    groupName: 'ffp-rules',
    tickFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:tick',
    schedulerRoleArn: 'arn:aws:iam::123456789012:role/scheduler',
    deadLetterArn: 'arn:aws:sqs:us-east-1:123456789012:failed-invocations',
    now: () => NOW,
  });

const ruleOf = (overrides: Partial<Rule> = {}): Rule => ({
  id: 'r-1',
  name: 'nightly',
  cluster: 'prod',
  target: { role: 'taskmanager' },
  mode: 'ITIMER',
  duration: 30,
  team: null,
  createdBy: null,
  updatedBy: null,
  schedule: 'cron(0 3 * * ? *)',
  timezone: 'Europe/Berlin',
  enabled: true,
  version: 4,
  createdAt: NOW,
  updatedAt: NOW,
  lastFiredAt: null,
  lastScheduledAt: null,
  nextFireAt: NOW + 3_600_000,
  lastFiring: null,
  ...overrides,
});

const notFound = () =>
  new ResourceNotFoundException({
    message: 'Schedule does not exist.',
    Message: 'Schedule does not exist.',
    $metadata: {},
  });

beforeEach(() => {
  client.reset();
});

describe('EventBridge Scheduler adapter', () => {
  it('updates the schedule of a rule, and creates it when there is none', async () => {
    client.on(UpdateScheduleCommand).rejects(notFound());
    client.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:…' });
    await scheduler().put(ruleOf());
    const [created] = client.commandCalls(CreateScheduleCommand);
    expect(created?.args[0].input).toEqual({
      Name: scheduleNameOf('r-1'),
      GroupName: 'ffp-rules',
      Description: "Flink Fleet Profiler rule 'nightly'",
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      ActionAfterCompletion: 'NONE',
      Target: {
        Arn: 'arn:aws:lambda:us-east-1:123456789012:function:tick',
        RoleArn: 'arn:aws:iam::123456789012:role/scheduler',
        Input: JSON.stringify({ ruleId: 'r-1', version: 4, scheduledTime: SCHEDULED_TIME }),
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 },
        // A firing it could not deliver is kept (and alarmed), not dropped.
        DeadLetterConfig: { Arn: 'arn:aws:sqs:us-east-1:123456789012:failed-invocations' },
      },
    });

    client.reset();
    client.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn:…' });
    await scheduler().put(ruleOf({ enabled: false, nextFireAt: null }));
    expect(client.commandCalls(UpdateScheduleCommand)[0]?.args[0].input.State).toBe('DISABLED');
    expect(client.commandCalls(CreateScheduleCommand)).toHaveLength(0);
  });

  it('starts a rate schedule at the next fire time the rule store holds, unless that is now', async () => {
    client.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn:…' });
    await scheduler().put(ruleOf({ schedule: 'rate(1 hour)', nextFireAt: NOW + 1_800_000 }));
    await scheduler().put(ruleOf({ schedule: 'rate(1 hour)', nextFireAt: NOW }));
    const [later, atOnce] = client.commandCalls(UpdateScheduleCommand).map((call) => call.args[0].input);
    expect(later?.StartDate).toEqual(new Date(NOW + 1_800_000));
    expect(atOnce).not.toHaveProperty('StartDate');
  });

  it('passes other errors on, and deletes idempotently', async () => {
    client.on(UpdateScheduleCommand).rejects(new Error('AccessDenied'));
    await expect(scheduler().put(ruleOf())).rejects.toThrow('AccessDenied');
    client.on(DeleteScheduleCommand).rejects(notFound());
    await expect(scheduler().remove('r-1')).resolves.toBeUndefined();
    expect(client.commandCalls(DeleteScheduleCommand)[0]?.args[0].input).toEqual({
      Name: scheduleNameOf('r-1'),
      GroupName: 'ffp-rules',
    });
  });
});
