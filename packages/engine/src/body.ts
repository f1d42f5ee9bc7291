/**
 * Reading a JSON request body ourselves, after the caller is identified: within a byte
 * limit checked while reading, a nesting depth checked before parsing, and a bound on
 * uploads in progress per client address — so an unknown or abusive caller cannot make
 * the server hold or parse megabytes it never agreed to.
 */
import { REQUEST_SHAPE_LIMITS } from '@tokenmeter/core/providers';
import type { Transport } from './transport.js';

export interface BodyLimits {
  /** Largest body read, in bytes (413 past it). */
  maxBytes: number;
  /** Bodies being read at once from one client address; null: no bound. */
  uploadsPerAddress: number | null;
  /**
   * Read whatever the content type (a gateway: its routes take JSON only); otherwise
   * only a JSON body nobody parsed yet.
   */
  always: boolean;
}

export type BodyRead =
  | { ok: true; body: Record<string, unknown> }
  | { ok: false; status: number; code: string; message: string; headers?: Record<string, string> };

/** Uploads in progress per client address, for one handler. */
export class UploadGate {
  private readonly open = new Map<string, number>();

  constructor(private readonly limit: number | null) {}

  /** Takes a slot for the request's address; false when the address has none left. */
  enter(address: string): boolean {
    if (this.limit === null) return true;
    const n = this.open.get(address) ?? 0;
    if (n >= this.limit) return false;
    this.open.set(address, n + 1);
    return true;
  }

  leave(address: string): void {
    if (this.limit === null) return;
    const n = (this.open.get(address) ?? 1) - 1;
    if (n <= 0) this.open.delete(address);
    else this.open.set(address, n);
  }

  /** Addresses with an upload in progress (0 when idle). */
  get size(): number {
    return this.open.size;
  }
}

/**
 * The request as the engine sees it, whatever the framework: the framework's own request
 * (what the app's callbacks receive), a slot for its parsed body, and how to read the body
 * when no parser did. One implementation per kind of request: Node's `IncomingMessage`
 * (Express, Fastify's `request.raw`), a Web `Request`.
 */
export interface Incoming<R> {
  /** The framework's request: what `identify()`, `request()` and `upstream()` receive. */
  readonly req: R;
  /** The parsed body: a parser's before us, or the one admission read (and bounded). */
  body: unknown;
  /**
   * Whether admission has a body to read: none was parsed, and there is one — JSON, or
   * anything where `always`.
   */
  hasBodyToRead(always: boolean): boolean;
  /** The raw body, chunk by chunk (read once). */
  chunks(): AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** The declared `Content-Length`, if any. */
  readonly declaredLength: number | undefined;
  /**
   * The client's address, for the per-address bound on uploads; undefined where the
   * runtime does not tell it (that bound then does not apply).
   */
  readonly address: string | undefined;
  /** True once the body was read to its end (or there was none). */
  readonly complete: boolean;
}

/** A JSON content type (`application/json`, `application/vnd.api+json`, …). */
export function isJsonType(type: string | null | undefined): boolean {
  return typeof type === 'string' && /^application\/(?:[\w.+-]+\+)?json\b/i.test(type);
}

/** Reads and parses the body as a JSON object, within the limits. */
export async function readJsonBody<R>(
  incoming: Incoming<R>,
  limits: BodyLimits,
  gate: UploadGate,
): Promise<BodyRead> {
  const declared = incoming.declaredLength;
  if (declared !== undefined && declared > limits.maxBytes) return tooLarge(limits.maxBytes);
  const address = incoming.address;
  if (address !== undefined && !gate.enter(address)) {
    return {
      ok: false,
      status: 429,
      code: 'rate_limited',
      message: `Too many uploads in progress from ${address || 'this address'}; send fewer requests at once.`,
      headers: { 'Retry-After': '1' },
    };
  }
  try {
    const chunks: Uint8Array[] = [];
    const shape = new ShapeScan();
    let size = 0;
    for await (const chunk of incoming.chunks()) {
      size += chunk.length;
      if (size > limits.maxBytes) return tooLarge(limits.maxBytes);
      const problem = shape.scan(chunk);
      if (problem) return badShape(problem);
      chunks.push(chunk);
    }
    return parse(concat(chunks, size));
  } catch {
    return {
      ok: false,
      status: 400,
      code: 'invalid_json',
      message: 'The request body could not be read.',
    };
  } finally {
    if (address !== undefined) gate.leave(address);
  }
}

/**
 * Sends `Connection: close` with an answer given before the request's body was read to its
 * end: the rest is not worth reading, and the socket is not reused.
 */
export function closeIfUnread<R>(incoming: Incoming<R>, transport: Transport): void {
  if (!incoming.complete) transport.closeAfterAnswer();
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

const UTF8 = new TextDecoder();

/** Parses JSON text already checked by a `ShapeScan`. */
function parse(bytes: Uint8Array): BodyRead {
  let body: unknown;
  try {
    body = JSON.parse(UTF8.decode(bytes));
  } catch {
    return {
      ok: false,
      status: 400,
      code: 'invalid_json',
      message: 'The request body is not valid JSON.',
    };
  }
  return asObject(body);
}

/** A parsed body, which must be a JSON object (a parser may have read anything). */
export function asObject(body: unknown): BodyRead {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? { ok: true, body: body as Record<string, unknown> }
    : {
        ok: false,
        status: 400,
        code: 'invalid_request',
        message: 'The request body must be a JSON object.',
      };
}

function tooLarge(limit: number): BodyRead {
  return {
    ok: false,
    status: 413,
    code: 'body_too_large',
    message: `The request body is larger than ${limit} bytes.`,
  };
}

const tooMany = (max: number) => `The request has more than ${max} values.`;

function badShape(message: string): BodyRead {
  return { ok: false, status: 400, code: 'invalid_request', message };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The shape of JSON text read in chunks, checked without parsing it against the limits
 * admission holds a parsed body to (`REQUEST_SHAPE_LIMITS`): nesting depth, and values
 * (the body and every element, counted as admission counts them). Strings are skipped
 * with `indexOf`; a backslash run of odd length escapes the quote after it.
 */
export class ShapeScan {
  private depth = 0;
  /** The values so far: the body itself, and each element of an array or object. */
  private values = 1;
  /** The last structural byte opened a container. */
  private opened = false;
  private inString = false;
  /** A chunk ended inside a string on a backslash run of odd length. */
  private escaped = false;

  /** Scans the next chunk: what is wrong with the body so far, if anything. */
  scan(chunk: Uint8Array): string | undefined {
    const { depth: maxDepth, values: maxValues } = REQUEST_SHAPE_LIMITS;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        const q = chunk.indexOf(QUOTE, i);
        const end = q < 0 ? n : q;
        // Backslashes right before the quote (or the chunk's end) decide what comes next.
        let run = 0;
        for (let j = end - 1; j >= i && chunk[j] === BACKSLASH; j--) run++;
        if (q < 0) {
          this.escaped = run % 2 === 1;
          return undefined;
        }
        if (run % 2 === 0) this.inString = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i] as number;
      i++;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      // The first element of a container: later ones follow a comma.
      if (this.opened) {
        this.opened = false;
        if (c !== 0x7d && c !== 0x5d && ++this.values > maxValues) return tooMany(maxValues);
      }
      if (c === QUOTE) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (++this.depth > maxDepth)
          return `The request is nested more than ${maxDepth} levels deep.`;
        this.opened = true;
      } else if (c === 0x7d || c === 0x5d) this.depth--;
      else if (c === 0x2c && ++this.values > maxValues) return tooMany(maxValues);
    }
    return undefined;
  }
}
