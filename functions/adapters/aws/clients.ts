import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { S3Client } from '@aws-sdk/client-s3';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ssmClientConfig } from '#adapters/aws/ssm-dispatcher.ts';

/**
 * The AWS SDK clients, built once per Lambda container with empty configuration: region, credentials
 * and endpoint come from the environment, so `AWS_ENDPOINT_URL` alone points them at a local endpoint.
 */
export function createAwsClients() {
  return {
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    s3: new S3Client({}),
    // Presigned GETs must carry no checksum parameters: a browser fetching the link sends none.
    s3Signer: new S3Client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    // Fan-outs to many nodes meet SSM's rate limits: the SDK's adaptive retry, tuned for them (one rate limiter for
    // every call of the client), and SendCommand never repeated once it may have run.
    ssm: new SSMClient(ssmClientConfig()),
    // Discovery reads instances' tags here, and which of them SSM manages through `ssm`.
    tagging: new ResourceGroupsTaggingAPIClient({}),
    scheduler: new SchedulerClient({}),
  };
}

export type AwsClients = ReturnType<typeof createAwsClients>;
