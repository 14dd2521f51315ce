/**
 * A fan-out group (`#/groups/{groupId}`): the merged profile of its FINISHED runs (hottest methods and the merged
 * flame graph) and its TaskManagers side by side, each with its five hottest methods, refreshed while any runs.
 */
import { api, type GroupFrames, type ProfilingInfo, type RunFrames } from '../api.ts';
import { messagesOf, nextRefreshHint } from '../components.ts';
import { formatSeconds, formatTime, roleName } from '../format.ts';
import { LOADING, type Loaded, load, whenLoaded } from '../loaded.ts';
import { startPolling } from '../poller.ts';
import { formatShare, shareOf } from '../profiles.ts';
import { href } from '../router.ts';
import {
  busy,
  crumbs,
  downloadLink,
  errorSlot,
  frameName,
  framesTable,
  html,
  nothing,
  openLink,
  render,
  repeat,
  runStatus,
} from '../templates.ts';
import type { View } from './view.ts';

/** How many merged methods the page shows. */
const MERGED_LIMIT = 50;
/** How many methods each run shows beside the others. */
const TOP_PER_RUN = 5;
/** How many runs' methods are asked for at once (a group can have a few dozen). */
const PARALLEL_READS = 6;
/** A group has at most one run per node of a cluster: the API's largest page holds it. */
const GROUP_RUNS = 100;

/** Runs `tasks` at most `parallel` at a time. */
async function inBatches(tasks: Array<() => Promise<void>>, parallel: number): Promise<void> {
  const queue = [...tasks];
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      for (let task = queue.shift(); task; task = queue.shift()) await task();
    }),
  );
}

export async function groupView(root: HTMLElement, groupId: string): Promise<View> {
  let runs: ProfilingInfo[] = (await api.runs({ groupId, limit: String(GROUP_RUNS) })).runs;
  let merged: Loaded<GroupFrames> | undefined;
  /** Which FINISHED runs the merged profile was read for: read again when more have finished. */
  let mergedFor = '';
  const topFrames = new Map<string, Loaded<RunFrames>>();
  let loadErrors: string[] = [];
  let linkErrors: string[] = [];
  let disposed = false;
  let first = true;

  const draw = () => {
    if (!disposed) render(page(), root);
  };

  const sorted = () => [...runs].sort((a, b) => a.node.localeCompare(b.node));
  const finished = () => sorted().filter((r) => r.status === 'FINISHED');

  const loadMerged = async () => {
    const key = finished()
      .map((r) => r.id)
      .join(',');
    if (key === mergedFor || key === '') return;
    mergedFor = key;
    merged ??= LOADING;
    merged = await load(() => api.groupFrames(groupId, MERGED_LIMIT));
    draw();
  };

  const loadTopFrames = async () => {
    const missing = finished().filter((r) => !topFrames.has(r.id));
    for (const run of missing) topFrames.set(run.id, LOADING);
    await inBatches(
      missing.map((run) => async () => {
        topFrames.set(run.id, await load(() => api.runFrames(run.id, TOP_PER_RUN)));
        draw();
      }),
      PARALLEL_READS,
    );
  };

  const mergedSection = () => {
    const count = finished().length;
    const body =
      count === 0
        ? html`<p class="empty">No run of the group has FINISHED yet.</p>`
        : whenLoaded(merged, mergedProfile, { errorId: 'group-frames-error' });
    return html`<section aria-labelledby="merged-heading">
      <h2 id="merged-heading">Merged profile</h2>
      ${body}
    </section>`;
  };

  const mergedProfile = ({ runs: mergedRuns, samples, frames }: GroupFrames) =>
    html`<p class="meta" id="group-merged">
          The hottest methods of ${samples} samples, merged ${mergedRuns} run${mergedRuns === 1 ? '' : 's'}.
        </p>
        <div class="button-row">
          <button type="button" class="primary" id="open-merged"
            @click=${(e: Event) => linkAction(e, async () => openLink(await api.groupProfileLink(groupId, 'html')))}>
            <span class="spinner" aria-hidden="true"></span>Open merged flame graph
          </button>
          <button type="button" class="secondary" id="download-merged-collapsed"
            @click=${(e: Event) =>
              linkAction(e, async () => downloadLink(await api.groupProfileLink(groupId, 'collapsed')))}>
            <span class="spinner" aria-hidden="true"></span>Collapsed
          </button>
        </div>
        ${errorSlot(linkErrors, 'group-link-error')}
        ${framesTable(frames, samples, { id: 'group-frames' })}`;

  const linkAction = (event: Event, action: () => Promise<void>) => {
    linkErrors = [];
    draw();
    void busy(event, action).catch((error: unknown) => {
      linkErrors = messagesOf(error);
      draw();
    });
  };

  const topCells = (run: ProfilingInfo) => {
    const empty = Array.from({ length: TOP_PER_RUN }, () => html`<td class="none">—</td>`);
    if (run.status !== 'FINISHED') return empty;
    const loaded = topFrames.get(run.id);
    // Table cells, not the sections' paragraphs of whenLoaded.
    if (loaded?.state === 'failed') {
      return [html`<td colspan=${TOP_PER_RUN} class="message bad">${loaded.errors.join(' ')}</td>`];
    }
    if (loaded?.state !== 'done') return [html`<td colspan=${TOP_PER_RUN} class="none">Loading…</td>`];
    const { frames, samples } = loaded.value;
    return Array.from({ length: TOP_PER_RUN }, (_, i) => {
      const frame = frames[i];
      return frame
        ? html`<td class="top-frame mono">${frameName(frame.name)}
            <span class="share">${formatShare(shareOf(frame.self, samples))}</span></td>`
        : html`<td class="none">—</td>`;
    });
  };

  const runsSection = () => {
    const list = sorted();
    const firstRun = list[0];
    const role = firstRun ? roleName(firstRun.role) : 'TaskManager';
    return html`<section aria-labelledby="group-runs-heading">
      <h2 id="group-runs-heading">${role}s side by side</h2>
      <p class="hint">Each run's five hottest methods, by its own samples on top of the stack.</p>
      <div class="table-wrap">
        <table class="runs side-by-side" id="group-runs">
          <thead>
            <tr>
              <th scope="col">${role}</th>
              <th scope="col">Status</th>
              ${Array.from({ length: TOP_PER_RUN }, (_, i) => html`<th scope="col">#${i + 1}</th>`)}
            </tr>
          </thead>
          <tbody>
            ${repeat(
              list,
              (run) => run.id,
              (run) => html`<tr data-run-id=${run.id} data-node=${run.node} data-status=${run.status}>
                <th scope="row" class="mono"><a href=${href.run(run.id)}>${run.node}</a></th>
                <td>${runStatus(run)}${
                  run.status === 'FAILED' ? html`<span class="message">${run.message ?? ''}</span>` : nothing
                }</td>
                ${topCells(run)}
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
    </section>`;
  };

  const header = () => {
    const firstRun = runs.reduce<ProfilingInfo | undefined>(
      (earliest, r) => (!earliest || r.triggerTime < earliest.triggerTime ? r : earliest),
      undefined,
    );
    if (!firstRun) {
      return html`${crumbs([['Fleet', href.fleet()]], 'Fan-out')}
        <h1 tabindex="-1">Fan-out</h1>
        ${errorSlot(loadErrors)}
        <p class="empty" id="group-empty">No run of this group: its runs have been trimmed, or it is not yours to see.</p>`;
    }
    const counts = ['RUNNING', 'FINISHED', 'FAILED']
      .map((status) => [status, runs.filter((r) => r.status === status).length] as const)
      .filter(([, n]) => n > 0)
      .map(([status, n]) => `${n} ${status}`)
      .join(', ');
    return html`${crumbs(
      [
        ['Fleet', href.fleet()],
        [firstRun.cluster, href.cluster(firstRun.cluster)],
      ],
      'Fan-out',
    )}
      <h1 tabindex="-1">
        Fan-out ${firstRun.mode} · ${formatSeconds(firstRun.duration)}<span class="subtitle">
          · cluster ${firstRun.cluster} · started ${formatTime(firstRun.triggerTime)}</span>
      </h1>
      ${errorSlot(loadErrors)}
      <p class="meta" id="group-summary">
        ${runs.length} ${roleName(firstRun.role)}${runs.length === 1 ? '' : 's'}: ${counts}.
        ${firstRun.ruleId ? html`Started by <a href=${href.rule(firstRun.ruleId)}>a rule</a>.` : nothing}
      </p>`;
  };

  const page = () => html`${header()} ${runs.length > 0 ? html`${mergedSection()} ${runsSection()}` : nothing}`;

  document.title = 'Fan-out · Flink Fleet Profiler';
  const refresh = async (): Promise<number | undefined> => {
    if (!first) {
      try {
        runs = (await api.runs({ groupId, limit: String(GROUP_RUNS) })).runs;
        loadErrors = [];
      } catch (error) {
        loadErrors = messagesOf(error);
      }
    }
    first = false;
    draw();
    await Promise.all([loadMerged(), loadTopFrames()]);
    if (!runs.some((r) => r.status === 'RUNNING')) {
      poller.stop();
      return undefined;
    }
    return nextRefreshHint(runs);
  };
  draw();
  const poller = startPolling(refresh);
  return {
    ready: poller.ready,
    dispose: () => {
      disposed = true;
      poller.stop();
    },
  };
}
