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

/** Launcher options that take the next argument as their value. */
const OPTIONS_WITH_A_VALUE = new Set([
  '-cp',
  '-classpath',
  '--class-path',
  '-p',
  '--module-path',
  '--upgrade-module-path',
  '--add-modules',
  '--limit-modules',
  '--add-reads',
  '--add-exports',
  '--add-opens',
  '--patch-module',
  '--enable-native-access',
  '--source',
]);

/**
 * The main class of a `java` command line (`args[0]` is the launcher): the first argument after the launcher's
 * options, as the node agent script reads it (`java_main_class`). Undefined for `-jar` (the class is in the jar's
 * manifest), `-m module` without a class, and an @argfile before the main class (its content is the JVM user's).
 * What follows the main class are the program's arguments: a Flink class name there makes no Flink JVM.
 */
export function javaMainClass(args: readonly string[]): string | undefined {
  for (let i = 1; i < args.length; i++) {
    const arg = args[i] as string;
    if (OPTIONS_WITH_A_VALUE.has(arg)) i++;
    else if (arg === '-m' || arg === '--module' || arg.startsWith('--module=')) {
      const module = arg.startsWith('--module=') ? arg.slice('--module='.length) : (args[i + 1] ?? '');
      return module.includes('/') ? module.slice(module.indexOf('/') + 1) : undefined;
    } else if (arg === '-jar' || arg.startsWith('@')) return undefined;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The role of a process from its command-line arguments (by its main class), or undefined when it is no Flink JVM. */
export function flinkRoleOf(args: readonly string[]): Role | undefined {
  const main = javaMainClass(args);
  if (main === undefined) return undefined;
  for (const role of Object.keys(FLINK_MAIN_CLASSES) as Role[]) {
    if (FLINK_MAIN_CLASSES[role].includes(main)) return role;
  }
  return undefined;
}
