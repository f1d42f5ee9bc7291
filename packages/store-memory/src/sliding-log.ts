/**
 * An exact sliding-window log for one rate limit of one scope: timestamped amounts (1 per
 * request, or a token count), pruned as they leave the window. An entry made at t counts
 * while `now - t < windowMs`. Entries stay mutable while in the window so settlement can
 * replace a token estimate with the actual at the admission's timestamp, and release can
 * zero an entry.
 */
import type { WindowRateLimitRule } from '@tokenmeter/core';
import type { WindowRateLimitState } from '@tokenmeter/core/store';

/** One amount in a log; `live` turns false when it leaves the window. */
export interface LogEntry {
  readonly t: number;
  n: number;
  live: boolean;
}

// Dropping the consumed head in one slice, once it is large, keeps pruning O(1) amortised.
const COMPACT_AT = 1_024;

export class SlidingLog {
  private entries: LogEntry[] = [];
  private head = 0;
  private total = 0;

  constructor(readonly windowMs: number) {}

  /** Sum of amounts still in the window at `now`. */
  used(now: number): number {
    this.prune(now);
    return this.total;
  }

  /** Records `n` at `now`; `now` must not be earlier than the last entry (store time is monotonic). */
  add(now: number, n: number): LogEntry {
    const entry: LogEntry = { t: now, n, live: true };
    this.entries.push(entry);
    this.total += n;
    return entry;
  }

  /** Replaces an entry's amount; an entry that already left the window no longer counts. */
  set(entry: LogEntry, n: number): void {
    if (entry.live) this.total += n - entry.n;
    entry.n = n;
  }

  /**
   * Ms until a request needing `need` would pass under `limit` (0 if it passes now), or
   * `null` if it never can. Passing means `used < limit && used + need <= limit`, i.e.
   * `used <= limit - max(need, 1)`.
   */
  retryAfter(now: number, need: number, limit: number): number | null {
    const target = limit - Math.max(need, 1);
    if (target < 0) return null;
    let remaining = this.used(now);
    if (remaining <= target) return 0;
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i] as LogEntry;
      remaining -= entry.n;
      if (remaining <= target) return entry.t + this.windowMs - now;
    }
    return null; // unreachable: an empty log always passes a non-negative target
  }

  /** Ms until everything counted now has left the window; 0 when nothing is counted. */
  resetMs(now: number): number {
    this.prune(now);
    for (let i = this.entries.length - 1; i >= this.head; i--) {
      const entry = this.entries[i] as LogEntry;
      if (entry.n > 0) return entry.t + this.windowMs - now;
    }
    return 0;
  }

  state(rule: WindowRateLimitRule, now: number): WindowRateLimitState {
    const used = this.used(now);
    return {
      kind: rule.kind,
      limit: rule.limit,
      windowMs: rule.windowMs,
      used,
      remaining: Math.max(0, rule.limit - used),
      resetMs: this.resetMs(now),
    };
  }

  private prune(now: number): void {
    const cutoff = now - this.windowMs;
    const { entries } = this;
    while (this.head < entries.length) {
      const entry = entries[this.head] as LogEntry;
      if (entry.t > cutoff) break;
      entry.live = false;
      this.total -= entry.n;
      this.head += 1;
    }
    if (this.head === entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= entries.length) {
      this.entries = entries.slice(this.head);
      this.head = 0;
    }
  }
}
