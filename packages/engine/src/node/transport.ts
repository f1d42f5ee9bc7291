/**
 * The transport on Node's `ServerResponse` (Express, and Fastify's `reply.raw`): when
 * `res.write()` returns false the caller awaits `ready()`, which resolves on `'drain'`, on
 * `'close'`, or when the stream is ended (`release()`), whichever comes first — waiting on
 * `'drain'` alone hangs forever when the client leaves, or stops reading, during the wait.
 */
import type { ServerResponse } from 'node:http';
import { SSE_HEADERS, type Transport } from '../index.js';

export class NodeTransport implements Transport {
  private readonly res: ServerResponse;
  private waiting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Latched once the response is over: later checks read no response property. */
  private done = false;
  /** True when this transport ended the response (anyone else's end is not ours). */
  private endedHere = false;
  backpressureWaits = 0;
  backpressureMs = 0;
  writes = 0;
  /** Bytes still queued at the last progress check, and when they last went down. */
  private queuedAtCheck = 0;
  private lastProgressAt = 0;

  constructor(res: ServerResponse) {
    this.res = res;
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

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

  get endedElsewhere(): boolean {
    return this.res.writableEnded && !this.endedHere;
  }

  get full(): boolean {
    return this.res.writableNeedDrain;
  }

  get finished(): boolean {
    return this.res.writableFinished || this.res.destroyed;
  }

  get waitingForClient(): boolean {
    return this.waiting !== undefined;
  }

  send(status: number, headers: Record<string, string>, body: string): void {
    const res = this.res;
    if (res.headersSent || res.writableEnded) return;
    res.statusCode = status;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    this.endedHere = true;
    res.end(body);
  }

  closeAfterAnswer(): void {
    if (!this.res.headersSent) this.res.setHeader('Connection', 'close');
  }

  /** Status line and SSE headers, with `first` — the first event — in the same write. */
  open(extraHeaders: Record<string, string | number> = {}, first = ''): void {
    const res = this.res;
    if (res.headersSent) return;
    res.writeHead(200, { ...SSE_HEADERS, ...extraHeaders });
    if (first === '') res.flushHeaders();
    else this.write(first);
  }

  write(chunk: string): boolean {
    if (chunk === '' || this.closed) return true;
    this.writes++;
    return this.res.write(chunk);
  }

  ready(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    this.waiting ??= this.waitDrainOrClose();
    return this.waiting;
  }

  /** Called from the shared tick: the queued byte count going down is progress. */
  stalledFor(now: number): number {
    if (this.waiting === undefined) return 0;
    const queued = this.res.writableLength;
    if (queued < this.queuedAtCheck || this.lastProgressAt === 0) this.lastProgressAt = now;
    this.queuedAtCheck = queued;
    return now - this.lastProgressAt;
  }

  release(): void {
    this.wake?.();
  }

  end(chunk?: string): void {
    if (this.closed) return;
    this.done = true;
    this.endedHere = true;
    if (chunk) this.res.end(chunk);
    else this.res.end();
  }

  destroy(): void {
    this.done = true;
    this.endedHere = true;
    this.release();
    this.res.destroy();
  }

  onClose(listener: () => void): () => void {
    this.res.on('close', listener);
    return () => this.res.off('close', listener);
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
