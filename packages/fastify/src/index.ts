/**
 * @tokenmeter/fastify: a metered SSE route as a Fastify plugin. The route is registered in
 * its own encapsulated scope whose body is read by tokenmeter, after `identify` (an unknown
 * caller is refused from its headers, before its upload is read), and answered on
 * `reply.raw` once hijacked: the same admission, stream, backpressure, disconnect and
 * settlement as `costTrackedSSE()`.
 */
import { TokenmeterError } from '@tokenmeter/core';
import { Engine, type MeteredOptions, parseOptions, SSE_DEFAULTS } from '@tokenmeter/engine';
import { NodeIncoming, NodeTransport } from '@tokenmeter/engine/node';
import type { FastifyInstance, FastifyRequest, HTTPMethods } from 'fastify';
import { leaveBodiesUnread } from './scope.js';

export type {
  ErrorBody,
  ServerToolLimit,
  SseBudget,
  SseDeltaData,
  SseDoneData,
  SseErrorData,
  SseFinalUsage,
  SseMetaData,
  SseUsageData,
} from '@tokenmeter/core';
export type {
  BudgetAlert,
  BudgetInput,
  Logger,
  MeteredOptions,
  MeteredStream,
  RequestParams,
  ReservationStrategy,
  SettleInfo,
  StreamLimit,
  Subject,
  TelemetryOptions,
} from '@tokenmeter/engine';
export {
  anthropicGateway,
  type FastifyGatewayOptions,
  type FastifyGatewayPlugin,
  openaiGateway,
} from './gateway.js';

/** The options of `fastifySSE()`: the route, and a metered route's options (callbacks receive Fastify's request). */
export type FastifySSEOptions<R extends FastifyRequest = FastifyRequest> = Omit<
  MeteredOptions<R>,
  'upstream'
> & {
  /** The route's path (under the prefix the plugin is registered with). */
  url: string;
  /** Defaults to `'POST'`. */
  method?: HTTPMethods;
  /** The provider call, started with `meter.signal`. Required: there is no next handler. */
  upstream: NonNullable<MeteredOptions<R>['upstream']>;
};

/** The plugin, with the number of streams it has open (0 when idle). */
export type FastifySSEPlugin = ((scope: FastifyInstance) => Promise<void>) & {
  readonly activeStreams: number;
};

/**
 * A Fastify plugin serving one metered SSE route.
 *
 * @example
 * await app.register(fastifySSE({
 *   url: '/api/chat',
 *   store,
 *   identify: (request) => request.user && { user: request.user.id },
 *   budgets: { user: { limitUsd: '5.00', period: 'day' } },
 *   upstream: (request, meter) =>
 *     anthropic.messages.create({ ...meter.body, ...meter.params, stream: true }, { signal: meter.signal }),
 * }));
 */
export function fastifySSE<R extends FastifyRequest = FastifyRequest>(
  options: FastifySSEOptions<R>,
): FastifySSEPlugin {
  if (typeof options !== 'object' || options === null || typeof options.url !== 'string') {
    throw new TokenmeterError(
      'invalid_config',
      "fastifySSE(options) needs an options object with at least { url: '/api/chat', store, identify, upstream }.",
    );
  }
  const { url, method = 'POST', ...rest } = options;
  const engine = new Engine(
    parseOptions(rest, { ...SSE_DEFAULTS, entry: 'fastifySSE', requireUpstream: true }),
  );
  const plugin = async function tokenmeterRoute(scope: FastifyInstance): Promise<void> {
    leaveBodiesUnread(scope);
    scope.route({
      method,
      url,
      handler: (request, reply) => {
        // The engine answers on the raw response: Fastify sends nothing of its own.
        reply.hijack();
        return engine.serve(
          new NodeIncoming(request as R, request.raw),
          new NodeTransport(reply.raw),
        );
      },
    });
  };
  Object.defineProperty(plugin, 'activeStreams', { get: () => engine.activeStreams });
  return plugin as FastifySSEPlugin;
}
