/**
 * The request on Node's `IncomingMessage` (Express 4 and 5, Fastify's `request.raw`): the
 * body slot is the framework request's `body` (`req.body`, Fastify's `request.body`), where
 * body parsers leave it and where the app's handler reads it after admission wrote the
 * bounds it reserved into it.
 */
import type { IncomingMessage } from 'node:http';
import { type Incoming, isJsonType } from '../index.js';

/** A framework's request: where the parsed body is, and the client's address if it knows it. */
type BodySlot = { body?: unknown; ip?: unknown };

export class NodeIncoming<R extends BodySlot = IncomingMessage & BodySlot> implements Incoming<R> {
  /**
   * @param req the framework's request: what the app's callbacks receive, holding `body`
   * @param raw Node's request under it (the same object in Express)
   */
  constructor(
    readonly req: R,
    private readonly raw: IncomingMessage = req as unknown as IncomingMessage,
  ) {}

  get body(): unknown {
    return this.req.body;
  }

  set body(body: unknown) {
    this.req.body = body;
  }

  hasBodyToRead(always: boolean): boolean {
    const req = this.raw;
    const body = this.req.body;
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
    return this.raw as AsyncIterable<Buffer>;
  }

  get declaredLength(): number | undefined {
    const body = this.req.body;
    if (Buffer.isBuffer(body) || typeof body === 'string') return undefined;
    const declared = Number(this.raw.headers['content-length']);
    return Number.isFinite(declared) ? declared : undefined;
  }

  /** The framework's `ip` (Express and Fastify honour `trust proxy`), else the socket's. */
  get address(): string {
    const ip = this.req.ip;
    if (typeof ip === 'string' && ip !== '') return ip;
    return this.raw.socket?.remoteAddress ?? '';
  }

  get complete(): boolean {
    return this.raw.complete;
  }
}
