/**
 * The transport half of SSE: writes encoded events to the response and owns
 * backpressure. When `res.write()` returns false the caller awaits `ready()`, which
 * resolves on `'drain'`, on `'close'`, or when the stream is ended (`release()`), whichever
 * comes first — waiting on `'drain'` alone hangs forever when the client leaves, or stops
 * reading, during the wait.
 */
import type { ServerResponse } from 'node:http';

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: compression() and proxies must not buffer the stream.
  'Cache-Control': 'no-cache, no-transform',
  // nginx buffers proxied responses unless told not to.
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};

export class SseWriter {
  private readonly res: ServerResponse;
  private waiting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Latched once the response is over: later checks read no response property. */
  private done = false;
  /** True when this writer ended the response (anyone else's end is not ours). */
  endedHere = false;
  /** Number of times a write had to wait, and the total wait in ms. */
  backpressureWaits = 0;
  backpressureMs = 0;
  /** Writes so far: the keep-alive timer compares it between ticks (no clock read per write). */
  writes = 0;
  /** Bytes still queued at the last progress check, and when they last went down. */
  private queuedAtCheck = 0;
  private lastProgressAt = 0;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  /** True once the client is gone or the response ended: nothing more may be written. */
  get closed(): boolean {
    if (this.done) return true;
    // Two reads: `destroyed` is set at once by destroy() and by the socket's close (the
    // response's 'close' comes a tick later); `writableEnded` by anyone's end().
    const res = this.res;
    if (res.writableEnded || res.destroyed) {
      this.done = true;
      return true;
    }
    return false;
  }

  /** True while a write waits for the client to read. */
  get waitingForClient(): boolean {
    return this.waiting !== undefined;
  }

  /**
   * Sends the status line and SSE headers (once, after admission), with `first` — the
   * first event — in the same write: one syscall, not two.
   */
  open(extraHeaders: Record<string, string | number> = {}, first = ''): void {
    const res = this.res;
    if (res.headersSent) return;
    res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
    if (first === '') res.flushHeaders();
    else this.write(first);
  }

  /**
   * Writes one encoded chunk. Returns true when the caller may write again at once,
   * false when it must `await ready()` first. Writes after close are dropped.
   */
  write(chunk: string): boolean {
    if (chunk === '' || this.closed) return true;
    this.writes++;
    return this.res.write(chunk);
  }

  /** Resolves when the socket drained, closed, or the stream was ended. */
  ready(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    this.waiting ??= this.waitDrainOrClose();
    return this.waiting;
  }

  /**
   * How long the client has read nothing while a write waits on it, in ms (0 when not
   * waiting). Called from the shared tick: the queued byte count going down is progress.
   */
  stalledFor(now: number): number {
    if (this.waiting === undefined) return 0;
    const queued = this.res.writableLength;
    if (queued < this.queuedAtCheck || this.lastProgressAt === 0) this.lastProgressAt = now;
    this.queuedAtCheck = queued;
    return now - this.lastProgressAt;
  }

  /** Ends a pending `ready()` wait at once (the stream is over). */
  release(): void {
    this.wake?.();
  }

  /** Ends the response (idempotent). */
  end(chunk?: string): void {
    if (this.closed) return;
    this.done = true;
    this.endedHere = true;
    if (chunk) this.res.end(chunk);
    else this.res.end();
  }

  /** Closes the connection without a final event (a client that stopped reading). */
  destroy(): void {
    this.done = true;
    this.endedHere = true;
    this.release();
    this.res.destroy();
  }

  private waitDrainOrClose(): Promise<void> {
    const res = this.res;
    const started = performance.now();
    this.backpressureWaits++;
    this.queuedAtCheck = res.writableLength;
    this.lastProgressAt = 0;
    return new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        res.off('error', done);
        this.backpressureMs += performance.now() - started;
        this.waiting = undefined;
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
      res.on('drain', done);
      res.on('close', done);
      res.on('error', done);
    });
  }
}
