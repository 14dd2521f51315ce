/**
 * The table's indexes; the CDK stack creates the table from these same names (one source of truth).
 * Every index is sorted by `indexSortKey` (runs: `<triggerTime, zero-padded>#<id>`, so a query reads newest
 * first; rules: `<createdAt, zero-padded>#<id>`). Runs are items `RUN#<id>`, target locks `TARGET#…`, and
 * scheduled profiling rules `RULE#<id>` (see RULE_ITEM).
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
    /** The runs of one fan-out or rule firing (sparse). */
    byGroup: 'groupKey',
    /** The run of a command on a node (sparse). */
    byCommand: 'commandKey',
    /** RUNNING runs only (sparse), for the reconciler. */
    running: 'runningKey',
    /** Scheduled profiling rules (sparse: rule items only, one partition), sorted by creation. */
    rules: 'ruleListKey',
  },
  indexSortKey: 'runSortKey',
} as const;

/** The key of a scheduled profiling rule's item in the same table: pk `RULE#<id>`, sk `RULE`. */
export const RULE_ITEM = {
  pkPrefix: 'RULE#',
  sk: 'RULE',
  /** The value of the `rules` index key on every rule item. */
  listKey: 'RULE',
} as const;
