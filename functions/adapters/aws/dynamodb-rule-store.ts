import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { RuleStore } from '#domain/ports.ts';
import { type FiringClaim, RULE_SPEC_FIELDS, type Rule, type RuleFiring } from '#domain/rule.ts';
import { RULE_ITEM, RUN_TABLE } from './run-table.ts';

const rulePk = (id: string) => `${RULE_ITEM.pkPrefix}${id}`;
const listSortKey = (rule: Pick<Rule, 'createdAt' | 'id'>) => `${String(rule.createdAt).padStart(15, '0')}#${rule.id}`;

/** Bookkeeping attributes that may be absent (DynamoDB conditions compare absent attributes, not NULLs). */
const OPTIONAL_TIMES = ['nextFireAt', 'lastFiredAt', 'lastScheduledAt'] as const;

function toRule(item: Record<string, unknown>): Rule {
  const rule = Object.fromEntries(RULE_SPEC_FIELDS.map((field) => [field, item[field]])) as unknown as Rule;
  // Rules stored before teams and authors were kept have neither.
  rule.team = (item.team as string | undefined) ?? null;
  rule.createdBy = (item.createdBy as string | undefined) ?? null;
  rule.updatedBy = (item.updatedBy as string | undefined) ?? null;
  rule.id = item.id as string;
  rule.version = item.version as number;
  rule.createdAt = item.createdAt as number;
  rule.updatedAt = item.updatedAt as number;
  for (const field of OPTIONAL_TIMES) rule[field] = (item[field] as number | undefined) ?? null;
  rule.lastFiring = (item.lastFiring as RuleFiring | undefined) ?? null;
  return rule;
}

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

/**
 * RuleStore on the run table (items `RULE#<id>`, listed through the sparse `rules` index). Replace and claim are
 * conditional updates: on the version a client read, and on the last scheduled time fired, so a stale update or a
 * second invocation of the same schedule time (EventBridge Scheduler delivers at least once) is refused.
 */
export class DynamoDbRuleStore implements RuleStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(rule: Rule): Promise<void> {
    const item: Record<string, unknown> = {
      [RUN_TABLE.partitionKey]: rulePk(rule.id),
      [RUN_TABLE.sortKey]: RULE_ITEM.sk,
      [RUN_TABLE.indexes.rules]: RULE_ITEM.listKey,
      [RUN_TABLE.indexSortKey]: listSortKey(rule),
      ...Object.fromEntries(RULE_SPEC_FIELDS.map((field) => [field, rule[field]])),
      id: rule.id,
      version: rule.version,
      createdAt: rule.createdAt,
      updatedAt: rule.updatedAt,
      createdBy: rule.createdBy,
      updatedBy: rule.updatedBy,
      ...Object.fromEntries(OPTIONAL_TIMES.flatMap((field) => (rule[field] === null ? [] : [[field, rule[field]]]))),
      ...(rule.lastFiring ? { lastFiring: rule.lastFiring } : {}),
    };
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  }

  async get(id: string): Promise<Rule | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(id), ConsistentRead: true }),
    );
    return Item ? toRule(Item) : undefined;
  }

  async list(): Promise<Rule[]> {
    return this.query({});
  }

  async replace(rule: Rule, expectedVersion: number): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ':expected': expectedVersion };
    const sets: string[] = [];
    for (const field of [...RULE_SPEC_FIELDS, 'version', 'updatedAt', 'updatedBy'] as const) {
      names[`#${field}`] = field;
      values[`:${field}`] = rule[field];
      sets.push(`#${field} = :${field}`);
    }
    let update = `SET ${sets.join(', ')}`;
    if (rule.nextFireAt === null) update += ' REMOVE nextFireAt';
    else {
      update += ', nextFireAt = :nextFireAt';
      values[':nextFireAt'] = rule.nextFireAt;
    }
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(rule.id),
        UpdateExpression: update,
        ConditionExpression: '#version = :expected',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  async delete(id: string): Promise<boolean> {
    return this.conditionally(
      new DeleteCommand({ TableName: this.tableName, Key: this.key(id), ConditionExpression: 'attribute_exists(pk)' }),
    );
  }

  async claimFiring(claim: FiringClaim): Promise<boolean> {
    const values: Record<string, unknown> = {
      ':version': claim.version,
      ':enabled': true,
      ':scheduledAt': claim.scheduledAt,
      ':firedAt': claim.firedAt,
    };
    let update = 'SET lastFiredAt = :firedAt, lastScheduledAt = :scheduledAt';
    if (claim.nextFireAt === null) update += ' REMOVE nextFireAt';
    else {
      update += ', nextFireAt = :nextFireAt';
      values[':nextFireAt'] = claim.nextFireAt;
    }
    return this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(claim.ruleId),
        UpdateExpression: update,
        ConditionExpression:
          '#version = :version AND #enabled = :enabled AND (attribute_not_exists(lastScheduledAt) OR lastScheduledAt < :scheduledAt)',
        ExpressionAttributeNames: { '#version': 'version', '#enabled': 'enabled' },
        ExpressionAttributeValues: values,
      }),
    );
  }

  async recordFiring(ruleId: string, firing: RuleFiring): Promise<void> {
    await this.conditionally(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(ruleId),
        UpdateExpression: 'SET lastFiring = :firing',
        ConditionExpression: 'lastFiredAt = :at',
        ExpressionAttributeValues: { ':firing': firing, ':at': firing.at },
      }),
    );
  }

  async listDue(now: number): Promise<Rule[]> {
    const due = await this.query({
      FilterExpression: '#enabled = :enabled AND nextFireAt <= :now',
      ExpressionAttributeNames: { '#enabled': 'enabled' },
      ExpressionAttributeValues: { ':enabled': true, ':now': now },
    });
    return due.sort((a, b) => (a.nextFireAt ?? 0) - (b.nextFireAt ?? 0));
  }

  private key(id: string) {
    return { [RUN_TABLE.partitionKey]: rulePk(id), [RUN_TABLE.sortKey]: RULE_ITEM.sk };
  }

  /** Sends a conditional write; false when its condition did not hold. */
  private async conditionally(command: UpdateCommand | DeleteCommand): Promise<boolean> {
    try {
      await this.client.send(command as UpdateCommand);
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Every rule item of the `rules` index, oldest first, with an optional filter. */
  private async query(
    filter: Pick<QueryCommandInput, 'FilterExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>,
  ) {
    const index = RUN_TABLE.indexes.rules;
    const rules: Rule[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index,
          KeyConditionExpression: '#key = :key',
          ...filter,
          ExpressionAttributeNames: { '#key': index, ...filter.ExpressionAttributeNames },
          ExpressionAttributeValues: { ':key': RULE_ITEM.listKey, ...filter.ExpressionAttributeValues },
          ExclusiveStartKey: start,
        }),
      );
      rules.push(...(page.Items ?? []).map(toRule));
      start = page.LastEvaluatedKey;
    } while (start);
    return rules;
  }
}
