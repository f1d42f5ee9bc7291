// The fake LLM server: routes requests to the Anthropic or OpenAI wire formats (Messages,
// Chat Completions, Responses), applies the knobs (server options overridden by
// `x-fake-llm-*` headers), answers errors and faults, starts one generation job per answer,
// and keeps the records tests assert on.

import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { anthropicProtocol, countTokensBody } from './anthropic.js';
import { GenerationJob, type JobHooks } from './generation.js';
import { IdFactory, requestId } from './ids.js';
import { countInputTokens } from './input-tokens.js';
import { DEFAULT_KNOBS, KnobError, knobsFromHeaders, mergeKnobs } from './knobs.js';
import { openaiProtocol } from './openai.js';
import { planOutput } from './plan.js';
import type { ApiError, ProviderProtocol, ResponseContext, Route } from './protocol.js';
import { MutableRequestRecord } from './record.js';
import { inputTokensBody, responsesProtocol } from './responses.js';
import type {
  FakeLLMEvents,
  FakeLLMOptions,
  FakeLLMTotals,
  KnobOptions,
  Knobs,
  RequestRecord,
} from './types.js';

/** Request bodies above this are refused with 413, like the real APIs. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_RECORDS = 10_000;
const DEFAULT_WAIT_MS = 30_000;

const ROUTES: ReadonlyMap<string, { protocol: ProviderProtocol; route: Route }> = new Map([
  ['/v1/messages', { protocol: anthropicProtocol, route: 'messages' as Route }],
  ['/v1/messages/count_tokens', { protocol: anthropicProtocol, route: 'count_tokens' as Route }],
  ['/v1/chat/completions', { protocol: openaiProtocol, route: 'chat_completions' as Route }],
  // OpenAI clients given the bare server URL as baseURL call this.
  ['/chat/completions', { protocol: openaiProtocol, route: 'chat_completions' as Route }],
  ['/v1/responses', { protocol: responsesProtocol, route: 'responses' as Route }],
  ['/responses', { protocol: responsesProtocol, route: 'responses' as Route }],
  ['/v1/responses/input_tokens', { protocol: responsesProtocol, route: 'input_tokens' as Route }],
  ['/responses/input_tokens', { protocol: responsesProtocol, route: 'input_tokens' as Route }],
]);

/**
 * The answer to a WebSocket upgrade of the Responses route (Codex CLI tries one first): the
 * fake serves HTTP only, and a 426 is what makes a client fall back to POST at once (Codex
 * retries other statuses with backoff before falling back).
 */
const WEBSOCKET_REFUSAL: ApiError = {
  status: 426,
  type: 'invalid_request_error',
  message:
    'This fake serves the Responses API over HTTP only (POST with stream: true for SSE); WebSocket mode is not supported.',
  code: 'websocket_not_supported',
  param: null,
};

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return /\bwebsocket\b/i.test(req.headers.upgrade ?? '');
}

/** Which error shape an unknown route gets: Anthropic SDKs always send anthropic-version. */
function providerOf(path: string, req: IncomingMessage): ProviderProtocol {
  if (req.headers['anthropic-version'] !== undefined) return anthropicProtocol;
  return /\/(chat|completions|responses|embeddings|models)\b/.test(path)
    ? openaiProtocol
    : anthropicProtocol;
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(buffer: Buffer): unknown {
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    return undefined;
  }
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function bearer(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

/** Options of the wait helpers. */
export interface WaitOptions {
  /** Rejects after this many ms. Defaults to 30,000. */
  timeoutMs?: number;
}

/**
 * A running fake. Read `requests` (or listen to `'request-end'`) to see what it did; tests
 * normally call `close()` in `afterAll`/`afterEach`.
 */
export class FakeLLM extends EventEmitter<FakeLLMEvents> {
  /** Base URL, e.g. `http://127.0.0.1:4010` (Anthropic baseURL; OpenAI adds `/v1`). */
  url = '';
  port = 0;
  readonly host: string;

  readonly #server: Server;
  readonly #ids = new IdFactory();
  readonly #initialKnobs: Knobs;
  #knobs: Knobs;
  readonly #apiKey: string | undefined;
  readonly #maxRecords: number;
  readonly #headerKnobs: boolean;
  readonly #records: MutableRequestRecord[] = [];
  readonly #byId = new Map<string, MutableRequestRecord>();
  /** Requests whose response has not closed yet, with their job if one was started. */
  readonly #active = new Map<MutableRequestRecord, GenerationJob | undefined>();
  readonly #endWaiters = new Map<string, Array<(record: RequestRecord) => void>>();
  #idleWaiters: Array<() => void> = [];
  #seq = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #totals: FakeLLMTotals = FakeLLM.#zeroTotals();
  readonly #hooks: JobHooks = {
    isServerClosing: () => this.#closing,
    onClientClose: (record) => {
      this.#totals.clientCloses += 1;
      this.emit('client-close', record);
    },
    onEnd: (record) => this.#end(record),
  };

  /** Use `startFakeLLM()`; the constructor validates options but does not listen. */
  constructor(options: FakeLLMOptions = {}) {
    super();
    this.#initialKnobs = mergeKnobs(DEFAULT_KNOBS, options);
    this.#knobs = { ...this.#initialKnobs };
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    if (!Number.isInteger(this.port) || this.port < 0 || this.port > 65535) {
      throw new KnobError(`port: expected an integer from 0 to 65535, got ${options.port}`);
    }
    this.#apiKey = options.apiKey;
    this.#maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    if (!(this.#maxRecords >= 0)) {
      throw new KnobError(`maxRecords: expected a non-negative number, got ${options.maxRecords}`);
    }
    this.#headerKnobs = options.headerKnobs ?? true;
    // requestTimeout 0: a deliberately hanging answer must not be cut by Node's 5 min guard.
    this.#server = createServer({ requestTimeout: 0 }, this.#onRequest);
  }

  static #zeroTotals(): FakeLLMTotals {
    return { requests: 0, tokensGenerated: 0, tokensSent: 0, clientCloses: 0, writesBlocked: 0 };
  }

  /** Starts listening; resolves once the port is bound. */
  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      // A deep backlog so 1,000 simultaneous connects are not dropped and retried after 1 s.
      this.#server.listen({ port: this.port, host: this.host, backlog: 4096 }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address() as AddressInfo;
    this.port = address.port;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `http://${host}:${this.port}`;
    return this;
  }

  /** Records of requests so far, oldest first (live objects). */
  get requests(): readonly RequestRecord[] {
    return this.#records;
  }

  /** The most recent request. */
  get lastRequest(): RequestRecord | undefined {
    return this.#records[this.#records.length - 1];
  }

  /** Requests whose response is still open. */
  get inFlight(): number {
    return this.#active.size;
  }

  /** Totals since start (or the last `reset()`), including records already dropped. */
  get totals(): Readonly<FakeLLMTotals> {
    return this.#totals;
  }

  /** The server-level knobs currently in effect. */
  get knobs(): Readonly<Knobs> {
    return this.#knobs;
  }

  /** The record of request `id` (the `request-id` / `x-request-id` header value). */
  request(id: string): RequestRecord | undefined {
    return this.#byId.get(id);
  }

  /**
   * Changes server-level knobs for later requests (validated; throws `KnobError`).
   *
   * @example
   * fake.configure({ fault: 429, retryAfterSec: 3 });
   */
  configure(options: KnobOptions): void {
    this.#knobs = mergeKnobs(this.#knobs, options);
  }

  /** Forgets all records and totals and restores the knobs given at start. */
  reset(): void {
    this.#records.length = 0;
    this.#byId.clear();
    this.#knobs = { ...this.#initialKnobs };
    this.#totals = FakeLLM.#zeroTotals();
  }

  /** Resolves with the record once request `id` has ended (waits for it to arrive, too). */
  waitForRequest(id: string, options: WaitOptions = {}): Promise<RequestRecord> {
    const known = this.#byId.get(id);
    if (known && !this.#active.has(known)) return Promise.resolve(known);
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const waiters = this.#endWaiters.get(id) ?? [];
      const waiter = (record: RequestRecord) => {
        clearTimeout(timer);
        resolve(record);
      };
      const timer = setTimeout(() => {
        const list = this.#endWaiters.get(id);
        list?.splice(list.indexOf(waiter), 1);
        const state = this.#byId.has(id) ? 'is still open' : 'never arrived';
        reject(new Error(`fake LLM: request ${id} ${state} after ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
      this.#endWaiters.set(id, waiters);
    });
  }

  /** Resolves once no response is open. */
  waitForIdle(options: WaitOptions = {}): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== waiter);
        reject(
          new Error(`fake LLM: ${this.#active.size} request(s) still open after ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#idleWaiters.push(waiter);
    });
  }

  /** Stops listening and destroys every open connection (hanging streams included). */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#closing = true;
    for (const job of this.#active.values()) job?.abortForShutdown();
    this.#closed = new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res).catch((error: unknown) => {
      // Only a bug gets here; answer 500 rather than leave the client hanging.
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fake LLM internal error: ${String(error)}`);
    });
  };

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && (path === '/' || path === '/health')) {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, inFlight: this.#active.size }));
      return;
    }

    const routed = ROUTES.get(path);
    const protocol = routed?.protocol ?? providerOf(path, req);
    const seq = ++this.#seq;
    const stem = this.#ids.stem(seq);
    const record = new MutableRequestRecord({
      id: requestId(stem),
      seq,
      provider: protocol.provider,
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      receivedAt: performance.now(),
    });
    this.#track(record, res);

    const raw = await readBody(req);
    const body = raw === 'too-large' ? undefined : parseJson(raw);
    const fields = asRecord(body);
    record.body = body;
    record.model = typeof fields.model === 'string' ? fields.model : undefined;
    record.stream = fields.stream === true;
    record.maxTokens = protocol.maxTokens(fields);
    this.emit('request-start', record);

    if (routed?.route === 'responses' && isWebSocketUpgrade(req)) {
      this.#sendError(res, record, protocol, WEBSOCKET_REFUSAL, 1);
      return;
    }

    let knobs: Knobs;
    try {
      knobs = this.#headerKnobs ? knobsFromHeaders(this.#knobs, req.headers) : { ...this.#knobs };
    } catch (error) {
      if (!(error instanceof KnobError)) throw error;
      this.#sendError(
        res,
        record,
        protocol,
        { status: 400, type: 'invalid_request_error', message: error.message },
        1,
      );
      return;
    }
    record.knobs = knobs;
    const reject = (error: ApiError) =>
      this.#sendError(res, record, protocol, error, knobs.retryAfterSec);

    if (typeof knobs.fault === 'number') {
      reject(protocol.statusError(knobs.fault, record.model));
      return;
    }
    if (raw === 'too-large') {
      reject(protocol.statusError(413, record.model));
      return;
    }
    if (!routed || req.method !== 'POST') {
      reject({
        ...protocol.statusError(404, undefined),
        message: `Not found: ${req.method} ${path}`,
      });
      return;
    }
    if (this.#apiKey !== undefined) {
      const key = req.headers['x-api-key'] ?? bearer(req.headers.authorization);
      if (key !== this.#apiKey) {
        const refused = protocol.statusError(401, record.model);
        // OpenAI quotes the refused key, masked (`sk-proj-****9999`); Anthropic does not.
        if (protocol === openaiProtocol && typeof key === 'string' && key.length > 8) {
          refused.message = `Incorrect API key provided: ${key.slice(0, 8)}****${key.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
        }
        reject(refused);
        return;
      }
    }
    const invalid = protocol.validate(routed.route, body);
    if (invalid) {
      reject(invalid);
      return;
    }

    const inputTokens =
      knobs.inputTokens ?? countInputTokens(body, protocol.provider, knobs.inputCounting);
    record.inputTokens = inputTokens;
    if (routed.route === 'count_tokens') {
      this.#sendJson(res, record, protocol, countTokensBody(inputTokens));
      return;
    }
    if (routed.route === 'input_tokens') {
      this.#sendJson(res, record, protocol, inputTokensBody(inputTokens));
      return;
    }

    const plan = planOutput(protocol.dialect, fields, knobs, record.maxTokens);
    record.blocks = plan.blocks.map(({ kind, tokens, toolName }) =>
      toolName === undefined
        ? { kind, tokens, tokensSent: 0 }
        : { kind, tokens, toolName, tokensSent: 0 },
    );
    // The record recomputes the tool input from its schema and whole size, never stores it.
    const call = plan.blocks.find((block) => block.kind === 'tool_use');
    if (call) {
      record.toolCall = { schema: call.toolSchema, inputTokens: call.inputTokens ?? call.tokens };
    }
    record.tokensPlanned = plan.totalTokens;
    record.reasoningTokens = plan.reasoningTokens;
    const streamOptions = asRecord(fields.stream_options);
    const ctx: ResponseContext = {
      stem,
      requestId: record.id,
      model: record.model ?? '',
      plan,
      inputTokens,
      cacheReadTokens: knobs.cacheReadTokens,
      cacheWrite5mTokens: protocol.provider === 'anthropic' ? knobs.cacheWrite5mTokens : 0,
      cacheWrite1hTokens: protocol.provider === 'anthropic' ? knobs.cacheWrite1hTokens : 0,
      searchResultTokens: knobs.searchResultTokens,
      speed: fields.speed === 'fast' ? 'fast' : 'standard',
      inferenceGeo:
        typeof fields.inference_geo === 'string' && fields.inference_geo !== ''
          ? fields.inference_geo
          : 'global',
      includeUsage: streamOptions.include_usage === true,
      createdSec: Math.floor(Date.now() / 1000),
      request: fields,
    };
    const job = new GenerationJob({
      res,
      record,
      protocol,
      ctx,
      knobs,
      stream: record.stream,
      hooks: this.#hooks,
    });
    if (this.#closing) {
      res.destroy();
      return;
    }
    this.#active.set(record, job);
    job.start();
  }

  #track(record: MutableRequestRecord, res: ServerResponse): void {
    this.#records.push(record);
    this.#byId.set(record.id, record);
    while (this.#records.length > this.#maxRecords) {
      const dropped = this.#records.shift()!;
      this.#byId.delete(dropped.id);
    }
    this.#active.set(record, undefined);
    this.#totals.requests += 1;
    res.once('close', () => {
      // A generation job records its own end, with more to say about why.
      if (this.#active.get(record) !== undefined) return;
      const now = performance.now();
      record.endedAt = now;
      if (!res.writableFinished && !this.#closing) {
        record.clientClosedAt = now;
        record.tokensSentAtClientClose = record.tokensSent;
        record.stopGeneration('client-closed', now);
      } else {
        record.stopGeneration(this.#closing ? 'server-closed' : 'rejected', now);
      }
      this.#end(record);
    });
  }

  #sendJson(
    res: ServerResponse,
    record: MutableRequestRecord,
    protocol: ProviderProtocol,
    body: string,
  ): void {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...protocol.baseHeaders(record.id),
    });
    record.status = 200;
    record.finishedNormally = true;
    record.stopGeneration('completed', performance.now());
    res.end(body);
  }

  #sendError(
    res: ServerResponse,
    record: MutableRequestRecord,
    protocol: ProviderProtocol,
    error: ApiError,
    retryAfterSec: number,
  ): void {
    const body = protocol.errorBody(error, record.id);
    res.writeHead(error.status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...protocol.baseHeaders(record.id),
      ...protocol.errorHeaders(error, retryAfterSec),
    });
    record.status = error.status;
    record.error = { status: error.status, type: error.type, message: error.message };
    record.stopGeneration('rejected', performance.now());
    res.end(body);
  }

  #end(record: MutableRequestRecord): void {
    if (!this.#active.delete(record)) return;
    const totals = this.#totals;
    totals.tokensGenerated += record.tokensGenerated;
    totals.tokensSent += record.tokensSent;
    totals.writesBlocked += record.writesBlocked;
    this.emit('request-end', record);
    const waiters = this.#endWaiters.get(record.id);
    if (waiters) {
      this.#endWaiters.delete(record.id);
      for (const waiter of waiters) waiter(record);
    }
    if (this.#active.size === 0 && this.#idleWaiters.length > 0) {
      const idle = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const waiter of idle) waiter();
    }
  }
}

/**
 * Starts a fake Anthropic + OpenAI server and resolves once it listens.
 *
 * @example
 * const fake = await startFakeLLM({ tokens: 200, tps: 0 });
 * const client = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
 * // …
 * await fake.close();
 */
export function startFakeLLM(options: FakeLLMOptions = {}): Promise<FakeLLM> {
  return new FakeLLM(options).listen();
}
