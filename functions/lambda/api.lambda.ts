import type { Context } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { createAwsClients } from '#adapters/aws/clients.ts';
import { createApp } from '#http/app.ts';
import { readAwsConfig } from '#shared/config.ts';
import { createAwsProfiler, createAwsRuleService, createLambdaLogger } from './wiring.ts';

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
const config = readAwsConfig();
const clients = createAwsClients();
const profiler = createAwsProfiler(config, clients, log);
const rules = createAwsRuleService({ profiler, writesSchedules: true, config, clients, log });

/** API Gateway HTTP API → the same Hono app as local mode. */
export const handler = handle(createApp({ profiler, rules, log, requestedBy }));
