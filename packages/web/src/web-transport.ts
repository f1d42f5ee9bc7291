/**
 * The transport on a Web `Response` (Hono, Next.js route handlers, Bun, Deno): the stream's
 * body is a `ReadableStream` that hands the client one chunk per pull. Written chunks wait
 * in a queue of our own; when it holds `highWaterMark` bytes, `write()` returns false and
 * `ready()` resolves on the client's next pull — so a slow client slows the provider read,
 * and what waits for it is bounded. The stream's `cancel` (the server saw the client go)
 * and the request's `signal` are the disconnect.
 */
import { SSE_HEADERS, type Transport } from '@tokenmeter/engine';

/** Bytes queued for the client before a write reports the transport full (Node's default). */
const HIGH_WATER_MARK = 16 * 1024;

const UTF8 = new TextEncoder();

export class WebTransport implements Transport {
  /** The answer: resolves once, when the request is answered whole or its stream opens. */
  readonly response: Promise<Response>;
  private resolveResponse!: (response: Response) => void;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Chunks written and not yet pulled by the client, and their bytes. */
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  /** The client's pull waiting for a chunk (resolved by the next write or the end). */
  private pullWaiting: (() => void) | undefined;
  private waiting: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly closeListeners = new Set<() => void>();
  private answered = false;
  /** Ended by us: nothing more may be written; the queue is still delivered. */
  private ending = false;
  /** The client has everything (or is gone): nothing more will be delivered. */
  private over = false;
  private answerHeaders: Record<string, string> = {};
  backpressureWaits = 0;
  backpressureMs = 0;
  writes = 0;
  private queuedAtCheck = 0;
  private lastProgressAt = 0;

  constructor(signal?: AbortSignal) {
    this.response = new Promise((resolve) => {
      this.resolveResponse = resolve;
    });
    if (signal) {
      if (signal.aborted) this.clientGone();
      else signal.addEventListener('abort', () => this.clientGone(), { once: true });
    }
  }

  get headersSent(): boolean {
    return this.answered;
  }

  get closed(): boolean {
    return this.ending || this.over;
  }

  /** Nobody else can end a `Response` this transport made. */
  get endedElsewhere(): boolean {
    return false;
  }

  get full(): boolean {
    return this.queued >= HIGH_WATER_MARK;
  }

  get finished(): boolean {
    return this.over;
  }

  get waitingForClient(): boolean {
    return this.waiting !== undefined;
  }

  send(status: number, headers: Record<string, string>, body: string): void {
    if (this.answered) return;
    this.answered = true;
    this.over = true;
    this.resolveResponse(
      new Response(body, { status, headers: { ...headers, ...this.answerHeaders } }),
    );
    this.notifyClose();
  }

  closeAfterAnswer(): void {
    this.answerHeaders = { Connection: 'close' };
  }

  open(headers: Record<string, string | number> = {}, first = ''): void {
    if (this.answered) return;
    this.answered = true;
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: (controller) => this.pull(controller),
        cancel: () => this.clientGone(),
      },
      // No queue inside the stream: ours says what the client has taken.
      { highWaterMark: 0 },
    );
    if (first !== '') this.write(first);
    const all: Record<string, string> = { ...SSE_HEADERS };
    for (const [name, value] of Object.entries(headers)) all[name] = String(value);
    this.resolveResponse(new Response(body, { status: 200, headers: all }));
  }

  write(chunk: string): boolean {
    if (chunk === '' || this.closed) return true;
    this.writes++;
    const bytes = UTF8.encode(chunk);
    const pulling = this.pullWaiting;
    if (pulling && this.controller) {
      // The client is waiting for a chunk: hand it over at once.
      this.pullWaiting = undefined;
      this.controller.enqueue(bytes);
      pulling();
      return true;
    }
    this.queue.push(bytes);
    this.queued += bytes.length;
    return this.queued < HIGH_WATER_MARK;
  }

  ready(): Promise<void> {
    if (this.closed || !this.full) return Promise.resolve();
    if (!this.waiting) {
      const started = performance.now();
      this.backpressureWaits++;
      this.queuedAtCheck = this.queued;
      this.lastProgressAt = 0;
      this.waiting = new Promise<void>((resolve) => {
        this.wake = () => {
          this.backpressureMs += performance.now() - started;
          this.waiting = undefined;
          this.wake = undefined;
          resolve();
        };
      });
    }
    return this.waiting;
  }

  stalledFor(now: number): number {
    if (this.waiting === undefined) return 0;
    if (this.queued < this.queuedAtCheck || this.lastProgressAt === 0) this.lastProgressAt = now;
    this.queuedAtCheck = this.queued;
    return now - this.lastProgressAt;
  }

  release(): void {
    this.wake?.();
  }

  end(chunk?: string): void {
    if (this.closed) return;
    if (chunk) this.write(chunk);
    this.ending = true;
    if (!this.answered) {
      // Nothing was opened: an empty answer, as Node's `res.end()` gives.
      this.send(200, {}, '');
      return;
    }
    if (this.queue.length === 0) this.closeBody();
  }

  destroy(): void {
    const controller = this.controller;
    if (!this.answered) this.send(500, {}, '');
    else if (controller && !this.over) controller.error(new Error('tokenmeter: stream destroyed'));
    this.ending = true;
    this.queue.length = 0;
    this.queued = 0;
    this.over = true;
    this.release();
    this.notifyClose();
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** The client asks for the next chunk. */
  private pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> | undefined {
    const chunk = this.queue.shift();
    if (chunk) {
      this.queued -= chunk.length;
      controller.enqueue(chunk);
      if (this.queue.length === 0 && this.ending) this.closeBody();
      else if (!this.full) this.release();
      return undefined;
    }
    if (this.ending) {
      this.closeBody();
      return undefined;
    }
    // Nothing to give yet: the next write hands its chunk over.
    return new Promise((resolve) => {
      this.pullWaiting = resolve;
    });
  }

  private closeBody(): void {
    if (this.over) return;
    this.over = true;
    const pulling = this.pullWaiting;
    this.pullWaiting = undefined;
    this.controller?.close();
    pulling?.();
    this.notifyClose();
  }

  /** The client left (the body was cancelled, or the request aborted). */
  private clientGone(): void {
    if (this.over) return;
    this.over = true;
    this.queue.length = 0;
    this.queued = 0;
    const pulling = this.pullWaiting;
    this.pullWaiting = undefined;
    pulling?.();
    this.release();
    this.notifyClose();
  }

  private notifyClose(): void {
    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
  }
}
