// @ts-check
/**
 * OpenTelemetry metrics for `GET /metrics`: a global MeterProvider whose reader is the
 * Prometheus exporter, without its own HTTP server — the app serves the exporter's
 * handler on its own route. tokenmeter's middleware records through the OpenTelemetry
 * API, so its metrics appear here once this provider is registered. Register it before
 * the middleware is created.
 */
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

export function startMetrics() {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  return {
    /**
     * Express handler for `GET /metrics` (Prometheus text format).
     * @param {import('node:http').IncomingMessage} req
     * @param {import('node:http').ServerResponse} res
     */
    handler: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown(),
  };
}
