/** Flink's `web.refresh-interval`: lists refresh every 3 s. */
export const REFRESH_INTERVAL_MS = 3000;

export interface Poller {
  /** Settles once the first refresh has run. */
  ready: Promise<void>;
  /** Refreshes now (after a create, say), then carries on at the interval. */
  refreshNow(): void;
  stop(): void;
}

/**
 * Calls `refresh` now and then every `intervalMs` while the tab is visible: a hidden tab asks nothing, and
 * refreshes at once when shown again. `refresh` may ask for an earlier next call (e.g. when a run is due to
 * end) by returning a delay in ms. Calls never overlap.
 */
export function startPolling(refresh: () => Promise<number | undefined>, intervalMs = REFRESH_INTERVAL_MS): Poller {
  let timer: number | undefined;
  let running = false;
  let again = false;
  let stopped = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  const schedule = (delay: number) => {
    window.clearTimeout(timer);
    timer = undefined;
    if (!stopped && !document.hidden) timer = window.setTimeout(tick, delay);
  };
  const tick = async () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let hint: number | undefined;
    try {
      hint = await refresh();
    } finally {
      running = false;
      markReady();
    }
    if (again) {
      again = false;
      void tick();
      return;
    }
    schedule(Math.max(250, Math.min(intervalMs, hint ?? intervalMs)));
  };
  const onVisibility = () => {
    if (document.hidden) schedule(0);
    else void tick();
  };
  document.addEventListener('visibilitychange', onVisibility);
  void tick();
  return {
    ready,
    refreshNow: () => void tick(),
    stop: () => {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
