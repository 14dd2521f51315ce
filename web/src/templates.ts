/**
 * The UI's lit-html pieces: a run's status (with a live progress bar), its links, error slots, breadcrumbs and
 * the tables of methods. Every value from the API goes in through a binding (text or attribute, escaped by
 * lit-html), never as markup.
 */
import { html, nothing, render, type TemplateResult } from 'lit-html';
import { repeat } from 'lit-html/directives/repeat.js';
import { type DiffFrame, type Frame, type Link, type ProfilingInfo, serverNow } from './api.ts';
import { whileBusy } from './components.ts';
import { formatSeconds, formatTime } from './format.ts';
import { directionOf, formatChange, formatShare, shareOf, shortFrameName } from './profiles.ts';
import { href } from './router.ts';
import { runTarget } from './target.ts';

export { html, nothing, render, repeat };

/** Messages of a failed request in an error slot next to what they are about (hidden when there are none). */
export function errorSlot(messages: readonly string[], id?: string): TemplateResult {
  return html`<p class="action-error" role="alert" id=${id ?? nothing} ?hidden=${messages.length === 0}>
    ${messages.map((m) => html`<span class="message">${m}</span>`)}
  </p>`;
}

/** The breadcrumb trail: links, then the current page. */
export function crumbs(links: ReadonlyArray<readonly [label: string, address: string]>, current: string) {
  return html`<nav class="crumbs" aria-label="Breadcrumb">
    ${links.map(([label, address]) => html`<a href=${address}>${label}</a> / `)}<span aria-current="page">${current}</span>
  </nav>`;
}

/**
 * A RUNNING run's progress: elapsed time out of its duration, moved on its own every 250 ms while the element
 * is on the page (a custom element, so re-rendering the row around it keeps the same bar).
 */
class RunProgress extends HTMLElement {
  #run: ProfilingInfo | undefined;
  #timer: number | undefined;

  set run(run: ProfilingInfo) {
    this.#run = run;
    this.#draw();
  }

  connectedCallback(): void {
    this.#timer ??= window.setInterval(() => this.#draw(), 250);
    this.#draw();
  }

  disconnectedCallback(): void {
    window.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #draw(): void {
    const run = this.#run;
    if (!run) return;
    const elapsed = Math.max(0, Math.min(run.duration, (serverNow() - run.triggerTime) / 1000));
    const text =
      elapsed >= run.duration
        ? `${formatSeconds(run.duration)} of ${formatSeconds(run.duration)} — writing the flame graph…`
        : `${formatSeconds(Math.floor(elapsed))} of ${formatSeconds(run.duration)}`;
    render(
      html`<progress
          max=${run.duration}
          .value=${elapsed}
          aria-label=${`Profiling progress of the run started ${new Date(run.triggerTime).toLocaleTimeString()}`}
          aria-valuetext=${text}
        ></progress
        ><span class="progress-label">${text}</span>`,
      this,
    );
  }
}
if (!customElements.get('ffp-run-progress')) customElements.define('ffp-run-progress', RunProgress);

/** A run's status: a badge, and for a RUNNING run a progress bar of the time elapsed out of its duration. */
export function runStatus(run: ProfilingInfo): TemplateResult {
  return html`<div class="status-cell">
    <span class="status status-${run.status.toLowerCase()}">${run.status}</span>
    ${run.status === 'RUNNING' ? html`<ffp-run-progress class="progress" .run=${run}></ffp-run-progress>` : nothing}
  </div>`;
}

/** A run's links: its page, and for a FINISHED run Open / Download of its flame graph (fresh links every refresh). */
export function runLinks(run: ProfilingInfo): TemplateResult {
  const file = run.outputFile ?? 'flame graph';
  const finished = run.status === 'FINISHED' && run.url && run.downloadUrl;
  return html`<span class="links">
    <a href=${href.run(run.id)} data-link="details" aria-label=${`Details of the run ${file}`}>Details</a>
    ${
      finished
        ? html`<a href=${run.url} target="_blank" rel="noopener" data-link="open" aria-label=${`Open ${file}`}>Open</a>
          <a href=${run.downloadUrl} download=${file} data-link="download" aria-label=${`Download ${file}`}>Download</a>
          <span class="file" title=${file}>${file}</span>`
        : nothing
    }
  </span>`;
}

/** A column of a table of runs: its heading, the class of its cells, and a run's cell (`index` counts rows from 0). */
export interface RunColumn {
  title: string;
  className?: string;
  cell(run: ProfilingInfo, index: number): unknown;
}

/** The columns the tables of runs share. */
export const RUN_COLUMNS = {
  triggerTime: { title: 'Trigger Time', className: 'time', cell: (run) => formatTime(run.triggerTime) },
  finishedTime: { title: 'Finished Time', className: 'time', cell: (run) => formatTime(run.finishedTime) },
  duration: { title: 'Duration', cell: (run) => formatSeconds(run.duration) },
  mode: { title: 'Mode', cell: (run) => run.mode },
  /** The node the run profiled, linking to its profiler page. */
  node: {
    title: 'Node',
    className: 'mono',
    cell: (run) => html`<a href=${href.profiler(runTarget(run))}>${run.node}</a>`,
  },
  status: { title: 'Status', cell: (run) => runStatus(run) },
  message: { title: 'Message', className: 'message', cell: (run) => run.message ?? '' },
  links: { title: 'Flame Graph', cell: (run) => runLinks(run) },
} satisfies Record<string, RunColumn>;

/** A table of runs, a row per run keyed by its id, with its status, id and node as data attributes. */
export function runsTable(
  runs: readonly ProfilingInfo[],
  columns: readonly RunColumn[],
  attrs: { id?: string } = {},
): TemplateResult {
  return html`<div class="table-wrap">
    <table class="runs" id=${attrs.id ?? nothing}>
      <thead>
        <tr>
          ${columns.map((column) => html`<th scope="col">${column.title}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${repeat(
          runs,
          (run) => run.id,
          (run, index) => html`<tr data-status=${run.status} data-run-id=${run.id} data-node=${run.node}>
            ${columns.map((column) => html`<td class=${column.className ?? nothing}>${column.cell(run, index)}</td>`)}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** A method's name: its readable end, the whole name on hover and for screen readers. */
export function frameName(name: string): TemplateResult {
  const short = shortFrameName(name);
  return short === name
    ? html`<span class="frame-name">${name}</span>`
    : html`<span class="frame-name" title=${name}>${short}<span class="visually-hidden"> (${name})</span></span>`;
}

/** A change in share, with its arrow and colour: `▲ +12.3 %` grew, `▼ −4.1 %` shrank. */
export function change(delta: number): TemplateResult {
  return html`<span class="change change-${directionOf(delta)}">${formatChange(delta)}</span>`;
}

/** The hottest methods of a profile: name, self % and total % of its samples, keyed by name. */
export function framesTable(frames: readonly Frame[], samples: number, attrs: { id: string }): TemplateResult {
  return html`<div class="table-wrap">
    <table class="frames" id=${attrs.id}>
      <thead>
        <tr><th scope="col">Method</th><th scope="col" class="num">Self</th><th scope="col" class="num">Total</th></tr>
      </thead>
      <tbody>
        ${repeat(
          frames,
          (frame) => frame.name,
          (frame) => html`<tr data-frame=${frame.name}>
            <td class="frame mono">${frameName(frame.name)}</td>
            <td class="num">${formatShare(shareOf(frame.self, samples))}</td>
            <td class="num">${formatShare(shareOf(frame.total, samples))}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** How two profiles differ: each method's share in the base and in this run, and the change. */
export function diffTable(frames: readonly DiffFrame[], id: string): TemplateResult {
  return html`<div class="table-wrap">
    <table class="diff" id=${id}>
      <thead>
        <tr>
          <th scope="col">Method</th>
          <th scope="col" class="num">Base</th>
          <th scope="col" class="num">This run</th>
          <th scope="col" class="num">Change</th>
        </tr>
      </thead>
      <tbody>
        ${repeat(
          frames,
          (frame) => frame.name,
          (frame) => html`<tr data-frame=${frame.name} data-direction=${directionOf(frame.delta)}>
            <td class="frame mono">${frameName(frame.name)}</td>
            <td class="num">${formatShare(frame.base)}</td>
            <td class="num">${formatShare(frame.target)}</td>
            <td class="num">${change(frame.delta)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

/** Opens a short-lived link in a new tab (the flame graph pages are served sandboxed, but get no opener anyway). */
export function openLink(link: Link): void {
  window.open(link.url, '_blank', 'noopener');
}

/** Downloads a short-lived link (the server names the file). */
export function downloadLink(link: Link, file = ''): void {
  const anchor = document.createElement('a');
  anchor.href = link.url;
  anchor.download = file;
  anchor.rel = 'noopener';
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
}

/** Runs a click's `action` with its button showing a spinner and refusing clicks meanwhile. */
export async function busy<T>(event: Event, action: () => Promise<T>): Promise<T> {
  const button = event.currentTarget as HTMLButtonElement;
  try {
    return await whileBusy(button, action);
  } finally {
    button.disabled = false;
  }
}
