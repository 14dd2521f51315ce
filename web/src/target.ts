/**
 * One Flink JVM to profile. A JobManager is addressed by its cluster alone, as in Flink's API, or by its node
 * where a cluster has several (high availability).
 */
export type Target =
  | { cluster: string; role: 'jobmanager'; node?: string }
  | { cluster: string; role: 'taskmanager'; node: string };
