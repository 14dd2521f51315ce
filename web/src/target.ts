/**
 * One Flink JVM to profile. A JobManager is addressed by its cluster alone, as in Flink's API, or by its node
 * where a cluster has several (high availability).
 */
export type Target =
  | { cluster: string; role: 'jobmanager'; node?: string }
  | { cluster: string; role: 'taskmanager'; node: string };

/** The JVM a run profiled, addressed by its node (a cluster's one JobManager has an address without it too). */
export function runTarget(run: { cluster: string; role: 'jobmanager' | 'taskmanager'; node: string }): Target {
  return run.role === 'jobmanager'
    ? { cluster: run.cluster, role: 'jobmanager', node: run.node }
    : { cluster: run.cluster, role: 'taskmanager', node: run.node };
}
