/**
 * A rule's firings compared: for each firing (the runs of one fan-out group) with FINISHED runs, its hottest
 * methods and how their shares changed since the previous firing, so a nightly rule says what changed overnight.
 */
import { api, type ProfilingInfo, type RunFrames } from '../api.ts';
import { formatTime } from '../format.ts';
import { LOADING, type Loaded, load, whenLoaded } from '../loaded.ts';
import { type Firing, type FrameChange, firingsOf, formatShare, frameChanges, shareOf } from '../profiles.ts';
import { href } from '../router.ts';
import { change, frameName, html, nothing, render, repeat } from '../templates.ts';

/** How many of the newest firings are shown. */
const FIRINGS_SHOWN = 10;
/** How many methods of each firing are compared (a method outside one list counts as 0 there). */
const COMPARED_FRAMES = 20;
/** How many methods and changes each firing shows. */
const TOP = 5;

/** The merged profile of a firing's FINISHED runs: its group's, or its one run's when it has no group. */
function readFrames(firing: Firing<ProfilingInfo>): Promise<RunFrames> {
  if (firing.groupId) return api.groupFrames(firing.groupId, COMPARED_FRAMES);
  const [run] = firing.runs;
  return run ? api.runFrames(run.id, COMPARED_FRAMES) : Promise.resolve({ samples: 0, frames: [] });
}

const finishedKey = (firing: Firing<ProfilingInfo>) =>
  firing.runs
    .filter((r) => r.status === 'FINISHED')
    .map((r) => r.id)
    .join(',');

export interface FiringsPanel {
  element: HTMLElement;
  /** Shows the firings of `runs` (a rule's runs, newest first), reading the profiles it has not read yet. */
  update(runs: readonly ProfilingInfo[]): void;
  dispose(): void;
}

export function firingsPanel(): FiringsPanel {
  const element = document.createElement('div');
  element.id = 'firings';
  /** Profiles read, by firing id and the FINISHED runs they were read for. */
  const profiles = new Map<string, { key: string; loaded: Loaded<RunFrames> }>();
  let firings: Array<Firing<ProfilingInfo>> = [];
  let disposed = false;

  const draw = () => {
    if (!disposed) render(view(), element);
  };

  const ensure = (firing: Firing<ProfilingInfo>) => {
    const key = finishedKey(firing);
    if (key === '' || profiles.get(firing.id)?.key === key) return;
    const previous = profiles.get(firing.id)?.loaded;
    // A profile already shown stays until the fresher one (more runs finished) arrives.
    profiles.set(firing.id, { key, loaded: previous?.state === 'done' ? previous : LOADING });
    void load(() => readFrames(firing)).then((loaded) => {
      // Only the answer for the runs asked about last counts: more may have finished meanwhile.
      if (profiles.get(firing.id)?.key === key) profiles.set(firing.id, { key, loaded });
      draw();
    });
  };

  /** The nearest older firing that has FINISHED runs, to compare with. */
  const previousOf = (index: number) => firings.slice(index + 1).find((f) => finishedKey(f) !== '');

  const changes = (firing: Firing<ProfilingInfo>, current: RunFrames, index: number) => {
    const previous = previousOf(index);
    if (!previous) return html`<p class="empty">The first firing with a profile: nothing to compare with.</p>`;
    if (previous.mode !== firing.mode) {
      return html`<p class="empty">
        The previous firing profiled ${previous.mode}, this one ${firing.mode}: not compared.
      </p>`;
    }
    return whenLoaded(profiles.get(previous.id)?.loaded, (before) => {
      const rows: FrameChange[] = frameChanges(current, before, TOP);
      return html`<p class="hint">Since the firing of ${formatTime(previous.firedAt)}:</p>
      ${
        rows.length === 0
          ? html`<p class="empty">No method's share changed by 0.1 % or more.</p>`
          : html`<ol class="changes">
              ${repeat(
                rows,
                (row) => row.name,
                (row) => html`<li data-frame=${row.name}>
                  ${change(row.delta)} ${frameName(row.name)}
                  <span class="hint">${formatShare(row.before)} → ${formatShare(row.after)}</span>
                </li>`,
              )}
            </ol>`
      }`;
    });
  };

  /** A firing's hottest methods beside what changed since the firing before. */
  const profileColumns = (firing: Firing<ProfilingInfo>, current: RunFrames, index: number) => {
    const { frames, samples } = current;
    return html`<div class="firing-columns">
        <div>
          <h4>Hottest methods</h4>
          <ol class="top-frames">
            ${frames
              .slice(0, TOP)
              .map(
                (frame) =>
                  html`<li>${frameName(frame.name)} <span class="hint">${formatShare(shareOf(frame.self, samples))}</span></li>`,
              )}
          </ol>
        </div>
        <div class="firing-changes">
          <h4>What changed</h4>
          ${changes(firing, current, index)}
        </div>
      </div>`;
  };

  const firingView = (firing: Firing<ProfilingInfo>, index: number) => {
    const finished = firing.runs.filter((r) => r.status === 'FINISHED').length;
    const running = firing.runs.filter((r) => r.status === 'RUNNING').length;
    const body =
      finished === 0
        ? html`<p class="empty">${running > 0 ? 'Still running.' : 'No run of this firing FINISHED.'}</p>`
        : whenLoaded(profiles.get(firing.id)?.loaded, (current) => profileColumns(firing, current, index));
    return html`<article class="firing group" data-firing=${firing.id}>
      <h3>
        Fired ${formatTime(firing.firedAt)} · ${firing.mode} · ${firing.runs.length}
        run${firing.runs.length === 1 ? '' : 's'}, ${finished} FINISHED
      </h3>
      ${
        firing.groupId
          ? html`<p><a href=${href.group(firing.groupId)}>The firing's runs side by side and merged flame graph</a></p>`
          : firing.runs[0]
            ? html`<p><a href=${href.run(firing.runs[0].id)}>The firing's run</a></p>`
            : nothing
      }
      ${body}
    </article>`;
  };

  const view = () =>
    firings.length === 0
      ? html`<p class="empty">No firing with runs yet.</p>`
      : html`${repeat(
          firings.slice(0, FIRINGS_SHOWN),
          (firing) => firing.id,
          (firing, index) => firingView(firing, index),
        )}`;

  return {
    element,
    update(runs) {
      firings = firingsOf(runs);
      // The shown firings, and the one before the oldest of them (to compare it with).
      const shown = firings.slice(0, FIRINGS_SHOWN);
      const lastShown = firings.indexOf(shown[shown.length - 1] as Firing<ProfilingInfo>);
      const older = lastShown >= 0 ? previousOf(lastShown) : undefined;
      for (const firing of [...shown, ...(older ? [older] : [])]) ensure(firing);
      draw();
    },
    dispose() {
      disposed = true;
    },
  };
}
