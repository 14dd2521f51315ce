/**
 * The table's indexes; the CDK stack creates the table from these same names (one source of truth).
 * Every index is sorted by `sortKey` (`<triggerTime, zero-padded>#<id>`), so a query reads newest first.
 */
export const RUN_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  indexes: {
    /** A target's history. */
    byTarget: 'targetKey',
    /** A cluster's runs. */
    byCluster: 'clusterKey',
    /** All runs (low write rates: one partition). */
    byTime: 'allKey',
    /** A rule's runs (sparse). */
    byRule: 'ruleKey',
    /** The run of a command on a node (sparse). */
    byCommand: 'commandKey',
    /** RUNNING runs only (sparse), for the reconciler. */
    running: 'runningKey',
  },
  indexSortKey: 'runSortKey',
} as const;
