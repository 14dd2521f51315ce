import type { Run } from '#domain/run.ts';

/**
 * What the services send to the node agent, without reading the document itself (the Lambda bundles stay
 * free of a YAML parser). A unit test checks these against flink-profiler.ssm.yaml.
 */

/** The name of the document's one step; SSM names the S3 output objects after it. */
export const AGENT_STEP_NAME = 'profileFlinkJvm';

/**
 * Seconds the step may run beyond the profile's duration: attaching (asprof waits up to 60 s), writing the
 * flame graph (up to 30 s after the duration) and encoding it.
 */
export const EXECUTION_MARGIN_SECONDS = 120;

/** The parameter values of a run; `runId` names the agent's scratch file and may stand for a batch of runs. */
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
    executionTimeout: String(run.duration + EXECUTION_MARGIN_SECONDS),
  };
}
