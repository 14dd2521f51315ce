import type { Logger, RuleScheduler } from '#domain/ports.ts';

/** How often local mode looks for due rules: schedules have minute precision, firings land within this of on time. */
export const RULE_TICK_INTERVAL_MS = 1000;

/**
 * Local mode's RuleScheduler: an in-process timer that fires due rules (`fireDue`, which reads the rule store and
 * claims each firing with a conditional write). It has nothing to keep per rule — the store says what is due — so
 * a change to a rule only wakes it. Started by the local server after start-up, it fires at once whatever fell due
 * while the server was down: once per rule, however many times it was due.
 */
export class LocalRuleTicker implements RuleScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly fireDue: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly intervalMs = RULE_TICK_INTERVAL_MS,
  ) {}

  /** Fires what is due now, then keeps looking every interval. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.tick();
  }

  async put(): Promise<void> {
    if (this.timer) this.tick();
  }

  async remove(): Promise<void> {}

  /** Stops the timer and waits for a firing under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass, never two at once: a tick asked for during a pass runs right after it. */
  private tick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.fireDue();
        } while (this.again && this.timer);
      } catch (error) {
        this.log.error('firing due rules failed', { error: String(error) });
      } finally {
        this.running = undefined;
      }
    })();
  }
}
