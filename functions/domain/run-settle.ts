import { parseAgentOutput } from './agent-output.ts';
import { failureMessage, finishedMessage } from './messages.ts';
import type { Observation } from './observation.ts';
import type { ArtifactStore, Logger, RunOutcome, RunStore } from './ports.ts';
import { artifactKeyFor, outputFileName, type Run } from './run.ts';

export interface SettleDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  log: Logger;
  now: () => number;
}

/**
 * The one place where a run ends. Every writer reports what it saw as an {@link Observation}; `settle` turns it into
 * FINISHED (the flame graph stored) or FAILED (a message from the catalog), with one conditional write. Idempotent
 * and race-free: a run that is no longer RUNNING is left as it is, and the loser of a race between two settles never
 * deletes what the winner kept.
 */
export class RunSettler {
  constructor(private readonly deps: SettleDependencies) {}

  async settle(runId: string, observation: Observation): Promise<Run | undefined> {
    const run = await this.deps.runs.get(runId);
    if (run?.status !== 'RUNNING') return run;

    const outcome = await this.outcomeOf(run, observation);
    const finished = await this.deps.runs.finish(run.id, outcome);
    if (finished) {
      this.deps.log.info('run settled', { runId, observation: observation.kind, status: finished.status });
      return finished;
    }
    // Another settle won. Its flame graph is the one on record; ours goes only if it is another object.
    const winner = await this.deps.runs.get(run.id);
    if (outcome.artifactKey && winner?.artifactKey !== outcome.artifactKey) {
      await this.deps.artifacts.delete([outcome.artifactKey]);
    }
    return winner;
  }

  /** How the observation ends the run; a finished profile is stored first, under a key of this run's own. */
  private async outcomeOf(run: Run, observation: Observation): Promise<RunOutcome> {
    const finishedTime = this.deps.now();
    const failed = (message: string): RunOutcome => ({
      status: 'FAILED',
      finishedTime,
      message,
      outputFile: null,
      artifactKey: null,
    });
    if (observation.kind !== 'agentOutput') return failed(failureMessage(run, observation));

    const result = parseAgentOutput(observation.output.stdout);
    if (result?.status !== 'FINISHED' || !result.gzippedHtml) return failed(failureMessage(run, observation, result));
    const outputFile = outputFileName(run, finishedTime);
    const artifactKey = artifactKeyFor(run, outputFile);
    await this.deps.artifacts.put(artifactKey, result.gzippedHtml);
    return { status: 'FINISHED', finishedTime, message: finishedMessage(run, result), outputFile, artifactKey };
  }
}
