import {
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  type SchedulerClient,
  UpdateScheduleCommand,
} from '@aws-sdk/client-scheduler';
import type { RuleScheduler } from '#domain/ports.ts';
import type { Rule } from '#domain/rule.ts';

/**
 * What a rule's schedule sends the tick function (the schedule's Input). EventBridge Scheduler replaces
 * `<aws.scheduler.scheduled-time>` with the time the invocation was scheduled for, e.g. `2026-11-27T03:00:00Z`,
 * the same in every retry of that invocation: the tick uses it to refuse a double firing.
 */
export interface RuleTickInput {
  ruleId: string;
  /** The rule version the schedule was written for: a tick of an older version is stale and skipped. */
  version: number;
  scheduledTime: string;
}

/** The placeholder EventBridge Scheduler fills in with the scheduled time of each invocation. */
export const SCHEDULED_TIME = '<aws.scheduler.scheduled-time>';

export interface EventBridgeRuleSchedulerOptions {
  /** Our schedule group (the CDK stack creates it). */
  groupName: string;
  /** The rule tick function's ARN: every schedule invokes it. */
  tickFunctionArn: string;
  /** The role the schedules assume to invoke the tick function (the API function needs iam:PassRole on it). */
  schedulerRoleArn: string;
  /**
   * The queue where a schedule puts a firing it could not deliver after its retries (the schedule's role sends it),
   * instead of dropping it; the stack alarms on it.
   */
  deadLetterArn?: string;
  now?: () => number;
}

/** A schedule's name: ours, and unique per rule (names are at most 64 characters of [0-9a-zA-Z-_.]). */
export function scheduleNameOf(ruleId: string): string {
  return `ffp-rule-${ruleId}`.slice(0, 64);
}

function isNamed(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/**
 * RuleScheduler on EventBridge Scheduler: one schedule per rule in our group, with the rule's expression and time
 * zone, no flexible window, and the tick function as target. The rule table stays the source of truth: the tick
 * re-reads the rule, so a schedule that lags behind a change fires nothing wrong.
 */
export class EventBridgeRuleScheduler implements RuleScheduler {
  private readonly now: () => number;

  constructor(
    private readonly client: SchedulerClient,
    private readonly options: EventBridgeRuleSchedulerOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The schedule of a rule, as CreateSchedule and UpdateSchedule take it (both replace every field). */
  scheduleOf(rule: Rule): CreateScheduleCommandInput {
    const input: RuleTickInput = { ruleId: rule.id, version: rule.version, scheduledTime: SCHEDULED_TIME };
    // A rate schedule without StartDate starts counting when it is written; start it when the rule store says the
    // next firing is, so that both agree and editing a rule's name does not move it. (StartDate may not be past.)
    const startDate =
      rule.schedule.startsWith('rate(') && rule.nextFireAt !== null && rule.nextFireAt > this.now() + 1000
        ? new Date(rule.nextFireAt)
        : undefined;
    return {
      Name: scheduleNameOf(rule.id),
      GroupName: this.options.groupName,
      Description: `Flink Fleet Profiler rule '${rule.name}'`.slice(0, 512),
      ScheduleExpression: rule.schedule,
      ScheduleExpressionTimezone: rule.timezone,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: rule.enabled ? 'ENABLED' : 'DISABLED',
      // The rule owns the lifecycle: a fired at() schedule stays until the rule is deleted.
      ActionAfterCompletion: 'NONE',
      ...(startDate ? { StartDate: startDate } : {}),
      Target: {
        Arn: this.options.tickFunctionArn,
        RoleArn: this.options.schedulerRoleArn,
        Input: JSON.stringify(input),
        // A tick that cannot run within the hour is pointless; the next one comes anyway.
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 },
        ...(this.options.deadLetterArn ? { DeadLetterConfig: { Arn: this.options.deadLetterArn } } : {}),
      },
    };
  }

  async put(rule: Rule): Promise<void> {
    const schedule = this.scheduleOf(rule);
    try {
      await this.client.send(new UpdateScheduleCommand(schedule));
    } catch (error) {
      // By name: errors deserialized from some endpoints are not instances of the modeled classes.
      if (!isNamed(error, 'ResourceNotFoundException')) throw error;
      await this.client.send(new CreateScheduleCommand(schedule));
    }
  }

  async remove(ruleId: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteScheduleCommand({ Name: scheduleNameOf(ruleId), GroupName: this.options.groupName }),
      );
    } catch (error) {
      if (!isNamed(error, 'ResourceNotFoundException')) throw error;
    }
  }
}
