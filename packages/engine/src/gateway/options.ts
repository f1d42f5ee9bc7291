/**
 * The gateways' options: a metered route's (the same budgets, limits, store, telemetry),
 * with the provider's key and address in place of `upstream`, and `identify` given the
 * caller's own key. Checked once, at creation, and turned into the engine's settings.
 */
import { type SseEncoder, TokenmeterError } from '@tokenmeter/core';
import { asObject } from '../body.js';
import { checkOptionNames } from '../option-checks.js';
import { type Config, OPTION_NAMES } from '../options.js';
import { parseOptions } from '../parse-options.js';
import type { WireProtocol } from '../protocols.js';
import type { Logger, MeteredOptions, MeteredStream, Subject } from '../types.js';
import { callerKey, forwarded, type HeaderList } from './headers.js';
import type { Endpoint, GatewayProvider, MeteredRoute } from './provider.js';
import { gatewayWire } from './wire.js';

/** The options of `anthropicGateway()` and `openaiGateway()`. */
export interface GatewayOptions<R>
  extends Omit<MeteredOptions<R>, 'identify' | 'upstream' | 'request' | 'encoder'> {
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
    req: R,
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
export const GATEWAY_OPTION_NAMES = {
  ...SHARED_OPTION_NAMES,
  apiKey: true,
  baseURL: true,
  forwardHeaders: true,
  unknownRoutes: true,
  callerConcurrency: true,
  fetch: true,
} satisfies Record<keyof GatewayOptions<unknown>, true>;

/** How long an exact count may take before admission goes on with the prompt's bound. */
const COUNT_TIMEOUT_MS = 5_000;

/** What a gateway runs on: the engine's settings, the provider's address, the headers it may see. */
export interface GatewaySettings<R> {
  /**
   * Each metered route's settings: the same services (store, telemetry) and policy, with the
   * route's own request reading, provider call, exact count and wire.
   */
  configs: ReadonlyMap<MeteredRoute, Config<R>>;
  /** The first metered route's: what count_tokens-like free routes are served with. */
  config: Config<R>;
  endpoint: Endpoint;
  /** The caller's headers the provider may see. */
  forward(req: R): Record<string, string>;
  /** Unknown routes are passed on (`unknownRoutes: 'next'`) rather than answered 404. */
  passOn: boolean;
}

/**
 * Checks a gateway's options and resolves them. `headers(req)` reads the framework's
 * request: the caller's key and the headers forwarded come from it.
 */
export function gatewaySettings<R>(
  provider: GatewayProvider,
  options: GatewayOptions<R>,
  entry: string,
  headers: (req: R) => HeaderList,
): GatewaySettings<R> {
  const callerConcurrency = checkGatewayOptions(options, entry);
  const endpoint: Endpoint = {
    apiKey: options.apiKey,
    baseURL: (options.baseURL ?? provider.defaultBaseURL).replace(/\/+$/, ''),
    fetch: options.fetch ?? globalThis.fetch,
  };
  const allow = [...provider.allowHeaders, ...(options.forwardHeaders ?? [])].map((h) =>
    h.toLowerCase(),
  );
  const forward = (req: R) => forwarded(headers(req), allow);
  const {
    apiKey: _apiKey,
    baseURL: _b,
    forwardHeaders: _f,
    fetch: _x,
    unknownRoutes,
    callerConcurrency: _c,
    identify,
    ...rest
  } = options;
  const [first, ...others] = provider.metered.map(
    (route) => [route, routeParts(provider, route, forward, endpoint)] as const,
  );
  if (!first) throw new Error(`${provider.name}: a gateway needs a metered route`);
  const [firstRoute, firstParts] = first;
  const config = parseOptions<R>(
    {
      ...rest,
      identify: (req) => identify(callerKey(headers(req)), req),
      request: firstParts.request,
      upstream: firstParts.upstream,
      encoder: firstParts.encoder,
    },
    {
      reservation: 'lease',
      maxBodyBytes: 20 * 1024 * 1024,
      readAnyBody: true,
      entry,
      wire: firstParts.wire,
      // The gateway forwards the body it read: admission writes its bounds into it.
      rewritesBody: true,
      ...(callerConcurrency === false
        ? {}
        : { callerConcurrency: { kind: 'concurrency', limit: callerConcurrency } as const }),
      ...(firstParts.countExactly ? { countExactly: firstParts.countExactly } : {}),
    },
  );
  const configs = new Map<MeteredRoute, Config<R>>([[firstRoute, config]]);
  for (const [route, parts] of others) configs.set(route, withRoute(config, parts));
  return { configs, config, endpoint, forward, passOn: unknownRoutes === 'next' };
}

/** A metered route's request reading, call, wire and exact count, on the gateway's endpoint. */
function routeParts<R>(
  provider: GatewayProvider,
  route: MeteredRoute,
  forward: (req: R) => Record<string, string>,
  endpoint: Endpoint,
): RouteParts<R> {
  const count = route.countTokens;
  return {
    request: (_req, body) => route.params(objectBody(body)),
    // The body admission wrote its bounds into (max_tokens, server tools' limits).
    upstream: (req: R, meter: MeteredStream) =>
      route.call(meter.body, forward(req), endpoint, meter.signal),
    encoder: route.encoder,
    wire: (logger) => gatewayWire(provider, route, logger),
    countExactly: count
      ? (req: R, input: Record<string, unknown>, model: string) =>
          count({ ...input, model }, forward(req), endpoint, AbortSignal.timeout(COUNT_TIMEOUT_MS))
      : undefined,
  };
}

/** What one metered route sets in its settings; the rest is the gateway's. */
interface RouteParts<R> {
  request: NonNullable<MeteredOptions<R>['request']>;
  upstream: NonNullable<MeteredOptions<R>['upstream']>;
  encoder: SseEncoder;
  wire: (logger: Logger) => WireProtocol;
  countExactly: Config<R>['services']['countExactly'];
}

/** `config` with another route's parts: the same store, telemetry and policy objects. */
function withRoute<R>(config: Config<R>, parts: RouteParts<R>): Config<R> {
  return Object.freeze({
    ...config,
    services: Object.freeze({ ...config.services, countExactly: parts.countExactly }),
    hooks: Object.freeze({ ...config.hooks, request: parts.request, upstream: parts.upstream }),
    protocol: Object.freeze({
      ...config.protocol,
      wire: parts.wire(config.services.logger),
      encoder: parts.encoder,
    }),
  });
}

/** The gateway's own options checked (the shared ones are `parseOptions`'s); its caller concurrency. */
function checkGatewayOptions<R>(options: GatewayOptions<R>, entry: string): number | false {
  if (typeof options !== 'object' || options === null) {
    throw new TokenmeterError('invalid_config', `${entry}(options) needs an options object.`);
  }
  checkOptionNames(options, GATEWAY_OPTION_NAMES, entry);
  if (typeof options.apiKey !== 'string' || options.apiKey === '') {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} needs apiKey: the provider key the server calls with (callers never see it).`,
    );
  }
  if (typeof options.identify !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} needs identify(callerKey, req): map the keys your app issued to who pays, e.g. identify: (key) => keys.get(key).`,
    );
  }
  if (
    options.unknownRoutes !== undefined &&
    options.unknownRoutes !== 'reject' &&
    options.unknownRoutes !== 'next'
  ) {
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
  return callerConcurrency;
}

/** The body, which must be a JSON object (an app's parser may have read something else). */
function objectBody(body: unknown): Record<string, unknown> {
  const read = asObject(body);
  if (!read.ok) throw new TokenmeterError('invalid_argument', read.message);
  return read.body;
}
