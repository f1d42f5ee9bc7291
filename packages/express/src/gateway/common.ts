/**
 * What the Anthropic and OpenAI gateways share: their options, reading the caller's key
 * and body, the provider call (the server's key, an allowlist of forwarded headers), and
 * the relay of a provider's stream event by event with its bytes unchanged. Admission,
 * metering, backpressure, aborts, settlement and telemetry are the engine's, the same
 * `Engine` as `costTrackedSSE()`'s, not a copy.
 */
import {
  admitAll,
  encodeComment,
  type RateLimitRule,
  type RequestFacts,
  releaseAll,
  responseEvents,
  type ScopeRef,
  type SseEncoder,
  settleAll,
  TokenmeterError,
} from '@tokenmeter/core';
import {
  asObject,
  type Config,
  checkOptionNames,
  closeIfUnread,
  describeError as describe,
  Engine,
  identifyThenRead,
  isRejection,
  type Logger,
  type MeteredStream,
  OPTION_NAMES,
  ProviderHttpError,
  type ProviderResponse,
  parseOptions,
  type Rejection,
  type RelayItem,
  type RequestParams,
  rateLimitRefusal,
  rejection,
  type Subject,
  type Transport,
  UploadGate,
  type UpstreamFailure,
  type WireProtocol,
} from '@tokenmeter/engine';
import { NodeIncoming, NodeTransport } from '@tokenmeter/engine/node';
import type { CostTrackedSSEOptions, MeteredRequest, MeteredResponse } from '../types.js';

/** The options of `anthropicGateway()` and `openaiGateway()`. */
export interface GatewayOptions
  extends Omit<CostTrackedSSEOptions, 'identify' | 'upstream' | 'request' | 'encoder'> {
  /** The provider API key: the server's, sent to the provider; never seen by callers. Required. */
  apiKey: string;
  /**
   * The provider's base URL. Defaults to `https://api.anthropic.com` (Anthropic) and
   * `https://api.openai.com/v1` (OpenAI).
   */
  baseURL?: string;
  /**
   * Who pays, from the caller's own key (`x-api-key`, or `Authorization: Bearer …`): the
   * keys your app issued, mapped to scopes. Return nothing for an unknown key (401).
   * Required.
   *
   * @example
   * identify: (key) => keys.get(key) // → { key: 'k_123', user: 'alice', team: 'search' }
   */
  identify: (
    callerKey: string | undefined,
    req: MeteredRequest,
  ) => Subject | undefined | null | Promise<Subject | undefined | null>;
  /**
   * Request headers forwarded to the provider besides the default allowlist (Anthropic:
   * `anthropic-version`, `anthropic-beta`; OpenAI: `openai-beta`). A name ending in `*`
   * is a prefix. Auth, cookies and hop-by-hop headers are never forwarded.
   *
   * @example
   * forwardHeaders: ['x-trace-*']
   */
  forwardHeaders?: readonly string[];
  /**
   * A request for a path the gateway does not serve: `'reject'` answers the provider's
   * 404 (405 for another method on its path); `'next'` passes it on, to mount two gateways
   * under one prefix (or keep your own routes there). Defaults to `'reject'`.
   */
  unknownRoutes?: 'reject' | 'next';
  /**
   * Open streams (and non-streaming calls in flight) allowed at once to each caller: the
   * first scope `identify` returns (`key` in `{ key, user, team }`), unless `rateLimits`
   * gives that scope kind a `concurrency` rule of its own, which replaces it. More get 429
   * with `Retry-After`. `false` turns it off. Defaults to 16.
   *
   * @example
   * callerConcurrency: 4 // or rateLimits: { key: [{ kind: 'concurrency', limit: 4 }] }
   */
  callerConcurrency?: number | false;
  /** The fetch used for provider calls. Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/**
 * Open streams per caller when the app set none: an agent session with its parallel side
 * requests and subagents stays well inside it, one key cannot hold a hundred provider calls.
 */
export const DEFAULT_CALLER_CONCURRENCY = 16;

/** Every option of the gateways: the compiler keeps this list and `GatewayOptions` equal. */
const { upstream: _u, request: _r, encoder: _e, ...SHARED_OPTION_NAMES } = OPTION_NAMES;
const GATEWAY_OPTION_NAMES = {
  ...SHARED_OPTION_NAMES,
  apiKey: true,
  baseURL: true,
  forwardHeaders: true,
  unknownRoutes: true,
  callerConcurrency: true,
  fetch: true,
} satisfies Record<keyof GatewayOptions, true>;

/** Never forwarded, whatever the options say. */
const NEVER_FORWARD = new Set([
  'authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'accept-encoding',
]);

/** The caller's key: `x-api-key`, or the token of `Authorization: Bearer`. */
export function callerKey(req: MeteredRequest): string | undefined {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (match?.[1]) return match[1];
  }
  return undefined;
}

/** The headers of the caller's request the provider may see. */
function forwarded(req: MeteredRequest, allow: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (NEVER_FORWARD.has(name) || typeof value !== 'string') continue;
    const ok = allow.some((rule) =>
      rule.endsWith('*') ? name.startsWith(rule.slice(0, -1)) : name === rule,
    );
    if (ok) out[name] = value;
  }
  return out;
}

/** The named headers a response has, as a plain record. */
function copied(headers: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

/** One parsed SSE event as it came: its bytes, its `event:` name and its JSON data. */
export interface SseBlock {
  wire: string;
  name: string | undefined;
  data: string | undefined;
}

const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;

/**
 * Splits a provider's SSE byte stream into events, keeping each one's bytes: one array per
 * upstream read (the events it completed), so a read of many events is relayed in one write.
 */
export async function* sseBlocks(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseBlock[]> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    const blocks: SseBlock[] = [];
    let start = 0;
    for (;;) {
      EVENT_END.lastIndex = start;
      const match = EVENT_END.exec(buffer);
      if (!match) break;
      const end = match.index + match[0].length;
      blocks.push(parseBlock(buffer.slice(start, end)));
      start = end;
    }
    buffer = buffer.slice(start);
    if (blocks.length > 0) yield blocks;
  }
  buffer += decoder.decode();
  if (buffer.trim() !== '') yield [parseBlock(buffer)];
}

function parseBlock(wire: string): SseBlock {
  let name: string | undefined;
  const data: string[] = [];
  for (const line of wire.split(/\r\n|\n|\r/)) {
    if (line.startsWith('event:')) name = line.slice(6).trimStart();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return { wire, name, data: data.length > 0 ? data.join('\n') : undefined };
}

/** What a provider answered, ready for the relay: headers, then items. */
export interface RelaySource extends AsyncIterable<RelayItem> {
  headers: Record<string, string>;
}

/** How one provider's stream events are relayed (OpenAI may drop or rewrite some). */
export type RelayFilter = (
  block: SseBlock,
  json: unknown,
) => { wire: string; event: unknown } | undefined;

/** Calls the provider and turns its answer into a relay source, or throws its HTTP error. */
export async function callProvider(options: {
  fetch: typeof fetch;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  stream: boolean;
  signal: AbortSignal;
  /** Response headers passed on to the caller (the provider's request id). */
  passHeaders: readonly string[];
  filter?: RelayFilter;
}): Promise<RelaySource> {
  const response = await options.fetch(options.url, {
    method: 'POST',
    headers: { ...options.headers, 'content-type': 'application/json' },
    body: JSON.stringify(options.body),
    signal: options.signal,
  });
  const headers = copied(response.headers, options.passHeaders);
  if (!response.ok) {
    const text = await response.text();
    throw new ProviderHttpError({
      status: response.status,
      headers: {
        ...headers,
        'content-type': response.headers.get('content-type') ?? 'application/json',
        ...copied(response.headers, ['retry-after', 'x-should-retry']),
      },
      body: text,
    });
  }
  if (!options.stream) {
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return {
      headers,
      async *[Symbol.asyncIterator]() {
        yield { wire: text, events: responseEvents(json) };
      },
    };
  }
  const body = response.body as unknown as AsyncIterable<Uint8Array> | null;
  const filter = options.filter;
  return {
    headers: { ...headers, 'content-type': 'text/event-stream; charset=utf-8' },
    async *[Symbol.asyncIterator]() {
      if (!body) return;
      for await (const blocks of sseBlocks(body)) {
        let wire = '';
        const batch: unknown[] = [];
        for (const block of blocks) {
          let json: unknown;
          if (block.data !== undefined && block.data !== '[DONE]') {
            try {
              json = JSON.parse(block.data);
            } catch {
              json = undefined;
            }
          }
          const item = filter ? filter(block, json) : { wire: block.wire, event: json };
          if (!item) continue;
          wire += item.wire;
          if (item.event !== undefined) batch.push(item.event);
        }
        yield { wire, batch };
      }
    },
  };
}

/**
 * The in-stream encoder of a gateway: nothing of tokenmeter's own protocol (the provider's
 * events are relayed as they came), keep-alive comments, and an early end as the provider's
 * own error event, `errorEvent(code, message)`.
 */
export function providerEncoder(errorEvent: (code: string, message: string) => string): SseEncoder {
  return {
    meta: () => '',
    delta: () => '',
    usage: () => '',
    done: () => '',
    error: (data) => {
      const d = data as { code?: string; message?: string };
      return errorEvent(d.code ?? 'internal_error', d.message ?? 'The stream ended early.');
    },
    comment: (text) => encodeComment(text),
  };
}

/** What a gateway's provider adapter supplies: its formats and its call. */
export interface ProviderAdapter {
  name: 'anthropic' | 'openai';
  defaultBaseURL: string;
  /** Forwarded request headers by default. */
  allowHeaders: readonly string[];
  /** Whether the body asks for a stream. */
  isStream(body: Record<string, unknown>): boolean;
  /** The model, max_tokens and input the request is admitted with. */
  params(body: Record<string, unknown>): RequestParams;
  /** The provider call for an admitted request (`countTokens`: Anthropic's count_tokens). */
  call(
    route: 'messages' | 'countTokens',
    body: Record<string, unknown>,
    forwardedHeaders: Record<string, string>,
    apiKey: string,
    baseURL: string,
    fetchImpl: typeof fetch,
    signal: AbortSignal,
  ): Promise<RelaySource>;
  /**
   * The provider's own count of a request's input tokens, where it is free (Anthropic's
   * count_tokens): asked where the bound cannot decide (see `Config.countExactly`).
   */
  countTokens?(
    body: Record<string, unknown>,
    forwardedHeaders: Record<string, string>,
    apiKey: string,
    baseURL: string,
    fetchImpl: typeof fetch,
    signal: AbortSignal,
  ): Promise<number>;
  /** A JSON error answer in the provider's own shape. */
  errorBody(status: number, code: string, message: string): { status: number; body: string };
  /** In-stream events in the provider's shape (an error; keep-alive comments). */
  encoder: SseEncoder;
}

/** How long an exact count may take before admission goes on with the prompt's bound. */
const COUNT_TIMEOUT_MS = 5_000;

/** Statuses of our rejection codes, where the code alone decides it. */
export const CODE_STATUS: Record<string, number> = {
  unauthenticated: 401,
  invalid_request: 400,
  invalid_json: 400,
  unbounded_request: 400,
  unknown_model: 400,
  input_too_large: 413,
  body_too_large: 413,
  rate_limited: 429,
  store_unavailable: 503,
  internal_error: 500,
  not_found: 404,
  method_not_allowed: 405,
  upstream_error: 502,
  upstream_auth_failed: 502,
  upstream_idle: 504,
  timeout: 504,
  handler_error: 500,
};

/**
 * `x-should-retry`, which the official SDKs read before their own rule (retry 408, 409,
 * 429 and 5xx): said for every answer, so a client neither retries what cannot succeed (an
 * unknown key, a spent budget) nor gives up on what will.
 */
function shouldRetry(status: number, code: string): 'true' | 'false' {
  if (code === 'budget_exceeded' || code === 'upstream_auth_failed') return 'false';
  return status === 408 || status === 409 || status === 429 || status >= 500 ? 'true' : 'false';
}

/** The wire protocol of a gateway: provider-shaped errors, the provider's answer relayed. */
function gatewayWire(adapter: ProviderAdapter, logger: Logger): WireProtocol {
  const reject: WireProtocol['reject'] = (transport, status, code, message, _d, headers = {}) => {
    const shaped = adapter.errorBody(status, code, message);
    transport.send(
      shaped.status,
      {
        'Content-Type': 'application/json',
        'x-should-retry': shouldRetry(shaped.status, code),
        ...headers,
      },
      shaped.body,
    );
  };
  return {
    reject,
    relay: (body) => (adapter.isStream((body ?? {}) as Record<string, unknown>) ? 'sse' : 'json'),
    endBeforeHeaders(transport, outcome, failure?: UpstreamFailure) {
      if (failure?.response) {
        relayProviderError(transport, failure.response, reject, logger);
        return;
      }
      if (outcome === 'client_disconnected' || outcome === 'client_stalled') return;
      reject(
        transport,
        CODE_STATUS[outcome] ?? 500,
        outcome,
        failure?.message ?? messageOf(outcome),
      );
    },
  };
}

/**
 * The provider's own HTTP error, passed on as it came (the SDKs raise their typed error) —
 * except a refusal of the server's key (401, 403): that is the operator's to fix, and its
 * text may quote part of the key, so the caller gets a fixed 502 and the log gets it whole.
 */
function relayProviderError(
  transport: Transport,
  response: ProviderResponse,
  reject: WireProtocol['reject'],
  logger: Logger,
): void {
  if (response.status === 401 || response.status === 403) {
    logger.error("tokenmeter: the provider refused the gateway's API key; check apiKey", {
      status: response.status,
      body: response.body,
    });
    reject(
      transport,
      502,
      'upstream_auth_failed',
      "The model provider refused this gateway's credentials. The operator has been told; retrying will not help.",
    );
    return;
  }
  const headers = { ...response.headers };
  if (headers['x-should-retry'] === undefined) {
    headers['x-should-retry'] = shouldRetry(response.status, '');
  }
  transport.send(response.status, headers, response.body);
}

function messageOf(outcome: string): string {
  switch (outcome) {
    case 'upstream_error':
      return 'The model provider could not be reached.';
    case 'upstream_idle':
    case 'timeout':
      return 'The model provider did not answer in time.';
    case 'budget_exceeded':
      return 'The budget cannot cover this request.';
    default:
      return 'Internal error.';
  }
}

type Handler = ((
  req: MeteredRequest,
  res: MeteredResponse,
  next: (error?: unknown) => void,
) => Promise<void>) & { readonly activeStreams: number };

/**
 * Builds a gateway: a request handler to mount under any prefix (`app.use('/llm', …)`)
 * that answers the provider's routes through the metered handler and every other route
 * with the provider's 404 (405 for a known path with another method).
 */
export function createGateway(
  adapter: ProviderAdapter,
  options: GatewayOptions,
  routes: {
    /** The metered route, e.g. `/v1/messages`. */
    messages: string;
    /** Anthropic's count_tokens route: admitted against rate limits, charged nothing. */
    countTokens?: string;
  },
): Handler {
  if (typeof options !== 'object' || options === null) {
    throw new TokenmeterError(
      'invalid_config',
      `${adapter.name}Gateway(options) needs an options object.`,
    );
  }
  checkOptionNames(options, GATEWAY_OPTION_NAMES, `${adapter.name}Gateway`);
  if (typeof options.apiKey !== 'string' || options.apiKey === '') {
    throw new TokenmeterError(
      'invalid_config',
      `${adapter.name}Gateway needs apiKey: the provider key the server calls with (callers never see it).`,
    );
  }
  if (typeof options.identify !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      `${adapter.name}Gateway needs identify(callerKey, req): map the keys your app issued to who pays, e.g. identify: (key) => keys.get(key).`,
    );
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const baseURL = (options.baseURL ?? adapter.defaultBaseURL).replace(/\/+$/, '');
  const allow = [...adapter.allowHeaders, ...(options.forwardHeaders ?? [])].map((h) =>
    h.toLowerCase(),
  );
  const identify = options.identify;
  const passOn = options.unknownRoutes === 'next';
  if (options.unknownRoutes !== undefined && options.unknownRoutes !== 'reject' && !passOn) {
    throw new TokenmeterError('invalid_config', "unknownRoutes must be 'reject' or 'next'.");
  }
  const callerConcurrency = options.callerConcurrency ?? DEFAULT_CALLER_CONCURRENCY;
  if (
    callerConcurrency !== false &&
    (!Number.isSafeInteger(callerConcurrency) || callerConcurrency <= 0)
  ) {
    throw new TokenmeterError(
      'invalid_config',
      `callerConcurrency must be a positive whole number of open streams per caller, or false for no limit; got ${String(callerConcurrency)}.`,
    );
  }
  const {
    apiKey: _apiKey,
    baseURL: _b,
    forwardHeaders: _f,
    fetch: _x,
    unknownRoutes: _u,
    callerConcurrency: _c,
    ...rest
  } = options;
  const config: Config<MeteredRequest> = parseOptions<MeteredRequest>(
    {
      ...rest,
      identify: (req) => identify(callerKey(req), req),
      request: (req) => adapter.params(objectBody(req)),
      // The body admission wrote its bounds into (max_tokens, server tools' max_uses).
      upstream: (req: MeteredRequest, meter: MeteredStream) =>
        adapter.call(
          'messages',
          bodyOf(req),
          forwarded(req, allow),
          options.apiKey,
          baseURL,
          fetchImpl,
          meter.signal,
        ),
      encoder: adapter.encoder,
    },
    {
      reservation: 'lease',
      maxBodyBytes: 20 * 1024 * 1024,
      readAnyBody: true,
      entry: `${adapter.name}Gateway`,
    },
  );
  config.wire = gatewayWire(adapter, config.logger);
  // The gateway forwards the body it read: admission writes its bounds into it.
  config.rewritesBody = true;
  if (callerConcurrency !== false) {
    config.callerConcurrency = { kind: 'concurrency', limit: callerConcurrency };
  }
  const count = adapter.countTokens;
  if (count) {
    config.countExactly = (req, input, model) =>
      count(
        { ...input, model },
        forwarded(req, allow),
        options.apiKey,
        baseURL,
        fetchImpl,
        AbortSignal.timeout(COUNT_TIMEOUT_MS),
      );
  }
  // One bound on uploads per address for both routes.
  const uploads = new UploadGate(config.body.uploadsPerAddress);
  const engine = new Engine(config, uploads);

  const handler = async function gateway(
    req: MeteredRequest,
    res: MeteredResponse,
    next: (error?: unknown) => void,
  ): Promise<void> {
    const path = routePath(req);
    const incoming = new NodeIncoming(req);
    const transport = new NodeTransport(res);
    const isMessages = path === routes.messages;
    const isCount = routes.countTokens !== undefined && path === routes.countTokens;
    if (!isMessages && !isCount) {
      if (passOn) {
        next();
        return;
      }
      closeIfUnread(incoming, transport);
      config.wire.reject(
        transport,
        404,
        'not_found',
        `${req.method} ${path} is not a route of this gateway.`,
      );
      return;
    }
    if (req.method !== 'POST') {
      closeIfUnread(incoming, transport);
      config.wire.reject(
        transport,
        405,
        'method_not_allowed',
        `${path} accepts POST only.`,
        {},
        {
          Allow: 'POST',
        },
      );
      return;
    }
    if (isCount) {
      await countTokens(incoming, transport);
      return;
    }
    await engine.serve(incoming, transport, {
      admitted: (stream) => {
        if (res.locals) res.locals.tokenmeter = stream satisfies MeteredStream;
      },
    });
  };

  /** count_tokens: identified and rate-limited like any call, charged nothing (it is free). */
  async function countTokens(incoming: NodeIncoming<MeteredRequest>, transport: Transport) {
    const begun = config.telemetry.begin();
    const facts: RequestFacts = {};
    const refuse = (refusal: Rejection) =>
      engine.refuse(refusal, incoming, transport, begun, facts);
    const scopes = await identifyThenRead({
      config,
      incoming,
      uploads,
      facts,
      acquired: () => {},
      clientGone: () => transport.closed,
    });
    if (isRejection(scopes)) return refuse(scopes);
    const read = asObject(incoming.body);
    if (!read.ok) return refuse(rejection(read.status, read.code, read.message));
    const body = read.body;
    const limited = await countLimits(scopes);
    if (isRejection(limited)) return refuse(limited);
    const ids = limited;
    const controller = new AbortController();
    const onClose = () => controller.abort();
    const offClose = transport.onClose(onClose);
    try {
      const source = await adapter.call(
        'countTokens',
        body,
        forwarded(incoming.req, allow),
        options.apiKey,
        baseURL,
        fetchImpl,
        controller.signal,
      );
      let text = '';
      for await (const item of source) text += item.wire;
      transport.send(200, { ...source.headers, 'Content-Type': 'application/json' }, text);
      if (ids.length > 0)
        await settleAll(config.store, ids, { costNanos: 0, tokens: 0 }).catch(() => {});
    } catch (error) {
      if (ids.length > 0) await releaseAll(config.store, ids).catch(() => {});
      if (error instanceof ProviderHttpError) {
        relayProviderError(transport, error.response, config.wire.reject, config.logger);
      } else if (!controller.signal.aborted) {
        config.wire.reject(
          transport,
          502,
          'upstream_error',
          'The model provider could not be reached.',
        );
      }
    } finally {
      offClose();
    }
  }

  /**
   * count_tokens' admission: the scopes' `requests` rate limits only (it costs nothing, and
   * holds no stream); the reservation ids to settle at zero, or a refusal.
   */
  async function countLimits(scopes: readonly ScopeRef[]): Promise<readonly string[] | Rejection> {
    const requests = scopes.flatMap((scope) => {
      const rules: readonly RateLimitRule[] = (config.rateLimits[scope.kind] ?? []).filter(
        (rule) => rule.kind === 'requests',
      );
      return rules.length > 0
        ? [
            {
              scope,
              rateLimits: rules,
              reserveNanos: 0,
              estimatedTokens: 0,
              ttlMs: config.reservationTtlMs,
            },
          ]
        : [];
    });
    if (requests.length === 0) return [];
    try {
      const result = await admitAll(config.store, requests);
      if (result.admitted) return result.reservationIds;
      // Only `requests` rules apply here: the refusal is a rate limit's.
      const refused = result.rejection;
      if (refused.reason !== 'rate_limit') {
        return rejection(429, 'rate_limited', 'Too many requests for this key.');
      }
      const limit = rateLimitRefusal(refused);
      return rejection(429, 'rate_limited', limit.message, limit.details, limit.headers, {
        scope: refused.scope.kind,
        retryAfterMs: limit.retryAfterMs,
      });
    } catch (error) {
      if (config.storeFailure === 'closed') {
        config.logger.warn('tokenmeter: store unavailable, count_tokens refused (fail closed)', {
          error: describe(error),
        });
        return rejection(
          503,
          'store_unavailable',
          'Limits cannot be checked right now; try again shortly.',
          {},
          { 'Retry-After': '1' },
        );
      }
      config.logger.warn(
        'tokenmeter: store unavailable, count_tokens let through unmetered (fail open)',
        { error: describe(error) },
      );
      return [];
    }
  }

  Object.defineProperty(handler, 'activeStreams', { get: () => engine.activeStreams });
  return handler as Handler;
}

/** The body admission read (or an app's parser did). */
function bodyOf(req: MeteredRequest): Record<string, unknown> {
  return (req.body ?? {}) as Record<string, unknown>;
}

/** The body, which must be a JSON object (an app's parser may have read something else). */
function objectBody(req: MeteredRequest): Record<string, unknown> {
  const read = asObject(req.body);
  if (!read.ok) throw new TokenmeterError('invalid_argument', read.message);
  return read.body;
}

/** The request's path below the mount point, without its query string. */
function routePath(req: MeteredRequest): string {
  const url = (req as { url?: string }).url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
