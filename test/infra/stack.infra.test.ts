import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RUN_TABLE } from '#adapters/aws/run-table.ts';
import { PAGE_CSP } from '#local/web-assets.ts';
import { ENV } from '#shared/config.ts';
import { ZOD_FOREIGN_MESSAGES } from '#test/support/lambda-bundles.ts';
import { createTestApp, removeTestApps } from '#test/support/test-app.ts';
import type { FlinkFleetProfilerStack } from '../../infra/stack.ts';

/** The CDK stack, synthesized offline (no credentials, no Docker) with cdk-nag's AWS Solutions checks. */

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are checked field by field
type Json = any;

let template: Template;
let stack: FlinkFleetProfilerStack;
let outdir: string;

function resourcesOf(type: string): Json[] {
  return Object.values(template.findResources(type)).map((resource: Json) => resource.Properties);
}

/** Every IAM statement of the template, flattened. */
function statements(): Json[] {
  return [...resourcesOf('AWS::IAM::Policy'), ...resourcesOf('AWS::IAM::ManagedPolicy')].flatMap(
    (policy) => policy.PolicyDocument.Statement,
  );
}

beforeAll(() => {
  const created = createTestApp();
  outdir = created.outdir;
  stack = created.stack;
  // cdk-nag runs as a validation plugin: synth throws on any finding that is not acknowledged with a reason.
  created.app.synth();
  template = Template.fromStack(stack);
});
afterAll(removeTestApps);

describe('the CDK stack', () => {
  it('passes the cdk-nag AWS Solutions checks with no unacknowledged finding', () => {
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
    const violations = report.pluginReports.flatMap((plugin: Json) => plugin.violations);
    expect(violations).toEqual([]);
    for (const plugin of report.pluginReports) expect(plugin.conclusion, plugin.pluginName).toBe('success');
  });

  it('fails synthesis on a finding nobody acknowledged (the checks are live)', () => {
    const { app, stack: other } = createTestApp();
    other.functions.handlers.api.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Action::s3:\*\]/);
  });

  it('creates our SSM document from the same files local mode runs, with typed parameters', () => {
    const [document] = resourcesOf('AWS::SSM::Document');
    const source = parse(
      readFileSync(new URL('../../functions/node-agent/flink-profiler.ssm.yaml', import.meta.url), 'utf8'),
    );
    const scriptLines = readFileSync(
      new URL('../../functions/node-agent/flink-profiler-agent.sh', import.meta.url),
      'utf8',
    )
      .replace(/\n$/, '')
      .split('\n');
    expect(document).toMatchObject({ DocumentType: 'Command', DocumentFormat: 'YAML' });
    // The step runs the agent script file as deployed, one runCommand element a line; the rest is the YAML file.
    expect(document.Content.mainSteps[0].inputs.runCommand).toEqual(scriptLines);
    source.mainSteps[0].inputs.runCommand = scriptLines;
    expect(document.Content).toEqual(source);
    for (const [name, parameter] of Object.entries(document.Content.parameters as Record<string, Json>)) {
      expect(parameter.allowedPattern ?? parameter.allowedValues, name).toBeDefined();
    }
    expect(document.Content.parameters.duration.allowedPattern).toBe(source.parameters.duration.allowedPattern);
    expect(JSON.stringify(template.toJSON())).not.toContain('AWS-RunShellScript');
  });

  it('lets the API and the rule tick send only our document, only to instances that carry the profiler tag', () => {
    const sends = statements().filter((s) => [s.Action].flat().includes('ssm:SendCommand'));
    // Two statements for each of the two functions that start runs.
    expect(sends).toHaveLength(4);
    const documents = sends.filter((s) => JSON.stringify(s.Resource).includes(':document/'));
    const instances = sends.filter((s) => JSON.stringify(s.Resource).includes(':instance/'));
    expect(documents).toHaveLength(2);
    for (const statement of documents) {
      expect(JSON.stringify(statement.Resource)).toContain(`:document/${stack.nodeSide.documentName}`);
    }
    expect(instances.map((s) => s.Condition)).toEqual([
      { StringLike: { 'ssm:resourceTag/flink-profiler:cluster': '*' } },
      { StringLike: { 'ssm:resourceTag/flink-profiler:cluster': '*' } },
    ]);
    expect(statements().some((s) => [s.Action].flat().some((a: string) => a === 'ssm:*' || a === '*'))).toBe(false);
  });

  it('lets the two functions that send commands ask SSM which nodes are managed (a batch with one bad node)', () => {
    const asks = statements().filter((s) => [s.Action].flat().includes('ssm:DescribeInstanceInformation'));
    expect(asks).toHaveLength(2);
  });

  it('gives the Flink nodes a policy that writes only the SSM output prefix', () => {
    const [policy] = resourcesOf('AWS::IAM::ManagedPolicy');
    const writes = policy.PolicyDocument.Statement.filter((s: Json) => s.Action === 's3:PutObject');
    expect(writes).toHaveLength(1);
    expect(JSON.stringify(writes[0].Resource)).toMatch(/\/ssm-output\/\*"/);
  });

  it('keeps artifacts in a private, encrypted, SSL-only bucket that expires old profiles and command output', () => {
    const buckets = resourcesOf('AWS::S3::Bucket');
    for (const bucket of buckets) {
      expect(bucket.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(
        bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
      ).toBe('AES256');
    }
    const artifacts = buckets.find((b) => b.LifecycleConfiguration?.Rules.some((r: Json) => r.Prefix === 'profiles/'));
    expect(artifacts.LifecycleConfiguration.Rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Prefix: 'profiles/', ExpirationInDays: 30, Status: 'Enabled' }),
        expect.objectContaining({ Prefix: 'derived/', ExpirationInDays: 1, Status: 'Enabled' }),
        expect.objectContaining({ Prefix: 'ssm-output/', ExpirationInDays: 7, Status: 'Enabled' }),
        expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
      ]),
    );
    for (const policy of resourcesOf('AWS::S3::BucketPolicy')) {
      expect(policy.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  it('stores runs in an on-demand table with TTL, point-in-time recovery and the adapter’s indexes', () => {
    const [table] = resourcesOf('AWS::DynamoDB::GlobalTable');
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: RUN_TABLE.ttlAttribute, Enabled: true });
    expect(table.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.GlobalSecondaryIndexes.map((index: Json) => index.IndexName).sort()).toEqual(
      Object.values(RUN_TABLE.indexes).sort(),
    );
  });

  it('puts the JWT authorizer on every API route', () => {
    const routes = resourcesOf('AWS::ApiGatewayV2::Route');
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes)
      expect(route).toMatchObject({ AuthorizationType: 'JWT', AuthorizerId: expect.anything() });
    const [authorizer] = resourcesOf('AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.AuthorizerType).toBe('JWT');
    expect(JSON.stringify(authorizer.JwtConfiguration.Issuer)).toContain('cognito-idp.');
  });

  it('serves the UI from a private bucket through CloudFront and routes /api/* to the HTTP API', () => {
    const distribution =
      template.toJSON().Resources[stack.getLogicalId(stack.web.distribution.node.defaultChild as CfnElement)];
    const config = distribution.Properties.DistributionConfig;
    expect(config.DefaultRootObject).toBe('index.html');
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    const s3Origin = config.Origins.find((o: Json) => o.Id === config.DefaultCacheBehavior.TargetOriginId);
    expect(s3Origin.OriginAccessControlId).toBeDefined();
    expect(s3Origin.S3OriginConfig).toEqual({ OriginAccessIdentity: '' });
    const api = config.CacheBehaviors.find((b: Json) => b.PathPattern === '/api/*');
    expect(api).toMatchObject({
      ViewerProtocolPolicy: 'https-only',
      AllowedMethods: expect.arrayContaining(['POST', 'PUT', 'DELETE']),
    });
    const apiOrigin = config.Origins.find((o: Json) => o.Id === api.TargetOriginId);
    expect(apiOrigin.CustomOriginConfig.OriginProtocolPolicy).toBe('https-only');
    const headers = template.toJSON().Resources[config.DefaultCacheBehavior.ResponseHeadersPolicyId.Ref].Properties;
    // Local mode's policy, plus the origin of the sign-in domain's token endpoint (the UI trades codes there).
    const csp = headers.ResponseHeadersPolicyConfig.SecurityHeadersConfig.ContentSecurityPolicy.ContentSecurityPolicy;
    const [before, after] = PAGE_CSP.split("connect-src 'self'");
    expect(csp['Fn::Join'][1][0]).toBe(`${before}connect-src 'self' https://`);
    expect(csp['Fn::Join'][1].at(-1)).toBe(after);
    expect(JSON.stringify(csp)).toMatch(/UserPoolDomain|SignIn/);
    // Never cached: each read signs fresh links.
    expect(api.CachePolicyId).toBe('4135ea2d-6df8-44a3-9df3-4b5a84be39ad');
  });

  it('sends only our document’s terminal status changes to the completion function', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ssm'],
        'detail-type': ['EC2 Command Invocation Status-change Notification'],
        detail: {
          'document-name': [stack.nodeSide.documentName],
          status: ['Success', 'Failed', 'TimedOut', 'Cancelled'],
        },
      },
      Targets: [Match.objectLike({ DeadLetterConfig: Match.anyValue(), RetryPolicy: Match.anyValue() })],
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
  });

  it('runs the functions on a pinned runtime with the configuration the code reads, named once', () => {
    const functions = resourcesOf('AWS::Lambda::Function').filter((fn) => fn.Environment?.Variables?.[ENV.table]);
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      expect(fn.Runtime).toBe('nodejs22.x');
      expect(Object.keys(fn.Environment.Variables)).toEqual(
        expect.arrayContaining([ENV.table, ENV.bucket, ENV.documentName, ENV.documentVersion, ENV.ssmOutputPrefix]),
      );
      expect(fn.Environment.Variables[ENV.documentVersion]).toBe('1');
    }
  });

  it('deploys each function its own bundle, built at synth as the tests build it: index.mjs, English-only zod', () => {
    const functions = resourcesOf('AWS::Lambda::Function').filter((fn) => fn.Environment?.Variables?.[ENV.table]);
    const keys = functions.map((fn) => fn.Code.S3Key as string);
    // CDK caches assets by their bundling options: four functions, four different bundles.
    expect(new Set(keys).size).toBe(4);
    for (const [i, fn] of functions.entries()) {
      expect(fn.Handler).toBe('index.handler');
      const asset = join(outdir, `asset.${keys[i]?.replace(/\.zip$/, '')}`);
      expect(readdirSync(asset)).toEqual(['index.mjs']);
      const code = readFileSync(join(asset, 'index.mjs'), 'utf8');
      for (const message of ZOD_FOREIGN_MESSAGES) expect(code.includes(message), message).toBe(false);
    }
  });

  it('provides the Scheduler group, a role that may only invoke the tick, and lets only the API write schedules', () => {
    template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    const invokes = statements().filter((s) => [s.Action].flat().includes('lambda:InvokeFunction'));
    expect(invokes).toHaveLength(1);
    expect(JSON.stringify(invokes[0].Resource)).toContain('TickFunction');
    const writes = statements().filter((s) => [s.Action].flat().includes('scheduler:CreateSchedule'));
    expect(writes).toHaveLength(1);
    expect(JSON.stringify(writes[0].Resource)).toMatch(/:schedule\/".*RulesScheduleGroup.*\/\*/);
    const passes = statements().filter((s) => [s.Action].flat().includes('iam:PassRole'));
    expect(passes.map((s) => s.Condition)).toEqual([
      { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    ]);
    const api = resourcesOf('AWS::Lambda::Function').filter((fn) => fn.Environment?.Variables?.[ENV.scheduleGroup]);
    expect(api).toHaveLength(1);
    expect(Object.keys(api[0].Environment.Variables)).toEqual(
      expect.arrayContaining([ENV.tickFunctionArn, ENV.schedulerRoleArn]),
    );
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' } })],
      },
    });
  });
});
