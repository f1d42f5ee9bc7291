/**
 * The clock of one stream, in plain numbers: what the shared tick decides — the total
 * timeout, the handover deadline, a client that stopped reading, an idle provider, a
 * keep-alive comment, a due `usage` event. It reads progress as counters (chunks read,
 * writes made) compared between ticks, so nothing on the hot path reads the clock.
 */

export interface WatchdogLimits {
  totalTimeoutMs: number;
  handoverTimeoutMs: number;
  stallTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveMs: number;
  usageIntervalMs: number;
}

/** What the stream is doing at a tick. */
export interface WatchdogFacts {
  /** A stream (or the route handler's `meter.stream()`) was handed over. */
  handedOver: boolean;
  /** Provider chunks read so far. */
  chunks: number;
  /** Writes made to the client so far. */
  writes: number;
  /** The provider is being read (not before the source resolved, not after its end). */
  reading: boolean;
  /** A write waits on the client; then `stalledForMs` is how long it has read nothing. */
  waitingForClient: boolean;
  stalledForMs: number;
  /** A whole-body answer (a gateway's non-streaming call): nothing is sent until its end. */
  wholeBody: boolean;
  /** The stream's headers went out, and the transport takes a write without queueing. */
  headersSent: boolean;
  full: boolean;
}

/** What the tick must do: end the stream (and why), send a keep-alive, or nothing. */
export type WatchdogVerdict = 'timeout' | 'handover' | 'stalled' | 'idle' | 'ping' | undefined;

export class Watchdog {
  private readonly startedAt: number;
  private chunksSeen = -1;
  private lastChunkAt: number;
  private writesSeen = -1;
  private lastWriteAt: number;
  private lastUsageAt = 0;
  /** A `usage` event is due (set by the tick, cleared when one is sent). */
  usageDue = false;

  constructor(
    private readonly limits: WatchdogLimits,
    now: number,
  ) {
    this.startedAt = now;
    this.lastChunkAt = now;
    this.lastWriteAt = now;
  }

  /** When the stream began, on the `performance.now()` clock. */
  get started(): number {
    return this.startedAt;
  }

  /** The provider read begins now: its idleness counts from here. */
  readingFrom(now: number): void {
    this.lastChunkAt = now;
  }

  check(now: number, facts: WatchdogFacts): WatchdogVerdict {
    const limits = this.limits;
    if (now - this.startedAt >= limits.totalTimeoutMs) return 'timeout';
    if (!facts.handedOver && now - this.startedAt >= limits.handoverTimeoutMs) return 'handover';
    if (facts.chunks !== this.chunksSeen) {
      this.chunksSeen = facts.chunks;
      this.lastChunkAt = now;
    }
    if (facts.writes !== this.writesSeen) {
      this.writesSeen = facts.writes;
      this.lastWriteAt = now;
    }
    if (now - this.lastUsageAt >= limits.usageIntervalMs) {
      this.usageDue = true;
      this.lastUsageAt = now;
    }
    if (facts.waitingForClient) {
      // The provider is not being read because the client is not reading: not the
      // provider's idleness. A client that drains nothing for stallTimeoutMs is let go.
      this.lastChunkAt = now;
      return facts.stalledForMs >= limits.stallTimeoutMs ? 'stalled' : undefined;
    }
    // A whole-body answer sends nothing until it is done: only the total timeout bounds it.
    if (facts.reading && !facts.wholeBody && now - this.lastChunkAt >= limits.idleTimeoutMs) {
      return 'idle';
    }
    if (
      now - this.lastWriteAt >= limits.keepAliveMs &&
      facts.headersSent &&
      !facts.wholeBody &&
      !facts.full
    ) {
      return 'ping';
    }
    return undefined;
  }
}
