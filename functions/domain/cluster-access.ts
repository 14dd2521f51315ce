import { type Caller, canSee } from './access.ts';
import { ConflictError, NotFoundError } from './errors.ts';
import type { Discovery, FlinkNode } from './ports.ts';
import type { Role, Target } from './run.ts';

/** The teams a cluster belongs to: the union of its nodes' team tags. */
export function teamsOf(nodes: readonly FlinkNode[]): string[] {
  return [...new Set(nodes.flatMap((node) => node.teams ?? []))].sort();
}

/**
 * A cluster's nodes and the teams it belongs to, if the caller may see it. A cluster outside the caller's
 * teams is answered exactly like an unknown one (404), so its existence does not leak.
 */
export async function visibleCluster(
  discovery: Discovery,
  caller: Caller,
  cluster: string,
): Promise<{ nodes: FlinkNode[]; teams: string[] }> {
  const nodes = await discovery.listNodes(cluster);
  const teams = teamsOf(nodes ?? []);
  if (!nodes || !canSee(caller, teams)) throw new NotFoundError(`cluster '${cluster}' not found`);
  return { nodes, teams };
}

/** Finds the node to profile. A JobManager may be named by role alone when the cluster has exactly one. */
export async function resolveTarget(
  discovery: Discovery,
  caller: Caller,
  cluster: string,
  role: Role,
  node?: string,
): Promise<{ target: Target; node: FlinkNode; teams: string[] }> {
  const { nodes, teams } = await visibleCluster(discovery, caller, cluster);
  const candidates = nodes.filter((n) => n.role === role && (node === undefined || n.id === node));
  if (candidates.length === 1) {
    const [found] = candidates as [FlinkNode];
    return { target: { cluster, role, node: found.id }, node: found, teams };
  }
  if (node !== undefined) throw new NotFoundError(`${role} '${node}' not found in cluster '${cluster}'`);
  if (candidates.length === 0) throw new NotFoundError(`no ${role} found in cluster '${cluster}'`);
  throw new ConflictError(
    `cluster '${cluster}' has ${candidates.length} ${role}s (${candidates.map((n) => n.id).join(', ')}); name the node to profile`,
  );
}
