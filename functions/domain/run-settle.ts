import { gzipSync } from 'node:zlib';
import { type AgentResult, parseAgentOutput } from './agent-output.ts';
import { type ProfileFormat, runArtifactKeys, threadStacksKey, withFormat } from './artifacts.ts';
import { jvmFreeAt, type RunTimeouts } from './deadline.ts';
import { failureMessage, finishedMessage, profileRefusedNote, stillProfilingNote } from './messages.ts';
import type { Observation } from './observation.ts';
import type { ArtifactStore, Logger, RunOutcome, RunStore } from './ports.ts';
import { ProfileDataError, parseCollapsed, toCollapsed, toPprof } from './profile/index.ts';
import { artifactKeyFor, outputFileName, type Run } from './run.ts';

export interface SettleDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  log: Logger;
  now: () => number;
  timeouts: RunTimeouts;
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
    // Another settle won. Its files are the ones on record; ours go only if they are other objects.
    const winner = await this.deps.runs.get(run.id);
    if (outcome.artifactKey && winner?.artifactKey !== outcome.artifactKey) {
      await this.deps.artifacts.delete(runArtifactKeys(outcome.artifactKey));
    }
    return winner;
  }

  /** How the observation ends the run; a finished profile is stored first, under a key of this run's own. */
  private async outcomeOf(run: Run, observation: Observation): Promise<RunOutcome> {
    const finishedTime = this.deps.now();
    const result = observation.kind === 'agentOutput' ? parseAgentOutput(observation.output.stdout) : undefined;
    const failed = (message: string): RunOutcome => {
      const busyUntil = this.jvmBusyUntil(run, observation, result !== undefined);
      return {
        status: 'FAILED',
        finishedTime,
        message: busyUntil === null ? message : `${message}${stillProfilingNote(busyUntil)}`,
        outputFile: null,
        artifactKey: null,
        busyUntil,
      };
    };
    if (observation.kind !== 'agentOutput') return failed(failureMessage(run, observation));
    if (result?.status !== 'FINISHED' || !result.gzippedHtml) return failed(failureMessage(run, observation, result));
    const outputFile = outputFileName(run, finishedTime);
    const artifactKey = artifactKeyFor(run, outputFile);
    const { files, refused } = this.profileFiles(run, result, finishedTime);
    // The flame graph last: a run whose flame graph is stored has all its other files too.
    await Promise.all([
      ...[...files].map(([format, body]) => this.deps.artifacts.put(withFormat(artifactKey, format), body)),
      ...(files.size > 0 && result.collapsed
        ? [this.deps.artifacts.put(threadStacksKey(artifactKey), result.collapsed.gzipped)]
        : []),
    ]);
    await this.deps.artifacts.put(artifactKey, result.gzippedHtml);
    const refusedNote = refused ? profileRefusedNote(refused) : '';
    return {
      status: 'FINISHED',
      finishedTime,
      message: finishedMessage(run, result) + refusedNote,
      outputFile,
      artifactKey,
      formats: ['html', ...files.keys()],
      busyUntil: null,
    };
  }

  /**
   * The exports of a finished run besides its flame graph: the collapsed stacks (checked to be a profile, written
   * without thread frames), the pprof made from them and the recording, all compressed; or why the node's were
   * refused. (The stacks as sent, thread frames and all, are kept too: see threadStacksKey.)
   */
  private profileFiles(
    run: Run,
    result: AgentResult,
    finishedTime: number,
  ): { files: Map<Exclude<ProfileFormat, 'html'>, Buffer>; refused?: string } {
    const files = new Map<Exclude<ProfileFormat, 'html'>, Buffer>();
    if (result.extrasProblem) return { files, refused: result.extrasProblem };
    if (!result.collapsed || !result.gzippedJfr) return { files };
    try {
      const profile = parseCollapsed(result.collapsed.text);
      files.set('collapsed', gzipSync(toCollapsed(profile)));
      files.set(
        'pprof',
        toPprof(profile, {
          mode: result.mode ?? run.mode,
          durationSeconds: run.duration,
          timeNanos: run.triggerTime * 1_000_000,
        }),
      );
      files.set('jfr', result.gzippedJfr);
      return { files };
    } catch (error) {
      if (!(error instanceof ProfileDataError)) throw error;
      this.deps.log.warn('collapsed stacks refused', { runId: run.id, reason: error.message, finishedTime });
      return { files: new Map(), refused: `the collapsed stacks are not a profile (${error.message})` };
    }
  }

  /**
   * Until when a run that ends now may still be profiling its JVM. async-profiler's session outlives an agent that
   * was killed (SIGKILL, the node's OOM killer, SSM's cancel), so a run whose agent neither answered (it stops the
   * session before it answers; its exit trap answers whenever it exits by itself) nor is known to have ended past
   * the session's timeout keeps its target busy until that timeout has passed. Null when the JVM is free. Other
   * observations come past the deadline (overdue, a forgotten command) or before anything ran (dispatch failed).
   */
  private jvmBusyUntil(run: Run, observation: Observation, agentAnswered: boolean): number | null {
    if (observation.kind !== 'agentOutput' || agentAnswered || observation.output.sessionOver) return null;
    const { exitCode } = observation.output;
    const killed = exitCode === null || exitCode < 0 || exitCode >= 128;
    if (!killed) return null;
    const freeAt = jvmFreeAt(run, this.deps.timeouts);
    return freeAt > this.deps.now() ? freeAt : null;
  }
}
