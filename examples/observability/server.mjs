// @ts-check
/**
 * `npm run --workspace examples example:observability`: an Express app streaming through
 * tokenmeter with OpenTelemetry on — traces to Jaeger over OTLP, metrics at /metrics for
 * Prometheus, a provisioned Grafana dashboard. See README.md beside this file.
 *
 * Environment: PORT (default 3000, 0 = any free port), HOST (default 127.0.0.1; use
 * 0.0.0.0 when Prometheus runs in Docker), ANTHROPIC_API_KEY (else a fake Claude runs
 * in-process), TOKENMETER_RECORD_SUBJECTS (e.g. `user`), TOKENMETER_RECORD_CONTENT=1,
 * USER_BUDGET_USD, GLOBAL_BUDGET_USD, and the OTEL_* variables listed in otel.mjs.
 */
import { startOpenTelemetry } from './otel.mjs';

// The SDK first: tokenmeter's middleware, created below, records through it.
const otel = startOpenTelemetry(process.env);
const { createUpstream } = await import('./upstream.mjs');
const { createObservabilityApp } = await import('./app.mjs');

const log = (/** @type {string} */ line) => console.log(`tokenmeter observability: ${line}`);
const upstream = await createUpstream(process.env);
const { app, store } = createObservabilityApp({
  upstream,
  metricsHandler: otel.metricsHandler,
  env: process.env,
  log,
});

const host = process.env.HOST ?? '127.0.0.1';
const server = app.listen(Number(process.env.PORT ?? 3000), host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : process.env.PORT;
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  log(`answers from ${upstream.description}`);
  log(
    otel.tracesOff
      ? 'traces: off (OTEL_TRACES_EXPORTER=none)'
      : `traces: OTLP/HTTP to ${process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318'}/v1/traces`}`,
  );
  log(`metrics: http://${shown}:${port}/metrics`);
  log(`listening on http://${shown}:${port}`);
});
server.on('error', (error) => {
  console.error(`tokenmeter observability: cannot listen: ${error.message}`);
  process.exit(1);
});

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await upstream.close();
  await store.shutdown?.();
  await otel.shutdown(); // flushes the last spans
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
