/**
 * The gateways on Web-standard `Request` → `Response`: a provider's own API (Anthropic
 * Messages, OpenAI Chat Completions) behind budgets and rate limits, as a fetch handler for
 * a Next.js catch-all route, Bun, Deno, or Hono (`app.all('/llm/*', (c) => gateway(c.req.raw))`).
 */
import { TokenmeterError } from '@tokenmeter/core';
import {
  ANTHROPIC_GATEWAY,
  Gateway,
  type GatewayOptions,
  type GatewayProvider,
  OPENAI_GATEWAY,
} from '@tokenmeter/engine/gateway';
import { respond, type WebHandler } from './route.js';
import { WebIncoming } from './web-incoming.js';

/** The options of the Web gateways: callbacks receive the `Request`. */
export type WebGatewayOptions = Omit<GatewayOptions<Request>, 'unknownRoutes'> & {
  /**
   * Where the gateway is mounted: the part of the URL's path before the provider's routes
   * (`'/llm'` serves `/llm/v1/messages`). Defaults to `''`. Every path under it that is
   * not one of the provider's routes gets the provider's 404.
   */
  basePath?: string;
  /** The client's address, for `uploadsPerAddress`, where the runtime tells it. */
  clientAddress?: (request: Request) => string | undefined;
};

function webGateway(
  provider: GatewayProvider,
  options: WebGatewayOptions,
  entry: string,
): WebHandler<Request> {
  if (typeof options !== 'object' || options === null) {
    throw new TokenmeterError('invalid_config', `${entry}(options) needs an options object.`);
  }
  if ('unknownRoutes' in options) {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} answers every path it is given (the provider's 404 for unknown ones); route only its prefix to it instead of unknownRoutes.`,
    );
  }
  const { basePath = '', clientAddress, ...rest } = options;
  if (typeof basePath !== 'string' || (basePath !== '' && !basePath.startsWith('/'))) {
    throw new TokenmeterError(
      'invalid_config',
      `basePath must be a path starting with '/' (or '' for none); got ${JSON.stringify(basePath)}.`,
    );
  }
  const base = basePath.replace(/\/+$/, '');
  const gateway = new Gateway<Request>(provider, rest, entry, (request) => request.headers);
  const handler = async (request: Request): Promise<Response> => {
    const pathname = new URL(request.url).pathname;
    // A path outside basePath (a router that passed it on) is taken as it is.
    const path = pathname.startsWith(`${base}/`) ? pathname.slice(base.length) : pathname;
    return respond(request, (transport) =>
      gateway.serve(
        new WebIncoming(request, request, clientAddress?.(request)),
        transport,
        request.method,
        path,
      ),
    );
  };
  Object.defineProperty(handler, 'activeStreams', { get: () => gateway.activeStreams });
  return handler as WebHandler<Request>;
}

/**
 * A fetch handler serving the Anthropic Messages API — `POST /v1/messages` (streaming and
 * not) and `POST /v1/messages/count_tokens` — metered exactly like `meteredSSE()`: the
 * caller's own key names who pays, the worst case is reserved, the provider's events are
 * relayed as they came, the provider call is aborted when the caller leaves, and the cost
 * is settled once.
 *
 * @example
 * // app/llm/[...path]/route.ts (Next.js)
 * export const POST = anthropicGateway({
 *   basePath: '/llm',
 *   apiKey: process.env.ANTHROPIC_API_KEY!,
 *   store,
 *   identify: (key) => keys.get(key), // your keys → { key, user, team }
 *   budgets: { team: { limitUsd: '200', period: 'month' } },
 * });
 * const client = new Anthropic({ baseURL: 'https://your.app/llm', apiKey: 'tm_live_…' });
 */
export function anthropicGateway(options: WebGatewayOptions): WebHandler<Request> {
  return webGateway(ANTHROPIC_GATEWAY, options, 'anthropicGateway');
}

/**
 * A fetch handler serving OpenAI Chat Completions — `POST /v1/chat/completions`, streaming
 * and not — metered exactly like `meteredSSE()`. Point the SDK's `baseURL` at `<basePath>/v1`.
 *
 * @example
 * export const POST = openaiGateway({ basePath: '/llm', apiKey: process.env.OPENAI_API_KEY!, store, identify: (key) => keys.get(key) });
 * const client = new OpenAI({ baseURL: 'https://your.app/llm/v1', apiKey: 'tm_live_…' });
 */
export function openaiGateway(options: WebGatewayOptions): WebHandler<Request> {
  return webGateway(OPENAI_GATEWAY, options, 'openaiGateway');
}
