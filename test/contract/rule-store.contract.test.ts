import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { DynamoDbRuleStore } from '#adapters/aws/dynamodb-rule-store.ts';
import { SqliteRuleStore } from '#adapters/local/sqlite-rule-store.ts';
import { createRunTable } from '#test/support/aws-resources.ts';
import { describeRuleStoreContract } from './rule-store.contract.ts';

describeRuleStoreContract('SQLite (local mode)', async () => new SqliteRuleStore(':memory:'));

const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
describeRuleStoreContract('DynamoDB (AWS)', async () => new DynamoDbRuleStore(dynamo, await createRunTable()), {
  racesConditionalWrites: inject('awsEndpointIsOwnMoto'),
});
