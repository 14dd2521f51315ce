import type { RuleTickInput } from '#adapters/aws/eventbridge-rule-scheduler.ts';
import type { FiringOutcome } from '#domain/rule-service.ts';
import { createAwsProfiler, createAwsRuleService, createLambdaLogger } from './wiring.ts';

const log = createLambdaLogger();
const profiler = createAwsProfiler(undefined, undefined, log);
const rules = createAwsRuleService({ profiler, writesSchedules: false, log });

/**
 * Invoked by a rule's EventBridge Scheduler schedule with the schedule's input: fires the rule once for the
 * scheduled time (a retried invocation of the same time, a stale version, a disabled or deleted rule fire nothing).
 */
export async function handler(
  event: Partial<RuleTickInput>,
): Promise<FiringOutcome | { fired: false; reason: string }> {
  if (typeof event?.ruleId !== 'string' || typeof event.version !== 'number') {
    // Retrying would not help: say so in the log and let the invocation succeed.
    log.error('rule tick without ruleId and version', { event });
    return { fired: false, reason: 'the event names no ruleId and version' };
  }
  const scheduledAt = Date.parse(event.scheduledTime ?? '');
  const outcome = await rules.fireRule(event.ruleId, {
    version: event.version,
    ...(Number.isNaN(scheduledAt) ? {} : { scheduledAt }),
  });
  if (!outcome.fired) log.info('rule tick fired nothing', { ruleId: event.ruleId, reason: outcome.reason });
  return outcome;
}
