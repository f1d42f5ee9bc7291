/**
 * The transport half of SSE: writes encoded events to the response and owns
 * backpressure. When `res.write()` returns false the caller awaits `ready()`, which
 * resolves on `'drain'` or on `'close'`, whichever comes first — waiting on `'drain'`
 * alone hangs forever when the client leaves during the wait.
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
  /** Latched once the response is over: later checks read no response property. */
  private done = false;
  /** Number of times a write had to wait, and the total wait in ms. */
  backpressureWaits = 0;
  backpressureMs = 0;
  /** Writes so far: the keep-alive timer compares it between ticks (no clock read per write). */
  writes = 0;

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

  /** Resolves when the socket drained or closed. */
  ready(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    this.waiting ??= this.waitDrainOrClose();
    return this.waiting;
  }

  /** Ends the response (idempotent). */
  end(chunk?: string): void {
    if (this.closed) return;
    this.done = true;
    if (chunk) this.res.end(chunk);
    else this.res.end();
  }

  private waitDrainOrClose(): Promise<void> {
    const res = this.res;
    const started = performance.now();
    this.backpressureWaits++;
    return new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        res.off('error', done);
        this.backpressureMs += performance.now() - started;
        this.waiting = undefined;
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
      res.on('error', done);
    });
  }
}
