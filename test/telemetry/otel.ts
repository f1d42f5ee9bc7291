/**
 * Test helper: a real OpenTelemetry SDK (in-memory span exporter, a pull metric reader),
 * an AsyncLocalStorage context manager, and an Express middleware that opens an HTTP
 * SERVER span the way @opentelemetry/instrumentation-http does (span active for the
 * request, request and response emitters bound to its context).
 */
import { createRequire } from 'node:module';
import { type Attributes, context, SpanKind, type Tracer, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricData,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type express5 from 'express';

/** A metric reader the test pulls from. */
export class PullMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

let contextManager: AsyncLocalStorageContextManager | undefined;

/**
 * The `@opentelemetry/api` copy @tokenmeter/core really loads. In this workspace it can be
 * a different (newer) copy than the test's: the API refuses globals registered by an older
 * minor version, so globals must be registered through the newest copy to be seen by all.
 */
export function coreApi(): typeof import('@opentelemetry/api') {
  const fromTest = createRequire(import.meta.url);
  const corePackage = fromTest.resolve('@tokenmeter/core/package.json');
  return createRequire(corePackage)('@opentelemetry/api') as typeof import('@opentelemetry/api');
}

/** Registers the AsyncLocalStorage context manager once per test file. */
export function useAsyncContext(): void {
  if (contextManager) return;
  contextManager = new AsyncLocalStorageContextManager().enable();
  if (!coreApi().context.setGlobalContextManager(contextManager)) {
    throw new Error('could not register the context manager');
  }
}

export interface Otel {
  spans: InMemorySpanExporter;
  tracer: ReturnType<BasicTracerProvider['getTracer']>;
  meter: ReturnType<MeterProvider['getMeter']>;
  reader: PullMetricReader;
  /** All metrics collected now, by name. */
  metrics(): Promise<Map<string, MetricData>>;
  shutdown(): Promise<void>;
}

/** A fresh tracer and meter (fresh cumulative metrics) for one test. */
export function createOtel(): Otel {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  const reader = new PullMetricReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    spans,
    tracer: tracerProvider.getTracer('test'),
    meter: meterProvider.getMeter('test'),
    reader,
    async metrics() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw new Error(`metric collection failed: ${errors.join('; ')}`);
      const out = new Map<string, MetricData>();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
      }
      return out;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

/** The data points of a sum or gauge metric, as { attributes, value }. */
export function sumPoints(
  metrics: Map<string, MetricData>,
  name: string,
): Array<{ attributes: Attributes; value: number }> {
  const metric = metrics.get(name);
  if (!metric) return [];
  if (metric.dataPointType === DataPointType.HISTOGRAM) throw new Error(`${name} is a histogram`);
  return metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value as number }));
}

/** The data points of a histogram. */
export function histogramPoints(metrics: Map<string, MetricData>, name: string) {
  const metric = metrics.get(name);
  if (!metric) return [];
  if (metric.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is no histogram`);
  return (metric as HistogramMetricData).dataPoints.map((p) => ({
    attributes: p.attributes,
    count: p.value.count,
    sum: p.value.sum,
    boundaries: p.value.buckets.boundaries,
  }));
}

/** Sum of the values of points whose attributes include `match`. */
export function total(points: Array<{ attributes: Attributes; value: number }>, match: Attributes) {
  return points
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((sum, p) => sum + p.value, 0);
}

/** Express middleware: an HTTP SERVER span, active for the rest of the request. */
export function serverSpan(tracer: Tracer): express5.RequestHandler {
  return (req, res, next) => {
    const span = tracer.startSpan(`${req.method} ${req.path}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': req.method, 'url.path': req.path },
    });
    res.on('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      span.end();
    });
    const ctx = trace.setSpan(context.active(), span);
    context.bind(ctx, req);
    context.bind(ctx, res);
    context.with(ctx, next);
  };
}

/** Polls until `find` returns something (spans end on 'close', a tick after the response). */
export async function waitFor<T>(find: () => T | undefined, what: string, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function spanNamed(spans: InMemorySpanExporter, name: string): ReadableSpan | undefined {
  return spans.getFinishedSpans().find((s) => s.name === name);
}
