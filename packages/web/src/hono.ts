/**
 * `@tokenmeter/web/hono`: a metered SSE route whose callbacks receive Hono's `Context`, so
 * what your middleware set (`c.get('user')`) reaches `identify()`.
 */
import type { Context } from 'hono';
import { type WebHandler, type WebRouteOptions, webRoute } from './route.js';

/** The options of `honoSSE()`: its callbacks receive Hono's `Context`. */
export type HonoSSEOptions<C extends Context = Context> = WebRouteOptions<C>;

/**
 * A Hono handler for a metered SSE route.
 *
 * @example
 * app.post('/api/chat', auth, honoSSE({
 *   store,
 *   identify: (c) => ({ user: c.get('user').id }),
 *   upstream: (c, meter) =>
 *     anthropic.messages.create({ ...meter.body, ...meter.params, stream: true }, { signal: meter.signal }),
 * }));
 */
export function honoSSE<C extends Context = Context>(options: HonoSSEOptions<C>): WebHandler<C> {
  return webRoute(options, {
    entry: 'honoSSE',
    request: (c) => c.req.raw,
    // On Node (`@hono/node-server`) the socket is in `c.env.incoming`.
    address: (c) => {
      const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
        ?.incoming;
      return incoming?.socket?.remoteAddress;
    },
  });
}
