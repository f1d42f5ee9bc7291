/**
 * The request on Node's `IncomingMessage` (Express 4 and 5, Fastify's `request.raw`): the
 * body slot is `req.body`, where body parsers leave it and where the app's handler reads
 * it after admission wrote the bounds it reserved into it.
 */
import type { IncomingMessage } from 'node:http';
import { type Incoming, isJsonType } from '@tokenmeter/engine';

type NodeRequest = IncomingMessage & { body?: unknown };

export class NodeIncoming<R extends NodeRequest = NodeRequest> implements Incoming<R> {
  constructor(readonly req: R) {}

  get body(): unknown {
    return this.req.body;
  }

  set body(body: unknown) {
    this.req.body = body;
  }

  hasBodyToRead(always: boolean): boolean {
    const req = this.req;
    const body = req.body;
    // Raw bytes (`express.raw()`, `express.text()`): read, but not parsed.
    if (Buffer.isBuffer(body) || typeof body === 'string') return true;
    if (body !== undefined || req.readableEnded) return false;
    if (always) return true;
    const length = req.headers['content-length'];
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    return hasBody && isJsonType(req.headers['content-type']);
  }

  chunks(): AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
    const given = this.req.body;
    if (typeof given === 'string') return [Buffer.from(given)];
    if (Buffer.isBuffer(given)) return [given];
    return this.req as AsyncIterable<Buffer>;
  }

  get declaredLength(): number | undefined {
    const body = this.req.body;
    if (Buffer.isBuffer(body) || typeof body === 'string') return undefined;
    const declared = Number(this.req.headers['content-length']);
    return Number.isFinite(declared) ? declared : undefined;
  }

  /** Express's `req.ip` (which honours `trust proxy`), else the socket's. */
  get address(): string {
    const ip = (this.req as { ip?: unknown }).ip;
    if (typeof ip === 'string' && ip !== '') return ip;
    return this.req.socket?.remoteAddress ?? '';
  }

  get complete(): boolean {
    return this.req.complete;
  }
}
