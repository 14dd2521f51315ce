import type { Context } from 'hono';
import { handle, type LambdaEvent } from 'hono/aws-lambda';
import { createAwsClients } from '#adapters/aws/clients.ts';
import type { Caller } from '#domain/access.ts';
import { createApp } from '#http/app.ts';
import { callerFromJwtClaims } from '#http/caller.ts';
import { readAwsConfig } from '#shared/config.ts';
import { createAwsProfiler, createAwsRuleService, createLambdaLogger } from './wiring.ts';

const log = createLambdaLogger();
const config = readAwsConfig();
const clients = createAwsClients();
const profiler = createAwsProfiler(config, clients, log);
const rules = createAwsRuleService({ profiler, writesSchedules: true, config, clients, log });

/** The caller, from the claims the HTTP API's JWT authorizer verified (a request without them is 401). */
function caller(c: Context): Caller | null {
  const event = (c.env as { event?: LambdaEvent } | undefined)?.event as
    | { requestContext?: { authorizer?: { jwt?: { claims?: Record<string, unknown> } } } }
    | undefined;
  return callerFromJwtClaims(event?.requestContext?.authorizer?.jwt?.claims, { adminGroup: config.adminGroup });
}

/** API Gateway HTTP API → the same Hono app as local mode. */
export const handler = handle(createApp({ profiler, rules, log, caller }));
