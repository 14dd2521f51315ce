import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

/** How Lambda treats one asynchronously invoked function's failed events (`AWS::Lambda::EventInvokeConfig`). */
export interface AsyncInvokePolicy {
  /** How long an event may wait in Lambda's queue (throttling, retries) before it is given up; 1 minute to 6 hours. */
  maxEventAge: Duration;
}

/**
 * Where failed asynchronous work goes, and the alarm that says it went there: one SQS queue shared by the
 * asynchronously invoked functions (Lambda's on-failure destination) and by the EventBridge rules that invoke them
 * (their targets' dead-letter queue, for events EventBridge could not deliver).
 *
 * EventBridge and EventBridge Scheduler invoke Lambda asynchronously: their own retry policy and dead-letter queue
 * cover only the *delivery* of the event to Lambda's queue. When the function then throws or times out, Lambda's
 * async retry applies (by default 2 retries over about 3 minutes, then the event is dropped without a trace), which
 * only the function's EventInvokeConfig changes. `configure` sets it.
 */
export class FailedInvocations extends Construct {
  /** Lambda on-failure records and undeliverable EventBridge events; kept 14 days. */
  readonly queue: sqs.Queue;
  /** In alarm while the queue holds a message. */
  readonly alarm: cloudwatch.Alarm;
  private readonly destination: lambda.IDestination;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      enforceSSL: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.queue, {
      'AwsSolutions-SQS3': 'This queue is itself where failed invocations and undeliverable events end up.',
    });
    // CDK's SqsDestination grants GetQueueAttributes and GetQueueUrl as well; Lambda needs SendMessage only.
    const queue = this.queue;
    this.destination = {
      bind: (_scope, fn) => {
        fn.addToRolePolicy(
          new iam.PolicyStatement({
            sid: 'RecordFailedInvocations',
            actions: ['sqs:SendMessage'],
            resources: [queue.queueArn],
          }),
        );
        return { destination: queue.queueArn };
      },
    };

    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmDescription: [
        'An asynchronous invocation of the completion, reconciler or rule tick function failed after its retries',
        '(or was too old to run), or EventBridge could not deliver an event to one of them: the message is in the',
        'failed-invocations queue (stack output FailedInvocationsQueueUrl), kept 14 days.',
        "A Lambda record's body holds the event (requestPayload) and the error (responsePayload, requestContext.condition);",
        'an undeliverable event is the body itself, its error in the ERROR_CODE and ERROR_MESSAGE message attributes.',
        "Find the cause in the function's log group, fix it, then delete the message.",
        'A lost completion needs nothing more: the reconciler settles the run anyway by its deadline.',
        'A lost rule tick is not repeated: start that firing by hand if it matters.',
      ].join(' '),
      metric: this.queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: cloudwatch.Stats.MAXIMUM,
      }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // SQS stops sending metrics for a queue that has been empty and idle for hours: that is not a failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * Lambda's own retries of a function invoked asynchronously: 2 (the most Lambda allows), then a record of the
   * failure goes to the queue, as does an event that waited longer than `maxEventAge`.
   */
  configure(fn: lambda.Function, { maxEventAge }: AsyncInvokePolicy): void {
    fn.configureAsyncInvoke({ retryAttempts: 2, maxEventAge, onFailure: this.destination });
  }
}
