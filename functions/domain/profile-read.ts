import { gunzipSync, gzipSync } from 'node:zlib';
import { type Caller, canSee, visibleTeams } from './access.ts';
import { MAX_HTML_BYTES } from './agent-output.ts';
import { DERIVED_PREFIX, type ProfileFormat, threadStacksKey, withFormat } from './artifacts.ts';
import { NotFoundError, ValidationError } from './errors.ts';
import type { ArtifactStore, LinkDisposition, RunStore } from './ports.ts';
import {
  diffFlameGraphHtml,
  diffFrames,
  type FrameDelta,
  type FrameStat,
  flameGraphHtml,
  hottestFrames,
  mergeProfiles,
  type Profile,
  parseCollapsed,
  type ThreadStat,
  threadBreakdown,
  toCollapsed,
} from './profile/index.ts';
import { describeTarget, type Run } from './run.ts';

/** A short-lived link and when it stops working (epoch ms). */
export interface Link {
  url: string;
  expiresAt: number;
}

export interface ProfileReadDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  settings: { linkTtlSeconds: number };
  now: () => number;
  newId: () => string;
}

/** The most runs of a group merged into one profile: a fan-out's own limit is lower. */
const MAX_GROUP_RUNS = 1000;

/** How many frames a differential comparison lists when asked for JSON. */
export const DIFF_FRAMES_LIMIT = 500;

/**
 * Reading a run's profile beyond its flame graph: exports, hottest frames, threads and operators, the difference
 * between two runs, and the merged profile of a fan-out group or rule firing. Everything is computed from the
 * collapsed stacks the run stored (with thread frames), for runs the caller may see; anything else is 404, as an
 * unknown run is.
 */
export class ProfileReader {
  constructor(private readonly deps: ProfileReadDependencies) {}

  /** A link to one of the run's files; 404 when the run has none in that format, saying why. */
  async profileLink(caller: Caller, runId: string, format: ProfileFormat): Promise<Link> {
    const run = await this.finishedRun(caller, runId);
    if (!(run.formats ?? ['html']).includes(format)) throw new NotFoundError(missingFormat(run, format));
    return this.link(withFormat(run.artifactKey, format), withFormat(run.outputFile, format));
  }

  /** The run's hottest methods by self samples. */
  async frames(caller: Caller, runId: string, limit: number): Promise<{ samples: number; frames: FrameStat[] }> {
    return hottestFrames(await this.profileOf(await this.finishedRun(caller, runId)), limit);
  }

  /** The run's samples per thread, with the Flink operator chain of each task thread. */
  async threads(caller: Caller, runId: string): Promise<{ threads: ThreadStat[] }> {
    return threadBreakdown(await this.profileOf(await this.finishedRun(caller, runId)));
  }

  /** What changed from run `baseId` to run `runId`, frame by frame, each normalised by its own sample count. */
  async diffFrames(caller: Caller, runId: string, baseId: string): Promise<{ frames: FrameDelta[] }> {
    const [base, target] = await this.comparedProfiles(caller, runId, baseId);
    return diffFrames(base.profile, target.profile, DIFF_FRAMES_LIMIT);
  }

  /** A differential flame graph of run `runId` against run `baseId`, as a link. */
  async diffLink(caller: Caller, runId: string, baseId: string): Promise<Link> {
    const [base, target] = await this.comparedProfiles(caller, runId, baseId);
    const html = diffFlameGraphHtml(base.profile, target.profile, {
      title: `${target.run.mode} profile: ${describeTarget(target.run)}, run ${target.run.id} against run ${base.run.id}`,
      subtitle: `red grew, blue shrank: each frame's share of its own profile's samples (${target.profile.samples} samples against ${base.profile.samples})`,
    });
    return this.derivedLink(`diff-${target.run.id}-vs-${base.run.id}.html`, gzipSync(html));
  }

  /** The hottest frames of a group's FINISHED runs merged into one profile, and how many runs that is. */
  async groupFrames(
    caller: Caller,
    groupId: string,
    limit: number,
  ): Promise<{ runs: number; samples: number; frames: FrameStat[] }> {
    const { runs, profile } = await this.mergedGroup(caller, groupId);
    return { runs: runs.length, ...hottestFrames(profile, limit) };
  }

  /** One merged profile of a group's FINISHED runs, as a flame graph or collapsed stacks (no thread frames). */
  async groupProfileLink(caller: Caller, groupId: string, format: 'html' | 'collapsed'): Promise<Link> {
    const { runs, profile } = await this.mergedGroup(caller, groupId);
    const name = `group-${groupId}-merged-${runs.length}-runs`;
    if (format === 'collapsed') return this.derivedLink(`${name}.collapsed`, gzipSync(toCollapsed(profile)));
    const [first] = runs as [Run, ...Run[]];
    const html = flameGraphHtml(profile, {
      title: `${first.mode} profile of group ${groupId}: ${runs.length} runs merged`,
      subtitle: `${profile.samples} samples from ${runs.map((run) => `${run.role} ${run.node}`).join(', ')}`,
    });
    return this.derivedLink(`${name}.html`, gzipSync(html));
  }

  /** A run the caller may see that has finished with collapsed stacks; else 404 saying why. */
  private async finishedRun(
    caller: Caller,
    runId: string,
    field = 'run',
  ): Promise<Run & { artifactKey: string; outputFile: string }> {
    const run = await this.deps.runs.get(runId);
    if (!run || !canSee(caller, run.teams ?? [])) throw new NotFoundError(`${field}: run '${runId}' not found`);
    if (run.status !== 'FINISHED' || !run.artifactKey || !run.outputFile) {
      throw new NotFoundError(`${field}: run '${runId}' has no profile: it is ${run.status}`);
    }
    return run as Run & { artifactKey: string; outputFile: string };
  }

  /** The run's collapsed stacks, read and checked; 404 when the run has none (its node sent the flame graph only). */
  private async profileOf(run: Run & { artifactKey: string }): Promise<Profile> {
    if (!run.formats?.includes('collapsed')) throw new NotFoundError(missingFormat(run, 'collapsed'));
    const stored = await this.deps.artifacts.get(threadStacksKey(run.artifactKey));
    if (!stored) throw new NotFoundError(`run '${run.id}' has no collapsed stacks any more: they were deleted`);
    return parseCollapsed(gunzipSync(stored, { maxOutputLength: MAX_HTML_BYTES }).toString('utf8'));
  }

  private async comparedProfiles(caller: Caller, runId: string, baseId: string) {
    const target = await this.finishedRun(caller, runId);
    const base = await this.finishedRun(caller, baseId, 'base');
    if (base.mode !== target.mode) {
      throw new ValidationError(
        `base: run '${baseId}' is a ${base.mode} profile and run '${runId}' a ${target.mode} one; compare runs of the same mode`,
      );
    }
    const [baseProfile, targetProfile] = await Promise.all([this.profileOf(base), this.profileOf(target)]);
    return [
      { run: base, profile: baseProfile },
      { run: target, profile: targetProfile },
    ] as const;
  }

  /**
   * The FINISHED runs of a group that the caller may see and that have collapsed stacks, merged one at a time (at
   * most two profiles in memory besides the sum). 404 for a group with no run the caller may see, or none merged.
   */
  private async mergedGroup(caller: Caller, groupId: string): Promise<{ runs: Run[]; profile: Profile }> {
    const { runs: all } = await this.deps.runs.list({ groupId, teams: visibleTeams(caller) }, MAX_GROUP_RUNS);
    if (all.length === 0) throw new NotFoundError(`group '${groupId}' not found`);
    const runs = all.filter((run) => run.status === 'FINISHED' && run.formats?.includes('collapsed'));
    if (runs.length === 0) {
      throw new NotFoundError(
        `group '${groupId}' has no FINISHED run with collapsed stacks yet (${all.length} runs: ${countByStatus(all)})`,
      );
    }
    let profile: Profile = { samples: 0, stacks: [] };
    for (const run of runs) {
      profile = mergeProfiles([profile, await this.profileOf(run as Run & { artifactKey: string })]);
    }
    return { runs, profile };
  }

  /** Stores a view computed now under a key of its own and links to it: flame graphs open, the rest download. */
  private async derivedLink(fileName: string, body: Buffer): Promise<Link> {
    const key = `${DERIVED_PREFIX}${this.deps.newId()}/${fileName}`;
    await this.deps.artifacts.put(key, body);
    return this.link(key, fileName, fileName.endsWith('.html') ? 'inline' : 'attachment');
  }

  private async link(key: string, fileName: string, disposition: LinkDisposition = 'attachment'): Promise<Link> {
    const expiresInSeconds = this.deps.settings.linkTtlSeconds;
    const url = await this.deps.artifacts.link(key, { fileName, disposition, expiresInSeconds });
    return { url, expiresAt: this.deps.now() + expiresInSeconds * 1000 };
  }
}

function missingFormat(run: Run, format: ProfileFormat): string {
  const what = format === 'jfr' ? 'JFR recording' : format === 'html' ? 'flame graph' : `${format} profile`;
  return `run '${run.id}' has no ${what}: its node sent the flame graph only (it records JFR and converts it where async-profiler's converter, lib/converter.jar, is installed next to its library)`;
}

function countByStatus(runs: Run[]): string {
  const counts = new Map<string, number>();
  for (const run of runs) counts.set(run.status, (counts.get(run.status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ');
}
