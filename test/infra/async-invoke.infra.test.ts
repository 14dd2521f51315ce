import { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, removeTestApps, violationsOf } from '#test/support/test-app.ts';
import type { FlinkFleetProfilerStack } from '../../infra/stack.ts';

/**
 * What happens to an asynchronous invocation that fails: EventBridge and EventBridge Scheduler invoke the completion,
 * reconciler and tick functions asynchronously, so their retries and failure records are Lambda's EventInvokeConfig,
 * not the rule target's retry policy (which only covers delivery). Synthesized without bundling the functions
 * (`aws:cdk:bundling-stacks`: none): stack.infra.test.ts and cdk-synth.infra.test.ts build them.
 */

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are checked field by field
type Json = any;

let stack: FlinkFleetProfilerStack;
let resources: Record<string, Json>;
let violations: Json[];

const logicalId = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(
    CfnElement.isCfnElement(construct) ? construct : (construct.node.defaultChild as CfnElement),
  );

const ofType = (type: string): [string, Json][] =>
  Object.entries(resources).filter(([, resource]) => resource.Type === type);

/** The one failed-invocations queue: found in the template, not taken from the code under test. */
const queueId = () => {
  const queues = ofType('AWS::SQS::Queue');
  expect(queues).toHaveLength(1);
  return queues[0]?.[0] as string;
};
const queueArn = () => ({ 'Fn::GetAtt': [queueId(), 'Arn'] });

/** The EventInvokeConfigs of one function (by its logical id). */
const invokeConfigsOf = (fn: IConstruct): Json[] =>
  ofType('AWS::Lambda::EventInvokeConfig')
    .map(([, resource]) => resource.Properties)
    .filter((config) => config.FunctionName?.Ref === logicalId(fn));

/** Every IAM statement attached to one function's execution role. */
const statementsOf = (fn: { role?: IConstruct }): Json[] =>
  ofType('AWS::IAM::Policy')
    .map(([, resource]) => resource.Properties)
    .filter((policy) => policy.Roles.some((role: Json) => role.Ref === logicalId(fn.role as IConstruct)))
    .flatMap((policy) => policy.PolicyDocument.Statement);

const mentionsQueue = (statement: Json) => JSON.stringify(statement.Resource).includes(`"${queueId()}"`);

beforeAll(() => {
  const created = createTestApp({ 'aws:cdk:bundling-stacks': [] });
  created.app.synth();
  stack = created.stack;
  resources = Template.fromStack(stack, { skipCyclicalDependenciesCheck: true }).toJSON().Resources;

  violations = violationsOf(created.outdir);
});
afterAll(removeTestApps);

describe('asynchronous invocations', () => {
  // Written out here: an hour for a completion event, minutes for a pass of the reconciler or a rule firing.
  const expectedAges = { completion: 3600, reconciler: 300, tick: 600 } as const;

  for (const name of ['completion', 'reconciler', 'tick'] as const) {
    it(`gives the ${name} function 2 retries, a maximum event age and the failed-invocations queue on failure`, () => {
      const configs = invokeConfigsOf(stack.functions.handlers[name]);
      expect(configs).toHaveLength(1);
      expect(configs[0]).toEqual({
        FunctionName: { Ref: logicalId(stack.functions.handlers[name]) },
        // The unqualified ARN that EventBridge and the schedules invoke.
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: expectedAges[name],
        DestinationConfig: { OnFailure: { Destination: queueArn() } },
      });
    });
  }

  it('gives the API function, invoked synchronously by API Gateway, no EventInvokeConfig', () => {
    expect(invokeConfigsOf(stack.functions.handlers.api)).toEqual([]);
    expect(ofType('AWS::Lambda::EventInvokeConfig')).toHaveLength(3);
  });

  it('lets the three functions only send messages to the queue, and the API not at all', () => {
    const { api, completion, reconciler, tick } = stack.functions.handlers;
    for (const fn of [completion, reconciler, tick]) {
      const onQueue = statementsOf(fn).filter(mentionsQueue);
      expect(onQueue.map((s) => ({ Effect: s.Effect, Action: s.Action, Resource: s.Resource }))).toEqual([
        { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArn() },
      ]);
    }
    expect(statementsOf(api).filter(mentionsQueue)).toEqual([]);
  });

  it('keeps failed invocations 14 days in an encrypted, SSL-only queue', () => {
    const queue = resources[queueId()].Properties;
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(queue.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    const policies = ofType('AWS::SQS::QueuePolicy').map(([, resource]) => resource.Properties);
    expect(policies).toHaveLength(1);
    expect(policies[0].Queues).toEqual([{ Ref: queueId() }]);
    expect(policies[0].PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Action: 'sqs:*',
        Principal: { AWS: '*' },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });

  it('alarms on the first message in the queue and says what to do with it', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm')
      .map(([, resource]) => resource.Properties)
      .filter((alarm) => alarm.Namespace === 'AWS/SQS');
    expect(alarms).toHaveLength(1);
    const [alarm] = alarms;
    expect(alarm).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(), 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
    });
    expect(alarm.AlarmDescription).toMatch(/requestPayload/);
    expect(alarm.AlarmDescription).toMatch(/responsePayload/);
    expect(alarm.AlarmDescription).toMatch(/reconciler settles the run/);
    expect(alarm.AlarmDescription.length).toBeLessThanOrEqual(1024);
  });

  it('sends events EventBridge could not deliver to the same queue, within the same ages', () => {
    const rules = ofType('AWS::Events::Rule').map(([, resource]) => resource.Properties);
    const completion = rules.find((rule) => rule.EventPattern?.source?.[0] === 'aws.ssm');
    const reconciler = rules.find((rule) => rule.ScheduleExpression === 'rate(1 minute)');
    expect(rules).toHaveLength(2);
    for (const [rule, fn, age] of [
      [completion, stack.functions.handlers.completion, expectedAges.completion],
      [reconciler, stack.functions.handlers.reconciler, expectedAges.reconciler],
    ] as const) {
      expect(rule.Targets).toHaveLength(1);
      expect(rule.Targets[0]).toMatchObject({
        Arn: { 'Fn::GetAtt': [logicalId(fn), 'Arn'] },
        DeadLetterConfig: { Arn: queueArn() },
        RetryPolicy: { MaximumEventAgeInSeconds: age },
      });
    }
    // EventBridge may write there for those two rules only.
    const [policy] = ofType('AWS::SQS::QueuePolicy').map(([, resource]) => resource.Properties);
    const allowed = policy.PolicyDocument.Statement.filter((s: Json) => s.Effect === 'Allow');
    for (const statement of allowed) {
      expect(statement).toMatchObject({ Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage' });
    }
    expect(allowed.map((s: Json) => s.Condition.ArnEquals['aws:SourceArn']['Fn::GetAtt'][0]).sort()).toEqual(
      ofType('AWS::Events::Rule')
        .map(([id]) => id)
        .sort(),
    );
  });

  it('gives the schedules the same queue for firings they could not deliver, sent with their own role', () => {
    // The API writes the schedules: it learns the queue from its environment.
    const api = resources[logicalId(stack.functions.handlers.api)];
    expect(api.Properties.Environment.Variables.FLINK_PROFILER_SCHEDULE_DEAD_LETTER_ARN).toEqual(queueArn());
    // Scheduler sends to a dead-letter queue as the schedule's role, which may do that and nothing else there.
    const roleStatements = ofType('AWS::IAM::Policy')
      .map(([, resource]) => resource.Properties)
      .filter((policy) => policy.Roles.some((role: Json) => role.Ref === logicalId(stack.rules.schedulerRole)))
      .flatMap((policy) => policy.PolicyDocument.Statement)
      .filter(mentionsQueue);
    expect(roleStatements).toHaveLength(1);
    expect(roleStatements[0]).toMatchObject({ Effect: 'Allow', Resource: queueArn() });
    expect([roleStatements[0].Action].flat().sort()).toEqual([
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ]);
  });

  it('alarms when EventBridge Scheduler drops a rule firing (even its dead-letter send failed)', () => {
    const [alarm, ...others] = ofType('AWS::CloudWatch::Alarm')
      .map(([, resource]) => resource.Properties)
      .filter((a) => a.Namespace === 'AWS/Scheduler');
    expect(others).toEqual([]);
    expect(alarm).toMatchObject({
      MetricName: 'InvocationDroppedCount',
      Dimensions: [{ Name: 'ScheduleGroup', Value: { Ref: logicalId(stack.rules.scheduleGroup) } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      Statistic: 'Sum',
    });
  });

  it('outputs the queue URL and passes the cdk-nag checks', () => {
    const outputs = Template.fromStack(stack, { skipCyclicalDependenciesCheck: true }).toJSON().Outputs;
    expect(outputs.FailedInvocationsQueueUrl.Value).toEqual({ Ref: queueId() });
    expect(violations).toEqual([]);
  });
});
