/**
 * The gateways as Fastify plugins: a provider's own API (Anthropic Messages, OpenAI Chat
 * Completions) behind budgets and rate limits, under the prefix the plugin is registered
 * with, answered on `reply.raw` once hijacked.
 */
import { TokenmeterError } from '@tokenmeter/core';
import {
  ANTHROPIC_GATEWAY,
  Gateway,
  type GatewayOptions,
  type GatewayProvider,
  nodeHeaders,
  OPENAI_GATEWAY,
  routePath,
} from '@tokenmeter/engine/gateway';
import { NodeIncoming, NodeTransport } from '@tokenmeter/engine/node';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { leaveBodiesUnread } from './scope.js';

/** The options of the Fastify gateways: callbacks receive Fastify's request. */
export type FastifyGatewayOptions<R extends FastifyRequest = FastifyRequest> = Omit<
  GatewayOptions<R>,
  'unknownRoutes'
>;

/** The plugin, with the number of streams it has open (0 when idle). */
export type FastifyGatewayPlugin = ((scope: FastifyInstance) => Promise<void>) & {
  readonly activeStreams: number;
};

function fastifyGateway<R extends FastifyRequest>(
  provider: GatewayProvider,
  options: FastifyGatewayOptions<R>,
  entry: string,
): FastifyGatewayPlugin {
  if (typeof options === 'object' && options !== null && 'unknownRoutes' in options) {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} answers every path under its prefix (the provider's 404 for unknown ones); register it under a prefix of its own instead of unknownRoutes.`,
    );
  }
  const gateway = new Gateway<R>(provider, options, entry, (request) =>
    nodeHeaders(request.headers),
  );
  const plugin = async function tokenmeterGateway(scope: FastifyInstance): Promise<void> {
    leaveBodiesUnread(scope);
    const prefix = scope.prefix;
    scope.all('/*', (request, reply) => {
      // The gateway answers on the raw response: Fastify sends nothing of its own.
      reply.hijack();
      const url = routePath(request.raw.url ?? '/');
      return gateway.serve(
        new NodeIncoming(request as R, request.raw),
        new NodeTransport(reply.raw),
        request.method,
        url.startsWith(prefix) ? url.slice(prefix.length) : url,
      );
    });
  };
  Object.defineProperty(plugin, 'activeStreams', { get: () => gateway.activeStreams });
  return plugin as FastifyGatewayPlugin;
}

/**
 * A Fastify plugin serving the Anthropic Messages API — `POST /v1/messages` (streaming and
 * not) and `POST /v1/messages/count_tokens` — under its prefix, metered exactly like
 * `fastifySSE()`; every other path under the prefix answers Anthropic's 404.
 *
 * @example
 * await app.register(anthropicGateway({
 *   apiKey: process.env.ANTHROPIC_API_KEY!,
 *   store,
 *   identify: (key) => keys.get(key), // your keys → { key, user, team }
 *   budgets: { team: { limitUsd: '200', period: 'month' } },
 * }), { prefix: '/llm' });
 */
export function anthropicGateway<R extends FastifyRequest = FastifyRequest>(
  options: FastifyGatewayOptions<R>,
): FastifyGatewayPlugin {
  return fastifyGateway(ANTHROPIC_GATEWAY, options, 'anthropicGateway');
}

/**
 * A Fastify plugin serving OpenAI Chat Completions — `POST /v1/chat/completions`,
 * streaming and not — under its prefix; point the SDK's `baseURL` at `<prefix>/v1`.
 *
 * @example
 * await app.register(openaiGateway({ apiKey: process.env.OPENAI_API_KEY!, store, identify: (key) => keys.get(key) }), { prefix: '/llm' });
 */
export function openaiGateway<R extends FastifyRequest = FastifyRequest>(
  options: FastifyGatewayOptions<R>,
): FastifyGatewayPlugin {
  return fastifyGateway(OPENAI_GATEWAY, options, 'openaiGateway');
}
