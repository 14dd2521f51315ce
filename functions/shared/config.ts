import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { DEFAULT_SETTINGS, type ProfilerSettings } from '#domain/profiler-service.ts';
import { describeIssues } from '#domain/validation.ts';
import { DEFAULT_ADMIN_GROUP } from '#http/caller.ts';

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
  /**
   * Host name of the CloudFront distribution that serves flame graphs, sandboxed, on an origin of their own (the
   * stack's artifact distribution). Unset: links go straight to the S3 endpoint.
   */
  artifactDomain: 'FLINK_PROFILER_ARTIFACT_DOMAIN',
  ssmOutputPrefix: 'FLINK_PROFILER_SSM_OUTPUT_PREFIX',
  documentName: 'FLINK_PROFILER_DOCUMENT_NAME',
  documentVersion: 'FLINK_PROFILER_DOCUMENT_VERSION',
  deliveryTimeout: 'FLINK_PROFILER_DELIVERY_TIMEOUT',
  clusterTag: 'FLINK_PROFILER_CLUSTER_TAG',
  roleTag: 'FLINK_PROFILER_ROLE_TAG',
  /** Tag naming the teams (Cognito groups) a cluster's instance belongs to, separated by spaces or commas. */
  teamTag: 'FLINK_PROFILER_TEAM_TAG',
  /** Cognito group whose members see and change everything. */
  adminGroup: 'FLINK_PROFILER_ADMIN_GROUP',
  /** Most targets one fan-out (or one rule firing) may start runs on. */
  maxFanOut: 'FLINK_PROFILER_MAX_FAN_OUT',
  /** Shortest time between two firings of a rule, in seconds. */
  minRuleInterval: 'FLINK_PROFILER_MIN_RULE_INTERVAL',
  /** Most profiling seconds (duration × targets) one rule firing may start. */
  maxFiringSeconds: 'FLINK_PROFILER_MAX_FIRING_SECONDS',
  /** Local mode off loopback: the bearer token every API request must carry. */
  token: 'FLINK_PROFILER_TOKEN',
  /** EventBridge Scheduler group that holds one schedule per rule (the API function writes them). */
  scheduleGroup: 'FLINK_PROFILER_SCHEDULE_GROUP',
  /** ARN of the rule tick function, the target of every rule's schedule. */
  tickFunctionArn: 'FLINK_PROFILER_TICK_FUNCTION_ARN',
  /** ARN of the role the schedules assume to invoke the tick function (the API function passes it). */
  schedulerRoleArn: 'FLINK_PROFILER_SCHEDULER_ROLE_ARN',
  /** ARN of the SQS queue where a schedule puts a firing it could not deliver to the tick function. */
  scheduleDeadLetterArn: 'FLINK_PROFILER_SCHEDULE_DEAD_LETTER_ARN',
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
  [ENV.maxFanOut]: wholeNumber(1, 10_000).default(DEFAULT_SETTINGS.maxFanOut),
  [ENV.minRuleInterval]: wholeNumber(60, 31 * 24 * 3600).default(DEFAULT_SETTINGS.minRuleIntervalSeconds),
  [ENV.maxFiringSeconds]: wholeNumber(1, 10_000_000).default(DEFAULT_SETTINGS.maxFiringSeconds),
});

/** A link secret's rule: hex, at least 32 bytes (what `openssl rand -hex 32` prints). */
export const LINK_SECRET_RULE =
  'must be at least 64 hex characters (32 bytes), e.g. the output of openssl rand -hex 32';
const LINK_SECRET_PATTERN = /^(?:[0-9a-fA-F]{2}){32,}$/;

/** Whether `hex` is a usable link secret (see LINK_SECRET_RULE); surrounding whitespace is not part of it. */
export const isLinkSecretHex = (hex: string): boolean => LINK_SECRET_PATTERN.test(hex);

/** The local token's rule: long and made of characters that pass unchanged through a header and a URL fragment. */
export const TOKEN_RULE =
  'must be at least 32 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-", e.g. the output of openssl rand -hex 32';
const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{32,}$/;

/**
 * Whether local mode binding to `host` stays on this machine: `localhost`, `127.0.0.0/8` and `::1` (also written
 * as the IPv4-mapped `::ffff:127.x.x.x`). Anything else, `0.0.0.0` and `::` included, is reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  const ipv4 = name.replace(/^::ffff:/, '');
  return isIPv4(ipv4) && ipv4.startsWith('127.');
}

/** Local mode's shortest rule interval by default: the shortest schedule there is, rate(1 minute). */
const LOCAL_MIN_RULE_INTERVAL_SECONDS = 60;

const localSchema = settingsSchema.extend({
  [ENV.port]: wholeNumber(0, 65535).default(8080),
  [ENV.host]: z.string().min(1).default('127.0.0.1'),
  [ENV.publicUrl]: z.url({ error: 'must be an absolute http(s) URL' }).optional(),
  [ENV.dataDir]: z.string().min(1).default('.data'),
  [ENV.linkSecret]: z.string().regex(LINK_SECRET_PATTERN, { error: LINK_SECRET_RULE }).optional(),
  [ENV.token]: z.string().regex(TOKEN_PATTERN, { error: TOKEN_RULE }).optional(),
  [ENV.asprof]: z.string().min(1).optional(),
  [ENV.agentTmpDir]: z.string().startsWith('/', { error: 'must be an absolute path' }).optional(),
  // One user on one machine: rules may fire as often as schedules can (every minute) unless configured otherwise.
  [ENV.minRuleInterval]: wholeNumber(60, 31 * 24 * 3600).default(LOCAL_MIN_RULE_INTERVAL_SECONDS),
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
  /** The address to listen on; anything but loopback (see isLoopbackHost) requires `token`. */
  host: string;
  /** Base of the links handed out; defaults to the address the server listens on. Its host is one of the server's own. */
  publicUrl?: string;
  dataDir: string;
  /** Hex of the key that signs flame-graph links (at least 32 bytes); else one is kept in the data directory. */
  linkSecret?: string;
  /** The bearer token every API request must carry; required off loopback, optional (but enforced) on it. */
  token?: string;
  asprof?: string;
  /** Where the node agent makes its scratch directories (the profiled JVM's user must be able to enter it). */
  agentTmpDir?: string;
  settings: ProfilerSettings;
}

/** Local mode's rules that look at more than one variable, or at a variable that is set but empty. */
function localIssues(env: NodeJS.ProcessEnv): string[] {
  const issues: string[] = [];
  if (env[ENV.linkSecret] === '')
    issues.push(`${ENV.linkSecret}: is set but empty; it ${LINK_SECRET_RULE}, or unset it`);
  const host = env[ENV.host] || '127.0.0.1';
  if (!env[ENV.token] && !isLoopbackHost(host))
    issues.push(
      `${ENV.token}: is required when ${ENV.host} (${host}) is not a loopback address (localhost, 127.x.x.x, ::1); it ${TOKEN_RULE}`,
    );
  else if (env[ENV.token] === '') issues.push(`${ENV.token}: is set but empty; it ${TOKEN_RULE}, or unset it`);
  return issues;
}

/** Reads and checks local mode's configuration once, at start-up. */
export function readLocalConfig(env: NodeJS.ProcessEnv = process.env): LocalConfig {
  const issues = localIssues(env);
  let parsed: z.infer<typeof localSchema>;
  try {
    parsed = parseEnv(localSchema, env);
  } catch (error) {
    if (error instanceof ConfigError && issues.length > 0)
      throw new ConfigError(`${error.message}; ${issues.join('; ')}`);
    throw error;
  }
  if (issues.length > 0) throw new ConfigError(`bad configuration: ${issues.join('; ')}`);
  return {
    port: parsed[ENV.port],
    host: parsed[ENV.host],
    publicUrl: parsed[ENV.publicUrl],
    dataDir: parsed[ENV.dataDir],
    linkSecret: parsed[ENV.linkSecret],
    token: parsed[ENV.token],
    asprof: parsed[ENV.asprof],
    agentTmpDir: parsed[ENV.agentTmpDir],
    settings: settingsOf(parsed),
  };
}

/** The settings both modes share; `deliveryTimeoutSeconds` is AWS's (local agents start at once). */
function settingsOf(parsed: z.infer<typeof settingsSchema>, deliveryTimeoutSeconds = 0): ProfilerSettings {
  return {
    deliveryTimeoutSeconds,
    maxDurationSeconds: parsed[ENV.maxDuration],
    historySize: parsed[ENV.historySize],
    graceSeconds: parsed[ENV.graceSeconds],
    linkTtlSeconds: parsed[ENV.linkTtl],
    maxFanOut: parsed[ENV.maxFanOut],
    minRuleIntervalSeconds: parsed[ENV.minRuleInterval],
    maxFiringSeconds: parsed[ENV.maxFiringSeconds],
  };
}

const awsSchema = settingsSchema.extend({
  [ENV.table]: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  [ENV.bucket]: z.string({ error: 'is required' }).min(3, { error: 'must be an S3 bucket name' }),
  [ENV.ssmOutputPrefix]: z.string().min(1).default('ssm-output/'),
  [ENV.artifactDomain]: z
    .string()
    .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, {
      error: 'must be a host name such as d111111abcdef8.cloudfront.net (no scheme, port or path)',
    })
    .optional(),
  [ENV.documentName]: z.string({ error: 'is required' }).min(3, { error: 'must be an SSM document name' }),
  [ENV.documentVersion]: z
    .string({ error: 'is required' })
    .regex(/^([1-9]\d*|\$DEFAULT|\$LATEST)$/, { error: 'must be a document version number, $DEFAULT or $LATEST' }),
  [ENV.deliveryTimeout]: wholeNumber(30, 2_592_000).default(60),
  [ENV.clusterTag]: z.string().min(1).default('flink-profiler:cluster'),
  [ENV.roleTag]: z.string().min(1).default('flink-profiler:role'),
  [ENV.teamTag]: z.string().min(1).default('flink-profiler:team'),
  [ENV.adminGroup]: z.string().min(1).default(DEFAULT_ADMIN_GROUP),
});

export interface AwsConfig {
  table: string;
  bucket: string;
  /** Where flame-graph links point instead of the S3 endpoint (the artifact distribution); unset: S3 itself. */
  artifactDomain?: string;
  ssmOutputPrefix: string;
  documentName: string;
  documentVersion: string;
  deliveryTimeoutSeconds: number;
  clusterTag: string;
  roleTag: string;
  teamTag: string;
  /** Cognito group whose members see everything. */
  adminGroup: string;
  settings: ProfilerSettings;
}

/** Reads and checks the Lambda functions' configuration once, at cold start. */
export function readAwsConfig(env: NodeJS.ProcessEnv = process.env): AwsConfig {
  const parsed = parseEnv(awsSchema, env);
  return {
    table: parsed[ENV.table],
    bucket: parsed[ENV.bucket],
    ...(parsed[ENV.artifactDomain] ? { artifactDomain: parsed[ENV.artifactDomain] } : {}),
    ssmOutputPrefix: parsed[ENV.ssmOutputPrefix],
    documentName: parsed[ENV.documentName],
    documentVersion: parsed[ENV.documentVersion],
    deliveryTimeoutSeconds: parsed[ENV.deliveryTimeout],
    clusterTag: parsed[ENV.clusterTag],
    roleTag: parsed[ENV.roleTag],
    teamTag: parsed[ENV.teamTag],
    adminGroup: parsed[ENV.adminGroup],
    settings: settingsOf(parsed, parsed[ENV.deliveryTimeout]),
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
  // Optional for a bare endpoint under test; the stack always sets it.
  [ENV.scheduleDeadLetterArn]: z
    .string()
    .regex(/^arn:[\w-]+:sqs:/, { error: 'must be the ARN of an SQS queue' })
    .optional(),
});

export interface RuleSchedulerConfig {
  groupName: string;
  tickFunctionArn: string;
  schedulerRoleArn: string;
  /** Where a firing that could not be delivered goes (absent: Scheduler drops it after its retries). */
  deadLetterArn?: string;
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
    ...(parsed[ENV.scheduleDeadLetterArn] ? { deadLetterArn: parsed[ENV.scheduleDeadLetterArn] } : {}),
  };
}
