import { Stack } from 'aws-cdk-lib';
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
  }
}
