import {
  paginateGetResources,
  type ResourceGroupsTaggingAPIClient,
  type ResourceTagMapping,
} from '@aws-sdk/client-resource-groups-tagging-api';
import {
  type InstanceInformation,
  type InstanceInformationStringFilter,
  paginateDescribeInstanceInformation,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { isName } from '#domain/names.ts';
import type { Discovery, FlinkNode } from '#domain/ports.ts';
import { ROLES, type Role } from '#domain/run.ts';

export interface TaggedNodeDiscoveryOptions {
  /** Tag whose value names an instance's cluster, e.g. `flink-profiler:cluster`. */
  clusterTag: string;
  /** Tag listing an instance's roles: `jobmanager`, `taskmanager`, or both separated by a comma. */
  roleTag: string;
  /** Tag naming the teams an instance belongs to, separated by spaces or commas, e.g. `flink-profiler:team`. */
  teamTag: string;
}

/** DescribeInstanceInformation's largest page (MaxResults 5 to 50); the Tagging API's is 100 resources. */
const SSM_PAGE = 50;
const TAGGING_PAGE = 100;

/** `arn:<partition>:ec2:<region>:<account>:instance/<id>` → the instance id; undefined for any other ARN. */
function instanceIdOf(arn: string | undefined): string | undefined {
  return /^arn:[a-z-]+:ec2:[a-z0-9-]+:\d{12}:instance\/(i-[0-9a-f]{8,32})$/.exec(arn ?? '')?.[1];
}

interface TaggedInstance {
  id: string;
  tags: Map<string, string>;
  ssm: InstanceInformation;
}

/**
 * Discovery on AWS without the EC2 API: a node is an EC2 instance carrying the cluster tag that SSM manages. SSM's
 * DescribeInstanceInformation (filtered by the cluster tag) names the managed instances that are neither stopped nor
 * terminated and whether their agents answer, which is what a profile needs; the Resource Groups Tagging API gives
 * their tags' values (SSM filters by tags but does not return them). An instance carrying both roles is listed once
 * per role. A tagged instance that SSM does not manage (no agent or role, stopped, terminated) is no node: nothing
 * could profile it.
 */
export class TaggedNodeDiscovery implements Discovery {
  constructor(
    private readonly ssm: SSMClient,
    private readonly tagging: ResourceGroupsTaggingAPIClient,
    private readonly options: TaggedNodeDiscoveryOptions,
  ) {}

  async listClusters(): Promise<Array<{ id: string; nodes: number; teams: string[] }>> {
    const clusters = new Map<string, { nodes: number; teams: Set<string> }>();
    for (const instance of await this.instances()) {
      const cluster = instance.tags.get(this.options.clusterTag);
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
    const instances = (await this.instances(cluster)).filter((i) => i.tags.get(this.options.clusterTag) === cluster);
    if (instances.length === 0) return undefined;
    return instances
      .flatMap((instance) => this.nodesOf(instance))
      .sort((a, b) => a.id.localeCompare(b.id) || a.role.localeCompare(b.role));
  }

  /** The teams named in the instance's team tag; names that are no valid team name are ignored. */
  private teamsOf(instance: TaggedInstance): string[] {
    const names = (instance.tags.get(this.options.teamTag) ?? '').split(/[\s,]+/);
    return [...new Set(names.filter((name) => isName('team', name)))];
  }

  private nodesOf(instance: TaggedInstance): FlinkNode[] {
    const teams = this.teamsOf(instance);
    const roles = (instance.tags.get(this.options.roleTag) ?? '')
      .split(/[\s,]+/)
      .filter((role): role is Role => (ROLES as readonly string[]).includes(role));
    return [...new Set(roles)].map((role) => ({
      id: instance.id,
      role,
      host: instance.ssm.ComputerName || instance.ssm.IPAddress || instance.id,
      // Whether its SSM agent answers now: a command to an agent that lost its connection waits and times out.
      reachable: instance.ssm.PingStatus === 'Online',
      teams,
    }));
  }

  /** The managed instances with the cluster tag (of `cluster`, when given), with their tags. */
  private async instances(cluster?: string): Promise<TaggedInstance[]> {
    const { clusterTag } = this.options;
    const [managed, tagged] = await Promise.all([
      this.managedInstances(
        cluster === undefined
          ? { Key: 'tag-key', Values: [clusterTag] }
          : { Key: `tag:${clusterTag}`, Values: [cluster] },
      ),
      this.taggedInstances(cluster),
    ]);
    const instances: TaggedInstance[] = [];
    for (const [id, ssm] of managed) {
      const tags = tagged.get(id);
      // Tags reach the Tagging API a little after SSM sees them: such an instance shows on the next listing.
      if (tags) instances.push({ id, tags, ssm });
    }
    return instances;
  }

  private async managedInstances(filter: InstanceInformationStringFilter): Promise<Map<string, InstanceInformation>> {
    const managed = new Map<string, InstanceInformation>();
    const pages = paginateDescribeInstanceInformation(
      { client: this.ssm, pageSize: SSM_PAGE },
      { Filters: [filter], MaxResults: SSM_PAGE },
    );
    for await (const page of pages) {
      for (const info of page.InstanceInformationList ?? []) {
        // Managed nodes outside EC2 (mi-…) carry no EC2 tags the Tagging API could give.
        if (info.InstanceId?.startsWith('i-')) managed.set(info.InstanceId, info);
      }
    }
    return managed;
  }

  private async taggedInstances(cluster?: string): Promise<Map<string, Map<string, string>>> {
    const tagged = new Map<string, Map<string, string>>();
    const pages = paginateGetResources(
      { client: this.tagging, pageSize: TAGGING_PAGE },
      {
        ResourceTypeFilters: ['ec2:instance'],
        // The Tagging API matches tag values exactly (no wildcards); the cluster is a checked name anyway.
        TagFilters: [{ Key: this.options.clusterTag, ...(cluster === undefined ? {} : { Values: [cluster] }) }],
        ResourcesPerPage: TAGGING_PAGE,
      },
    );
    for await (const page of pages) {
      for (const resource of page.ResourceTagMappingList ?? []) {
        const id = instanceIdOf(resource.ResourceARN);
        if (id) tagged.set(id, tagsOf(resource));
      }
    }
    return tagged;
  }
}

function tagsOf(resource: ResourceTagMapping): Map<string, string> {
  return new Map((resource.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}
