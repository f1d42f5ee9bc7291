/**
 * What the metered stream needs of a response, and no more: a whole answer before any
 * stream (a rejection), or a stream opened once, written chunk by chunk with backpressure,
 * and ended or destroyed; and word when the client goes. One implementation per kind of
 * response: Node's `ServerResponse` (Express, Fastify's `reply.raw`), a Web `Response`.
 */

/** SSE response headers: sent when a stream opens, after admission. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  // no-transform: compression() and proxies must not buffer the stream.
  'Cache-Control': 'no-cache, no-transform',
  // nginx buffers proxied responses unless told not to.
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};

export interface Transport {
  /** True once a status line went out: a stream opened, or an answer was sent. */
  readonly headersSent: boolean;
  /** True once the client is gone or the response ended: nothing more may be written. */
  readonly closed: boolean;
  /** True when someone else ended the response (an app's error handler), not this transport. */
  readonly endedElsewhere: boolean;
  /** True while written bytes wait for the client (a write now would queue more). */
  readonly full: boolean;
  /** True while a write waits for the client to read. */
  readonly waitingForClient: boolean;
  /** Writes so far: the keep-alive timer compares it between ticks. */
  readonly writes: number;
  /** Times a write had to wait for the client, and the total wait in ms. */
  readonly backpressureWaits: number;
  readonly backpressureMs: number;

  /** Answers the request whole (before any stream): status, headers, body. Once. */
  send(status: number, headers: Record<string, string>, body: string): void;
  /** Asks that the connection not be reused after the answer (the body was not read). */
  closeAfterAnswer(): void;
  /** Opens the stream (status 200) with `first` in the same write. Once. */
  open(headers: Record<string, string | number>, first?: string): void;
  /** Writes a chunk; false when the caller must `await ready()` before the next. */
  write(chunk: string): boolean;
  /** Resolves when the client read what was queued, left, or the stream was released. */
  ready(): Promise<void>;
  /** How long the client has read nothing while a write waits on it, in ms (0 if none). */
  stalledFor(now: number): number;
  /** Ends a pending `ready()` at once (the stream is over). */
  release(): void;
  /** Ends the response, with a last chunk (idempotent). */
  end(chunk?: string): void;
  /** Closes the connection without a final event. */
  destroy(): void;
  /** True once everything written was handed to the client's connection. */
  readonly finished: boolean;
  /** Calls `listener` once when the response closes (client gone, or ended); returns an unsubscribe. */
  onClose(listener: () => void): () => void;
}
