/**
 * The abuse case behind bounded metric attributes: callers of costTrackedSSE choose the
 * model string, and the pricing catalog accepts unboundedly many spellings of one model
 * (`<model>-<8 digits>`). Hundreds of refused requests, each with a new spelling, must not
 * make hundreds of metric series: models on metrics are the ids of the catalog the app
 * prices with (its own entries included), the exact string stays on the span.
 */
import { Pricing, PricingCatalog } from '@tokenmeter/core';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';
import { createOtel, type Otel, serverSpan, sumPoints, useAsyncContext } from './otel.js';

const MODEL = 'claude-haiku-4-5';
const messages = [{ role: 'user' as const, content: 'Hello there.' }];

let fake: FakeLLM;
beforeAll(async () => {
  useAsyncContext();
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 20, seed: 5 });
});
afterAll(() => fake.close());

let app: TestApp;
let store: MemoryStore;
let otel: Otel;
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  await otel?.shutdown();
});

it('300 refused requests with made-up model spellings make a bounded number of metric series', async () => {
  otel = createOtel();
  store = createMemoryStore();
  const catalog = PricingCatalog.bundled().extend([
    { id: 'house-model', provider: 'anthropic', rates: { input: '1', output: '5' } },
  ]);
  app = await startApp({
    express: express5,
    before: [serverSpan(otel.tracer)],
    middleware: {
      store,
      identify: identifyByHeader,
      pricing: new Pricing({ catalog }),
      rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] },
      upstream: (_req, meter) =>
        anthropicClient(fake.url).messages.create(
          { model: meter.model, max_tokens: meter.maxTokens, messages, stream: true },
          { signal: meter.signal },
        ),
      telemetry: { tracer: otel.tracer, meter: otel.meter },
    },
  });
  const headers = { 'x-user': 'mallory' };
  expect(
    (await postSSE(app.url, { model: MODEL, max_tokens: 50, messages }, { headers })).status,
  ).toBe(200);

  const sent: string[] = [];
  for (let i = 0; i < 100; i++) sent.push(`${MODEL}-2025${String(1000 + i).padStart(4, '0')}`);
  for (let i = 0; i < 100; i++) sent.push(`house-model-2026${String(1000 + i).padStart(4, '0')}`);
  for (let i = 0; i < 100; i++) sent.push(`made-up-${i}-${Math.random().toString(36).slice(2)}`);
  const statuses: number[] = [];
  for (let i = 0; i < sent.length; i += 25) {
    const batch = sent.slice(i, i + 25).map(async (model) => {
      const result = await postSSE(app.url, { model, max_tokens: 50, messages }, { headers });
      return result.status;
    });
    statuses.push(...(await Promise.all(batch)));
  }
  expect(statuses.filter((s) => s === 429)).toHaveLength(200);
  expect(statuses.filter((s) => s === 400)).toHaveLength(100);

  const metrics = await otel.metrics();
  const rejections = sumPoints(metrics, 'tokenmeter.admission.rejections');
  // rate_limited × { claude-haiku-4-5, house-model } and unknown_model (no model attribute).
  expect(rejections).toHaveLength(3);
  expect(
    rejections.map((p) => [
      p.attributes['tokenmeter.rejection.reason'],
      p.attributes['gen_ai.request.model'],
      p.value,
    ]),
  ).toEqual(
    expect.arrayContaining([
      ['rate_limited', MODEL, 100],
      ['rate_limited', 'house-model', 100],
      ['unknown_model', undefined, 100],
    ]),
  );
  const models = new Set<unknown>();
  for (const metric of metrics.values()) {
    for (const point of metric.dataPoints) {
      for (const key of ['gen_ai.request.model', 'gen_ai.response.model']) {
        if (point.attributes[key] !== undefined) models.add(point.attributes[key]);
      }
    }
  }
  expect(models).toEqual(new Set([MODEL, 'house-model']));
  const everything = JSON.stringify([...metrics.values()].map((m) => m.dataPoints));
  for (const model of sent) expect(everything).not.toContain(model);

  // The refusal spans still say exactly what was asked for.
  const names = new Set(otel.spans.getFinishedSpans().map((s) => s.name));
  for (const model of sent) expect(names.has(`admit ${model}`)).toBe(true);
});
