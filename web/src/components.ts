/** Pieces shared by the forms that start runs: the fields, the messages of a failed request, a busy button. */
import { ApiError, errorsByField, type ProfilingInfo, type ServiceConfig, serverNow } from './api.ts';
import { h, setChildren, setText } from './dom.ts';

/** Flink's profiler tab: 30 s by default, in steps of 30 s. */
export const DEFAULT_DURATION_SECONDS = 30;
export const DURATION_STEP_SECONDS = 30;

/** The fields a request is checked on, in the order they appear: errors go next to the one they name. */
const FIELDS = ['duration', 'mode'] as const;

export interface RunFields {
  /** The two fields, ready to put in a form. */
  elements: HTMLElement[];
  /** What the user entered, sent as it is: the API checks it and says what is wrong. */
  read(): { mode: string; duration?: number };
  /**
   * Shows each API error next to the field it names and returns the errors about no field of the form, for
   * the caller to show next to its action.
   */
  showErrors(errors: string[]): string[];
  clearErrors(): void;
}

/** "Profiling Duration" and "Profiling Mode", with Flink's labels and defaults; `id` keeps two forms apart. */
export function runFields(id: string, config: ServiceConfig): RunFields {
  const durationError = h('p', { id: `${id}-duration-error`, class: 'field-error', hidden: true });
  const duration = h('input', {
    id: `${id}-duration`,
    name: 'duration',
    type: 'number',
    inputmode: 'numeric',
    min: 1,
    max: config.maxDurationSeconds,
    step: DURATION_STEP_SECONDS,
    value: Math.min(DEFAULT_DURATION_SECONDS, config.maxDurationSeconds),
    required: true,
    'aria-describedby': `${id}-duration-hint ${id}-duration-error`,
  });
  // Arrow keys move by Flink's step of 30 s from wherever the value is (30 → 60, not the 31 that the native
  // step counted from min=1 would give), within 1 and the maximum.
  duration.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowUp' && event.key !== 'ArrowDown') return;
    event.preventDefault();
    const current = Number.parseInt(duration.value, 10);
    const base = Number.isNaN(current) ? 0 : current;
    const next = event.key === 'ArrowUp' ? base + DURATION_STEP_SECONDS : base - DURATION_STEP_SECONDS;
    duration.value = String(Math.max(1, Math.min(config.maxDurationSeconds, next)));
    duration.dispatchEvent(new Event('input', { bubbles: true }));
  });

  const modeError = h('p', { id: `${id}-mode-error`, class: 'field-error', hidden: true });
  const describe = (mode: string) => config.modes.find((m) => m.mode === mode)?.description ?? '';
  const mode = h(
    'select',
    { id: `${id}-mode`, name: 'mode', 'aria-describedby': `${id}-mode-description ${id}-mode-error` },
    config.modes.map((m) =>
      h('option', { value: m.mode, title: m.description, selected: m.mode === config.defaultMode }, m.mode),
    ),
  );
  const description = h('span', { id: `${id}-mode-description`, role: 'tooltip', class: 'tooltip' });
  const showDescription = () => setText(description, describe(mode.value));
  mode.addEventListener('change', showDescription);
  mode.addEventListener('input', showDescription);
  showDescription();

  const fieldErrors = { duration: [durationError, duration], mode: [modeError, mode] } as const;
  const clearErrors = () => {
    for (const [error, input] of Object.values(fieldErrors)) {
      error.hidden = true;
      error.textContent = '';
      input.removeAttribute('aria-invalid');
    }
  };

  return {
    elements: [
      h(
        'div',
        { class: 'field' },
        h('label', { for: duration.id }, 'Profiling Duration'),
        h('span', { class: 'with-unit' }, duration, h('span', { class: 'unit', 'aria-hidden': 'true' }, 's')),
        h('p', { id: `${id}-duration-hint`, class: 'hint' }, `seconds, 1 to ${config.maxDurationSeconds}`),
        durationError,
      ),
      h(
        'div',
        { class: 'field' },
        h('label', { for: mode.id }, 'Profiling Mode'),
        h('span', { class: 'tip' }, mode, description),
        h('p', { class: 'hint' }, 'hover or focus for what the mode shows'),
        modeError,
      ),
    ],
    read: () => {
      const text = duration.value.trim();
      return text === '' ? { mode: mode.value } : { mode: mode.value, duration: Number(text) };
    },
    showErrors: (errors) => {
      clearErrors();
      const byField = errorsByField(errors, FIELDS);
      let first: HTMLElement | undefined;
      for (const field of FIELDS) {
        const messages = byField.get(field);
        if (!messages) continue;
        const [error, input] = fieldErrors[field];
        error.textContent = messages.join(' ');
        error.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        first ??= input;
      }
      first?.focus();
      return byField.get('') ?? [];
    },
    clearErrors,
  };
}

/** The messages of a failed request: the API's own reasons, or what went wrong on the way. */
export function messagesOf(error: unknown): string[] {
  if (error instanceof ApiError) return error.errors;
  return [`Something went wrong in the page: ${(error as Error).message}`];
}

/** Shows messages in an error slot next to an action (hidden when there are none). */
export function showMessages(slot: HTMLElement, messages: string[]): void {
  setChildren(
    slot,
    messages.map((m) => h('span', { class: 'message' }, m)),
  );
  slot.hidden = messages.length === 0;
}

/** A button that shows a spinner and refuses clicks while its action runs. */
export async function whileBusy<T>(button: HTMLButtonElement, action: () => Promise<T>): Promise<T> {
  button.dataset.busy = 'true';
  button.setAttribute('aria-busy', 'true');
  button.disabled = true;
  try {
    return await action();
  } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-busy');
  }
}

/** When the next refresh should come: soon after the first RUNNING run is due to end, else at the interval. */
export function nextRefreshHint(runs: ProfilingInfo[]): number | undefined {
  const ends = runs
    .filter((r) => r.status === 'RUNNING')
    .map((r) => r.triggerTime + r.duration * 1000 - serverNow())
    .filter((ms) => ms > -2000);
  if (ends.length === 0) return undefined;
  return Math.max(300, Math.min(...ends) + 400);
}
