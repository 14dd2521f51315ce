/** The fleet: every cluster, how many Flink JVMs it has, and the way to its nodes and its JobManager's profiler. */
import { api } from '../api.ts';
import { messagesOf } from '../components.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
import { errorSlot, html, render, repeat } from '../templates.ts';
import type { View } from './view.ts';

export async function fleetView(root: HTMLElement): Promise<View> {
  document.title = 'Fleet · Flink Fleet Profiler';
  let clusters: Awaited<ReturnType<typeof api.clusters>>['clusters'] = [];
  let loadErrors: string[] = [];
  const draw = () =>
    render(
      html`<h1 tabindex="-1">Fleet</h1>
        <p class="hint">
          Pick a cluster to see its JobManagers and TaskManagers, open one's profiler, or profile all its TaskManagers
          at once.
        </p>
        ${errorSlot(loadErrors)}
        <div class="table-wrap">
          <table class="clusters" id="clusters">
            <thead>
              <tr><th scope="col">Cluster</th><th scope="col">Flink JVMs</th><th scope="col">JobManager</th></tr>
            </thead>
            <tbody>
              ${repeat(
                clusters,
                (cluster) => cluster.id,
                (cluster) => html`<tr data-cluster=${cluster.id}>
                  <td><a href=${href.cluster(cluster.id)}>${cluster.id}</a></td>
                  <td>${cluster.nodes}</td>
                  <td>
                    <a href=${href.profiler({ cluster: cluster.id, role: 'jobmanager' })}>JobManager profiler</a>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <p class="empty" ?hidden=${clusters.length > 0}>No cluster found.</p>`,
      root,
    );

  const refresh = async (): Promise<undefined> => {
    try {
      clusters = (await api.clusters()).clusters;
      loadErrors = [];
    } catch (error) {
      loadErrors = messagesOf(error);
    }
    draw();
    return undefined;
  };

  const poller = startPolling(refresh);
  return { ready: poller.ready, dispose: () => poller.stop() };
}
