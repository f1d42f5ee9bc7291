/**
 * Telemetry without an SDK (the library default) and with an SDK registered globally after
 * the middleware was created: spans do not record without one (the cost of telemetry is
 * measured by `npm run bench`, not here), and a later registration is picked up (the metrics API has no proxy, so the meter is resolved lazily).
 */

import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { FinalUsage } from '@tokenmeter/core';
import { StreamMeter } from '@tokenmeter/core/meter';
import { Telemetry } from '@tokenmeter/engine';
import { describe, expect, it } from 'vitest';
import { coreApi, PullMetricReader } from './otel.js';

const api = coreApi();

function finalUsage(): FinalUsage {
  const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 12 });
  meter.observe({ type: 'text', text: 'Hello world, this is a short answer.' });
  return meter.finish('completed');
}

/** One stream's whole telemetry life: begin, admitted, aborted, settled. */
function oneStream(telemetry: Telemetry, final: FinalUsage, i: number) {
  const start = telemetry.begin();
  const trace = telemetry.startStream(start, {
    requestId: `r${i}`,
    model: 'claude-haiku-4-5',
    provider: 'anthropic',
    maxTokens: 256,
    reservedNanos: 1_000_000,
    reservations: 1,
    scopes: [{ kind: 'user', id: `u${i % 7}` }],
  });
  trace.run(() => undefined);
  trace.end({
    outcome: 'completed',
    final,
    durationMs: 12.5,
    timeToFirstTokenMs: 3.2,
    backpressureWaits: 0,
    backpressureMs: 0,
    recorded: true,
    budgetRemainingNanos: 5_000_000,
    reservationEnds: { settled: 1 },
  });
  return trace;
}

describe('without an SDK', () => {
  it('makes no span and no metric work: the stream keeps the request context as it is', () => {
    const telemetry = new Telemetry();
    const start = telemetry.begin();
    const trace = telemetry.startStream(start, {
      requestId: 'r-idle',
      model: 'claude-haiku-4-5',
      provider: 'anthropic',
      maxTokens: 256,
      reservedNanos: 1_000_000,
      reservations: 1,
    });
    // With a provider (next test) this context carries the `chat {model}` span.
    expect(trace.context).toBe(start.context);
    expect(api.trace.getSpan(trace.context)).toBeUndefined();
    expect(trace.recordsContent).toBe(false);
    // Nothing records: the middleware skips assembling the end info for it.
    expect(trace.active).toBe(false);
    expect(trace.run(() => 42)).toBe(42);
    // The rest of a stream's telemetry life is a no-op that never throws.
    oneStream(telemetry, finalUsage(), 0);
  });
});

describe('an SDK registered after the middleware was created', () => {
  it('is used from the next stream on: spans through the proxy tracer, metrics through the lazily resolved meter', async () => {
    const telemetry = new Telemetry();
    const final = finalUsage();
    oneStream(telemetry, final, 0); // before registration: dropped

    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spans)],
    });
    const reader = new PullMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    expect(api.trace.setGlobalTracerProvider(tracerProvider)).toBe(true);
    expect(api.metrics.setGlobalMeterProvider(meterProvider)).toBe(true);
    try {
      expect(oneStream(telemetry, final, 1).active).toBe(true);
      oneStream(telemetry, final, 2);
      const finished = spans.getFinishedSpans();
      expect(finished.map((s) => s.name)).toEqual([
        'chat claude-haiku-4-5',
        'chat claude-haiku-4-5',
      ]);
      expect(finished[0]!.instrumentationScope.name).toBe('@tokenmeter/core');
      expect(finished[0]!.attributes['tokenmeter.cost.nanos']).toBe(final.costNanos);
      const { resourceMetrics } = await reader.collect();
      const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      const streams = metrics.find((m) => m.descriptor.name === 'tokenmeter.streams');
      expect(streams?.dataPoints.map((p) => p.value)).toEqual([2]);
      const active = metrics.find((m) => m.descriptor.name === 'tokenmeter.streams.active');
      // The stream started before registration never incremented, so it does not decrement either.
      expect(active?.dataPoints.map((p) => p.value)).toEqual([0]);
    } finally {
      api.trace.disable();
      api.metrics.disable();
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    }
  });
});

describe('two engines in one process (an SSE route beside a gateway), one global meter', () => {
  it("their counters add up: each series is the sum of both engines' streams", async () => {
    const reader = new PullMetricReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    expect(api.metrics.setGlobalMeterProvider(meterProvider)).toBe(true);
    try {
      const sse = new Telemetry();
      const gateway = new Telemetry();
      const final = finalUsage();
      oneStream(sse, final, 0);
      oneStream(sse, final, 1);
      oneStream(gateway, final, 2);
      const read = async () => {
        const { resourceMetrics } = await reader.collect();
        const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
        const sum = (name: string) =>
          metrics
            .find((m) => m.descriptor.name === name)
            ?.dataPoints.reduce((total, p) => total + (p.value as number), 0);
        return {
          streams: sum('tokenmeter.streams'),
          opened: sum('tokenmeter.reservations.opened'),
          ended: sum('tokenmeter.reservations.ended'),
          active: sum('tokenmeter.streams.active'),
          cost: sum('tokenmeter.cost'),
        };
      };
      // Three streams of the same usage: three times its cost (USD as a double).
      expect(await read()).toEqual({
        streams: 3,
        opened: 3,
        ended: 3,
        active: 0,
        cost: (3 * final.costNanos) / 1e9,
      });
      // And still after another collection and one more stream on each.
      oneStream(sse, final, 3);
      oneStream(gateway, final, 4);
      expect(await read()).toMatchObject({ streams: 5, opened: 5, ended: 5, active: 0 });
    } finally {
      api.metrics.disable();
      await meterProvider.shutdown();
    }
  });
});
