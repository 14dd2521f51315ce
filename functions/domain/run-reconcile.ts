import { type RunTimeouts, runDeadline } from './deadline.ts';
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
    const run = await this.deps.runs.findByCommand(commandId, node);
    if (run?.status !== 'RUNNING') return run;
    return this.check(run, { throwUntilDeadline: true });
  }

  /**
   * Settles RUNNING runs whose end was not reported. `overdue` looks at runs past their duration (their command may
   * have ended), `all` at every RUNNING run (local mode, where asking is cheap and a restarted server must pick up
   * agents that ended while it was down). One run's trouble never holds up the others.
   */
  async reconcile(scope: ReconcileScope = 'overdue'): Promise<Run[]> {
    const settled: Run[] = [];
    for (const run of await this.deps.runs.listRunning()) {
      if (scope === 'overdue' && this.deps.now() < run.triggerTime + run.duration * 1000) continue;
      try {
        const result = await this.check(run, { throwUntilDeadline: false });
        if (result && result.status !== 'RUNNING') settled.push(result);
      } catch (error) {
        this.deps.log.warn('could not reconcile run', { runId: run.id, error: String(error) });
      }
    }
    return settled;
  }

  /** Asks where the run's command is and reports it; past the deadline an unanswered run is overdue. */
  private async check(run: Run, options: { throwUntilDeadline: boolean }): Promise<Run | undefined> {
    const deadline = runDeadline(run, this.deps.timeouts);
    const pastDeadline = this.deps.now() > deadline;
    // A run with no command yet may be between its insert and the end of its dispatch: only past its deadline is
    // it surely lost (say, the server stopped in between).
    if (!run.commandId && !pastDeadline) return run;
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
