import { type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '#shared/config.ts';
import { createTestApp, removeTestApps, violationsOf } from '#test/support/test-app.ts';
import type { FlinkFleetProfilerStack } from '../../infra/stack.ts';

/**
 * Flame graphs reach browsers only through a distribution of their own, sandboxed (issue 11, item 5). The expected
 * values are written out here, not imported from infra/. The functions are not bundled (`aws:cdk:bundling-stacks`:
 * none): stack.infra.test.ts and cdk-synth.infra.test.ts build them.
 */

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are checked field by field
type Json = any;

/** The managed CachingDisabled cache policy. */
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';

let stack: FlinkFleetProfilerStack;
let resources: Record<string, Json>;
let violations: Json[];

const logicalId = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);
const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);

beforeAll(() => {
  const created = createTestApp({ 'aws:cdk:bundling-stacks': [] });
  stack = created.stack;
  created.app.synth();

  violations = violationsOf(created.outdir);
  resources = Template.fromStack(stack, { skipCyclicalDependenciesCheck: true }).toJSON().Resources;
});
afterAll(removeTestApps);

describe('the artifact distribution', () => {
  const artifactDistribution = () => resources[logicalId(stack.storage.artifactLinks.distribution)].Properties;
  const behavior = () => artifactDistribution().DistributionConfig.DefaultCacheBehavior;

  it('passes cdk-nag with every finding acknowledged', () => {
    expect(violations).toEqual([]);
  });

  it('is a distribution of its own whose only origin is the artifacts bucket, which the UI’s distribution never reaches', () => {
    const artifactsBucket = logicalId(stack.storage.artifacts);
    const distributions = ofType('AWS::CloudFront::Distribution');
    expect(distributions.map(([id]) => id).sort()).toEqual(
      [logicalId(stack.storage.artifactLinks.distribution), logicalId(stack.web.distribution)].sort(),
    );

    const config = artifactDistribution().DistributionConfig;
    // The bucket's regional name: the host the API's links are signed for, and what CloudFront sends as Host.
    expect(config.Origins).toEqual([
      {
        Id: config.DefaultCacheBehavior.TargetOriginId,
        DomainName: { 'Fn::GetAtt': [artifactsBucket, 'RegionalDomainName'] },
        S3OriginConfig: { OriginAccessIdentity: '' },
      },
    ]);
    // One behavior, the default: no path serves anything else.
    expect(config.CacheBehaviors).toBeUndefined();
    expect(config.DefaultRootObject).toBeUndefined();
    expect(config.Logging).toMatchObject({ Prefix: expect.any(String) });

    const ui = resources[logicalId(stack.web.distribution)].Properties.DistributionConfig;
    expect(JSON.stringify(ui.Origins)).not.toContain(artifactsBucket);
  });

  it('gives the bucket no grant to CloudFront: S3 checks each link’s own signature', () => {
    const artifactsBucket = logicalId(stack.storage.artifacts);
    const policies = ofType('AWS::S3::BucketPolicy').filter(
      ([, policy]) => policy.Properties.Bucket.Ref === artifactsBucket,
    );
    for (const [, policy] of policies) {
      expect(JSON.stringify(policy.Properties.PolicyDocument)).not.toContain('cloudfront');
      expect(policy.Properties.PolicyDocument.Statement.filter((s: Json) => s.Effect === 'Allow')).toEqual([]);
    }
    expect(artifactDistribution().DistributionConfig.Origins[0].OriginAccessControlId).toBeUndefined();
    expect(resources[logicalId(stack.storage.artifacts)].Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  it('accepts HTTPS only, GET and HEAD, and caches nothing', () => {
    expect(behavior()).toMatchObject({
      ViewerProtocolPolicy: 'https-only',
      AllowedMethods: ['GET', 'HEAD'],
      CachePolicyId: CACHING_DISABLED,
    });
  });

  it('forwards the whole query string (the signature) but not the viewer’s Host, nor any other header or cookie', () => {
    const policy = resources[behavior().OriginRequestPolicyId.Ref];
    expect(policy.Type).toBe('AWS::CloudFront::OriginRequestPolicy');
    const config = policy.Properties.OriginRequestPolicyConfig;
    expect(config.QueryStringsConfig).toEqual({ QueryStringBehavior: 'all' });
    expect(config.HeadersConfig).toEqual({ HeaderBehavior: 'none' });
    expect(config.CookiesConfig).toEqual({ CookieBehavior: 'none' });
  });

  it('serves every response with the sandbox, exactly as local mode, and local mode’s other artifact headers', () => {
    const policy = resources[behavior().ResponseHeadersPolicyId.Ref];
    expect(policy.Type).toBe('AWS::CloudFront::ResponseHeadersPolicy');
    const config = policy.Properties.ResponseHeadersPolicyConfig;
    expect(config.SecurityHeadersConfig.ContentSecurityPolicy).toEqual({
      ContentSecurityPolicy: 'sandbox allow-scripts',
      Override: true,
    });
    expect(config.SecurityHeadersConfig.ContentTypeOptions).toEqual({ Override: true });
    expect(config.SecurityHeadersConfig.ReferrerPolicy).toEqual({ ReferrerPolicy: 'no-referrer', Override: true });
    expect(config.SecurityHeadersConfig.StrictTransportSecurity).toMatchObject({ Override: true });
    expect(config.CustomHeadersConfig.Items).toEqual([
      { Header: 'Cache-Control', Value: 'private, no-store', Override: true },
    ]);
    // The UI's own policy is another one.
    const ui = resources[logicalId(stack.web.distribution)].Properties.DistributionConfig;
    expect(ui.DefaultCacheBehavior.ResponseHeadersPolicyId).not.toEqual(behavior().ResponseHeadersPolicyId);
  });

  it('is where the API’s links point: the API gets its domain name, and the UI’s page policy needs nothing for it', () => {
    const artifactDistributionId = logicalId(stack.storage.artifactLinks.distribution);
    const withDomain = ofType('AWS::Lambda::Function').filter(
      ([, fn]) => fn.Properties.Environment?.Variables?.[ENV.artifactDomain],
    );
    expect(withDomain.map(([id]) => id)).toEqual([logicalId(stack.functions.handlers.api)]);
    expect(withDomain[0]?.[1].Properties.Environment.Variables[ENV.artifactDomain]).toEqual({
      'Fn::GetAtt': [artifactDistributionId, 'DomainName'],
    });
    // Links are navigations, which the UI's Content-Security-Policy does not restrict.
    const ui = resources[logicalId(stack.web.distribution)].Properties.DistributionConfig;
    const uiHeaders = resources[ui.DefaultCacheBehavior.ResponseHeadersPolicyId.Ref].Properties;
    expect(JSON.stringify(uiHeaders)).not.toContain(artifactDistributionId);
  });
});
