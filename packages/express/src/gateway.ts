/**
 * The gateways on Express: `anthropicGateway()` and `openaiGateway()`, handlers to mount
 * under any prefix, each a `Gateway` from the engine on Node's request and response.
 */
import type { MeteredStream } from '@tokenmeter/engine';
import {
  ANTHROPIC_GATEWAY,
  type GatewayOptions as EngineGatewayOptions,
  Gateway,
  type GatewayProvider,
  callerKey as keyOf,
  nodeHeaders,
  OPENAI_GATEWAY,
  routePath,
} from '@tokenmeter/engine/gateway';
import { NodeIncoming, NodeTransport } from '@tokenmeter/engine/node';
import type { MeteredRequest, MeteredResponse } from './types.js';

/** The options of `anthropicGateway()` and `openaiGateway()`: callbacks receive Express's request. */
export type GatewayOptions = EngineGatewayOptions<MeteredRequest>;

type Next = (error?: unknown) => void;

/** The caller's key: `x-api-key`, or the token of `Authorization: Bearer`. */
export function callerKey(req: MeteredRequest): string | undefined {
  return keyOf(nodeHeaders(req.headers));
}

function expressGateway(provider: GatewayProvider, options: GatewayOptions, entry: string) {
  const gateway = new Gateway<MeteredRequest>(provider, options, entry, (req) =>
    nodeHeaders(req.headers),
  );
  const handler = async function meteredGateway(
    req: MeteredRequest,
    res: MeteredResponse,
    next: Next,
  ): Promise<void> {
    const served = await gateway.serve(
      new NodeIncoming(req),
      new NodeTransport(res),
      req.method ?? 'GET',
      // Below the mount point: Express strips the prefix from `req.url`.
      routePath(req.url ?? '/'),
      {
        admitted: (stream) => {
          if (res.locals) res.locals.tokenmeter = stream satisfies MeteredStream;
        },
      },
    );
    if (!served) next();
  };
  Object.defineProperty(handler, 'activeStreams', { get: () => gateway.activeStreams });
  return handler as typeof handler & { readonly activeStreams: number };
}

/**
 * An Express handler that serves the Anthropic Messages API — `POST /v1/messages`
 * (streaming and not) and `POST /v1/messages/count_tokens` — metered exactly like
 * `costTrackedSSE()`: the caller's own key names who pays, the request's worst case is
 * reserved, the provider's events go to the caller as it sent them, the upstream call is
 * aborted when the caller leaves, and the cost is settled once. Mount it under any prefix
 * and point the SDK at it; every other route answers Anthropic's 404.
 *
 * @example
 * app.use('/llm', anthropicGateway({
 *   apiKey: process.env.ANTHROPIC_API_KEY!,
 *   store: createRedisStore({ url: process.env.REDIS_URL }),
 *   identify: (key) => keys.get(key), // your keys → { key, user, team }
 *   budgets: { team: { limitUsd: '200', period: 'month' } },
 * }));
 * const client = new Anthropic({ baseURL: 'http://localhost:3000/llm', apiKey: 'tm_live_…' });
 */
export function anthropicGateway(options: GatewayOptions) {
  return expressGateway(ANTHROPIC_GATEWAY, options, 'anthropicGateway');
}

/**
 * An Express handler that serves OpenAI Chat Completions — `POST /v1/chat/completions`,
 * streaming and not — metered exactly like `costTrackedSSE()`. Mount it under any prefix
 * and point the SDK's `baseURL` at `<prefix>/v1`; every other route answers OpenAI's 404.
 *
 * @example
 * app.use('/llm', openaiGateway({
 *   apiKey: process.env.OPENAI_API_KEY!,
 *   store,
 *   identify: (key) => keys.get(key),
 *   budgets: { user: { limitUsd: '5', period: 'day' } },
 * }));
 * const client = new OpenAI({ baseURL: 'http://localhost:3000/llm/v1', apiKey: 'tm_live_…' });
 */
export function openaiGateway(options: GatewayOptions) {
  return expressGateway(OPENAI_GATEWAY, options, 'openaiGateway');
}
