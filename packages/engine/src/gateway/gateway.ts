/**
 * A gateway on any framework: a provider's APIs (Anthropic Messages; OpenAI Chat
 * Completions and Responses) served at their own paths under a mount point, each call
 * admitted, metered and settled by an `Engine` like a metered route's, its answer relayed
 * byte for byte.
 * An adapter gives it the request (`Incoming`), the response (`Transport`), the method and
 * the path below the mount point.
 */
import type { RateLimitRule, ScopeRef } from '@tokenmeter/core';
import { admitAll, releaseAll, settleAll } from '@tokenmeter/core/store';
import {
  identifyThenRead,
  isRejection,
  type Rejection,
  rateLimitRefusal,
  rejection,
  storeFailurePolicy,
} from '../admission.js';
import { asObject, closeIfUnread, type Incoming, UploadGate } from '../body.js';
import { Engine, type ServeHooks } from '../engine.js';
import type { RequestFacts } from '../events.js';
import type { Config } from '../options.js';
import type { Transport } from '../transport.js';
import { ProviderHttpError } from '../upstream-errors.js';
import { asksForWebSocket, type HeaderList } from './headers.js';
import { type GatewayOptions, type GatewaySettings, gatewaySettings } from './options.js';
import type { FreeRoute, GatewayProvider } from './provider.js';
import { relayProviderError } from './wire.js';

export class Gateway<R> {
  private readonly settings: GatewaySettings<R>;
  private readonly config: Config<R>;
  /** One bound on uploads per address for every route. */
  private readonly uploads: UploadGate;
  /** One engine per metered route, by path: the same store, telemetry and uploads. */
  private readonly engines: ReadonlyMap<string, Engine<R>>;
  private readonly free: ReadonlyMap<string, FreeRoute>;

  /**
   * @param entry the function the options were given to, for error messages
   * @param headers the framework request's headers: the caller's key, and what is forwarded
   */
  constructor(
    provider: GatewayProvider,
    options: GatewayOptions<R>,
    entry: string,
    private readonly headers: (req: R) => HeaderList,
  ) {
    this.settings = gatewaySettings(provider, options, entry, headers);
    this.config = this.settings.config;
    this.uploads = new UploadGate(this.config.protocol.body.uploadsPerAddress);
    const engines = new Map<string, Engine<R>>();
    for (const [route, config] of this.settings.configs) {
      engines.set(route.path, new Engine(config, this.uploads));
    }
    this.engines = engines;
    this.free = new Map(provider.free.map((route) => [route.path, route]));
  }

  /** Streams open right now, and non-streaming calls in flight (0 when idle). */
  get activeStreams(): number {
    let open = 0;
    for (const engine of this.engines.values()) open += engine.activeStreams;
    return open;
  }

  /**
   * Answers one request at `path` (below the mount point, without its query string).
   * Resolves false, having answered nothing, for a path that is not the gateway's when
   * unknown routes are passed on; true once answered.
   */
  async serve(
    incoming: Incoming<R>,
    transport: Transport,
    method: string,
    path: string,
    hooks: ServeHooks = {},
  ): Promise<boolean> {
    const engine = this.engines.get(path);
    const free = engine ? undefined : this.free.get(path);
    if (!engine && !free) {
      if (this.settings.passOn) return false;
      closeIfUnread(incoming, transport);
      this.config.protocol.wire.reject(
        transport,
        404,
        'not_found',
        `${method} ${path} is not a route of this gateway.`,
      );
      return true;
    }
    if (method === 'GET' && engine && asksForWebSocket(this.headers(incoming.req))) {
      // Clients that try the WebSocket mode first (Codex) take 426 as "use HTTP" and POST
      // at once; any other refusal costs retries before they fall back.
      closeIfUnread(incoming, transport);
      this.config.protocol.wire.reject(
        transport,
        426,
        'websocket_not_supported',
        `${path} is served over HTTP only: POST it (the WebSocket mode is not served).`,
      );
      return true;
    }
    if (method !== 'POST') {
      closeIfUnread(incoming, transport);
      const message = `${path} accepts POST only.`;
      this.config.protocol.wire.reject(
        transport,
        405,
        'method_not_allowed',
        message,
        {},
        { Allow: 'POST' },
      );
      return true;
    }
    if (engine) await engine.serve(incoming, transport, hooks);
    else if (free) await this.serveFree(free, incoming, transport);
    return true;
  }

  /**
   * A free route (a token count): identified and rate-limited like any call, charged
   * nothing (it costs nothing).
   */
  private async serveFree(
    route: FreeRoute,
    incoming: Incoming<R>,
    transport: Transport,
  ): Promise<void> {
    const config = this.config;
    const engine = this.engines.values().next().value as Engine<R>;
    const begun = config.services.events.begin();
    const facts: RequestFacts = {};
    const refuse = (refusal: Rejection) =>
      engine.refuse(refusal, incoming, transport, begun, facts);
    const scopes = await identifyThenRead({
      config,
      incoming,
      uploads: this.uploads,
      facts,
      acquired: () => {},
      clientGone: () => transport.closed,
    });
    if (isRejection(scopes)) return refuse(scopes);
    const read = asObject(incoming.body);
    if (!read.ok) return refuse(rejection(read.status, read.code, read.message));
    const ids = await this.freeLimits(scopes);
    if (isRejection(ids)) return refuse(ids);
    const controller = new AbortController();
    const offClose = transport.onClose(() => controller.abort());
    try {
      const { forward, endpoint } = this.settings;
      const source = await route.call(
        read.body,
        forward(incoming.req),
        endpoint,
        controller.signal,
      );
      let text = '';
      for await (const item of source) text += item.wire;
      transport.send(200, { ...source.headers, 'Content-Type': 'application/json' }, text);
      if (ids.length > 0)
        await settleAll(config.services.store, ids, { costNanos: 0, tokens: 0 }).catch(() => {});
    } catch (error) {
      if (ids.length > 0) await releaseAll(config.services.store, ids).catch(() => {});
      if (error instanceof ProviderHttpError) {
        relayProviderError(
          transport,
          error.response,
          config.protocol.wire.reject,
          config.services.logger,
        );
      } else if (!controller.signal.aborted) {
        config.protocol.wire.reject(
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
   * A free route's admission: the scopes' `requests` rate limits only (it costs nothing, and
   * holds no stream); the reservation ids to settle at zero, or a refusal.
   */
  private async freeLimits(scopes: readonly ScopeRef[]): Promise<readonly string[] | Rejection> {
    const config = this.config;
    const requests = scopes.flatMap((scope) => {
      const rules: readonly RateLimitRule[] = (config.policy.rateLimits[scope.kind] ?? []).filter(
        (rule) => rule.kind === 'requests',
      );
      return rules.length > 0
        ? [
            {
              scope,
              rateLimits: rules,
              reserveNanos: 0,
              estimatedTokens: 0,
              ttlMs: config.timing.reservationTtlMs,
            },
          ]
        : [];
    });
    if (requests.length === 0) return [];
    try {
      const result = await admitAll(config.services.store, requests);
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
      return storeFailurePolicy(config, error, 'a token count') ?? [];
    }
  }
}

/** A request's path below its mount point, without its query string. */
export function routePath(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
