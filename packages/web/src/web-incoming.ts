/**
 * The request on a Web `Request`: it keeps no parsed body, so the slot is ours, filled when
 * admission reads the body (after `identify`, within the byte and shape limits).
 */
import { type Incoming, isJsonType } from '@tokenmeter/engine';

export class WebIncoming<R> implements Incoming<R> {
  body: unknown = undefined;
  private readToEnd = false;

  /**
   * @param req what the app's callbacks receive (the `Request`, or a framework's context)
   * @param request the Web request itself
   * @param address the client's address, if the runtime tells it
   */
  constructor(
    readonly req: R,
    private readonly request: Request,
    readonly address: string | undefined,
  ) {}

  hasBodyToRead(always: boolean): boolean {
    const request = this.request;
    if (this.body !== undefined || request.body === null || request.bodyUsed) return false;
    return always || isJsonType(request.headers.get('content-type'));
  }

  async *chunks(): AsyncIterable<Uint8Array> {
    const body = this.request.body;
    if (!body) return;
    const reader = body.getReader();
    let done = false;
    try {
      while (true) {
        const next = await reader.read();
        if (next.done) {
          done = true;
          this.readToEnd = true;
          return;
        }
        yield next.value;
      }
    } finally {
      // Stopped early (too large, too deep): the rest is left unread, not cancelled — a
      // cancelled body may take the connection with it before the answer (413, 400) goes
      // out; the answer asks for the connection to be closed after it instead.
      if (!done) reader.releaseLock();
    }
  }

  get declaredLength(): number | undefined {
    const declared = this.request.headers.get('content-length');
    if (declared === null) return undefined;
    const n = Number(declared);
    return Number.isFinite(n) ? n : undefined;
  }

  get complete(): boolean {
    return this.readToEnd || this.request.body === null || this.request.bodyUsed;
  }
}
