import { type Caller, canSee, visibleTeams } from './access.ts';
import { resolveTarget, visibleCluster } from './cluster-access.ts';
import { NotFoundError } from './errors.ts';
import type { ArtifactStore, Discovery, FlinkNode, LinkDisposition, RunFilter, RunPage, RunStore } from './ports.ts';
import { describeTarget, type Role, type Run } from './run.ts';

/** A run as clients see it, with fresh links to its flame graph once it has one. */
export interface RunView extends Run {
  url?: string;
  downloadUrl?: string;
}

export interface ReadDependencies {
  runs: RunStore;
  artifacts: ArtifactStore;
  discovery: Discovery;
  settings: { historySize: number; linkTtlSeconds: number };
}

/** What a caller may read: clusters and nodes of their teams, runs made for their teams, short-lived links. */
export class RunReader {
  constructor(private readonly deps: ReadDependencies) {}

  /** The nodes of a cluster the caller may see; throws NotFoundError for an unknown or foreign cluster. */
  async listNodes(caller: Caller, cluster: string): Promise<Array<FlinkNode & { runningRunId?: string }>> {
    const { nodes } = await visibleCluster(this.deps.discovery, caller, cluster);
    const running = await this.deps.runs.list({ cluster, status: 'RUNNING' }, 1000);
    return nodes.map((node) => {
      const run = running.runs.find((r) => r.node === node.id && r.role === node.role);
      return run ? { ...node, runningRunId: run.id } : node;
    });
  }

  /** The clusters of the caller's teams (every cluster for an admin or in local mode). */
  async listClusters(caller: Caller): Promise<Array<{ id: string; nodes: number; teams: string[] }>> {
    return (await this.deps.discovery.listClusters()).filter((cluster) => canSee(caller, cluster.teams));
  }

  /** One run the caller may see (404 for an unknown or foreign run). */
  async getRun(caller: Caller, id: string): Promise<RunView> {
    const run = await this.deps.runs.get(id);
    if (!run || !canSee(caller, run.teams ?? [])) throw new NotFoundError(`run '${id}' not found`);
    return this.view(run);
  }

  /**
   * A target's history, newest first, as Flink's profilingList. For the JobManager endpoint (no node) it
   * is the history of the cluster's JobManagers. History is read from the store first: a node that has
   * stopped keeps its history, and reads cost no discovery. A run stays visible to the teams its cluster had
   * when it was started.
   */
  async listTargetRuns(caller: Caller, cluster: string, role: Role, node?: string): Promise<RunView[]> {
    const teams = visibleTeams(caller);
    const runs =
      node === undefined
        ? (await this.deps.runs.list({ cluster, role, teams }, this.deps.settings.historySize)).runs
        : (await this.deps.runs.listForTarget({ cluster, role, node }, this.deps.settings.historySize)).filter((run) =>
            canSee(caller, run.teams ?? []),
          );
    // No history: tell an unknown (or foreign) cluster or node (404) from a known one with nothing yet ([]).
    if (runs.length === 0 && node !== undefined) await resolveTarget(this.deps.discovery, caller, cluster, role, node);
    if (runs.length === 0 && node === undefined) await visibleCluster(this.deps.discovery, caller, cluster);
    return Promise.all(runs.map((run) => this.view(run)));
  }

  /** Runs across targets that the caller may see, newest first. */
  async listRuns(
    caller: Caller,
    filter: Omit<RunFilter, 'teams'>,
    limit: number,
    nextToken?: string,
  ): Promise<{ runs: RunView[]; nextToken?: string }> {
    const page: RunPage = await this.deps.runs.list({ ...filter, teams: visibleTeams(caller) }, limit, nextToken);
    return { ...page, runs: await Promise.all(page.runs.map((run) => this.view(run))) };
  }

  /** A short-lived link that downloads a flame graph by its output file name. */
  async downloadLink(
    caller: Caller,
    cluster: string,
    role: Role,
    node: string | undefined,
    outputFile: string,
  ): Promise<string> {
    const run = await this.deps.runs.findByOutputFile({ cluster, role, node }, outputFile);
    if (!run?.artifactKey || !canSee(caller, run.teams ?? [])) {
      const where =
        node === undefined ? `the ${role} of cluster '${cluster}'` : describeTarget({ cluster, role, node });
      throw new NotFoundError(`file '${outputFile}' not found for ${where}`);
    }
    return this.link(run.artifactKey, outputFile, 'attachment');
  }

  private link(key: string, fileName: string, disposition: LinkDisposition): Promise<string> {
    return this.deps.artifacts.link(key, {
      fileName,
      disposition,
      expiresInSeconds: this.deps.settings.linkTtlSeconds,
    });
  }

  /** A run with fresh links to its flame graph once it has one. */
  async view(run: Run): Promise<RunView> {
    if (run.status !== 'FINISHED' || !run.artifactKey || !run.outputFile) return run;
    const [url, downloadUrl] = await Promise.all([
      this.link(run.artifactKey, run.outputFile, 'inline'),
      this.link(run.artifactKey, run.outputFile, 'attachment'),
    ]);
    return { ...run, url, downloadUrl };
  }
}
