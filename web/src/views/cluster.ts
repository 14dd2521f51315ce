/**
 * A cluster: its Flink JVMs (role, reachability, run in progress, a link to each one's profiler panel), the
 * fan-out that profiles its TaskManagers at once, and the fan-outs' runs, grouped.
 */
import { api, type FlinkNodeInfo, type ProfilingInfo, type Target } from '../api.ts';
import {
  dataTable,
  messagesOf,
  nextRefreshHint,
  outcomeCells,
  runFields,
  runVersion,
  showMessages,
  updateLinks,
  whileBusy,
} from '../components.ts';
import { h, setChildren, setText, syncChildren } from '../dom.ts';
import { formatSeconds, formatTime, roleName } from '../format.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
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
  const selectAll = h('input', { type: 'checkbox', id: 'select-all-taskmanagers', checked: true });
  const nodesBody = h('tbody');
  const noNodes = h('p', { class: 'empty', hidden: true }, 'No Flink JobManager or TaskManager found in this cluster.');

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
  const form = h(
    'form',
    { class: 'run-form', novalidate: true, 'aria-label': 'Profile TaskManagers at once' },
    ...fields.elements,
    h('div', { class: 'actions' }, button, reason, actionError, skipped),
  );
  const groupsBox = h('div', { class: 'groups', id: 'groups' });
  const noGroups = h('p', { class: 'empty' }, 'No fan-out yet.');

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
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'nodes', id: 'nodes' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h(
                'th',
                { scope: 'col', class: 'check' },
                selectAll,
                h('label', { for: selectAll.id, class: 'visually-hidden' }, 'Include every TaskManager in the fan-out'),
              ),
              ['Node', 'Role', 'Host', 'PID', 'Reachable', 'Profiling now', 'Profiler'].map((title) =>
                h('th', { scope: 'col' }, title),
              ),
            ),
          ),
          nodesBody,
        ),
      ),
      noNodes,
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
    h(
      'section',
      { 'aria-labelledby': 'groups-heading' },
      h('h2', { id: 'groups-heading' }, 'Fan-out runs'),
      groupsBox,
      noGroups,
    ),
  );

  const taskManagers = () => nodes.filter((n) => n.role === 'taskmanager');
  const jobManagers = () => nodes.filter((n) => n.role === 'jobmanager').length;
  const selected = () => taskManagers().filter((n) => isPicked(n.id));

  const updateForm = () => {
    const all = taskManagers();
    const chosen = selected();
    selectAll.checked = chosen.length === all.length && all.length > 0;
    selectAll.indeterminate = chosen.length > 0 && chosen.length < all.length;
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

  selectAll.addEventListener('change', () => {
    picked = selectAll.checked ? 'all' : new Set();
    renderNodes();
  });

  const renderNodes = () => {
    syncChildren(
      nodesBody,
      nodes.map((node) => ({
        key: `${node.role}/${node.id}`,
        version: [node.reachable, node.runningRunId ?? '', node.host, node.pid ?? '', jobManagers()].join('|'),
        item: node,
      })),
      (node) => {
        const target = nodeTarget(cluster, node, nodes.filter((n) => n.role === 'jobmanager').length);
        const check =
          node.role === 'taskmanager'
            ? h('input', {
                type: 'checkbox',
                'data-node': node.id,
                'aria-label': `Include TaskManager ${node.id} in the fan-out`,
                onchange: (event: Event) => {
                  if (picked === 'all') picked = new Set(taskManagers().map((n) => n.id));
                  if ((event.target as HTMLInputElement).checked) picked.add(node.id);
                  else picked.delete(node.id);
                  updateForm();
                },
              })
            : null;
        return h(
          'tr',
          { 'data-node': node.id, 'data-role': node.role },
          h('td', { class: 'check' }, check),
          h('td', { class: 'mono' }, h('a', { href: href.profiler(target) }, node.id)),
          h('td', null, roleName(node.role)),
          h('td', null, node.host),
          h('td', { class: 'mono' }, node.pid ?? '—'),
          h('td', null, h('span', { class: node.reachable ? 'ok' : 'bad' }, node.reachable ? 'yes' : 'no')),
          h(
            'td',
            null,
            node.runningRunId
              ? h('a', { href: href.profiler(target), class: 'status status-running' }, 'RUNNING')
              : h('span', { class: 'none' }, '—'),
          ),
          h('td', null, h('a', { href: href.profiler(target) }, 'Open profiler')),
        );
      },
      (row, node) => {
        const check = row.querySelector<HTMLInputElement>('input[type=checkbox]');
        if (check) check.checked = isPicked(node.id);
      },
    );
    noNodes.hidden = nodes.length > 0;
    updateForm();
  };

  const renderGroups = () => {
    const groups = groupsOf(runs);
    syncChildren(
      groupsBox,
      groups.map((group) => ({ key: group.id, version: '1', item: group })),
      (group) => {
        const headingId = `group-${group.id}`;
        return h(
          'section',
          { class: 'group', 'data-group-id': group.id, 'aria-labelledby': headingId },
          h('h3', { id: headingId }),
          dataTable(
            { class: 'runs' },
            ['TaskManager', 'Status', 'Finished Time', 'Message', 'Flame Graph'],
            h('tbody'),
          ),
        );
      },
      (element, group) => {
        const first = group.runs[0];
        const heading = element.querySelector('h3');
        if (first && heading) {
          const counts = ['RUNNING', 'FINISHED', 'FAILED']
            .map((status) => [status, group.runs.filter((r) => r.status === status).length] as const)
            .filter(([, n]) => n > 0)
            .map(([status, n]) => `${n} ${status}`)
            .join(', ');
          setText(
            heading,
            `${first.mode} · ${formatSeconds(first.duration)} · started ${formatTime(first.triggerTime)} · ${group.runs.length} ${roleName(first.role)}${group.runs.length === 1 ? '' : 's'}: ${counts}`,
          );
        }
        const body = element.querySelector('tbody');
        if (!body) return;
        syncChildren(
          body,
          group.runs.map((run) => ({ key: run.id, version: runVersion(run), item: run })),
          (run) =>
            h(
              'tr',
              { 'data-status': run.status, 'data-run-id': run.id, 'data-node': run.node },
              h(
                'td',
                { class: 'mono' },
                h('a', { href: href.profiler({ cluster, role: 'taskmanager', node: run.node }) }, run.node),
              ),
              ...outcomeCells(run),
            ),
          (row, run) => updateLinks(row, run),
        );
      },
    );
    noGroups.hidden = groups.length > 0;
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
    creating = true;
    generation++;
    try {
      const nodeIds = selected().map((n) => n.id);
      const result = await whileBusy(button, () =>
        api.fanOut(cluster, { ...fields.read(), role: 'taskmanager', nodes: nodeIds }),
      );
      runs = [...result.runs, ...runs.filter((r) => r.groupId !== result.groupId)];
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
