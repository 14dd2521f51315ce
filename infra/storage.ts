import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DERIVED_LIFETIME_DAYS, DERIVED_PREFIX } from '#domain/artifacts.ts';
import { RUN_TABLE } from '../functions/adapters/aws/run-table.ts';
import { ArtifactLinks } from './artifact-links.ts';

export interface StorageProps {
  profileRetentionDays: number;
  ssmOutputRetentionDays: number;
  /** Key prefix under which SSM writes command output. */
  ssmOutputPrefix: string;
}

/**
 * The run table and the artifacts bucket (flame graphs and SSM command output), with the distribution through which
 * browsers read flame graphs, sandboxed.
 */
export class Storage extends Construct {
  readonly table: dynamodb.TableV2;
  readonly artifacts: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly artifactLinks: ArtifactLinks;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(90), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      // Logs are evidence: keep them when the stack goes.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.artifacts = new s3.Bucket(this, 'Artifacts', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'artifacts/',
      lifecycleRules: [
        { prefix: 'profiles/', expiration: Duration.days(props.profileRetentionDays) },
        { prefix: props.ssmOutputPrefix, expiration: Duration.days(props.ssmOutputRetentionDays) },
        // Differential and merged views, recomputed from the runs' own files whenever asked for.
        { prefix: DERIVED_PREFIX, expiration: Duration.days(DERIVED_LIFETIME_DAYS) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Profiles are cheap to keep and impossible to re-create: a stack deletion must not take them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.artifactLinks = new ArtifactLinks(this, 'ArtifactLinks', {
      artifacts: this.artifacts,
      accessLogs: this.accessLogs,
    });

    const attribute = (name: string) => ({ name, type: dynamodb.AttributeType.STRING });
    this.table = new dynamodb.TableV2(this, 'Runs', {
      partitionKey: attribute(RUN_TABLE.partitionKey),
      sortKey: attribute(RUN_TABLE.sortKey),
      billing: dynamodb.Billing.onDemand(),
      timeToLiveAttribute: RUN_TABLE.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      globalSecondaryIndexes: Object.values(RUN_TABLE.indexes).map((index) => ({
        indexName: index,
        partitionKey: attribute(index),
        sortKey: attribute(RUN_TABLE.indexSortKey),
      })),
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
