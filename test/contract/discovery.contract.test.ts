import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { SSMClient } from '@aws-sdk/client-ssm';
import { vi } from 'vitest';
import { TaggedNodeDiscovery } from '#adapters/aws/tagged-node-discovery.ts';
import { LOCAL_CLUSTER, ProcDiscovery } from '#adapters/local/proc-discovery.ts';
import { launchFlinkInstance, uniqueName } from '#test/support/aws-resources.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
import { installSsmAsAws, type SsmAsAws } from '#test/support/ssm-as-aws.ts';
import { describeDiscoveryContract } from './discovery.contract.ts';

describeDiscoveryContract('/proc (local mode)', async () => {
  const discovery = new ProcDiscovery();
  const jvms = new Map<string, FakeFlinkJvm>();
  return {
    discovery,
    cluster: LOCAL_CLUSTER,
    addNode: async (role) => {
      const jvm = await startFakeFlinkJvm({ role });
      const node = (await discovery.listNodes(LOCAL_CLUSTER))?.find((n) => n.pid === jvm.pid);
      if (!node) throw new Error(`fake ${role} pid ${jvm.pid} was not discovered`);
      jvms.set(node.id, jvm);
      return node.id;
    },
    removeNode: async (id) => {
      await jvms.get(id)?.stop();
      jvms.delete(id);
    },
    cleanup: async () => {
      await Promise.all([...jvms.values()].map((jvm) => jvm.stop()));
    },
  };
});

/** SSM as AWS has it (moto answers DescribeInstanceInformation with HTTP 500): one for every test of the AWS adapter. */
let ssmAsAws: SsmAsAws | undefined;

describeDiscoveryContract('EC2 tags and SSM (AWS)', async () => {
  ssmAsAws ??= installSsmAsAws();
  const ssm = ssmAsAws;
  const ec2 = new EC2Client({});
  const cluster = uniqueName('cluster');
  const tags = { clusterTag: 'flink-profiler:cluster', roleTag: 'flink-profiler:role', teamTag: 'flink-profiler:team' };
  return {
    discovery: new TaggedNodeDiscovery(new SSMClient({}), new ResourceGroupsTaggingAPIClient({}), tags),
    cluster,
    addNode: async (role) => {
      const id = await launchFlinkInstance(cluster, role);
      // Its SSM agent registers: SSM manages the instance.
      ssm.register(id);
      return id;
    },
    // SSM describes no terminated instance; the Tagging API still lists it for a while (moto: for good).
    removeNode: async (id) => {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    },
    cleanup: async () => {
      vi.restoreAllMocks();
      ssmAsAws = undefined;
    },
  };
});
