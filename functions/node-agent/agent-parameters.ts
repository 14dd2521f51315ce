import type { Run } from '#domain/run.ts';

/**
 * The node agent's parameters: the SSM document's parameter names, which the agent receives as
 * `SSM_<name>` environment variables (`interpolationType: ENV_VAR`), never as shell text.
 */
export const AGENT_PARAMETERS = ['runId', 'role', 'mode', 'duration', 'pid'] as const;
export type AgentParameter = (typeof AGENT_PARAMETERS)[number];

/** The name of the document's one step; SSM names the S3 output objects after it. */
export const AGENT_STEP_NAME = 'profileFlinkJvm';

/** The agent's parameters for a run; `runId` names the agent's scratch file and may stand for a batch. */
export function agentParameters(run: Pick<Run, 'role' | 'mode' | 'duration'>, runId: string, pid?: number) {
  return {
    runId,
    role: run.role,
    mode: run.mode,
    duration: String(run.duration),
    pid: pid === undefined ? '' : String(pid),
  } satisfies Record<AgentParameter, string>;
}

/** The environment the SSM agent gives the script for these parameters. */
export function agentEnvironment(parameters: Record<AgentParameter, string>): Record<string, string> {
  return Object.fromEntries(AGENT_PARAMETERS.map((name) => [`SSM_${name}`, parameters[name]]));
}
