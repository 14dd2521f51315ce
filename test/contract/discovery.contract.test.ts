import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { Ec2Discovery } from '#adapters/aws/ec2-discovery.ts';
import { LOCAL_CLUSTER, ProcDiscovery } from '#adapters/local/proc-discovery.ts';
import { launchFlinkInstance, uniqueName } from '#test/support/aws-resources.ts';
import { type FakeFlinkJvm, startFakeFlinkJvm } from '#test/support/fake-flink-jvm.ts';
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

describeDiscoveryContract('EC2 tags (AWS)', async () => {
  const ec2 = new EC2Client({});
  const cluster = uniqueName('cluster');
  const tags = { clusterTag: 'flink-profiler:cluster', roleTag: 'flink-profiler:role', teamTag: 'flink-profiler:team' };
  return {
    discovery: new Ec2Discovery(ec2, tags),
    cluster,
    addNode: (role) => launchFlinkInstance(cluster, role),
    removeNode: async (id) => {
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    },
    cleanup: async () => {},
  };
});
