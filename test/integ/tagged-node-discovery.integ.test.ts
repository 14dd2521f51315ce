import { CreateTagsCommand, EC2Client, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TaggedNodeDiscovery } from '#adapters/aws/tagged-node-discovery.ts';
import { launchFlinkInstance, uniqueName } from '#test/support/aws-resources.ts';
import { installSsmAsAws, type SsmAsAws } from '#test/support/ssm-as-aws.ts';

/**
 * Discovery on AWS against moto's EC2 and Tagging API, with SSM as AWS has it (test/support/ssm-as-aws.ts stands
 * in for the SSM agents registering: moto describes no managed nodes). What the discovery contract does not pin
 * down: which tagged instances are nodes, what `reachable` and `host` say, and paging through both APIs.
 */
describe('discovery on AWS: tagged EC2 instances that SSM manages', () => {
  const tags = { clusterTag: 'flink-profiler:cluster', roleTag: 'flink-profiler:role', teamTag: 'flink-profiler:team' };
  const ec2 = new EC2Client({});
  let ssm: SsmAsAws;
  let discovery: TaggedNodeDiscovery;

  beforeEach(() => {
    ssm = installSsmAsAws({ describePageSize: 2 });
    discovery = new TaggedNodeDiscovery(new SSMClient({}), new ResourceGroupsTaggingAPIClient({}), tags);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("lists only the instances SSM manages, reachable while their agents are Online, named by SSM's host name", async () => {
    const cluster = uniqueName('cluster');
    const [online, lost, unmanaged, stopped] = await Promise.all([
      launchFlinkInstance(cluster, 'taskmanager'),
      launchFlinkInstance(cluster, 'taskmanager'),
      launchFlinkInstance(cluster, 'taskmanager'),
      launchFlinkInstance(cluster, 'jobmanager'),
    ]);
    ssm.register(online);
    ssm.register(lost, { PingStatus: 'ConnectionLost' });
    ssm.register(stopped);
    await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped] }));

    const nodes = (await discovery.listNodes(cluster)) ?? [];

    expect(nodes.map((n) => n.id).sort()).toEqual([online, lost].sort());
    expect(nodes.find((n) => n.id === online)).toMatchObject({
      role: 'taskmanager',
      reachable: true,
      host: expect.stringMatching(/^ip-10-0-\d+-\d+\.ec2\.internal$/),
      teams: ['team-a'],
    });
    expect(nodes.find((n) => n.id === lost)?.reachable).toBe(false);
    expect(nodes.map((n) => n.id)).not.toContain(unmanaged);
  });

  it('lists an instance with both roles once per role, and a cluster with the union of its teams', async () => {
    const cluster = uniqueName('cluster');
    const both = await launchFlinkInstance(cluster, 'jobmanager,taskmanager', 'team-a');
    const other = await launchFlinkInstance(cluster, 'taskmanager', 'team-b,  ops not/a*team');
    ssm.register(both);
    ssm.register(other);

    const nodes = (await discovery.listNodes(cluster)) ?? [];
    const clusters = await discovery.listClusters();

    expect(nodes.filter((n) => n.id === both).map((n) => n.role)).toEqual(['jobmanager', 'taskmanager']);
    expect(clusters.find((c) => c.id === cluster)).toEqual({
      id: cluster,
      nodes: 3,
      teams: ['ops', 'team-a', 'team-b'],
    });
  });

  it('pages through SSM (two nodes a page here), and keeps clusters apart by exact value', async () => {
    const cluster = uniqueName('cluster');
    const ids = await Promise.all(Array.from({ length: 7 }, () => launchFlinkInstance(cluster, 'taskmanager')));
    // A cluster whose name starts like this one: exact values, never a prefix or a pattern.
    const longer = await launchFlinkInstance(`${cluster}-2`, 'taskmanager');
    for (const id of [...ids, longer]) ssm.register(id);

    const nodes = (await discovery.listNodes(cluster)) ?? [];

    expect(nodes.map((n) => n.id).sort()).toEqual([...ids].sort());
    const pagesAsked = ssm.described.filter((input) => input.NextToken !== undefined).length;
    expect(pagesAsked).toBeGreaterThanOrEqual(3);
    expect(ssm.described.every((input) => (input.MaxResults ?? 0) <= 50)).toBe(true);
  });

  it('follows the tags as they are now, and knows no cluster whose name is not a name', async () => {
    const cluster = uniqueName('cluster');
    const id = await launchFlinkInstance(cluster, 'taskmanager', 'team-a');
    ssm.register(id);
    await ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: tags.teamTag, Value: 'team-c' }] }));

    expect((await discovery.listNodes(cluster))?.[0]?.teams).toEqual(['team-c']);
    const asked = ssm.described.length;
    expect(await discovery.listNodes(`${cluster.slice(0, 5)}*`)).toBeUndefined();
    expect(ssm.described.length).toBe(asked);
  });
});
