import type { Run } from './run.ts';

/**
 * The one definition of how long a run may take, shared by the SSM document (its step's timeout), the dispatchers
 * and the reconciler. A run's time is bounded by what its command is allowed: the delivery timeout (SendCommand's
 * TimeoutSeconds: how long SSM may wait for the node to take the command; none locally), the step's execution
 * timeout (duration plus {@link EXECUTION_MARGIN_SECONDS}), then a margin for the result to travel (S3 upload,
 * the status-change event). Past that, nothing can still be on its way.
 */

/**
 * Seconds the agent's step may run beyond the profile's duration: attaching (asprof waits up to 60 s), writing
 * the profile (up to 30 s after the duration), converting the recording (its two conversions side by side, up to
 * 45 s) and reading back and encoding it all.
 */
export const EXECUTION_MARGIN_SECONDS = 210;

export interface RunTimeouts {
  /** SendCommand's TimeoutSeconds on AWS; 0 where the agent starts at once (local mode). */
  deliveryTimeoutSeconds: number;
  /** How long after the step's timeout a result may still arrive (upload, events): the settings' grace. */
  settleMarginSeconds: number;
}

/** The step's execution timeout of a run of `duration` seconds: what the document's `timeoutSeconds` gets. */
export function stepTimeoutSeconds(duration: number): number {
  return duration + EXECUTION_MARGIN_SECONDS;
}

/**
 * Seconds after its step starts by which the agent has started async-profiler's session, if it ever does: its checks
 * take seconds, and `asprof start` is given 60 s (killed 5 s later).
 */
export const SESSION_START_MARGIN_SECONDS = 70;

/**
 * When async-profiler's session inside the JVM is over at the latest, even if whatever started it was killed: the
 * agent starts the session with `--timeout <duration>` within {@link SESSION_START_MARGIN_SECONDS} of its step's
 * start, which is within the delivery timeout of the run's start. Until then a run that ended early (the agent
 * killed) may still be profiling its JVM, and a new run there would fail with "Profiler already started".
 */
export function jvmFreeAt(run: Pick<Run, 'triggerTime' | 'duration'>, timeouts: RunTimeouts): number {
  return run.triggerTime + (timeouts.deliveryTimeoutSeconds + SESSION_START_MARGIN_SECONDS + run.duration) * 1000;
}

/** The moment after which a RUNNING run can have no result on its way: it is settled FAILED then. */
export function runDeadline(run: Pick<Run, 'triggerTime' | 'duration'>, timeouts: RunTimeouts): number {
  const seconds = timeouts.deliveryTimeoutSeconds + stepTimeoutSeconds(run.duration) + timeouts.settleMarginSeconds;
  return run.triggerTime + seconds * 1000;
}
