/**
 * What Prometheus really sees: costTrackedSSE's metrics through the OpenTelemetry
 * Prometheus exporter's own HTTP server, scraped and parsed. Also pins down the exporter's
 * name translation (dots → underscores, `_total` on counters, units as `# UNIT` metadata
 * and not as a name suffix) that the Grafana dashboard relies on.
 */
import { createServer } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { semconv } from '@tokenmeter/engine';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';
import { type Exposition, parseExposition, select } from './prom-text.js';

const MODEL = 'claude-haiku-4-5';

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;
let exporter: PrometheusExporter;
let meterProvider: MeterProvider;
let metricsUrl: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 90, seed: 11 });
  const port = await freePort();
  exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: true });
  await exporter.startServer();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  meterProvider = new MeterProvider({ readers: [exporter] });
  store = createMemoryStore();
  app = await startApp({
    express: express5,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      upstream: (req, meter) =>
        anthropicClient(fake.url).messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: [{ role: 'user', content: 'Hello there.' }],
            stream: true,
          },
          { signal: meter.signal, headers: knobHeaders(req) },
        ),
      telemetry: { meter: meterProvider.getMeter('tokenmeter-test'), timePerOutputChunk: true },
    },
  });
});
afterAll(async () => {
  await app?.close();
  await store?.shutdown?.();
  await meterProvider?.shutdown(); // also stops the exporter's server
  await fake?.close();
});

async function scrape(): Promise<Exposition> {
  const response = await fetch(metricsUrl);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

describe('the Prometheus exporter output', () => {
  it('has the exact cost and token series of the streams that ran', async () => {
    const body = {
      model: MODEL,
      max_tokens: 300,
      messages: [{ role: 'user', content: 'Hello there.' }],
    };
    const completed = await postSSE(app.url, body, {
      headers: { 'x-user': 'pat', 'x-fake-llm-cache-read': '40' },
    });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const left = await postSSE(app.url, body, {
      headers: { 'x-user': 'pat', 'x-fake-llm-tokens': '2000', 'x-fake-llm-tps': '400' },
      abortWhen: (e) => e.event === 'delta',
    });
    expect(left.events.some((e) => e.event === 'done')).toBe(false);
    const settles = await app.waitForSettles(2);
    const done = eventData<{ costNanos: number }>(completed, 'done');
    const disconnected = settles.find((s) => s.outcome === 'client_disconnected')!;

    const scraped = await scrape();
    // Names as the exporter really writes them: no unit suffix, `_total` on counters.
    expect(scraped.types.get('tokenmeter_cost_total')).toBe('counter');
    expect(scraped.units.get('tokenmeter_cost_total')).toBe('USD');
    expect(scraped.types.get('gen_ai_client_token_usage')).toBe('histogram');
    expect(scraped.types.get('gen_ai_client_operation_duration')).toBe('histogram');
    expect(scraped.units.get('gen_ai_client_operation_duration')).toBe('s');
    expect(scraped.types.get('gen_ai_client_operation_time_to_first_chunk')).toBe('histogram');
    expect(scraped.types.get('gen_ai_client_operation_time_per_output_chunk')).toBe('histogram');
    expect(scraped.units.get('gen_ai_client_operation_time_per_output_chunk')).toBe('s');
    expect(scraped.types.get('tokenmeter_streams_total')).toBe('counter');
    expect(scraped.types.get('tokenmeter_streams_active')).toBe('gauge');
    expect(scraped.types.has('tokenmeter_cost_USD_total')).toBe(false);
    expect(scraped.types.has('gen_ai_client_operation_duration_seconds')).toBe(false);

    const common = {
      gen_ai_operation_name: 'chat',
      gen_ai_provider_name: 'anthropic',
      gen_ai_request_model: MODEL,
    };
    const cost = select(scraped, 'tokenmeter_cost_total', {
      ...common,
      tokenmeter_outcome: 'completed',
      tokenmeter_cost_estimated: 'false',
    });
    expect(cost.map((s) => s.value)).toEqual([done.costNanos / 1e9]);
    expect(
      select(scraped, 'tokenmeter_cost_total', {
        tokenmeter_outcome: 'client_disconnected',
        tokenmeter_cost_estimated: 'true',
      }).map((s) => s.value),
    ).toEqual([disconnected.final.costNanos / 1e9]);
    expect(disconnected.final.costNanos).toBeGreaterThan(0);

    // Both streams have the same attributes, so they share one series per token type.
    const output = { ...common, gen_ai_token_type: 'output' };
    const total = (name: string, match: Record<string, string>) =>
      select(scraped, name, match).reduce((sum, s) => sum + s.value, 0);
    expect(total('gen_ai_client_token_usage_sum', output)).toBe(
      90 + disconnected.final.usage.outputTokens,
    );
    expect(total('gen_ai_client_token_usage_count', output)).toBe(2);
    // Input is the convention's total: input + cache read for the completed stream.
    expect(total('gen_ai_client_token_usage_sum', { ...common, gen_ai_token_type: 'input' })).toBe(
      record.usage!.inputTokens + 40 + disconnected.final.usage.inputTokens,
    );
    // Buckets: the convention's boundaries; 90 output tokens fall in (64, 256].
    const les = [
      ...new Set(
        select(scraped, 'gen_ai_client_token_usage_bucket', output).map((s) => s.labels.le),
      ),
    ];
    expect(les).toEqual([...semconv.GEN_AI_TOKEN_USAGE_BUCKETS.map(String), '+Inf']);
    const cumulative = (le: string) =>
      select(scraped, 'gen_ai_client_token_usage_bucket', { ...output, le }).reduce(
        (sum, s) => sum + s.value,
        0,
      );
    expect(cumulative('+Inf')).toBe(2);
    expect(cumulative('256') - cumulative('64')).toBe(
      [90, disconnected.final.usage.outputTokens].filter((n) => n > 64 && n <= 256).length,
    );

    // A point per text chunk after a stream's first: 29 for the completed stream (30 deltas
    // of 3 tokens), and however many the disconnected one read before its client left.
    const chunkCount = total('gen_ai_client_operation_time_per_output_chunk_count', common);
    expect(chunkCount).toBeGreaterThanOrEqual(29);
    expect(total('gen_ai_client_operation_time_per_output_chunk_sum', common)).toBeGreaterThan(0);
    expect(
      select(scraped, 'gen_ai_client_operation_time_per_output_chunk_bucket', {
        ...common,
        le: '+Inf',
      }).reduce((sum, s) => sum + s.value, 0),
    ).toBe(chunkCount);
    expect(
      select(scraped, 'tokenmeter_streams_total', { tokenmeter_outcome: 'completed' }).map(
        (s) => s.value,
      ),
    ).toEqual([1]);
    expect(select(scraped, 'tokenmeter_streams_active').reduce((a, s) => a + s.value, 0)).toBe(0);
  });
});
