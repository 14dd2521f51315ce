import { type RunTimeouts, runDeadline } from './deadline.ts';
import { dispatchIdOf, runIdsForDispatch } from './dispatch-id.ts';
import type { CommandState, Dispatcher, Logger, RunStore } from './ports.ts';
import type { Run } from './run.ts';
import type { RunSettler } from './run-settle.ts';

/** Which runs a reconciliation pass looks at. */
export type ReconcileScope = 'overdue' | 'all';

export interface ReconcileDependencies {
  runs: RunStore;
  dispatcher: Dispatcher;
  settler: RunSettler;
  log: Logger;
  now: () => number;
  timeouts: RunTimeouts;
}

/**
 * Reports where a run's command is, for runs whose end was not reported as it happened: the SSM status-change event
 * (at least once, best effort), and the reconciler's passes for events that never came. What it learns it hands to
 * `settle`; past a run's deadline it settles the run FAILED whatever SSM or S3 answers, so nothing stays RUNNING.
 */
export class RunReconciler {
  constructor(private readonly deps: ReconcileDependencies) {}

  /**
   * The command's status changed to a terminal one (AWS: the status-change event): settles its run on that node.
   * Idempotent: an unknown command or a run already settled is left alone. Throws when the output is not readable
   * yet (the event is retried), unless the run is past its deadline.
   */
  async completeCommand(commandId: string, node: string): Promise<Run | undefined> {
    const run = (await this.deps.runs.findByCommand(commandId, node)) ?? (await this.unrecordedRun(commandId, node));
    if (run?.status !== 'RUNNING') return run;
    return this.check(run, { throwUntilDeadline: true });
  }

  /**
   * The run of a command whose id its sender never recorded (it died between sending and writing), found from the
   * command's own parameters; the command id is recorded now. Undefined when the command is not one of ours.
   */
  private async unrecordedRun(commandId: string, node: string): Promise<Run | undefined> {
    const parameters = await this.deps.dispatcher.parametersOf(commandId);
    if (!parameters) return undefined;
    for (const id of await runIdsForDispatch(parameters.dispatchId, parameters.role, node)) {
      const run = await this.deps.runs.get(id);
      if (run?.node !== node || run.role !== parameters.role || dispatchIdOf(run) !== parameters.dispatchId) continue;
      if (run.commandId !== null && run.commandId !== commandId) return undefined;
      if (run.commandId === null) await this.recordCommand(run, commandId);
      return { ...run, commandId };
    }
    return undefined;
  }

  /**
   * Settles RUNNING runs whose end was not reported. `overdue` looks at runs past their duration (their command may
   * have ended), `all` at every RUNNING run (local mode, where asking is cheap and a restarted server must pick up
   * agents that ended while it was down). One run's trouble never holds up the others.
   */
  async reconcile(scope: ReconcileScope = 'overdue'): Promise<Run[]> {
    const settled: Run[] = [];
    for (const run of await this.deps.runs.listRunning()) {
      if (scope === 'overdue' && !this.profileOver(run)) continue;
      try {
        const result = await this.check(run, { throwUntilDeadline: false });
        if (result && result.status !== 'RUNNING') settled.push(result);
      } catch (error) {
        this.deps.log.warn('could not reconcile run', { runId: run.id, error: String(error) });
      }
    }
    return settled;
  }

  /**
   * The command of a run that has none on record, if its sender sent one and died before recording it (found from
   * the command's parameters, then recorded). Asked only once the run's profile should be over, so a dispatch that
   * is still under way is not raced.
   */
  private async sentCommandOf(run: Run): Promise<string | undefined> {
    if (!this.profileOver(run)) return undefined;
    let commandId: string | undefined;
    try {
      commandId = await this.deps.dispatcher.commandFor(run);
    } catch (error) {
      this.deps.log.warn('could not look for the command of a run', { runId: run.id, error: String(error) });
      return undefined;
    }
    if (commandId) await this.recordCommand(run, commandId);
    return commandId;
  }

  /** Records a command found for a run whose sender died before it recorded it. */
  private async recordCommand(run: Run, commandId: string): Promise<void> {
    this.deps.log.warn('recording the command of a run whose sender did not', { runId: run.id, commandId });
    await this.deps.runs.setCommandId(run.id, commandId);
  }

  /** Whether the run's profile should be over by now (its command may have ended). */
  private profileOver(run: Run): boolean {
    return this.deps.now() >= run.triggerTime + run.duration * 1000;
  }

  /** Asks where the run's command is and reports it; past the deadline an unanswered run is overdue. */
  private async check(stored: Run, options: { throwUntilDeadline: boolean }): Promise<Run | undefined> {
    let run = stored;
    const deadline = runDeadline(run, this.deps.timeouts);
    const pastDeadline = this.deps.now() > deadline;
    if (!run.commandId) {
      const found = await this.sentCommandOf(run);
      // Not found: the run may be between its insert and the end of its dispatch; only past its deadline is it
      // surely lost (say, the server stopped before sending).
      if (!found && !pastDeadline) return run;
      if (found) run = { ...run, commandId: found };
    }
    let state: CommandState;
    try {
      state = await this.deps.dispatcher.inspect(run);
    } catch (error) {
      if (pastDeadline) {
        return this.deps.settler.settle(run.id, { kind: 'overdue', deadline, detail: (error as Error).message });
      }
      if (options.throwUntilDeadline) throw error;
      this.deps.log.warn('could not read a run’s command yet', { runId: run.id, error: String(error) });
      return run;
    }
    if (state.state === 'ended') return this.deps.settler.settle(run.id, { kind: 'agentOutput', output: state.output });
    if (state.state === 'lost')
      return this.deps.settler.settle(run.id, { kind: 'commandUnknown', reason: state.reason });
    if (pastDeadline) return this.deps.settler.settle(run.id, { kind: 'overdue', deadline });
    return run;
  }
}
