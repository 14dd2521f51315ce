import { z } from 'zod';
import { DEFAULT_SETTINGS, type ProfilerSettings } from '#domain/profiler-service.ts';
import { describeIssues } from '#domain/validation.ts';

/** Every environment variable the service reads, named once here and imported wherever they are set or read. */
export const ENV = {
  port: 'PORT',
  host: 'FLINK_PROFILER_HOST',
  publicUrl: 'FLINK_PROFILER_PUBLIC_URL',
  dataDir: 'FLINK_PROFILER_DATA',
  maxDuration: 'FLINK_PROFILER_MAX_DURATION',
  historySize: 'FLINK_PROFILER_HISTORY_SIZE',
  graceSeconds: 'FLINK_PROFILER_GRACE_SECONDS',
  linkTtl: 'FLINK_PROFILER_LINK_TTL',
  linkSecret: 'FLINK_PROFILER_LINK_SECRET',
  asprof: 'ASPROF',
  agentTmpDir: 'FLINK_PROFILER_TMPDIR',
  table: 'FLINK_PROFILER_TABLE',
  bucket: 'FLINK_PROFILER_BUCKET',
  ssmOutputPrefix: 'FLINK_PROFILER_SSM_OUTPUT_PREFIX',
  documentName: 'FLINK_PROFILER_DOCUMENT_NAME',
  documentVersion: 'FLINK_PROFILER_DOCUMENT_VERSION',
  deliveryTimeout: 'FLINK_PROFILER_DELIVERY_TIMEOUT',
  clusterTag: 'FLINK_PROFILER_CLUSTER_TAG',
  roleTag: 'FLINK_PROFILER_ROLE_TAG',
  /** EventBridge Scheduler group that holds one schedule per rule (the API function writes them). */
  scheduleGroup: 'FLINK_PROFILER_SCHEDULE_GROUP',
  /** ARN of the rule tick function, the target of every rule's schedule. */
  tickFunctionArn: 'FLINK_PROFILER_TICK_FUNCTION_ARN',
  /** ARN of the role the schedules assume to invoke the tick function (the API function passes it). */
  schedulerRoleArn: 'FLINK_PROFILER_SCHEDULER_ROLE_ARN',
} as const;

const wholeNumber = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be a whole number from ${min} to ${max}` })
    .max(max, { error: `must be a whole number from ${min} to ${max}` });

const settingsSchema = z.object({
  [ENV.maxDuration]: wholeNumber(1, 3600).default(DEFAULT_SETTINGS.maxDurationSeconds),
  [ENV.historySize]: wholeNumber(1, 1000).default(DEFAULT_SETTINGS.historySize),
  [ENV.graceSeconds]: wholeNumber(5, 3600).default(DEFAULT_SETTINGS.graceSeconds),
  [ENV.linkTtl]: wholeNumber(1, 7 * 24 * 3600).default(DEFAULT_SETTINGS.linkTtlSeconds),
});

const localSchema = settingsSchema.extend({
  [ENV.port]: wholeNumber(0, 65535).default(8080),
  [ENV.host]: z.string().min(1).default('127.0.0.1'),
  [ENV.publicUrl]: z.url({ error: 'must be an absolute http(s) URL' }).optional(),
  [ENV.dataDir]: z.string().min(1).default('.data'),
  [ENV.linkSecret]: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  [ENV.asprof]: z.string().min(1).optional(),
  [ENV.agentTmpDir]: z.string().startsWith('/', { error: 'must be an absolute path' }).optional(),
});

/** Thrown when the environment holds a bad setting; the message names each variable and its rule. */
export class ConfigError extends Error {}

function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  // Treat empty variables as unset, as shells and CDK often leave them.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = schema.safeParse(present);
  if (!result.success) throw new ConfigError(`bad configuration: ${describeIssues(result.error).join('; ')}`);
  return result.data;
}

export interface LocalConfig {
  port: number;
  host: string;
  /** Base of the links handed out; defaults to the address the server listens on. */
  publicUrl?: string;
  dataDir: string;
  linkSecret?: string;
  asprof?: string;
  /** Where the node agent makes its scratch directories (the profiled JVM's user must be able to enter it). */
  agentTmpDir?: string;
  settings: ProfilerSettings;
}

/** Reads and checks local mode's configuration once, at start-up. */
export function readLocalConfig(env: NodeJS.ProcessEnv = process.env): LocalConfig {
  const parsed = parseEnv(localSchema, env);
  return {
    port: parsed[ENV.port],
    host: parsed[ENV.host],
    publicUrl: parsed[ENV.publicUrl],
    dataDir: parsed[ENV.dataDir],
    linkSecret: parsed[ENV.linkSecret],
    asprof: parsed[ENV.asprof],
    agentTmpDir: parsed[ENV.agentTmpDir],
    settings: settingsOf(parsed),
  };
}

function settingsOf(parsed: z.infer<typeof settingsSchema>): ProfilerSettings {
  return {
    maxDurationSeconds: parsed[ENV.maxDuration],
    historySize: parsed[ENV.historySize],
    graceSeconds: parsed[ENV.graceSeconds],
    linkTtlSeconds: parsed[ENV.linkTtl],
  };
}

const awsSchema = settingsSchema.extend({
  [ENV.table]: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  [ENV.bucket]: z.string({ error: 'is required' }).min(3, { error: 'must be an S3 bucket name' }),
  [ENV.ssmOutputPrefix]: z.string().min(1).default('ssm-output/'),
  [ENV.documentName]: z.string({ error: 'is required' }).min(3, { error: 'must be an SSM document name' }),
  [ENV.documentVersion]: z
    .string({ error: 'is required' })
    .regex(/^([1-9]\d*|\$DEFAULT|\$LATEST)$/, { error: 'must be a document version number, $DEFAULT or $LATEST' }),
  [ENV.deliveryTimeout]: wholeNumber(30, 2_592_000).default(60),
  [ENV.clusterTag]: z.string().min(1).default('flink-profiler:cluster'),
  [ENV.roleTag]: z.string().min(1).default('flink-profiler:role'),
});

export interface AwsConfig {
  table: string;
  bucket: string;
  ssmOutputPrefix: string;
  documentName: string;
  documentVersion: string;
  deliveryTimeoutSeconds: number;
  clusterTag: string;
  roleTag: string;
  settings: ProfilerSettings;
}

/** Reads and checks the Lambda functions' configuration once, at cold start. */
export function readAwsConfig(env: NodeJS.ProcessEnv = process.env): AwsConfig {
  const parsed = parseEnv(awsSchema, env);
  return {
    table: parsed[ENV.table],
    bucket: parsed[ENV.bucket],
    ssmOutputPrefix: parsed[ENV.ssmOutputPrefix],
    documentName: parsed[ENV.documentName],
    documentVersion: parsed[ENV.documentVersion],
    deliveryTimeoutSeconds: parsed[ENV.deliveryTimeout],
    clusterTag: parsed[ENV.clusterTag],
    roleTag: parsed[ENV.roleTag],
    settings: settingsOf(parsed),
  };
}

const ruleSchedulerSchema = z.object({
  [ENV.scheduleGroup]: z
    .string({ error: 'is required' })
    .regex(/^[0-9a-zA-Z\-_.]{1,64}$/, { error: 'must be an EventBridge Scheduler group name' }),
  [ENV.tickFunctionArn]: z
    .string({ error: 'is required' })
    .regex(/^arn:[\w-]+:lambda:/, { error: 'must be the ARN of the rule tick Lambda function' }),
  [ENV.schedulerRoleArn]: z
    .string({ error: 'is required' })
    .regex(/^arn:[\w-]+:iam::/, { error: 'must be the ARN of an IAM role' }),
});

export interface RuleSchedulerConfig {
  groupName: string;
  tickFunctionArn: string;
  schedulerRoleArn: string;
}

/**
 * Reads and checks where rules' schedules go: the API function needs it (it writes schedules); the tick function,
 * which only fires rules, does not.
 */
export function readRuleSchedulerConfig(env: NodeJS.ProcessEnv = process.env): RuleSchedulerConfig {
  const parsed = parseEnv(ruleSchedulerSchema, env) as Record<string, string>;
  return {
    groupName: parsed[ENV.scheduleGroup] as string,
    tickFunctionArn: parsed[ENV.tickFunctionArn] as string,
    schedulerRoleArn: parsed[ENV.schedulerRoleArn] as string,
  };
}
