import type { APIGatewayProxyEventV2WithJWTAuthorizer, Context, EventBridgeEvent } from 'aws-lambda';
import type { CommandInvocationStatusDetail } from '#lambda/completion.lambda.ts';

/**
 * The claims of a signed-in user as API Gateway's JWT authorizer hands them to the function: every claim a string,
 * so Cognito's `cognito:groups` array arrives as `"[team-a team-b]"`.
 */
export function userClaims(username: string, groups: string[]): Record<string, string> {
  return { sub: `${username}-sub`, username, 'cognito:groups': `[${groups.join(' ')}]` };
}

/** An API Gateway HTTP API (payload 2.0) event as API Gateway sends it behind a JWT authorizer. */
export function httpApiEvent(
  method: string,
  pathWithQuery: string,
  options: { body?: unknown; claims?: Record<string, string> } = {},
): APIGatewayProxyEventV2WithJWTAuthorizer {
  const [path = '', query = ''] = pathWithQuery.split('?');
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    cookies: [],
    headers: {
      host: 'profiler.example.test',
      'user-agent': 'vitest',
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    queryStringParameters: query ? Object.fromEntries(new URLSearchParams(query)) : undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api1234567',
      authorizer: {
        principalId: '',
        integrationLatency: 0,
        jwt: { claims: options.claims ?? userClaims('alice', ['team-a']), scopes: [] },
      },
      domainName: 'profiler.example.test',
      domainPrefix: 'profiler',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: crypto.randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    isBase64Encoded: false,
  };
}

/** EventBridge's "EC2 Command Invocation Status-change Notification" for one instance. */
export function commandStatusEvent(
  detail: CommandInvocationStatusDetail,
): EventBridgeEvent<'EC2 Command Invocation Status-change Notification', CommandInvocationStatusDetail> {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'EC2 Command Invocation Status-change Notification',
    source: 'aws.ssm',
    account: '123456789012',
    time: new Date().toISOString(),
    region: process.env.AWS_REGION ?? 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${detail['instance-id']}`],
    detail,
  };
}

export const lambdaContext = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:test',
  memoryLimitInMB: '512',
  awsRequestId: 'request-1',
  logGroupName: '/aws/lambda/test',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 30_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
} satisfies Context;
