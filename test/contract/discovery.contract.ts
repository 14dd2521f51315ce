import { afterAll, describe, expect, it } from 'vitest';
import type { Discovery } from '#domain/ports.ts';
import type { Role } from '#domain/run.ts';

export interface DiscoveryUnderTest {
  discovery: Discovery;
  /** The cluster the adapter puts new nodes in. */
  cluster: string;
  /** Brings up a Flink node of the role (a JVM, an instance) and returns its node id. */
  addNode(role: Role): Promise<string>;
  /** Takes the node away (the JVM exits, the instance terminates). */
  removeNode(id: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** The behaviour every Discovery adapter promises; run against each adapter. */
export function describeDiscoveryContract(adapter: string, create: () => Promise<DiscoveryUnderTest>): void {
  describe(`Discovery contract: ${adapter}`, () => {
    const created: DiscoveryUnderTest[] = [];
    const setup = async () => {
      const underTest = await create();
      created.push(underTest);
      return underTest;
    };
    afterAll(async () => {
      await Promise.all(created.map((c) => c.cleanup()));
    });

    it('does not know a cluster that has no nodes', async () => {
      const { discovery } = await setup();
      expect(await discovery.listNodes(`no-such-cluster-${Date.now()}`)).toBeUndefined();
    });

    it("lists a cluster's nodes with their roles, stable ids, and counts them", async () => {
      const { discovery, cluster, addNode } = await setup();
      const jm = await addNode('jobmanager');
      const tm = await addNode('taskmanager');
      const nodes = (await discovery.listNodes(cluster)) ?? [];
      expect(nodes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: jm, role: 'jobmanager', reachable: true, host: expect.any(String) }),
          expect.objectContaining({ id: tm, role: 'taskmanager', reachable: true, host: expect.any(String) }),
        ]),
      );
      expect((await discovery.listNodes(cluster))?.map((n) => n.id)).toEqual(nodes.map((n) => n.id));
      const clusters = await discovery.listClusters();
      expect(clusters).toContainEqual({ id: cluster, nodes: nodes.length, teams: expect.any(Array) });
    });

    it('stops listing a node that went away', async () => {
      const { discovery, cluster, addNode, removeNode } = await setup();
      const keep = await addNode('taskmanager');
      const gone = await addNode('taskmanager');
      await removeNode(gone);
      const ids = ((await discovery.listNodes(cluster)) ?? []).map((n) => n.id);
      expect(ids).toContain(keep);
      expect(ids).not.toContain(gone);
    });
  });
}
