import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';

/**
 * For scheduled profiling rules: the EventBridge Scheduler group that holds one schedule per rule, and the
 * role those schedules use to invoke the rule tick function (granted where that function is defined).
 */
export class Rules extends Construct {
  readonly scheduleGroup: scheduler.CfnScheduleGroup;
  readonly schedulerRole: iam.Role;
  /** In alarm when Scheduler gave up invoking the tick function for one of the group's schedules. */
  readonly droppedFirings: cloudwatch.Alarm;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.scheduleGroup = new scheduler.CfnScheduleGroup(this, 'ScheduleGroup', {});
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: "Used by the profiler's schedules to invoke the rule tick function",
      // Only schedules of this account may use it (confused-deputy guard).
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    });
    // The schedules are written by the API at run time, with a retry policy for delivering the invocation and the
    // failed-invocations queue as their dead-letter queue (see Functions), where a firing Scheduler could not
    // deliver goes and is alarmed. A firing is dropped only when that send fails too, which leaves only this
    // metric behind. (A firing that was delivered and then failed in the function goes to the same queue.)
    this.droppedFirings = new cloudwatch.Alarm(this, 'DroppedFirings', {
      alarmDescription:
        "EventBridge Scheduler gave up invoking the rule tick function for one of the profiler's schedules after " +
        'its retries: that firing of the rule did not happen. Check that the tick function exists and that the ' +
        "scheduler role may invoke it (the schedule group's TargetErrorCount and the schedule's target), then " +
        'start the firing by hand if it matters.',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Scheduler',
        metricName: 'InvocationDroppedCount',
        dimensionsMap: { ScheduleGroup: this.scheduleGroup.ref },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // Scheduler publishes the metric only when something was dropped.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
