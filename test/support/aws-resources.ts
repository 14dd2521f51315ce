import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { RUN_TABLE } from '#adapters/aws/run-table.ts';

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
