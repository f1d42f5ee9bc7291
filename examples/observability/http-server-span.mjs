// @ts-check
/**
 * A SERVER span per HTTP request, active while the request is handled: what
 * @opentelemetry/instrumentation-http does for you in a real app. tokenmeter takes the
 * active span when its middleware runs as the parent of its `chat {model}` span, so a
 * trace in Jaeger reads `POST /api/chat` → `chat claude-haiku-4-5`.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * @param {import('@opentelemetry/api').Tracer} tracer
 * @returns {import('express').RequestHandler}
 */
export function httpServerSpan(tracer) {
  return (req, res, next) => {
    const span = tracer.startSpan(`${req.method} ${req.path}`, {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': req.method,
        'url.path': req.path,
        'url.scheme': req.protocol,
      },
    });
    res.on('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    const ctx = trace.setSpan(context.active(), span);
    // Body parsers call back from socket events: bind the emitters to keep the context.
    context.bind(ctx, req);
    context.bind(ctx, res);
    context.with(ctx, next);
  };
}
