import type { EventBridgeEvent } from 'aws-lambda';
import { createAwsProfiler, createLambdaLogger } from './wiring.ts';

/** The detail of an "EC2 Command Invocation Status-change Notification" (source aws.ssm). */
export interface CommandInvocationStatusDetail {
  'command-id': string;
  'document-name': string;
  'instance-id': string;
  'requested-date-time': string;
  status: string;
}

const TERMINAL_STATUSES = new Set(['Success', 'Failed', 'TimedOut', 'Cancelled']);
const log = createLambdaLogger();
const profiler = createAwsProfiler(undefined, undefined, log);

/**
 * Finishes the run of an SSM command invocation once it ends. Duplicate and out-of-order events are
 * harmless (a finished run is left alone); an output object not in S3 yet throws, so EventBridge retries.
 */
export async function handler(
  event: EventBridgeEvent<'EC2 Command Invocation Status-change Notification', CommandInvocationStatusDetail>,
): Promise<void> {
  const { 'command-id': commandId, 'instance-id': instanceId, status } = event.detail;
  if (!TERMINAL_STATUSES.has(status)) return;
  const run = await profiler.completeCommand(commandId, instanceId);
  log.info('command invocation ended', { commandId, instanceId, status, runId: run?.id, runStatus: run?.status });
}
