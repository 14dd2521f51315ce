import type { Context } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { createApp } from '#http/app.ts';
import { createAwsProfiler, createLambdaLogger } from './wiring.ts';

/** The caller's name from the HTTP API's JWT authorizer (Cognito: `username` in access tokens, else `sub`). */
function requestedBy(c: Context): string | null {
  const event = (c.env as { event?: LambdaEvent } | undefined)?.event as
    | { requestContext?: { authorizer?: { jwt?: { claims?: Record<string, unknown> } } } }
    | undefined;
  const claims = event?.requestContext?.authorizer?.jwt?.claims;
  const name = claims?.username ?? claims?.['cognito:username'] ?? claims?.email ?? claims?.sub;
  return typeof name === 'string' ? name : null;
}

const log = createLambdaLogger();

/** API Gateway HTTP API → the same Hono app as local mode. */
export const handler = handle(createApp({ profiler: createAwsProfiler(undefined, undefined, log), log, requestedBy }));
