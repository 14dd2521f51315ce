import { type AgentResult, MAX_AGENT_STDOUT_BYTES, MAX_HTML_BYTES } from './agent-output.ts';
import type { Observation } from './observation.ts';
import type { CommandOutput } from './ports.ts';
import { describeTarget, type Run, SUCCESS_MESSAGE, type Target } from './run.ts';

/**
 * The one catalog of what a user is told about how a run ended (and why a target is busy). Every message a run's
 * `message` field can hold is made here, from the observation that ended it.
 */

/**
 * The message of a finished run: Flink's "Profiling Successful", with the agent's note when it profiled in another
 * mode than asked (a CPU run retried in ITIMER where perf events are unavailable). The run keeps the mode asked for;
 * an agent that switched modes without saying so in its message still gets a note, so the flame graph is never
 * taken for what it is not.
 */
export function finishedMessage(run: Run, result: AgentResult): string {
  const message = result.message || SUCCESS_MESSAGE;
  if (!result.mode || result.mode === run.mode || message.includes(result.mode)) return message;
  return `${message} (${run.mode} fell back to ${result.mode})`;
}

/** Said after the message of a finished run whose node sent collapsed stacks or a recording that were refused. */
export function profileRefusedNote(problem: string): string {
  return ` (flame graph only: ${problem}, so no collapsed, pprof or JFR export, frames or comparison for this run)`;
}

/** Why a target refuses a new run: a run is RUNNING there, or one that ended early may still be profiling its JVM. */
export function busyReason(target: Target, runningRunId: string, busyUntil?: number): string {
  if (busyUntil === undefined) {
    return `${describeTarget(target)} is busy: run ${runningRunId} is still RUNNING; wait for it to finish`;
  }
  return `${describeTarget(target)} is busy until ${isoSeconds(busyUntil)}: run ${runningRunId} ended before its agent could stop async-profiler, whose session in the JVM runs until then at the latest; start a new run after that`;
}

/** Said after the failure of a run whose JVM may still be profiled. */
export function stillProfilingNote(busyUntil: number): string {
  return ` async-profiler may still be profiling the JVM until ${isoSeconds(busyUntil)}; the target takes a new run after that.`;
}

function isoSeconds(time: number): string {
  return new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The agent said FINISHED, but what arrived is no whole flame graph. */
export const DAMAGED_PROFILE =
  'Stop profiler failed. The node agent reported success but its flame graph was missing or damaged in transit.';

/** What arrived is not the payload the agent's result line vouches for (its length or SHA-256), or the line vouches for none. */
export const PROFILE_NOT_VOUCHED =
  "Stop profiler failed. The flame graph that arrived is not the one the node agent wrote: its length or SHA-256 differs from what the agent's result line says (or the line says none), so it was not stored. Something else with the node's credentials may have changed the agent's output; start a new run, and check the node (and that its node agent is this service's).";

/** The agent sent a flame graph over the service's limit (its node allows more than the service takes). */
export const PROFILE_TOO_LARGE = `Stop profiler failed. The flame graph is larger than the service's limit of ${MAX_HTML_BYTES} bytes of HTML, so it was not stored; the node's FLINK_PROFILER_MAX_HTML_BYTES allows more: profile for a shorter duration, or set that limit on the node to at most ${MAX_HTML_BYTES}.`;

/** The agent's output was too large to be read at all (no agent within the limits prints that much). */
export function outputTooLarge(bytes: number): string {
  return `Stop profiler failed. The node agent's output is ${bytes} bytes, more than the ${MAX_AGENT_STDOUT_BYTES} bytes that a flame graph within the service's limit of ${MAX_HTML_BYTES} bytes of HTML can take, so it was not read: check the node agent installed on the node (FLINK_PROFILER_MAX_HTML_BYTES at most ${MAX_HTML_BYTES}).`;
}

/** The message of a run that failed: from the agent's own words when it gave some, else from what was observed. */
export function failureMessage(run: Run, observation: Observation, result?: AgentResult): string {
  switch (observation.kind) {
    case 'agentOutput':
      return agentFailure(result, observation.output);
    case 'dispatchFailed':
      return `Start profiler failed. The node agent could not be started: ${observation.reason}`;
    case 'commandUnknown':
      return observation.reason;
    case 'overdue': {
      const seconds = Math.round((observation.deadline - run.triggerTime) / 1000);
      const heard = observation.detail ? ` Last heard: ${observation.detail}` : '';
      return `The node agent gave no result within ${seconds} s of the start (the command's delivery and run time limits for a ${run.duration} s profile, plus a margin); the run was abandoned.${heard}`;
    }
  }
}

function agentFailure(result: AgentResult | undefined, output: CommandOutput): string {
  if (result?.status === 'FAILED') return result.message;
  if (result?.status === 'FINISHED') {
    if (result.profileProblem === 'tooLarge') return PROFILE_TOO_LARGE;
    return result.profileProblem === 'mismatch' ? PROFILE_NOT_VOUCHED : DAMAGED_PROFILE;
  }
  if (output.failure) return output.failure;
  if (output.stdoutTooLarge !== undefined) return outputTooLarge(output.stdoutTooLarge);
  const lastError = output.stderr.trim().split('\n').pop()?.trim();
  const exit = output.exitCode === null ? 'ended' : `exited with code ${output.exitCode}`;
  return `The node agent ${exit} without a result${lastError ? `: ${lastError}` : '.'}`;
}
