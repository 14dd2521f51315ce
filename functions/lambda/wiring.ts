import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { type AwsClients, createAwsClients } from '#adapters/aws/clients.ts';
import { DynamoDbRunStore } from '#adapters/aws/dynamodb-run-store.ts';
import { Ec2Discovery } from '#adapters/aws/ec2-discovery.ts';
import { S3ArtifactStore } from '#adapters/aws/s3-artifact-store.ts';
import { SsmDispatcher } from '#adapters/aws/ssm-dispatcher.ts';
import type { Logger } from '#domain/ports.ts';
import { ProfilerService } from '#domain/profiler-service.ts';
import { type AwsConfig, readAwsConfig } from '#shared/config.ts';

/** Structured JSON logs through Powertools, behind the domain's Logger port. */
export function createLambdaLogger(): Logger {
  const logger = new PowertoolsLogger({ serviceName: 'flink-fleet-profiler' });
  return {
    info: (message, details) => logger.info(message, details ?? {}),
    warn: (message, details) => logger.warn(message, details ?? {}),
    error: (message, details) => logger.error(message, details ?? {}),
  };
}

/** The profiler over the AWS adapters; each Lambda entry builds it once, at cold start. */
export function createAwsProfiler(
  config: AwsConfig = readAwsConfig(),
  clients: AwsClients = createAwsClients(),
  log: Logger = createLambdaLogger(),
): ProfilerService {
  return new ProfilerService({
    runs: new DynamoDbRunStore(clients.dynamo, config.table),
    artifacts: new S3ArtifactStore(clients.s3, clients.s3Signer, config.bucket),
    dispatcher: new SsmDispatcher(clients.ssm, clients.s3, {
      documentName: config.documentName,
      documentVersion: config.documentVersion,
      outputBucket: config.bucket,
      outputPrefix: config.ssmOutputPrefix,
      deliveryTimeoutSeconds: config.deliveryTimeoutSeconds,
      graceSeconds: config.settings.graceSeconds,
    }),
    discovery: new Ec2Discovery(clients.ec2, { clusterTag: config.clusterTag, roleTag: config.roleTag }),
    settings: config.settings,
    log,
  });
}
