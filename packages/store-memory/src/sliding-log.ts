/**
 * An exact sliding-window log for one rate limit of one scope: timestamped amounts (1 per
 * request, or a token count), pruned as they leave the window. An entry made at t counts
 * while `now - t < windowMs`. Entries stay mutable while in the window so settlement can
 * replace a token estimate with the actual at the admission's timestamp, and release can
 * zero an entry.
 *
 * The entries live in one typed array (time, amount, time, amount, …), not an object each:
 * a busy scope keeps a window's worth of admissions (60 s of them, say), and as objects
 * every one would outlive the young generation and be collected by the old one.
 */
import type { WindowRateLimitRule } from '@tokenmeter/core';
import type { WindowRateLimitState } from '@tokenmeter/core/store';

/** A handle on one entry (from `add()`): stays valid while the entry is in the window. */
export type LogEntry = number;

/** Entries a new log has room for; it doubles when full and the window holds most of it. */
const INITIAL_ENTRIES = 4;
/** An emptied log larger than this starts over small: an idle scope holds little. */
const SHRINK_ABOVE = 1_024;

export class SlidingLog {
  /** Pairs: the time of entry i at 2i, its amount at 2i + 1. */
  private pairs = new Float64Array(INITIAL_ENTRIES * 2);
  /** The first entry still in the window, and one past the newest. */
  private head = 0;
  private tail = 0;
  /** The handle of the entry at index 0: handles keep counting across compactions. */
  private first = 0;
  private total = 0;

  constructor(readonly windowMs: number) {}

  /** Sum of amounts still in the window at `now`. */
  used(now: number): number {
    this.prune(now);
    return this.total;
  }

  /** Records `n` at `now`; `now` must not be earlier than the last entry (store time is monotonic). */
  add(now: number, n: number): LogEntry {
    if (2 * this.tail === this.pairs.length) this.makeRoom();
    const at = 2 * this.tail;
    this.pairs[at] = now;
    this.pairs[at + 1] = n;
    this.total += n;
    return this.first + this.tail++;
  }

  /**
   * An entry's amount, or undefined once pruned (a read at a time it was out of the window).
   * Setting an entry that left the window but is not pruned yet is harmless: the prune
   * takes off whatever it holds.
   */
  amount(entry: LogEntry): number | undefined {
    const i = entry - this.first;
    return i >= this.head && i < this.tail ? (this.pairs[2 * i + 1] as number) : undefined;
  }

  /** Replaces an entry's amount; an entry that already left the window no longer counts. */
  set(entry: LogEntry, n: number): void {
    const i = entry - this.first;
    if (i < this.head || i >= this.tail) return;
    this.total += n - (this.pairs[2 * i + 1] as number);
    this.pairs[2 * i + 1] = n;
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
    const { pairs } = this;
    for (let i = this.head; i < this.tail; i++) {
      remaining -= pairs[2 * i + 1] as number;
      if (remaining <= target) return (pairs[2 * i] as number) + this.windowMs - now;
    }
    return null; // unreachable: an empty log always passes a non-negative target
  }

  /** Ms until everything counted now has left the window; 0 when nothing is counted. */
  resetMs(now: number): number {
    this.prune(now);
    const { pairs } = this;
    for (let i = this.tail - 1; i >= this.head; i--) {
      if ((pairs[2 * i + 1] as number) > 0) return (pairs[2 * i] as number) + this.windowMs - now;
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
    const { pairs } = this;
    while (this.head < this.tail && (pairs[2 * this.head] as number) <= cutoff) {
      this.total -= pairs[2 * this.head + 1] as number;
      this.head += 1;
    }
    if (this.head === this.tail) {
      this.first += this.head;
      this.head = 0;
      this.tail = 0;
      if (pairs.length > SHRINK_ABOVE * 2) this.pairs = new Float64Array(INITIAL_ENTRIES * 2);
    }
  }

  /** Called when the array is full: slides the live entries to the front, or doubles it. */
  private makeRoom(): void {
    const live = this.tail - this.head;
    if (2 * live * 2 <= this.pairs.length) {
      this.pairs.copyWithin(0, 2 * this.head, 2 * this.tail);
    } else {
      const grown = new Float64Array(this.pairs.length * 2);
      grown.set(this.pairs.subarray(2 * this.head, 2 * this.tail));
      this.pairs = grown;
    }
    this.first += this.head;
    this.head = 0;
    this.tail = live;
  }
}
