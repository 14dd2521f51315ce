import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateDocumentCommand, SSMClient } from '@aws-sdk/client-ssm';
import { RUN_TABLE } from '#adapters/aws/run-table.ts';
import { loadAgentDocument } from '#node-agent/ssm-document.ts';
import { ENV } from '#shared/config.ts';

let counter = 0;
/** A name no other test uses, within the rules of S3 and DynamoDB. */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`.toLowerCase();
}

/** Creates the run table as the CDK stack does: keys and indexes from RUN_TABLE. */
export async function createRunTable(name = uniqueName('runs')): Promise<string> {
  const client = new DynamoDBClient({});
  const indexes = Object.values(RUN_TABLE.indexes);
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [RUN_TABLE.partitionKey, RUN_TABLE.sortKey, RUN_TABLE.indexSortKey, ...indexes].map(
        (AttributeName) => ({ AttributeName, AttributeType: 'S' }),
      ),
      KeySchema: [
        { AttributeName: RUN_TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: RUN_TABLE.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: indexes.map((index) => ({
        IndexName: index,
        KeySchema: [
          { AttributeName: index, KeyType: 'HASH' },
          { AttributeName: RUN_TABLE.indexSortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    }),
  );
  client.destroy();
  return name;
}

export async function createBucket(name = uniqueName('artifacts')): Promise<string> {
  const client = new S3Client({});
  await client.send(new CreateBucketCommand({ Bucket: name }));
  client.destroy();
  return name;
}

/** Creates our SSM document in the endpoint, as the CDK stack does, and returns its name (version 1). */
export async function createAgentDocument(name = uniqueName('FlinkFleetProfiler')): Promise<string> {
  const client = new SSMClient({});
  await client.send(
    new CreateDocumentCommand({
      Name: name,
      Content: loadAgentDocument().text,
      DocumentFormat: 'YAML',
      DocumentType: 'Command',
    }),
  );
  client.destroy();
  return name;
}

/** The team the integration tests' instances and callers belong to unless a test says otherwise. */
export const TEST_TEAM = 'team-a';

/**
 * Launches a running instance tagged as a Flink node of `cluster` with `role`, in `teams` (the team tag's value,
 * e.g. `team-a` or `team-a, team-b`; null for no team tag), and returns its id.
 */
export async function launchFlinkInstance(
  cluster: string,
  role: string,
  teams: string | null = TEST_TEAM,
): Promise<string> {
  const client = new EC2Client({});
  const { Instances } = await client.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'flink-profiler:cluster', Value: cluster },
            { Key: 'flink-profiler:role', Value: role },
            ...(teams === null ? [] : [{ Key: 'flink-profiler:team', Value: teams }]),
          ],
        },
      ],
    }),
  );
  client.destroy();
  return Instances?.[0]?.InstanceId as string;
}

/** Where the API function writes rules' schedules, as the stack tells it (a test that fires rules names its own). */
export const SCHEDULER_ENVIRONMENT = {
  [ENV.scheduleGroup]: 'flink-fleet-profiler',
  [ENV.tickFunctionArn]: 'arn:aws:lambda:us-east-1:123456789012:function:rule-tick',
  [ENV.schedulerRoleArn]: 'arn:aws:iam::123456789012:role/rule-scheduler',
};

/**
 * What every Lambda function needs, made as the stack makes it: the run table, the artifact bucket and our SSM
 * document (version 1), named in the functions' environment with the API's scheduler settings and `extra` (which
 * overrides them). Call it before importing a handler: the functions read their configuration once, at cold start.
 */
export async function provisionFunctionEnvironment(
  extra: Record<string, string> = {},
): Promise<{ table: string; bucket: string; documentName: string }> {
  const [table, bucket, documentName] = await Promise.all([createRunTable(), createBucket(), createAgentDocument()]);
  Object.assign(process.env, {
    [ENV.table]: table,
    [ENV.bucket]: bucket,
    [ENV.documentName]: documentName,
    [ENV.documentVersion]: '1',
    ...SCHEDULER_ENVIRONMENT,
    ...extra,
  });
  return { table, bucket, documentName };
}
