import { type EC2Client, type Instance, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import type { Discovery, FlinkNode } from '#domain/ports.ts';
import { ROLES, type Role } from '#domain/run.ts';

export interface Ec2DiscoveryOptions {
  /** Tag whose value names an instance's cluster, e.g. `flink-profiler:cluster`. */
  clusterTag: string;
  /** Tag listing an instance's roles: `jobmanager`, `taskmanager`, or both separated by a comma. */
  roleTag: string;
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

  async listClusters(): Promise<Array<{ id: string; nodes: number }>> {
    const counts = new Map<string, number>();
    for (const instance of await this.instances()) {
      const cluster = tag(instance, this.options.clusterTag);
      if (cluster) counts.set(cluster, (counts.get(cluster) ?? 0) + this.nodesOf(instance).length);
    }
    return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([id, nodes]) => ({ id, nodes }));
  }

  async listNodes(cluster: string): Promise<FlinkNode[] | undefined> {
    const instances = await this.instances(cluster);
    if (instances.length === 0) return undefined;
    return instances
      .flatMap((instance) => this.nodesOf(instance))
      .sort((a, b) => a.id.localeCompare(b.id) || a.role.localeCompare(b.role));
  }

  private nodesOf(instance: Instance): FlinkNode[] {
    const roles = (tag(instance, this.options.roleTag) ?? '')
      .split(/[\s,]+/)
      .filter((role): role is Role => (ROLES as readonly string[]).includes(role));
    return [...new Set(roles)].map((role) => ({
      id: instance.InstanceId ?? '',
      role,
      host: instance.PrivateDnsName || instance.PrivateIpAddress || instance.InstanceId || '',
      // Running is all EC2 tells; whether its SSM agent answers shows when a command is delivered.
      reachable: instance.State?.Name === 'running',
    }));
  }

  private async instances(cluster?: string): Promise<Instance[]> {
    const filters = [
      { Name: 'instance-state-name', Values: ['running'] },
      cluster === undefined
        ? { Name: 'tag-key', Values: [this.options.clusterTag] }
        : { Name: `tag:${this.options.clusterTag}`, Values: [cluster] },
    ];
    const instances: Instance[] = [];
    for await (const page of paginateDescribeInstances({ client: this.ec2 }, { Filters: filters })) {
      for (const reservation of page.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
    }
    return instances;
  }
}
