/** The fleet: every cluster, how many Flink JVMs it has, and the way to its nodes and its JobManager's profiler. */
import { api } from '../api.ts';
import { dataTable, messagesOf, showMessages } from '../components.ts';
import { h, setChildren, syncChildren } from '../dom.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
import type { View } from './view.ts';

export async function fleetView(root: HTMLElement): Promise<View> {
  document.title = 'Fleet · Flink Fleet Profiler';
  const loadError = h('p', { class: 'action-error', role: 'alert', hidden: true });
  const body = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No cluster found.');
  setChildren(
    root,
    h('h1', { tabindex: -1 }, 'Fleet'),
    h(
      'p',
      { class: 'hint' },
      "Pick a cluster to see its JobManagers and TaskManagers, open one's profiler, or profile all its TaskManagers at once.",
    ),
    loadError,
    dataTable({ class: 'clusters', id: 'clusters' }, ['Cluster', 'Flink JVMs', 'JobManager'], body),
    empty,
  );

  const refresh = async (): Promise<undefined> => {
    try {
      const { clusters } = await api.clusters();
      syncChildren(
        body,
        clusters.map((cluster) => ({ key: cluster.id, version: String(cluster.nodes), item: cluster })),
        (cluster) =>
          h(
            'tr',
            { 'data-cluster': cluster.id },
            h('td', null, h('a', { href: href.cluster(cluster.id) }, cluster.id)),
            h('td', null, String(cluster.nodes)),
            h(
              'td',
              null,
              h('a', { href: href.profiler({ cluster: cluster.id, role: 'jobmanager' }) }, 'JobManager profiler'),
            ),
          ),
      );
      empty.hidden = clusters.length > 0;
      showMessages(loadError, []);
    } catch (error) {
      showMessages(loadError, messagesOf(error));
    }
    return undefined;
  };

  const poller = startPolling(refresh);
  return { ready: poller.ready, dispose: () => poller.stop() };
}
