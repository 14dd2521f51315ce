import { type EC2Client, type Instance, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { isName } from '#domain/names.ts';
import type { Discovery, FlinkNode } from '#domain/ports.ts';
import { ROLES, type Role } from '#domain/run.ts';

export interface Ec2DiscoveryOptions {
  /** Tag whose value names an instance's cluster, e.g. `flink-profiler:cluster`. */
  clusterTag: string;
  /** Tag listing an instance's roles: `jobmanager`, `taskmanager`, or both separated by a comma. */
  roleTag: string;
  /** Tag naming the teams an instance belongs to, separated by spaces or commas, e.g. `flink-profiler:team`. */
  teamTag: string;
}

/**
 * A value for an EC2 filter that matches only itself: EC2 reads `*` and `?` as wildcards and `\` as their escape.
 * Names are checked against their pattern before they get here; this is the second line of defence.
 */
export function literalFilterValue(value: string): string {
  return value.replace(/[\\*?]/g, (c) => `\\${c}`);
}

function tag(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

/**
 * Discovery on EC2: a node is a running instance tagged with the cluster tag; an instance carrying both
 * roles is listed once per role.
 */
export class Ec2Discovery implements Discovery {
  constructor(
    private readonly ec2: EC2Client,
    private readonly options: Ec2DiscoveryOptions,
  ) {}

  async listClusters(): Promise<Array<{ id: string; nodes: number; teams: string[] }>> {
    const clusters = new Map<string, { nodes: number; teams: Set<string> }>();
    for (const instance of await this.instances()) {
      const cluster = tag(instance, this.options.clusterTag);
      // A tag value that is no valid cluster id could never be asked for by name: leave it out.
      if (!isName('cluster', cluster)) continue;
      const entry = clusters.get(cluster) ?? { nodes: 0, teams: new Set<string>() };
      entry.nodes += this.nodesOf(instance).length;
      for (const team of this.teamsOf(instance)) entry.teams.add(team);
      clusters.set(cluster, entry);
    }
    return [...clusters]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, { nodes, teams }]) => ({ id, nodes, teams: [...teams].sort() }));
  }

  async listNodes(cluster: string): Promise<FlinkNode[] | undefined> {
    // A name that is not a cluster id is no cluster (and never reaches a filter, where it could be a pattern).
    if (!isName('cluster', cluster)) return undefined;
    const instances = (await this.instances(cluster)).filter((i) => tag(i, this.options.clusterTag) === cluster);
    if (instances.length === 0) return undefined;
    return instances
      .flatMap((instance) => this.nodesOf(instance))
      .sort((a, b) => a.id.localeCompare(b.id) || a.role.localeCompare(b.role));
  }

  /** The teams named in the instance's team tag; names that are no valid team name are ignored. */
  private teamsOf(instance: Instance): string[] {
    const names = (tag(instance, this.options.teamTag) ?? '').split(/[\s,]+/);
    return [...new Set(names.filter((name) => isName('team', name)))];
  }

  private nodesOf(instance: Instance): FlinkNode[] {
    const teams = this.teamsOf(instance);
    const roles = (tag(instance, this.options.roleTag) ?? '')
      .split(/[\s,]+/)
      .filter((role): role is Role => (ROLES as readonly string[]).includes(role));
    return [...new Set(roles)].map((role) => ({
      id: instance.InstanceId ?? '',
      role,
      host: instance.PrivateDnsName || instance.PrivateIpAddress || instance.InstanceId || '',
      // Running is all EC2 tells; whether its SSM agent answers shows when a command is delivered.
      reachable: instance.State?.Name === 'running',
      teams,
    }));
  }

  private async instances(cluster?: string): Promise<Instance[]> {
    const filters = [
      { Name: 'instance-state-name', Values: ['running'] },
      cluster === undefined
        ? { Name: 'tag-key', Values: [this.options.clusterTag] }
        : { Name: `tag:${this.options.clusterTag}`, Values: [literalFilterValue(cluster)] },
    ];
    const instances: Instance[] = [];
    for await (const page of paginateDescribeInstances({ client: this.ec2 }, { Filters: filters })) {
      for (const reservation of page.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
    }
    return instances;
  }
}
