// @ts-check
/**
 * The OpenTelemetry SDK of the observability example: traces over OTLP/HTTP (Jaeger
 * accepts OTLP on :4318) and metrics pulled by Prometheus from the app's own `/metrics`
 * route. Start it before anything creates tokenmeter's middleware.
 *
 * Environment (the SDK's standard variables):
 * - OTEL_SERVICE_NAME                  defaults to `tokenmeter-example`
 * - OTEL_EXPORTER_OTLP_ENDPOINT        defaults to http://localhost:4318 (Jaeger's OTLP/HTTP port)
 * - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT a full URL for traces only (…/v1/traces)
 * - OTEL_TRACES_EXPORTER=none          no trace export (metrics only)
 * - OTEL_BSP_SCHEDULE_DELAY            ms between trace batches (default 5000)
 */

import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';

/**
 * @param {NodeJS.ProcessEnv} env
 */
export function startOpenTelemetry(env = process.env) {
  // Nothing in this app writes OTel logs; without this the SDK would set up an OTLP log exporter.
  env.OTEL_LOGS_EXPORTER ??= 'none';
  const tracesOff = env.OTEL_TRACES_EXPORTER === 'none';
  // No HTTP server of its own: the app serves the exporter's handler at GET /metrics.
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'tokenmeter-example',
    ...(tracesOff ? {} : { traceExporter: new OTLPTraceExporter() }),
    metricReaders: [prometheus],
    // In a real app add @opentelemetry/instrumentation-http and -express here: their HTTP
    // server span becomes the parent of tokenmeter's `chat {model}` span. This example
    // makes that span itself (http-server-span.mjs) to stay within its dependencies.
    instrumentations: [],
  });
  sdk.start();
  return {
    /**
     * GET /metrics in the Prometheus text format.
     * @param {import('node:http').IncomingMessage} req
     * @param {import('node:http').ServerResponse} res
     */
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    tracesOff,
    shutdown: () => sdk.shutdown(),
  };
}
