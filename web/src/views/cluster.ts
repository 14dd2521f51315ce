/**
 * A cluster: its Flink JVMs (role, reachability, run in progress, a link to each one's profiler panel), the
 * fan-out that profiles its TaskManagers at once, and the fan-outs' runs, grouped.
 */
import { api, type FlinkNodeInfo, type ProfilingInfo, type Target } from '../api.ts';
import { messagesOf, nextRefreshHint, runFields, showMessages, whileBusy } from '../components.ts';
import { h, setChildren, setText } from '../dom.ts';
import { formatSeconds, formatTime, roleName } from '../format.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
import { html, nothing, RUN_COLUMNS, type RunColumn, render, repeat, runsTable } from '../templates.ts';
import type { View } from './view.ts';

/** How many of the cluster's newest runs the grouped view looks at (the API's page limit). */
const RECENT_RUNS = 100;

interface Group {
  id: string;
  runs: ProfilingInfo[];
}

/** The fan-outs among `runs` (newest first), each with its runs in node order. */
function groupsOf(runs: ProfilingInfo[]): Group[] {
  const groups = new Map<string, ProfilingInfo[]>();
  for (const run of runs) {
    if (!run.groupId) continue;
    groups.set(run.groupId, [...(groups.get(run.groupId) ?? []), run]);
  }
  return [...groups].map(([id, members]) => ({
    id,
    runs: members.sort((a, b) => a.node.localeCompare(b.node)),
  }));
}

/** A node's profiler: Flink's JobManager address when the cluster has one JobManager, the node's otherwise. */
function nodeTarget(cluster: string, node: FlinkNodeInfo, jobManagers: number): Target {
  if (node.role === 'taskmanager') return { cluster, role: 'taskmanager', node: node.id };
  return jobManagers === 1 ? { cluster, role: 'jobmanager' } : { cluster, role: 'jobmanager', node: node.id };
}

/** A fan-out's runs: each on a TaskManager (linking to its profiler page), and how it went. */
const FAN_OUT_COLUMNS: readonly RunColumn[] = [
  { ...RUN_COLUMNS.node, title: 'TaskManager' },
  RUN_COLUMNS.status,
  RUN_COLUMNS.finishedTime,
  RUN_COLUMNS.message,
  RUN_COLUMNS.links,
];

export async function clusterView(root: HTMLElement, cluster: string): Promise<View> {
  const config = await api.config();
  document.title = `${cluster} · Flink Fleet Profiler`;

  // Which TaskManagers the fan-out profiles: 'all' until the user picks (then a TaskManager that appears later
  // is included), or the ones picked (then one that appears later is left out until ticked).
  let picked: 'all' | Set<string> = 'all';
  const isPicked = (id: string) => picked === 'all' || picked.has(id);
  let nodes: FlinkNodeInfo[] = [];
  let runs: ProfilingInfo[] = [];
  let creating = false;
  let generation = 0;

  const loadError = h('p', { class: 'action-error', role: 'alert', hidden: true });
  const nodesBox = h('div');

  const fields = runFields('fanout', config);
  const button = h(
    'button',
    { type: 'submit', id: 'fan-out', class: 'primary', 'aria-describedby': 'fan-out-reason' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    h('span', { class: 'label' }, 'Profile all TaskManagers'),
  );
  const reason = h('p', { id: 'fan-out-reason', class: 'reason', 'aria-live': 'polite' });
  const actionError = h('p', { id: 'fan-out-error', class: 'action-error', role: 'alert', hidden: true });
  const skipped = h('div', { id: 'fan-out-skipped', class: 'skipped', role: 'status', hidden: true });
  const started = h('p', { id: 'fan-out-started', class: 'reason', hidden: true });
  const form = h(
    'form',
    { class: 'run-form', novalidate: true, 'aria-label': 'Profile TaskManagers at once' },
    ...fields.elements,
    h('div', { class: 'actions' }, button, reason, actionError, started, skipped),
  );
  const groupsBox = h('div');

  setChildren(
    root,
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: href.fleet() }, 'Fleet'),
      ' / ',
      h('span', { 'aria-current': 'page' }, cluster),
    ),
    h('h1', { tabindex: -1 }, `Cluster ${cluster}`),
    loadError,
    h(
      'section',
      { 'aria-labelledby': 'nodes-heading' },
      h('h2', { id: 'nodes-heading' }, 'JobManagers and TaskManagers'),
      nodesBox,
    ),
    h(
      'section',
      { 'aria-labelledby': 'fan-out-heading' },
      h('h2', { id: 'fan-out-heading' }, 'Profile all TaskManagers at once'),
      h(
        'p',
        { class: 'hint' },
        'One run per TaskManager ticked above, all started together; their runs appear grouped below, each with its own status and flame graph.',
      ),
      form,
    ),
    h('section', { 'aria-labelledby': 'groups-heading' }, h('h2', { id: 'groups-heading' }, 'Fan-out runs'), groupsBox),
  );

  const taskManagers = () => nodes.filter((n) => n.role === 'taskmanager');
  const jobManagers = () => nodes.filter((n) => n.role === 'jobmanager').length;
  const selected = () => taskManagers().filter((n) => isPicked(n.id));

  const updateForm = () => {
    const all = taskManagers();
    const chosen = selected();
    const label = button.querySelector('.label');
    if (label) {
      setText(
        label,
        chosen.length === all.length
          ? 'Profile all TaskManagers'
          : `Profile ${chosen.length} TaskManager${chosen.length === 1 ? '' : 's'}`,
      );
    }
    const why =
      all.length === 0
        ? 'This cluster has no TaskManager to profile.'
        : chosen.length === 0
          ? 'Tick at least one TaskManager above.'
          : '';
    button.disabled = creating || why !== '';
    setText(reason, why);
    reason.hidden = why === '';
  };

  const pick = (node: FlinkNodeInfo, checked: boolean) => {
    if (picked === 'all') picked = new Set(taskManagers().map((n) => n.id));
    if (checked) picked.add(node.id);
    else picked.delete(node.id);
    renderNodes();
  };

  const nodeRow = (node: FlinkNodeInfo) => {
    const target = nodeTarget(cluster, node, jobManagers());
    return html`<tr data-node=${node.id} data-role=${node.role}>
      <td class="check">
        ${
          node.role === 'taskmanager'
            ? html`<input type="checkbox" data-node=${node.id} aria-label=${`Include TaskManager ${node.id} in the fan-out`}
                .checked=${isPicked(node.id)}
                @change=${(event: Event) => pick(node, (event.target as HTMLInputElement).checked)}>`
            : nothing
        }
      </td>
      <td class="mono"><a href=${href.profiler(target)}>${node.id}</a></td>
      <td>${roleName(node.role)}</td>
      <td>${node.host}</td>
      <td class="mono">${node.pid ?? '—'}</td>
      <td><span class=${node.reachable ? 'ok' : 'bad'}>${node.reachable ? 'yes' : 'no'}</span></td>
      <td>
        ${
          node.runningRunId
            ? html`<a href=${href.run(node.runningRunId)} class="status status-running">RUNNING</a>`
            : html`<span class="none">—</span>`
        }
      </td>
      <td><a href=${href.profiler(target)}>Open profiler</a></td>
    </tr>`;
  };

  const renderNodes = () => {
    const all = taskManagers();
    const chosen = selected();
    render(
      html`<div class="table-wrap">
          <table class="nodes" id="nodes">
            <thead>
              <tr>
                <th scope="col" class="check">
                  <input type="checkbox" id="select-all-taskmanagers"
                    .checked=${chosen.length === all.length && all.length > 0}
                    .indeterminate=${chosen.length > 0 && chosen.length < all.length}
                    @change=${(event: Event) => {
                      picked = (event.target as HTMLInputElement).checked ? 'all' : new Set();
                      renderNodes();
                    }}>
                  <label for="select-all-taskmanagers" class="visually-hidden">Include every TaskManager in the fan-out</label>
                </th>
                ${['Node', 'Role', 'Host', 'PID', 'Reachable', 'Profiling now', 'Profiler'].map(
                  (title) => html`<th scope="col">${title}</th>`,
                )}
              </tr>
            </thead>
            <tbody>${repeat(nodes, (node) => `${node.role}/${node.id}`, nodeRow)}</tbody>
          </table>
        </div>
        <p class="empty" ?hidden=${nodes.length > 0}>No Flink JobManager or TaskManager found in this cluster.</p>`,
      nodesBox,
    );
    updateForm();
  };

  const groupView = (group: Group) => {
    const first = group.runs[0];
    const counts = ['RUNNING', 'FINISHED', 'FAILED']
      .map((status) => [status, group.runs.filter((r) => r.status === status).length] as const)
      .filter(([, n]) => n > 0)
      .map(([status, n]) => `${n} ${status}`)
      .join(', ');
    const headingId = `group-${group.id}`;
    return html`<section class="group" data-group-id=${group.id} aria-labelledby=${headingId}>
      <h3 id=${headingId}>${
        first
          ? `${first.mode} · ${formatSeconds(first.duration)} · started ${formatTime(first.triggerTime)} · ${group.runs.length} ${roleName(first.role)}${group.runs.length === 1 ? '' : 's'}: ${counts}`
          : ''
      }</h3>
      <p class="group-link">
        <a href=${href.group(group.id)}>Compare the group's TaskManagers side by side, with their merged flame graph</a>
      </p>
      ${runsTable(group.runs, FAN_OUT_COLUMNS)}
    </section>`;
  };

  const renderGroups = () => {
    const groups = groupsOf(runs);
    render(
      html`<div class="groups" id="groups">${repeat(groups, (group) => group.id, groupView)}</div>
        <p class="empty" ?hidden=${groups.length > 0}>No fan-out yet.</p>`,
      groupsBox,
    );
  };

  const refresh = async (): Promise<number | undefined> => {
    const asked = generation;
    try {
      const [nodeList, runList] = await Promise.all([
        api.nodes(cluster),
        api.runs({ cluster, limit: String(RECENT_RUNS) }),
      ]);
      if (asked !== generation) return 0;
      nodes = nodeList.nodes;
      runs = runList.runs;
      showMessages(loadError, []);
    } catch (error) {
      showMessages(loadError, messagesOf(error));
    }
    renderNodes();
    renderGroups();
    return nextRefreshHint(runs.filter((r) => r.groupId));
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    fields.clearErrors();
    showMessages(actionError, []);
    skipped.hidden = true;
    started.hidden = true;
    creating = true;
    generation++;
    try {
      const nodeIds = selected().map((n) => n.id);
      const result = await whileBusy(button, () =>
        api.fanOut(cluster, { ...fields.read(), role: 'taskmanager', nodes: nodeIds }),
      );
      runs = [...result.runs, ...runs.filter((r) => r.groupId !== result.groupId)];
      if (result.runs.length > 0) {
        setChildren(
          started,
          `Started ${result.runs.length} run${result.runs.length === 1 ? '' : 's'}: `,
          h('a', { href: href.group(result.groupId), id: 'fan-out-group' }, 'the fan-out side by side'),
        );
        started.hidden = false;
      }
      if (result.skipped.length > 0) {
        setChildren(
          skipped,
          h(
            'p',
            null,
            result.runs.length === 0
              ? 'Nothing was started:'
              : `Started ${result.runs.length}; skipped ${result.skipped.length}:`,
          ),
          h(
            'ul',
            null,
            result.skipped.map((s) => h('li', null, s.reason)),
          ),
        );
        skipped.hidden = false;
      }
    } catch (error) {
      showMessages(actionError, fields.showErrors(messagesOf(error)));
    } finally {
      creating = false;
      generation++;
      renderGroups();
      updateForm();
      poller.refreshNow();
    }
  });

  const poller = startPolling(refresh);
  return { ready: poller.ready, dispose: () => poller.stop() };
}
