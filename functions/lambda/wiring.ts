import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { type AwsClients, createAwsClients } from '#adapters/aws/clients.ts';
import { DynamoDbRuleStore } from '#adapters/aws/dynamodb-rule-store.ts';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { EventBridgeRuleScheduler } from '#adapters/aws/eventbridge-rule-scheduler.ts';
import { S3ArtifactStore } from '#adapters/aws/s3-artifact-store.ts';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import { TaggedNodeDiscovery } from '#adapters/aws/tagged-node-discovery.ts';
import type { Logger, RuleScheduler } from '#domain/ports.ts';
import { ProfilerService } from '#domain/profiler-service.ts';
import { RuleService } from '#domain/rule-service.ts';
import { type AwsConfig, readAwsConfig, readRuleSchedulerConfig } from '#shared/config.ts';

/** Structured JSON logs through Powertools, behind the domain's Logger port. */
export function createLambdaLogger(): Logger {
  const logger = new PowertoolsLogger({ serviceName: 'flink-fleet-profiler' });
  return {
    info: (message, details) => logger.info(message, details ?? {}),
    warn: (message, details) => logger.warn(message, details ?? {}),
    error: (message, details) => logger.error(message, details ?? {}),
  };
}

/** Flink nodes on AWS: tagged EC2 instances that SSM manages. */
function createDiscovery(config: AwsConfig, clients: AwsClients): TaggedNodeDiscovery {
  const { clusterTag, roleTag, teamTag } = config;
  return new TaggedNodeDiscovery(clients.ssm, clients.tagging, { clusterTag, roleTag, teamTag });
}

/** The profiler over the AWS adapters; each Lambda entry builds it once, at cold start. */
export function createAwsProfiler(
  config: AwsConfig = readAwsConfig(),
  clients: AwsClients = createAwsClients(),
  log: Logger = createLambdaLogger(),
): ProfilerService {
  return new ProfilerService({
    runs: new DynamoDbRunStore(clients.dynamo, config.table),
    // Links to flame graphs go through the sandboxing artifact distribution when the stack names one.
    artifacts: new S3ArtifactStore(clients.s3, clients.s3Signer, config.bucket, { linkDomain: config.artifactDomain }),
    dispatcher: new SsmDispatcher(clients.ssm, clients.s3, {
      documentName: config.documentName,
      documentVersion: config.documentVersion,
      outputBucket: config.bucket,
      outputPrefix: config.ssmOutputPrefix,
      deliveryTimeoutSeconds: config.deliveryTimeoutSeconds,
      graceSeconds: config.settings.graceSeconds,
    }),
    discovery: createDiscovery(config, clients),
    settings: config.settings,
    log,
  });
}

/** For the tick function, which fires rules and never writes schedules (its own ARN is no setting of its own). */
const NO_SCHEDULE_WRITES: RuleScheduler = {
  put: () => Promise.reject(new Error('the rule tick function does not write schedules')),
  remove: () => Promise.reject(new Error('the rule tick function does not write schedules')),
};

/**
 * Scheduled profiling rules over the AWS adapters: rules in the run table, schedules in EventBridge Scheduler.
 * `writesSchedules: false` (the tick function) needs no scheduler settings.
 */
export function createAwsRuleService(options: {
  profiler: ProfilerService;
  writesSchedules: boolean;
  config?: AwsConfig;
  clients?: AwsClients;
  log?: Logger;
}): RuleService {
  const { profiler, config = readAwsConfig(), clients = createAwsClients(), log = createLambdaLogger() } = options;
  const scheduler = options.writesSchedules
    ? new EventBridgeRuleScheduler(clients.scheduler, readRuleSchedulerConfig())
    : NO_SCHEDULE_WRITES;
  return new RuleService({
    rules: new DynamoDbRuleStore(clients.dynamo, config.table),
    scheduler,
    profiler,
    teamsInForce: true,
    discovery: createDiscovery(config, clients),
    log,
  });
}
