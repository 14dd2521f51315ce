/**
 * The profiler panel of one JobManager or TaskManager, as in Flink's profiler tab: the form ("Profiling
 * Duration", "Profiling Mode", "Create Profiling Instance") and the history of runs, refreshed every 3 s.
 */
import { api, type FlinkNodeInfo, type ProfilingInfo, type Target } from '../api.ts';
import { messagesOf, nextRefreshHint, runFields, showMessages, whileBusy } from '../components.ts';
import { h, setChildren, setText } from '../dom.ts';
import { formatClock, formatSeconds, roleName } from '../format.ts';
import { startPolling } from '../poller.ts';
import { href } from '../router.ts';
import { html, RUN_COLUMNS, type RunColumn, render, runsTable } from '../templates.ts';
import type { View } from './view.ts';

/** A target's history, newest first and numbered. */
const HISTORY_COLUMNS: readonly RunColumn[] = [
  { title: '#', className: 'index', cell: (_run, index) => index + 1 },
  RUN_COLUMNS.triggerTime,
  RUN_COLUMNS.finishedTime,
  RUN_COLUMNS.duration,
  RUN_COLUMNS.mode,
  RUN_COLUMNS.status,
  RUN_COLUMNS.message,
  RUN_COLUMNS.links,
];

export async function profilerPanel(root: HTMLElement, target: Target): Promise<View> {
  const load = () => Promise.all([api.history(target), api.nodes(target.cluster)]);
  // The first data is asked for together with the config, not after it: one round trip less to the first view.
  let firstLoad: ReturnType<typeof load> | undefined = load();
  firstLoad.catch(() => undefined);
  const config = await api.config();
  const name = target.node === undefined ? 'JobManager' : `${roleName(target.role)} ${target.node}`;
  document.title = `${name} · ${target.cluster} · Flink Fleet Profiler`;

  const fields = runFields('run', config);
  const button = h(
    'button',
    { type: 'submit', id: 'create-run', class: 'primary', 'aria-describedby': 'create-reason' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }),
    'Create Profiling Instance',
  );
  const reason = h('p', { id: 'create-reason', class: 'reason', 'aria-live': 'polite' });
  const actionError = h('p', { id: 'create-error', class: 'action-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'run-form', novalidate: true, 'aria-label': `Profile the ${name}` },
    ...fields.elements,
    h('div', { class: 'actions' }, button, reason, actionError),
  );

  const nodeInfo = h('p', { class: 'meta' });
  const history = h('div');
  const loadError = h('p', { class: 'action-error', role: 'alert', hidden: true });

  setChildren(
    root,
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: href.fleet() }, 'Fleet'),
      ' / ',
      h('a', { href: href.cluster(target.cluster) }, target.cluster),
      ' / ',
      h('span', { 'aria-current': 'page' }, roleName(target.role)),
    ),
    h('h1', { tabindex: -1 }, name, h('span', { class: 'subtitle' }, ` · cluster ${target.cluster}`)),
    nodeInfo,
    loadError,
    h('section', { 'aria-labelledby': 'profiler-heading' }, h('h2', { id: 'profiler-heading' }, 'Profiler'), form),
    h(
      'section',
      { 'aria-labelledby': 'history-heading' },
      h(
        'h2',
        { id: 'history-heading' },
        'Profiling history',
        h('span', { class: 'subtitle' }, ` · newest first, the last ${config.historySize} kept`),
      ),
      history,
    ),
  );

  let runs: ProfilingInfo[] = [];
  let node: FlinkNodeInfo | undefined;
  let nodeKnown = false;
  /** How many JobManagers the cluster has, for the JobManager address without a node. */
  let jobManagers = 0;
  let creating = false;
  // Bumped by every create: a refresh that began before it answers with an older list, and is dropped.
  let generation = 0;

  /** The button is refused while the target has a RUNNING run or is gone, and says why. */
  const updateButton = () => {
    const running = runs.find((r) => r.status === 'RUNNING');
    let why = '';
    if (running) {
      why = `A profiling run started at ${formatClock(running.triggerTime)} (${running.mode}, ${formatSeconds(running.duration)}) is still RUNNING: wait for the last profiling to finish.`;
    } else if (target.node === undefined && jobManagers > 1) {
      why = `Cluster ${target.cluster} has ${jobManagers} JobManagers: open the one to profile from the cluster's page.`;
    } else if (nodeKnown && !node) {
      why = `This ${roleName(target.role)} is not running in cluster ${target.cluster} any more; its history stays below.`;
    } else if (node && !node.reachable) {
      why = `This ${roleName(target.role)} is not reachable now.`;
    }
    button.disabled = creating || why !== '';
    setText(reason, why);
    reason.hidden = why === '';
  };

  const renderRuns = () => {
    render(
      html`${runsTable(runs, HISTORY_COLUMNS, { id: 'runs' })}
        <p class="empty" ?hidden=${runs.length > 0}>No profiling yet. Create a profiling instance above.</p>`,
      history,
    );
    updateButton();
  };

  const renderNode = () => {
    if (!nodeKnown) return;
    if (!node) {
      setText(
        nodeInfo,
        target.node === undefined && jobManagers > 1
          ? `${jobManagers} JobManagers in cluster ${target.cluster}.`
          : `Not found among the running ${roleName(target.role)}s of cluster ${target.cluster}.`,
      );
      return;
    }
    const parts = [
      `host ${node.host}`,
      node.pid === undefined ? '' : `pid ${node.pid}`,
      node.reachable ? 'reachable' : 'not reachable',
    ];
    setText(nodeInfo, parts.filter(Boolean).join(' · '));
  };

  const refresh = async (): Promise<number | undefined> => {
    const asked = generation;
    try {
      const loading = firstLoad ?? load();
      firstLoad = undefined;
      const [history, nodes] = await loading;
      if (asked !== generation) return 0;
      runs = history.profilingList;
      const candidates = nodes.nodes.filter((n) => n.role === target.role);
      jobManagers = target.role === 'jobmanager' ? candidates.length : 0;
      node =
        target.node === undefined
          ? candidates.length === 1
            ? candidates[0]
            : undefined
          : candidates.find((n) => n.id === target.node);
      nodeKnown = true;
      showMessages(loadError, []);
    } catch (error) {
      showMessages(loadError, messagesOf(error));
    }
    renderNode();
    renderRuns();
    return nextRefreshHint(runs);
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    fields.clearErrors();
    showMessages(actionError, []);
    creating = true;
    generation++;
    try {
      const created = await whileBusy(button, () => api.createRun(target, fields.read()));
      runs = [created, ...runs.filter((r) => r.id !== created.id)];
    } catch (error) {
      showMessages(actionError, fields.showErrors(messagesOf(error)));
    } finally {
      creating = false;
      generation++;
      renderRuns();
      poller.refreshNow();
    }
  });

  const poller = startPolling(refresh);
  return { ready: poller.ready, dispose: () => poller.stop() };
}
