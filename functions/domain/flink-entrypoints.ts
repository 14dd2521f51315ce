import type { Role } from './run.ts';

/**
 * The main classes that make a JVM a Flink JobManager or TaskManager. The node agent script
 * (functions/node-agent/flink-profiler-agent.sh) carries the same lists; a unit test keeps them equal.
 */
export const FLINK_MAIN_CLASSES: Record<Role, readonly string[]> = {
  jobmanager: [
    'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint',
    'org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint',
    'org.apache.flink.yarn.entrypoint.YarnSessionClusterEntrypoint',
    'org.apache.flink.yarn.entrypoint.YarnJobClusterEntrypoint',
    'org.apache.flink.yarn.entrypoint.YarnApplicationClusterEntryPoint',
    'org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint',
    'org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint',
  ],
  taskmanager: [
    'org.apache.flink.runtime.taskexecutor.TaskManagerRunner',
    'org.apache.flink.yarn.YarnTaskExecutorRunner',
    'org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner',
  ],
};

/** The role of a process from its command-line arguments, or undefined when it is no Flink JVM. */
export function flinkRoleOf(args: readonly string[]): Role | undefined {
  for (const role of Object.keys(FLINK_MAIN_CLASSES) as Role[]) {
    if (args.some((arg) => FLINK_MAIN_CLASSES[role].includes(arg))) return role;
  }
  return undefined;
}
