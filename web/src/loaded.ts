/**
 * A request a page section waits for, and what the section shows meanwhile: the run, group and rule pages each
 * read several things at once and draw each as soon as it answers.
 */
import { messagesOf } from './components.ts';
import { errorSlot, html, nothing } from './templates.ts';

/** A request's state on the page: not asked yet, on its way, answered, or refused with the API's reasons. */
export type Loaded<T> =
  | { state: 'idle' }
  | { state: 'loading' }
  | { state: 'done'; value: T }
  | { state: 'failed'; errors: string[] };

export const LOADING = { state: 'loading' } as const;

/** Sends `request` and says how it went, never throwing: a refusal becomes `failed` with its messages. */
export async function load<T>(request: () => Promise<T>): Promise<Loaded<T>> {
  try {
    return { state: 'done', value: await request() };
  } catch (error) {
    return { state: 'failed', errors: messagesOf(error) };
  }
}

/** The answer `loaded` holds, passed through `select`; any other state as it was. */
export function mapLoaded<T, U>(loaded: Loaded<T>, select: (value: T) => U): Loaded<U> {
  return loaded.state === 'done' ? { state: 'done', value: select(loaded.value) } : loaded;
}

/**
 * What a section shows for `loaded`: nothing before it is asked for, "Loading…" (or `loading`) on its way (also
 * when it is not known yet: undefined), the API's messages in an error slot (`errorId`) when refused, and
 * `done(value)` once answered.
 */
export function whenLoaded<T>(
  loaded: Loaded<T> | undefined,
  done: (value: T) => unknown,
  options: { errorId?: string; loading?: unknown } = {},
): unknown {
  if (loaded?.state === 'idle') return nothing;
  if (!loaded || loaded.state === 'loading') return options.loading ?? html`<p class="loading">Loading…</p>`;
  if (loaded.state === 'failed') return errorSlot(loaded.errors, options.errorId);
  return done(loaded.value);
}
