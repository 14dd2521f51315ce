import type { CommandOutput } from './ports.ts';

/**
 * What a writer saw of a run, the only thing it may report: the completion event and the local child process
 * (the agent's command ended, with its output), the dispatcher (the command could not be sent), the reconciler
 * (the command is unknown, or the run is past its deadline with no answer). `settle` alone decides how the run
 * ends, with a message from the one catalog (messages.ts).
 */
export type Observation =
  /** The agent's command ended; its output (and, when the command did not run to its end, why: `failure`). */
  | { kind: 'agentOutput'; output: CommandOutput }
  /** The command could not be sent or started at all. */
  | { kind: 'dispatchFailed'; reason: string }
  /** Whatever ran the command has no record of it any more (SSM forgot it; the local runner lost it). */
  | { kind: 'commandUnknown'; reason: string }
  /** Past the run's deadline nothing answered; `detail` says what was last heard, if anything. */
  | { kind: 'overdue'; deadline: number; detail?: string };

export type ObservationKind = Observation['kind'];
