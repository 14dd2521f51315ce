import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '#shared/config.ts';
import { WEB_AUTH_CONFIG_FILE } from '#shared/web-auth-config.ts';
import { createTestApp, removeTestApps, violationsOf } from '#test/support/test-app.ts';
import { defaultDomainPrefix } from '../../infra/sign-in.ts';
import type { FlinkFleetProfilerStack } from '../../infra/stack.ts';

/**
 * The web UI's sign-in and the teams' configuration in the synthesized template. The functions are not bundled
 * here (`aws:cdk:bundling-stacks`: none): stack.infra.test.ts and cdk-synth.infra.test.ts build them.
 */

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are checked field by field
type Json = any;

interface Synthesized {
  stack: FlinkFleetProfilerStack;
  template: Template;
  outdir: string;
  /** cdk-nag's findings that nobody acknowledged. */
  violations: Json[];
}

function synth(context: Record<string, unknown> = {}): Synthesized {
  const { app, stack, outdir } = createTestApp({ 'aws:cdk:bundling-stacks': [], ...context });
  app.synth();
  return {
    stack,
    // The cycle check is a test of its own below.
    template: Template.fromStack(stack, { skipCyclicalDependenciesCheck: true }),
    outdir,
    violations: violationsOf(outdir),
  };
}

const logicalId = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);

const only = (template: Template, type: string): Json => {
  const found = Object.values(template.findResources(type));
  expect(found, type).toHaveLength(1);
  return found[0]?.Properties;
};

/** A deploy-time value as text: `{Logical}` for a Ref, `{Logical.Attribute}` for a GetAtt, joins joined. */
function render(value: Json): string {
  if (typeof value === 'string') return value;
  if (value.Ref) return `{${value.Ref}}`;
  if (value['Fn::GetAtt']) return `{${value['Fn::GetAtt'].join('.')}}`;
  if (value['Fn::Join']) return value['Fn::Join'][1].map(render).join(value['Fn::Join'][0]);
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** What CloudFormation makes of Ref, Fn::Select, Fn::Split and Fn::Join, given the pseudo parameters. */
function evaluate(value: Json, pseudo: Record<string, string>): Json {
  if (typeof value === 'string' || typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((item) => evaluate(item, pseudo));
  if (value.Ref) {
    if (!(value.Ref in pseudo)) throw new Error(`no value for ${value.Ref}`);
    return pseudo[value.Ref];
  }
  if (value['Fn::Join']) return evaluate(value['Fn::Join'][1], pseudo).join(value['Fn::Join'][0]);
  if (value['Fn::Split']) return evaluate(value['Fn::Split'][1], pseudo).split(value['Fn::Split'][0]);
  if (value['Fn::Select']) return evaluate(value['Fn::Select'][1], pseudo)[value['Fn::Select'][0]];
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}

/** Cognito's rules for a domain prefix, written out here rather than imported from the code under test. */
const COGNITO_PREFIX = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const expectValidPrefix = (prefix: string) => {
  expect(prefix).toMatch(COGNITO_PREFIX);
  expect(prefix).not.toMatch(/aws|amazon|cognito/);
};

const stackIdOf = (name: string, uuid: string) => `arn:aws:cloudformation:eu-west-1:123456789012:stack/${name}/${uuid}`;

let byDefault: Synthesized;
let configured: Synthesized;
const CONFIGURED = {
  cognitoDomainPrefix: 'acme-flink-profiler',
  teamTag: 'acme:team',
  adminGroup: 'platform-admins',
  maxFanOut: '50',
  minRuleIntervalSeconds: 600,
  maxFiringSeconds: '1800',
};

beforeAll(() => {
  byDefault = synth();
  configured = synth(CONFIGURED);
});
afterAll(removeTestApps);

describe('sign-in for the web UI', () => {
  it('gives the web client the authorization code flow only, no secret, back to the CloudFront URL', () => {
    const { stack, template } = byDefault;
    const client = only(template, 'AWS::Cognito::UserPoolClient');
    const uiUrl = `https://{${logicalId(stack.web.distribution)}.DomainName}/`;
    expect(client.AllowedOAuthFlows).toEqual(['code']);
    expect(client.AllowedOAuthFlowsUserPoolClient).toBe(true);
    expect(client.GenerateSecret ?? false).toBe(false);
    expect(JSON.stringify(client)).not.toMatch(/implicit|client_credentials|example\.com/);
    expect([...client.AllowedOAuthScopes].sort()).toEqual(['email', 'openid', 'profile']);
    expect(client.SupportedIdentityProviders).toEqual(['COGNITO']);
    expect(client.CallbackURLs.map(render)).toEqual([uiUrl]);
    expect(client.LogoutURLs.map(render)).toEqual([uiUrl]);
    // The README's command-line sign-in.
    expect(client.ExplicitAuthFlows).toContain('ALLOW_USER_PASSWORD_AUTH');
    // The API takes this client's tokens on its one route.
    const authorizer = only(template, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizer.JwtConfiguration.Audience).toEqual([{ Ref: logicalId(stack.webClient) }]);
    const route = only(template, 'AWS::ApiGatewayV2::Route');
    expect(route).toMatchObject({ RouteKey: '$default', AuthorizationType: 'JWT' });
  });

  it('wires the distribution, the client and the API without a dependency cycle', () => {
    // The client refers to the distribution, which refers to the API, whose authorizer refers to the client.
    expect(() => Template.fromStack(byDefault.stack)).not.toThrow();
  });

  it('deploys a hosted sign-in domain by default, its prefix valid and unique to the stack', () => {
    const { stack, template } = byDefault;
    const domain = only(template, 'AWS::Cognito::UserPoolDomain');
    expect(domain.UserPoolId).toEqual({ Ref: logicalId(stack.functions.userPool) });
    const first = evaluate(domain.Domain, {
      'AWS::StackId': stackIdOf(stack.stackName, '51af3dc0-da77-11e4-872e-1234567db123'),
    });
    const second = evaluate(domain.Domain, {
      'AWS::StackId': stackIdOf(stack.stackName, '51af3dc0-da77-11e4-872e-9876543abcde'),
    });
    expect(first).toBe('flinkfleetprofiler-1234567db123');
    expect(second).not.toBe(first);
    expectValidPrefix(first);
  });

  it('derives a valid prefix from any stack name', () => {
    const uuid = '51af3dc0-da77-11e4-872e-1234567db123';
    for (const name of [
      'AwsProfiler',
      'amazawsoncognito',
      'My-Cognito-Stack-',
      'Flink--AMAZON',
      `P${'x'.repeat(127)}`,
    ]) {
      const stack = new Stack(new App(), name);
      const prefix = evaluate(stack.resolve(defaultDomainPrefix(stack)), { 'AWS::StackId': stackIdOf(name, uuid) });
      expectValidPrefix(prefix);
      expect(prefix.endsWith('-1234567db123'), prefix).toBe(true);
    }
  });

  it('uses the cognitoDomainPrefix context value when given, and refuses one Cognito would refuse', () => {
    expect(only(configured.template, 'AWS::Cognito::UserPoolDomain').Domain).toBe(CONFIGURED.cognitoDomainPrefix);
    for (const prefix of ['my-aws-profiler', 'Profiler', '-profiler', 'profiler-', 'flink_profiler', 'p'.repeat(64)]) {
      expect(() => synth({ cognitoDomainPrefix: prefix }), prefix).toThrow(/context cognitoDomainPrefix: must be/);
    }
  });

  it('writes auth.json beside the UI, from the deployed client and domain, never cached', () => {
    const { stack, template, outdir } = byDefault;
    const deployments = Object.values(template.findResources('Custom::CDKBucketDeployment')).map(
      (resource: Json) => resource.Properties,
    );
    expect(deployments).toHaveLength(2);
    const ui = deployments.find((d) => d.Prune === true);
    const auth = deployments.find((d) => d !== ui);
    // The UI's sync neither uploads a built auth.json nor deletes the stack's.
    expect(ui.Exclude).toEqual([WEB_AUTH_CONFIG_FILE]);
    expect(auth).toMatchObject({
      Prune: false,
      SystemMetadata: { 'cache-control': 'no-store' },
      DistributionPaths: [`/${WEB_AUTH_CONFIG_FILE}`],
      DestinationBucketName: ui.DestinationBucketName,
      DistributionId: ui.DistributionId,
    });
    expect(auth.SourceObjectKeys).toHaveLength(1);
    const staged = join(outdir, `asset.${auth.SourceObjectKeys[0].replace(/\.zip$/, '')}`, WEB_AUTH_CONFIG_FILE);
    let text = readFileSync(staged, 'utf8');
    for (const [marker, value] of Object.entries(auth.SourceMarkers[0] as Record<string, Json>))
      text = text.replaceAll(marker, render(value));
    const cognito = `https://{${logicalId(stack.functions.signInDomain)}}.auth.{AWS::Region}.amazoncognito.com`;
    expect(JSON.parse(text)).toEqual({
      kind: 'cognito',
      clientId: `{${logicalId(stack.webClient)}}`,
      authorizeUrl: `${cognito}/oauth2/authorize`,
      tokenUrl: `${cognito}/oauth2/token`,
      logoutUrl: `${cognito}/logout`,
      redirectUri: `https://{${logicalId(stack.web.distribution)}.DomainName}/`,
      scopes: ['openid', 'email', 'profile'],
    });
  });

  it('outputs the hosted sign-in URL of the web client, and keeps the other outputs', () => {
    const { stack, template } = byDefault;
    const outputs = template.toJSON().Outputs;
    const cognito = `https://{${logicalId(stack.functions.signInDomain)}}.auth.{AWS::Region}.amazoncognito.com`;
    expect(render(outputs.SignInUrl.Value)).toBe(
      `${cognito}/oauth2/authorize?client_id={${logicalId(stack.webClient)}}&response_type=code` +
        `&scope=openid+email+profile&redirect_uri=https://{${logicalId(stack.web.distribution)}.DomainName}/`,
    );
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining(['Url', 'NodePolicyArn', 'AgentDocumentName', 'UserPoolId', 'UserPoolClientId']),
    );
  });
});

describe('teams configuration', () => {
  /** The environment of the API, rule tick, completion and reconciler functions. */
  const environments = ({ stack, template }: Synthesized) => {
    const functions = template.toJSON().Resources;
    const { api, tick, completion, reconciler } = stack.functions.handlers;
    const of = (fn: IConstruct) => functions[logicalId(fn)].Properties.Environment.Variables;
    return { api: of(api), tick: of(tick), completion: of(completion), reconciler: of(reconciler) };
  };

  it('creates the admin group in the user pool, named by adminGroup', () => {
    for (const [synthesized, name] of [
      [byDefault, 'flink-profiler-admins'],
      [configured, CONFIGURED.adminGroup],
    ] as const) {
      const group = only(synthesized.template, 'AWS::Cognito::UserPoolGroup');
      expect(group).toMatchObject({
        GroupName: name,
        UserPoolId: { Ref: logicalId(synthesized.stack.functions.userPool) },
      });
      expect(group.Description).toMatch(/\w/);
    }
  });

  it('tells the API and the rule tick the team tag and the admin group', () => {
    const { api, tick, completion } = environments(byDefault);
    for (const env of [api, tick]) {
      expect(env[ENV.teamTag]).toBe('flink-profiler:team');
      expect(env[ENV.adminGroup]).toBe('flink-profiler-admins');
    }
    expect(completion[ENV.teamTag]).toBeUndefined();
    const set = environments(configured);
    for (const env of [set.api, set.tick]) {
      expect(env[ENV.teamTag]).toBe(CONFIGURED.teamTag);
      expect(env[ENV.adminGroup]).toBe(CONFIGURED.adminGroup);
    }
  });

  it('sets the guardrails only when their context values are given, leaving the defaults to the functions', () => {
    const guardrails = [ENV.maxFanOut, ENV.minRuleInterval, ENV.maxFiringSeconds];
    for (const env of Object.values(environments(byDefault))) {
      for (const name of guardrails) expect(env[name], name).toBeUndefined();
    }
    const { api, tick } = environments(configured);
    for (const env of [api, tick]) {
      expect(env[ENV.maxFanOut]).toBe('50');
      expect(env[ENV.minRuleInterval]).toBe('600');
      expect(env[ENV.maxFiringSeconds]).toBe('1800');
    }
  });

  it('refuses context values the functions could not use', () => {
    const refused: [string, unknown][] = [
      ['adminGroup', 'platform admins'],
      ['adminGroup', 'admins,ops'],
      ['teamTag', 'aws:team'],
      ['maxFanOut', '0'],
      ['minRuleIntervalSeconds', 'five minutes'],
      ['maxFiringSeconds', 1.5],
    ];
    for (const [key, value] of refused) {
      expect(() => synth({ [key]: value }), `${key}=${value}`).toThrow(new RegExp(`context ${key}: must`));
    }
  });

  it('passes the cdk-nag checks with every context value set, as by default', () => {
    expect(byDefault.violations).toEqual([]);
    expect(configured.violations).toEqual([]);
  });
});
