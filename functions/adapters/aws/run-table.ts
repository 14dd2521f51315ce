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
    /**
     * All runs, in partitions `<yyyy-mm-dd of triggerTime, UTC>#<shard>` (shard: a hash of the run id, below
     * `timeShards`), so that writes spread over many partitions; days that hold runs are listed by RUN_DAY_ITEM.
     */
    byTime: 'timeShardKey',
    /**
     * All runs written before `byTime` was sharded: one partition `ALL`, no longer written. Listings read it as
     * one more source until trimming has taken every run out of it; then a later release can drop the index.
     */
    byTimeLegacy: 'allKey',
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
  /** How many partitions each day's runs spread over in `byTime`. Changing it hides runs already written. */
  timeShards: 8,
} as const;

/**
 * The days on which runs were written, for the fleet-wide listing to walk from one to the next without
 * querying empty days: items pk `RUNDAYS`, sk `<yyyy-mm-dd>` (no index attributes, so they appear in no index).
 */
export const RUN_DAY_ITEM = {
  pk: 'RUNDAYS',
} as const;

/** The key of a scheduled profiling rule's item in the same table: pk `RULE#<id>`, sk `RULE`. */
export const RULE_ITEM = {
  pkPrefix: 'RULE#',
  sk: 'RULE',
  /** The value of the `rules` index key on every rule item. */
  listKey: 'RULE',
} as const;
