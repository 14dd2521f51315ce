import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { NAME_PATTERNS } from '../functions/domain/names.ts';
import { DOMAIN_PREFIX_RULE, isDomainPrefix } from './sign-in.ts';

/** What a deployment can choose, read from CDK context (`cdk.json` or `-c key=value`). */
export interface DeploymentSettings {
  /** EC2 tag naming a Flink node's cluster; SendCommand is allowed only to instances carrying it. */
  clusterTag: string;
  /** EC2 tag listing a node's roles (jobmanager, taskmanager). */
  roleTag: string;
  /** Days flame graphs are kept in S3. */
  profileRetentionDays: number;
  /** Days the SSM command output (the raw agent output) is kept in S3. */
  ssmOutputRetentionDays: number;
  /** Days the functions' logs are kept. */
  logRetentionDays: number;
  /** EC2 tag naming the teams (Cognito groups) a node belongs to, separated by spaces or commas. */
  teamTag: string;
  /** Cognito group whose members see and change everything; the stack creates it. */
  adminGroup: string;
  /** Limits on what one request or one rule firing may start; unset ones keep the functions' own defaults. */
  guardrails: Guardrails;
  /**
   * Prefix of the Cognito hosted sign-in domain (`<prefix>.auth.<region>.amazoncognito.com`), unique per region
   * across all accounts. Unset: one derived from the stack's name and id (see `defaultDomainPrefix`).
   */
  cognitoDomainPrefix?: string;
  /** Where the built web UI is (`npm run build:web`). */
  webAssetPath: string;
}

/** Guardrails (context values); the functions apply their defaults (200, 300 s, 3,600 s) to those not set. */
export interface Guardrails {
  /** Most targets one fan-out or rule firing may start runs on (`maxFanOut`). */
  maxFanOut?: number;
  /** Shortest time between two firings of a rule (`minRuleIntervalSeconds`). */
  minRuleIntervalSeconds?: number;
  /** Most profiling seconds (duration × targets) one rule firing may start (`maxFiringSeconds`). */
  maxFiringSeconds?: number;
}

const DEFAULTS: Omit<DeploymentSettings, 'webAssetPath' | 'guardrails'> = {
  clusterTag: 'flink-profiler:cluster',
  roleTag: 'flink-profiler:role',
  teamTag: 'flink-profiler:team',
  adminGroup: 'flink-profiler-admins',
  profileRetentionDays: 30,
  ssmOutputRetentionDays: 7,
  logRetentionDays: 30,
};

/** A whole number ≥ 1 (`-c key=5` gives a string, cdk.json a number), or undefined when the key is not set. */
function positiveWholeNumber(scope: Construct, key: string, unit: string): number | undefined {
  const raw = scope.node.tryGetContext(key);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`context ${key}: must be a whole number of ${unit}, got ${raw}`);
  return value;
}

function positiveDays(scope: Construct, key: string, fallback: number): number {
  return positiveWholeNumber(scope, key, 'days') ?? fallback;
}

/** `check` returns the rule a value breaks, or undefined when it is fine. */
function checked(key: string, value: string | undefined, check: (value: string) => string | undefined) {
  const broken = value === undefined ? undefined : check(value);
  if (broken) throw new Error(`context ${key}: ${broken}, got ${value}`);
  return value;
}

/** EC2 tag keys: at most 128 characters, and `aws:` is AWS's own. */
const tagKey = (value: string) =>
  value.length > 128 || value.toLowerCase().startsWith('aws:')
    ? 'must be an EC2 tag key (at most 128 characters, not starting with aws:)'
    : undefined;

/** CloudWatch Logs keeps logs only for certain numbers of days. */
function logRetention(days: number): number {
  const allowed = Object.values(logs.RetentionDays).filter((value): value is number => typeof value === 'number');
  if (!allowed.includes(days))
    throw new Error(`context logRetentionDays: must be one of ${allowed.join(', ')}, got ${days}`);
  return days;
}

/** Reads the settings from context, checking each; `webAssetPath` defaults to web/dist. */
export function readDeploymentSettings(scope: Construct, webAssetPath: string): DeploymentSettings {
  const text = (key: string, fallback?: string) => {
    const value = scope.node.tryGetContext(key);
    if (value === undefined) return fallback;
    if (typeof value !== 'string' || value.length === 0) throw new Error(`context ${key}: must be a non-empty string`);
    return value;
  };
  return {
    clusterTag: text('clusterTag', DEFAULTS.clusterTag) as string,
    roleTag: text('roleTag', DEFAULTS.roleTag) as string,
    profileRetentionDays: positiveDays(scope, 'profileRetentionDays', DEFAULTS.profileRetentionDays),
    ssmOutputRetentionDays: positiveDays(scope, 'ssmOutputRetentionDays', DEFAULTS.ssmOutputRetentionDays),
    logRetentionDays: logRetention(positiveDays(scope, 'logRetentionDays', DEFAULTS.logRetentionDays)),
    teamTag: checked('teamTag', text('teamTag', DEFAULTS.teamTag), tagKey) as string,
    // A group named in `cognito:groups` and in team tags, whose lists split on spaces and commas.
    adminGroup: checked('adminGroup', text('adminGroup', DEFAULTS.adminGroup), (value) =>
      NAME_PATTERNS.team.pattern.test(value) ? undefined : NAME_PATTERNS.team.rule,
    ) as string,
    guardrails: {
      maxFanOut: positiveWholeNumber(scope, 'maxFanOut', 'targets'),
      minRuleIntervalSeconds: positiveWholeNumber(scope, 'minRuleIntervalSeconds', 'seconds'),
      maxFiringSeconds: positiveWholeNumber(scope, 'maxFiringSeconds', 'seconds'),
    },
    cognitoDomainPrefix: checked('cognitoDomainPrefix', text('cognitoDomainPrefix'), (value) =>
      isDomainPrefix(value) ? undefined : DOMAIN_PREFIX_RULE,
    ),
    webAssetPath: text('webAssetPath', webAssetPath) as string,
  };
}
