/**
 * One run (`#/runs/{id}`): what it profiled and how it ended, its exports, its hottest methods (filterable),
 * the Flink operators its samples went to, and "Compare with…" another run of the same mode: the methods that
 * grew or shrank, and the differential flame graph.
 */
import {
  api,
  type DiffFrame,
  type ExportFormat,
  type ProfilingInfo,
  type RunFrames,
  type ThreadSamples,
} from '../api.ts';
import { messagesOf, nextRefreshHint } from '../components.ts';
import { formatSeconds, formatTime, roleName } from '../format.ts';
import { LOADING, type Loaded, load, mapLoaded, whenLoaded } from '../loaded.ts';
import { type Poller, startPolling } from '../poller.ts';
import {
  compareCandidates,
  filterFrames,
  formatShare,
  type OperatorShare,
  operatorBreakdown,
  orderDiff,
  RUNTIME_THREADS,
} from '../profiles.ts';
import { href } from '../router.ts';
import { runTarget } from '../target.ts';
import {
  busy,
  crumbs,
  diffTable,
  downloadLink,
  errorSlot,
  framesTable,
  html,
  nothing,
  openLink,
  render,
  repeat,
  runStatus,
} from '../templates.ts';
import type { View } from './view.ts';

/** How many of the hottest methods the page reads (the filter searches these). */
const FRAME_LIMIT = 200;
/** How many runs each candidate list of "Compare with…" reads (the API's largest page). */
const CANDIDATE_LIMIT = 100;

const EXPORTS: ReadonlyArray<{ format: Exclude<ExportFormat, 'html'>; label: string; what: string }> = [
  { format: 'collapsed', label: 'Collapsed', what: 'collapsed stacks (text, one stack per line)' },
  { format: 'pprof', label: 'pprof', what: 'a pprof profile (go tool pprof, Grafana Pyroscope…)' },
  { format: 'jfr', label: 'JFR', what: 'a Java Flight Recorder file (JDK Mission Control)' },
];

function describeTarget(run: ProfilingInfo): string {
  return `${roleName(run.role)} ${run.node}`;
}

/** Samples by Flink operator chain, as a table (or saying the profile names no thread). */
function operatorsTable(threads: ThreadSamples[]) {
  const rows: OperatorShare[] = operatorBreakdown(threads);
  if (rows.length === 0) return html`<p class="empty">The profile names no thread.</p>`;
  return html`<div class="table-wrap">
    <table class="operators" id="operators">
      <thead>
        <tr>
          <th scope="col">Operator</th><th scope="col" class="num">Threads</th>
          <th scope="col" class="num">Samples</th><th scope="col" class="num">Share</th>
        </tr>
      </thead>
      <tbody>
        ${repeat(
          rows,
          (row) => row.operator,
          (row) => html`<tr data-operator=${row.operator}>
            <td class=${row.operator === RUNTIME_THREADS ? 'none' : 'mono'}>${row.operator}</td>
            <td class="num">${row.threads}</td>
            <td class="num">${row.samples}</td>
            <td class="num">${formatShare(row.share)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export async function runView(root: HTMLElement, id: string): Promise<View> {
  let run: ProfilingInfo = await api.run(id);
  let frames: Loaded<RunFrames> = { state: 'idle' };
  let threads: Loaded<ThreadSamples[]> = { state: 'idle' };
  let candidates: Loaded<{ earlier: ProfilingInfo[]; others: ProfilingInfo[] }> = { state: 'idle' };
  let diff: Loaded<DiffFrame[]> = { state: 'idle' };
  let baseId = '';
  let filter = '';
  let loadErrors: string[] = [];
  let exportErrors: string[] = [];
  let diffLinkErrors: string[] = [];
  let detailsAsked = false;
  let disposed = false;

  const draw = () => {
    if (!disposed) render(page(), root);
  };

  /** The methods, threads and comparable runs of a FINISHED run, each as soon as it answers. */
  const loadDetails = async () => {
    detailsAsked = true;
    frames = LOADING;
    threads = LOADING;
    candidates = LOADING;
    draw();
    await Promise.all([
      load(() => api.runFrames(run.id, FRAME_LIMIT)).then((answer) => {
        frames = answer;
        draw();
      }),
      load(() => api.runThreads(run.id)).then((answer) => {
        threads = mapLoaded(answer, (value) => value.threads);
        draw();
      }),
      load(async () => {
        const [own, all] = await Promise.all([
          api.runs({
            cluster: run.cluster,
            node: run.node,
            role: run.role,
            status: 'FINISHED',
            limit: String(CANDIDATE_LIMIT),
          }),
          api.runs({ status: 'FINISHED', limit: String(CANDIDATE_LIMIT) }),
        ]);
        return compareCandidates(run, [...own.runs, ...all.runs]);
      }).then((answer) => {
        candidates = answer;
        draw();
      }),
    ]);
  };

  const compareWith = async (base: string) => {
    baseId = base;
    diffLinkErrors = [];
    if (base === '') {
      diff = { state: 'idle' };
      draw();
      return;
    }
    diff = LOADING;
    draw();
    const answer = await load(() => api.diff(run.id, base));
    if (baseId !== base) return; // another base was chosen meanwhile
    diff = mapLoaded(answer, (value) => value.frames);
    draw();
  };

  const exportAction = (event: Event, action: () => Promise<void>) => {
    exportErrors = [];
    draw();
    void busy(event, action).catch((error: unknown) => {
      exportErrors = messagesOf(error);
      draw();
    });
  };

  const header = () => html`
    ${crumbs(
      [
        ['Fleet', href.fleet()],
        [run.cluster, href.cluster(run.cluster)],
        [describeTarget(run), href.profiler(runTarget(run))],
      ],
      'Run',
    )}
    <h1 tabindex="-1">${run.mode} run of ${describeTarget(run)}<span class="subtitle"> · cluster ${run.cluster}</span></h1>
    ${errorSlot(loadErrors)}
    <dl class="facts" id="run-facts">
      <dt>Target</dt>
      <dd><a href=${href.profiler(runTarget(run))}>${describeTarget(run)}</a> of cluster ${run.cluster}</dd>
      <dt>Mode</dt>
      <dd>${run.mode}, ${formatSeconds(run.duration)}</dd>
      <dt>Status</dt>
      <dd id="run-status" data-status=${run.status}>${runStatus(run)}</dd>
      <dt>Trigger time</dt>
      <dd class="time">${formatTime(run.triggerTime)}</dd>
      <dt>Finished time</dt>
      <dd class="time">${formatTime(run.finishedTime)}</dd>
      <dt>Message</dt>
      <dd id="run-message" class="message">${run.message ?? '—'}</dd>
      ${run.outputFile ? html`<dt>Output file</dt><dd class="mono">${run.outputFile}</dd>` : nothing}
      ${
        run.groupId
          ? html`<dt>Fan-out</dt><dd><a href=${href.group(run.groupId)} id="run-group">The group's runs and merged flame graph</a></dd>`
          : nothing
      }
      ${run.ruleId ? html`<dt>Rule</dt><dd><a href=${href.rule(run.ruleId)}>The rule that started it</a></dd>` : nothing}
    </dl>
  `;

  const exports = () => {
    if (run.status !== 'FINISHED') return nothing;
    const formats = new Set<ExportFormat>(run.formats ?? ['html']);
    return html`<section aria-labelledby="exports-heading">
      <h2 id="exports-heading">Flame graph and exports</h2>
      <div class="button-row" id="exports">
        ${
          formats.has('html')
            ? html`<button type="button" class="primary" id="open-flame-graph"
                  @click=${(e: Event) => exportAction(e, async () => openLink(await api.runProfileLink(run.id, 'html')))}>
                  <span class="spinner" aria-hidden="true"></span>Open flame graph
                </button>
                <button type="button" class="secondary" id="download-html"
                  @click=${(e: Event) =>
                    exportAction(e, async () => {
                      // A fresh read signs a fresh download link, named as the run's output file.
                      const fresh = await api.run(run.id);
                      if (!fresh.downloadUrl) throw new Error('the run has no flame graph to download');
                      downloadLink({ url: fresh.downloadUrl, expiresAt: 0 }, fresh.outputFile ?? '');
                    })}>
                  <span class="spinner" aria-hidden="true"></span>Download HTML
                </button>`
            : nothing
        }
        ${EXPORTS.filter((e) => formats.has(e.format)).map(
          ({
            format,
            label,
            what,
          }) => html`<button type="button" class="secondary" data-format=${format} title=${`Download ${what}`}
            @click=${(e: Event) => exportAction(e, async () => downloadLink(await api.runProfileLink(run.id, format)))}>
            <span class="spinner" aria-hidden="true"></span>${label}
          </button>`,
        )}
      </div>
      ${errorSlot(exportErrors, 'export-error')}
    </section>`;
  };

  const hottest = () => {
    if (frames.state === 'idle') return nothing;
    const body = whenLoaded(
      frames,
      ({ samples, frames: hottest }) => {
        const shown = filterFrames(hottest, filter);
        return html`<p class="meta" id="frames-count">
            ${
              filter.trim() === ''
                ? `The ${hottest.length} hottest of ${samples} samples, by samples on top of the stack (self).`
                : `${shown.length} of the ${hottest.length} hottest methods contain "${filter.trim()}".`
            }
          </p>
          ${framesTable(shown, samples, { id: 'frames' })}
          ${shown.length === 0 ? html`<p class="empty">No method matches.</p>` : nothing}`;
      },
      { errorId: 'frames-error' },
    );
    return html`<section aria-labelledby="frames-heading">
      <h2 id="frames-heading">Hottest methods</h2>
      <div class="field">
        <label for="frames-filter">Filter methods</label>
        <input type="text" id="frames-filter" autocomplete="off" spellcheck="false" .value=${filter}
          aria-describedby="frames-filter-hint"
          @input=${(e: Event) => {
            filter = (e.target as HTMLInputElement).value;
            draw();
          }}>
        <p class="hint" id="frames-filter-hint">part of a method or class name; letter case is ignored</p>
      </div>
      ${body}
    </section>`;
  };

  const operators = () => {
    if (threads.state === 'idle') return nothing;
    const body = whenLoaded(threads, operatorsTable, { errorId: 'operators-error' });
    return html`<section aria-labelledby="operators-heading">
      <h2 id="operators-heading">Operators</h2>
      <p class="hint">Samples by the Flink operator chain of the task thread they were taken in.</p>
      ${body}
    </section>`;
  };

  const option = (candidate: ProfilingInfo, withTarget: boolean) =>
    html`<option value=${candidate.id} ?selected=${candidate.id === baseId}>
      ${formatTime(candidate.triggerTime)} · ${formatSeconds(candidate.duration)}${withTarget ? ` · ${describeTarget(candidate)} of ${candidate.cluster}` : ''}
    </option>`;

  const compare = () => {
    if (candidates.state === 'idle') return nothing;
    const picker = whenLoaded(
      candidates,
      ({ earlier, others }) =>
        earlier.length + others.length === 0
          ? html`<p class="empty" id="compare-none">No other FINISHED ${run.mode} run to compare with yet.</p>`
          : html`<div class="field wide">
              <label for="compare-base">Compare with…</label>
              <select id="compare-base" aria-describedby="compare-hint"
                @change=${(e: Event) => void compareWith((e.target as HTMLSelectElement).value)}>
                <option value="" ?selected=${baseId === ''}>Pick the run to compare with</option>
                ${
                  earlier.length > 0
                    ? html`<optgroup label=${`Earlier runs of this ${roleName(run.role)}`}>
                        ${earlier.map((c) => option(c, false))}
                      </optgroup>`
                    : nothing
                }
                ${
                  others.length > 0
                    ? html`<optgroup label="Other runs">${others.map((c) => option(c, true))}</optgroup>`
                    : nothing
                }
              </select>
              <p class="hint" id="compare-hint">
                The methods whose share of the samples grew (▲) or shrank (▼) in this run since the base.
              </p>
            </div>`,
      { errorId: 'compare-candidates-error' },
    );
    return html`<section aria-labelledby="compare-heading">
      <h2 id="compare-heading">Compare with another run</h2>
      ${picker} ${diffResult()}
    </section>`;
  };

  const diffResult = () =>
    whenLoaded(diff, diffAnswer, {
      errorId: 'diff-error',
      loading: html`<p class="loading" id="diff-loading">Comparing…</p>`,
    });

  /** The methods that changed most since the base, and the button to its differential flame graph. */
  const diffAnswer = (frames: DiffFrame[]) => {
    const rows = orderDiff(frames);
    const base = baseId;
    return html`<div class="button-row">
        <button type="button" class="primary" id="open-diff"
          @click=${(e: Event) => {
            diffLinkErrors = [];
            void busy(e, async () => openLink(await api.diffLink(run.id, base))).catch((error: unknown) => {
              diffLinkErrors = messagesOf(error);
              draw();
            });
          }}>
          <span class="spinner" aria-hidden="true"></span>Open differential flame graph
        </button>
      </div>
      ${errorSlot(diffLinkErrors, 'diff-link-error')}
      ${
        rows.length === 0
          ? html`<p class="empty" id="diff-same">No method's share changed by 0.1 % or more.</p>`
          : diffTable(rows, 'diff')
      }`;
  };

  const page = () => html`${header()} ${exports()} ${hottest()} ${operators()} ${compare()}`;

  document.title = `Run ${run.mode} ${run.node} · Flink Fleet Profiler`;
  /** Follows a RUNNING run to its end, then shows what it found. */
  const follow = async (): Promise<number | undefined> => {
    try {
      run = await api.run(id);
      loadErrors = [];
    } catch (error) {
      loadErrors = messagesOf(error);
    }
    draw();
    if (run.status === 'RUNNING') return nextRefreshHint([run]);
    poller?.stop();
    if (run.status === 'FINISHED' && !detailsAsked) await loadDetails();
    return undefined;
  };
  draw();
  let poller: Poller | undefined;
  let ready: Promise<void>;
  if (run.status === 'RUNNING') {
    poller = startPolling(follow);
    ready = poller.ready;
  } else {
    ready = run.status === 'FINISHED' ? loadDetails() : Promise.resolve();
  }
  return {
    ready,
    dispose: () => {
      disposed = true;
      poller?.stop();
    },
  };
}
