/**
 * `costTrackedSSE()`: the Express adapter. Turns an Express route into a metered stream:
 * the engine identifies who pays, admits the request against rate limits and a worst-case
 * budget reservation (plain JSON errors before any SSE byte), then opens the SSE stream and
 * streams the provider into it — from `upstream()`, or from the route handler that follows
 * (`res.locals.tokenmeter`).
 */
import { Engine, type MeteredStream, MeteredStreamImpl, parseOptions } from '@tokenmeter/engine';
import { NodeIncoming, NodeTransport } from '@tokenmeter/engine/node';
import type { CostTrackedSSEOptions, MeteredRequest, MeteredResponse } from './types.js';

type Next = (error?: unknown) => void;

/**
 * Creates the middleware. Mount it after your auth (and `express.json()`, or none: it reads
 * a JSON body itself, after `identify`).
 *
 * @example
 * app.post('/api/chat', express.json(), auth, costTrackedSSE({
 *   store: createMemoryStore(),
 *   identify: (req) => req.user && { user: req.user.id },
 *   budgets: { user: { limitUsd: '5.00', period: 'day' } },
 *   rateLimits: { user: [{ kind: 'requests', limit: 20, windowMs: 60_000 }] },
 *   upstream: (req, meter) =>
 *     anthropic.messages.create({ ...req.body, ...meter.params, stream: true }, { signal: meter.signal }),
 * }));
 */
export function costTrackedSSE<Req extends MeteredRequest = MeteredRequest>(
  options: CostTrackedSSEOptions<Req>,
) {
  const engine = new Engine(parseOptions(options));
  const middleware = function costTrackedSSE(
    req: Req,
    res: MeteredResponse,
    next: Next,
  ): Promise<void> {
    return engine.serve(new NodeIncoming(req), new NodeTransport(res), {
      admitted: (stream) => {
        if (res.locals) res.locals.tokenmeter = stream satisfies MeteredStream;
      },
      handOver: () => {
        // Handler style: errors after the SSE headers are ours to end the stream with.
        ownErrorsAfterHeaders(req);
        next();
      },
    });
  };
  // Streams open right now (0 when idle): for a graceful shutdown, and for tests that
  // check nothing was left running.
  Object.defineProperty(middleware, 'activeStreams', { get: () => engine.activeStreams });
  return middleware as typeof middleware & { readonly activeStreams: number };
}

/** Apps whose error chain ends in our handler (added once, after everything the app has). */
const APPS_WITH_OUR_ERRORS = new WeakSet<object>();

/**
 * An error that reaches Express's error chain after a metered stream opened (a handler
 * that threw, or rejected under Express 5) would end in Express's final handler, which
 * destroys the socket once headers are sent. Our error handler, added at the end of the
 * app's chain, ends the stream with an `error` event (`handler_error`) instead. The app's
 * own error handlers run first and see the error with `res.headersSent` true and
 * `res.locals.tokenmeter` set; one that passes it on with `next(err)` (as Express advises
 * for errors after headers) hands it to us.
 */
function ownErrorsAfterHeaders(req: MeteredRequest): void {
  const app = (req as { app?: { use?: (fn: unknown) => unknown } }).app;
  if (!app || typeof app.use !== 'function' || APPS_WITH_OUR_ERRORS.has(app)) return;
  APPS_WITH_OUR_ERRORS.add(app);
  app.use(function tokenmeterStreamErrors(
    error: unknown,
    _req: unknown,
    res: MeteredResponse,
    next: Next,
  ) {
    const stream = res.locals?.tokenmeter;
    if (stream instanceof MeteredStreamImpl) {
      // Ours: end it with an error event (or, if it already ended, nothing more to do).
      if (!stream.ended) void stream.fail(error);
      return;
    }
    next(error);
  });
}
