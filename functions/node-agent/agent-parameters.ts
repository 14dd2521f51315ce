import { EXECUTION_MARGIN_SECONDS, stepTimeoutSeconds } from '#domain/deadline.ts';
import type { Run } from '#domain/run.ts';

/**
 * What the services send to the node agent, without reading the document itself (the Lambda bundles stay
 * free of a YAML parser). A unit test checks these against flink-profiler.ssm.yaml.
 */

/** The name of the document's one step; SSM names the S3 output objects after it. */
export const AGENT_STEP_NAME = 'profileFlinkJvm';

/** Re-exported for the document's tests: the margin is defined once, with the run's deadline (deadline.ts). */
export { EXECUTION_MARGIN_SECONDS };

/** The parameter values of a run; `runId` is its dispatch id (the run's, or its fan-out group's: see dispatch-id.ts). */
export function agentParameters(
  run: Pick<Run, 'role' | 'mode' | 'duration'>,
  runId: string,
  pid?: number,
): Record<string, string> {
  return {
    runId,
    role: run.role,
    mode: run.mode,
    duration: String(run.duration),
    pid: pid === undefined ? '' : String(pid),
    executionTimeout: String(stepTimeoutSeconds(run.duration)),
  };
}
