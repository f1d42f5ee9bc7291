/**
 * @tokenmeter/web: metered LLM streams on Web-standard `Request` → `Response`, for
 * Next.js route handlers, Bun, Deno, Cloudflare-style `fetch` handlers and Hono
 * (`@tokenmeter/web/hono` gives Hono's `Context` to your callbacks).
 */
import { type WebHandler, type WebRouteOptions, webRoute } from './route.js';

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
export {
  type BudgetAlert,
  type BudgetInput,
  type Logger,
  type MeteredOptions,
  type MeteredStream,
  type RequestParams,
  type ReservationStrategy,
  type SettleInfo,
  SSE_HEADERS,
  type StreamLimit,
  type Subject,
  type TelemetryOptions,
  type Transport,
} from '@tokenmeter/engine';
export { anthropicGateway, openaiGateway, type WebGatewayOptions } from './gateway.js';
export type { WebHandler, WebRouteOptions } from './route.js';
export { WebIncoming } from './web-incoming.js';
export { WebTransport } from './web-transport.js';

/** The options of `meteredSSE()`: its callbacks receive the Web `Request`. */
export type MeteredSSEOptions = WebRouteOptions<Request>;

/**
 * A metered SSE route as a `(request: Request) => Promise<Response>` function: the same
 * admission, stream, backpressure, disconnect and settlement as `costTrackedSSE()`. It reads
 * the JSON body itself, after `identify`; `meter.body` is that body with the bounds
 * admission reserved written in.
 *
 * @example
 * // app/api/chat/route.ts (Next.js)
 * export const POST = meteredSSE({
 *   store,
 *   identify: (request) => ({ user: userOf(request) }),
 *   budgets: { user: { limitUsd: '5.00', period: 'day' } },
 *   upstream: (request, meter) =>
 *     anthropic.messages.create({ ...meter.body, ...meter.params, stream: true }, { signal: meter.signal }),
 * });
 */
export function meteredSSE(options: MeteredSSEOptions): WebHandler<Request> {
  return webRoute(options, { entry: 'meteredSSE', request: (request) => request });
}
