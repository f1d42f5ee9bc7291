/**
 * One timer for every stream of a route: timeouts, stalls, keep-alives and paced usage
 * events are checked on its tick (no timer per stream), and ended responses the client has
 * not finished reading are destroyed past their deadline.
 */
import type { BudgetAlerts } from './alerts.js';
import type { Transport } from './transport.js';

/** What the registry ticks: a stream. */
export interface Ticking {
  tick(now: number): void;
}

/** Shared by every stream of one middleware: one timer for timeouts and keep-alives. */
export class StreamRegistry {
  private readonly active = new Set<Ticking>();
  /**
   * Ended responses whose last bytes the client has not taken yet, and when to give up on
   * them: a client that reads nothing more would hold a finished response open for ever.
   * Checked by the same tick (no timer per stream; most leave this set on the next tick).
   */
  private readonly finishing = new Map<Transport, number>();
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly tickMs: number,
    /** Budget alerts of this middleware's streams: one process memo for all of them. */
    readonly alerts?: BudgetAlerts,
  ) {}

  add(stream: Ticking): void {
    this.active.add(stream);
    this.arm();
  }

  delete(stream: Ticking): void {
    this.active.delete(stream);
    this.disarmWhenIdle();
  }

  /** Destroys the response if it has not finished (flushed to the client) by `deadline`. */
  destroyUnlessFinished(transport: Transport, deadline: number): void {
    this.finishing.set(transport, deadline);
    this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const s of this.active) s.tick(now);
      for (const [transport, deadline] of this.finishing) {
        if (transport.finished) this.finishing.delete(transport);
        else if (now >= deadline) {
          this.finishing.delete(transport);
          transport.destroy();
        }
      }
      this.disarmWhenIdle();
    }, this.tickMs);
    // Node: the tick must not keep the process alive (other runtimes have no unref).
    (this.timer as { unref?: () => void }).unref?.();
  }

  private disarmWhenIdle(): void {
    if (this.active.size === 0 && this.finishing.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.active.size;
  }
}
