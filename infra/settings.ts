import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

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
  /** Prefix of the Cognito hosted sign-in domain (`<prefix>.auth.<region>.amazoncognito.com`); unique per region. */
  cognitoDomainPrefix?: string;
  /** Where the built web UI is (`npm run build:web`). */
  webAssetPath: string;
}

const DEFAULTS: Omit<DeploymentSettings, 'webAssetPath'> = {
  clusterTag: 'flink-profiler:cluster',
  roleTag: 'flink-profiler:role',
  profileRetentionDays: 30,
  ssmOutputRetentionDays: 7,
  logRetentionDays: 30,
};

function positiveDays(scope: Construct, key: string, fallback: number): number {
  const raw = scope.node.tryGetContext(key);
  if (raw === undefined) return fallback;
  const days = Number(raw);
  if (!Number.isInteger(days) || days < 1)
    throw new Error(`context ${key}: must be a whole number of days, got ${raw}`);
  return days;
}

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
    cognitoDomainPrefix: text('cognitoDomainPrefix'),
    webAssetPath: text('webAssetPath', webAssetPath) as string,
  };
}
