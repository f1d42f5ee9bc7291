/**
 * costTrackedSSE's OpenTelemetry output, end to end: a real Express app on loopback under
 * an HTTP server span, the official Anthropic SDK against the testkit's fake upstream,
 * and the OTel SDK's in-memory span exporter and a pull metric reader. Every figure is
 * compared with what really happened: the fake's record, the done/error event, onSettle.
 */

import Anthropic from '@anthropic-ai/sdk';
import {
  type Attributes,
  type HrTime,
  type Meter,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Pricing, type Store, usd } from '@tokenmeter/core';
import { semconv, Telemetry } from '@tokenmeter/engine';
import { anthropicGateway } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient,
  EXPRESS_VERSIONS,
  type ExpressFactory,
  identifyByHeader,
  startApp,
  type TestApp,
} from '../helpers/app.js';
import { startGateway, waitForSettles } from '../helpers/gateway.js';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';
import { CONVENTIONS, isConventionName } from './conventions.js';
import {
  createOtel,
  histogramPoints,
  type Otel,
  serverSpan,
  spanNamed,
  sumPoints,
  total,
  useAsyncContext,
  waitFor,
} from './otel.js';

const MODEL = 'claude-haiku-4-5'; // per million: $1 input, $5 output, $0.10 cache read, $1.25 / $2 cache write 5m / 1h
const handCost = (input: number, output: number, cacheRead = 0, write5m = 0, write1h = 0) =>
  input * 1_000 + output * 5_000 + cacheRead * 100 + write5m * 1_250 + write1h * 2_000;
const prompt = {
  model: MODEL,
  max_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Hello there.' }],
};

interface Done {
  costNanos: number;
  costUsd: number;
  estimated: boolean;
  stopReason: string;
  usage: { inputTokens: number; outputTokens: number };
  budget: { remainingUsd: number };
}
interface ErrorEvent extends Omit<Done, 'stopReason'> {
  code: string;
  upstreamType?: string;
}

let fake: FakeLLM;
beforeAll(async () => {
  useAsyncContext();
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 90, seed: 5 });
});
afterAll(() => fake.close());

let app: TestApp;
let store: MemoryStore;
let otel: Otel;
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  await otel?.shutdown();
  fake.reset();
});

type Middleware = Parameters<typeof startApp>[0]['middleware'];

const rawAnthropic: NonNullable<Middleware['upstream']> = (req, meter) =>
  anthropicClient(fake.url).messages.create(
    { model: meter.model, max_tokens: meter.maxTokens, messages: prompt.messages, stream: true },
    { signal: meter.signal, headers: knobHeaders(req) },
  );

async function start(
  options: {
    middleware?: Partial<Middleware>;
    telemetry?: NonNullable<Middleware['telemetry']>;
    express?: ExpressFactory;
    store?: Store;
  } = {},
) {
  otel = createOtel();
  store = createMemoryStore();
  app = await startApp({
    express: options.express ?? express5,
    before: [serverSpan(otel.tracer)],
    middleware: {
      store: options.store ?? store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      upstream: rawAnthropic,
      telemetry: { tracer: otel.tracer, meter: otel.meter, ...options.telemetry },
      ...options.middleware,
    },
  });
}

const ms = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6;
const serverSpanOf = () => waitFor(() => spanNamed(otel.spans, 'POST /chat'), 'the server span');
const chatSpan = () => waitFor(() => spanNamed(otel.spans, `chat ${MODEL}`), 'the chat span');
const eventNames = (span: ReadableSpan) => span.events.map((e) => e.name);
const event = (span: ReadableSpan, name: string) => span.events.find((e) => e.name === name);

/** No metric point anywhere carries a subject id or anything per-request. */
function expectLowCardinality(metrics: Awaited<ReturnType<Otel['metrics']>>) {
  for (const metric of metrics.values()) {
    for (const point of metric.dataPoints as Array<{ attributes: Attributes }>) {
      for (const key of Object.keys(point.attributes)) {
        expect(key).not.toMatch(/^tokenmeter\.(subject|request)\./);
        expect(key).not.toMatch(/^gen_ai\.(response\.id|input|output)/);
      }
    }
  }
}

/** Alice's request, with 100 cache-read and 20 + 5 cache-write (5 min, 1 h) tokens. */
const CACHED = {
  headers: {
    'x-user': 'alice',
    'x-fake-llm-cache-read': '100',
    'x-fake-llm-cache-write-5m': '20',
    'x-fake-llm-cache-write-1h': '5',
  },
};

describe('a completed stream', () => {
  it('one CLIENT span `chat {model}` with every attribute equal to the real usage and cost', async () => {
    await start({ telemetry: { server: { address: '127.0.0.1', port: fake.port } } });
    const result = await postSSE(app.url, prompt, CACHED);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const [settle] = await app.waitForSettles(1);
    const done = eventData<Done>(result, 'done');
    const meta = eventData<{ reservedUsd: number; requestId: string }>(result, 'meta');
    const usage = record.usage!;
    expect(usage).toMatchObject({
      cacheReadTokens: 100,
      cacheWrite5mTokens: 20,
      cacheWrite1hTokens: 5,
    });
    const totalInput = usage.inputTokens + 100 + 20 + 5;
    const cost = handCost(usage.inputTokens, usage.outputTokens, 100, 20, 5);
    expect(done.costNanos).toBe(cost);
    expect(settle!.final.costNanos).toBe(cost);

    const span = await chatSpan();
    const server = await serverSpanOf();
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.request.max_tokens': 300,
      'gen_ai.request.stream': true,
      'gen_ai.response.model': MODEL,
      'gen_ai.response.id': record.id.replace(/^req_/, 'msg_'),
      'gen_ai.response.finish_reasons': ['end_turn'],
      'gen_ai.response.time_to_first_chunk': settle!.timeToFirstTokenMs! / 1000,
      'gen_ai.usage.input_tokens': totalInput,
      'gen_ai.usage.output_tokens': usage.outputTokens,
      'gen_ai.usage.cache_read.input_tokens': 100,
      'gen_ai.usage.cache_creation.input_tokens': 25,
      'server.address': '127.0.0.1',
      'server.port': fake.port,
      'tokenmeter.request.id': meta.requestId,
      'tokenmeter.outcome': 'completed',
      'tokenmeter.cost.usd': done.costUsd,
      'tokenmeter.cost.amount': done.costUsd,
      'tokenmeter.cost.currency': 'USD',
      'tokenmeter.cost.source': 'local',
      'tokenmeter.cost.nanos': done.costNanos,
      'tokenmeter.cost.estimated': false,
      'tokenmeter.reserved.usd': meta.reservedUsd,
      'tokenmeter.budget.remaining.usd': done.budget.remainingUsd,
      'tokenmeter.time_to_first_token_ms': settle!.timeToFirstTokenMs,
      'tokenmeter.backpressure.waits': settle!.backpressureWaits,
      'tokenmeter.backpressure.wait_ms': settle!.backpressureMs,
      'tokenmeter.settlement.recorded': true,
    });
    expect(usage.outputTokens).toBe(90);
    expect(meta.requestId).toBe(result.headers.get('x-request-id'));
    expect(span.status.code).toBe(SpanStatusCode.UNSET);

    // Events: admitted, first token at its real time; no abort.
    expect(eventNames(span)).toContain(semconv.EVENT_TOKENMETER_ADMITTED);
    expect(eventNames(span)).not.toContain(semconv.EVENT_TOKENMETER_ABORT);
    expect(event(span, 'tokenmeter.admitted')!.attributes).toEqual({
      'tokenmeter.reserved.usd': meta.reservedUsd,
      'tokenmeter.budget.remaining.usd': 1 - meta.reservedUsd,
    });
    const first = event(span, 'tokenmeter.first_token')!;
    expect(first.attributes).toEqual({
      'tokenmeter.time_to_first_token_ms': settle!.timeToFirstTokenMs,
    });
    const admitted = event(span, 'tokenmeter.admitted')!;
    // Every time on the span comes from one clock, so the order is exact: start ≤ admitted
    // ≤ first token ≤ end (the first-token event is written at settlement with its real time).
    expect(ms(span.startTime)).toBeLessThanOrEqual(ms(admitted.time));
    expect(ms(first.time)).toBeGreaterThanOrEqual(ms(admitted.time));
    expect(ms(first.time)).toBeLessThanOrEqual(ms(span.endTime));
    // Backpressure: an event only when the writer had to wait.
    expect(eventNames(span).includes('tokenmeter.backpressure')).toBe(
      settle!.backpressureWaits > 0,
    );
    // The span covers admission through settlement, inside the server span. The OTel SDK
    // anchors each span's clock on Date.now() at its start (whole milliseconds) and adds
    // performance.now() durations, so two spans' timestamps can disagree by up to 1 ms.
    expect(ms(span.startTime)).toBeGreaterThanOrEqual(ms(server.startTime) - 1);
    expect(ms(span.endTime)).toBeLessThanOrEqual(ms(server.endTime) + 1);
    // Within that skew, the ordering itself is exact: the chat span ends before the response
    // closes (settlement writes the done event, ends the span, and only then 'close' fires).
    const finished = otel.spans.getFinishedSpans();
    expect(finished.indexOf(span)).toBeGreaterThanOrEqual(0);
    expect(finished.indexOf(span)).toBeLessThan(finished.indexOf(server));

    const metrics = await otel.metrics();
    const base = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': MODEL,
      'server.address': '127.0.0.1',
      'server.port': fake.port,
    };
    const tokens = histogramPoints(metrics, 'gen_ai.client.token.usage');
    expect(tokens).toHaveLength(2);
    expect(tokens).toContainEqual({
      attributes: { ...base, 'gen_ai.token.type': 'input' },
      count: 1,
      sum: totalInput,
      boundaries: [...semconv.GEN_AI_TOKEN_USAGE_BUCKETS],
    });
    expect(tokens).toContainEqual({
      attributes: { ...base, 'gen_ai.token.type': 'output' },
      count: 1,
      sum: 90,
      boundaries: [
        1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
      ],
    });
    expect(metrics.get('gen_ai.client.token.usage')!.descriptor.unit).toBe('{token}');
    const duration = histogramPoints(metrics, 'gen_ai.client.operation.duration');
    expect(duration).toEqual([
      {
        attributes: base,
        count: 1,
        sum: settle!.durationMs / 1000,
        boundaries: [
          0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
        ],
      },
    ]);
    expect(metrics.get('gen_ai.client.operation.duration')!.descriptor.unit).toBe('s');
    expect(histogramPoints(metrics, 'gen_ai.client.operation.time_to_first_chunk')).toEqual([
      {
        attributes: base,
        count: 1,
        sum: settle!.timeToFirstTokenMs! / 1000,
        boundaries: [...semconv.GEN_AI_DURATION_BUCKETS],
      },
    ]);
    const withOutcome = { ...base, 'tokenmeter.outcome': 'completed' };
    expect(sumPoints(metrics, 'tokenmeter.cost')).toEqual([
      { attributes: { ...withOutcome, 'tokenmeter.cost.estimated': false }, value: cost / 1e9 },
    ]);
    expect(metrics.get('tokenmeter.cost')!.descriptor.unit).toBe('USD');
    expect(sumPoints(metrics, 'tokenmeter.streams')).toEqual([
      { attributes: withOutcome, value: 1 },
    ]);
    expect(sumPoints(metrics, 'tokenmeter.streams.active')).toEqual([
      {
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'anthropic',
          'gen_ai.request.model': MODEL,
        },
        value: 0,
      },
    ]);
    expect(sumPoints(metrics, 'tokenmeter.reservations.opened')).toEqual([
      { attributes: {}, value: 1 },
    ]);
    expect(sumPoints(metrics, 'tokenmeter.reservations.ended')).toEqual([
      { attributes: { 'tokenmeter.reservation.end': 'settled' }, value: 1 },
    ]);
    expect(sumPoints(metrics, 'tokenmeter.admission.rejections')).toEqual([]);
    const backpressure = histogramPoints(metrics, 'tokenmeter.backpressure.duration');
    expect(backpressure).toHaveLength(1);
    expect(backpressure[0]).toMatchObject({ attributes: base, count: 1 });
    expect(backpressure[0]!.sum).toBeCloseTo(settle!.backpressureMs / 1000, 9);
    const storeOps = histogramPoints(metrics, 'tokenmeter.store.operation.duration');
    const byOp = new Map(storeOps.map((p) => [p.attributes['tokenmeter.store.operation'], p]));
    expect(byOp.get('admit')?.count).toBe(1);
    expect(byOp.get('settle')?.count).toBe(1);
    for (const p of storeOps) {
      expect(p.attributes['error.type']).toBeUndefined();
      expect(p.sum).toBeGreaterThan(0);
      expect(p.sum).toBeLessThan(1);
    }
    expectLowCardinality(metrics);
  });

  it.each(EXPRESS_VERSIONS)(
    '%s: the chat span is a child of the HTTP server span and the upstream call runs inside it',
    async (_name, express) => {
      let inside: string | undefined;
      await start({
        express,
        middleware: {
          upstream: async (req, meter) => {
            const { trace, context } = await import('@opentelemetry/api');
            inside = trace.getSpan(context.active())?.spanContext().spanId;
            return rawAnthropic(req, meter);
          },
        },
      });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'bob' } });
      expect(result.status).toBe(200);
      const span = await chatSpan();
      const server = await serverSpanOf();
      expect(span.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(span.spanContext().traceId).toBe(server.spanContext().traceId);
      expect(inside).toBe(span.spanContext().spanId);
    },
  );
});

describe('a client disconnect', () => {
  it('ends the span client_disconnected with an abort event, charged what onSettle charged', async () => {
    await start();
    const result = await postSSE(app.url, prompt, {
      headers: {
        'x-user': 'carol',
        'x-fake-llm-tokens': '2000',
        'x-fake-llm-tps': '400',
        'x-fake-llm-chunk': '1',
      },
      abortWhen: (e) => e.event === 'delta',
    });
    expect(result.events.some((e) => e.event === 'done')).toBe(false);
    const [settle] = await app.waitForSettles(1);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.clientClosedAt).toBeDefined(); // the upstream call was aborted
    const final = settle!.final;
    expect(settle!.outcome).toBe('client_disconnected');
    // Input from message_start; output estimated from the text that was delivered.
    expect(final.usage.inputTokens).toBe(record.inputTokens);
    expect(final.usage.outputTokens).toBeGreaterThan(0);
    expect(final.usage.outputTokens).toBeLessThan(2000);
    expect(final.costNanos).toBe(handCost(record.inputTokens, final.usage.outputTokens));

    const span = await chatSpan();
    expect(span.attributes).toMatchObject({
      'tokenmeter.outcome': 'client_disconnected',
      'error.type': 'client_disconnected',
      'gen_ai.usage.input_tokens': record.inputTokens,
      'gen_ai.usage.output_tokens': final.usage.outputTokens,
      'gen_ai.usage.cache_read.input_tokens': 0,
      'gen_ai.usage.cache_creation.input_tokens': 0,
      'gen_ai.response.id': record.id.replace(/^req_/, 'msg_'),
      'gen_ai.response.model': MODEL,
      'tokenmeter.cost.nanos': final.costNanos,
      'tokenmeter.cost.usd': final.costNanos / 1e9,
      'tokenmeter.cost.estimated': true,
      'tokenmeter.settlement.recorded': true,
      'tokenmeter.time_to_first_token_ms': settle!.timeToFirstTokenMs,
    });
    // The client left before the provider said why it stopped.
    expect(span.attributes['gen_ai.response.finish_reasons']).toBeUndefined();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    const abort = event(span, 'tokenmeter.abort');
    expect(abort?.attributes).toEqual({ 'tokenmeter.abort.reason': 'client_disconnected' });
    expect(ms(abort!.time)).toBeGreaterThanOrEqual(ms(event(span, 'tokenmeter.first_token')!.time));

    const metrics = await otel.metrics();
    expect(total(sumPoints(metrics, 'tokenmeter.streams'), {})).toBe(1);
    expect(sumPoints(metrics, 'tokenmeter.streams')[0]!.attributes['tokenmeter.outcome']).toBe(
      'client_disconnected',
    );
    expect(sumPoints(metrics, 'tokenmeter.cost')).toEqual([
      {
        attributes: expect.objectContaining({
          'tokenmeter.outcome': 'client_disconnected',
          'tokenmeter.cost.estimated': true,
        }),
        value: final.costNanos / 1e9,
      },
    ]);
    const duration = histogramPoints(metrics, 'gen_ai.client.operation.duration');
    expect(duration).toHaveLength(1);
    expect(duration[0]!.attributes['error.type']).toBe('client_disconnected');
    const tokens = histogramPoints(metrics, 'gen_ai.client.token.usage');
    expect(tokens.find((p) => p.attributes['gen_ai.token.type'] === 'output')?.sum).toBe(
      final.usage.outputTokens,
    );
    expect(total(sumPoints(metrics, 'tokenmeter.streams.active'), {})).toBe(0);
    expect(sumPoints(metrics, 'tokenmeter.reservations.ended')).toEqual([
      { attributes: { 'tokenmeter.reservation.end': 'settled' }, value: 1 },
    ]);
  });
});

describe('budgets and rate limits', () => {
  it('a budget rejection at admission is an `admit {model}` span under the server span, and counted by reason', async () => {
    await start({ middleware: { budgets: { user: { limitUsd: '0.0001', period: 'day' } } } });
    const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'dan' } });
    expect(result.status).toBe(402);
    const body = result.body as {
      error: { code: string; requiredUsd: number; budget: { remainingUsd: number } };
    };
    expect(body.error.code).toBe('budget_exceeded');
    expect(fake.requests).toHaveLength(0);

    const span = await waitFor(() => spanNamed(otel.spans, `admit ${MODEL}`), 'the admit span');
    const server = await serverSpanOf();
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    // The reservation is above the whole limit: waiting cannot help, so no Retry-After.
    expect(result.headers.get('retry-after')).toBeNull();
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.request.max_tokens': 300,
      'tokenmeter.rejection.reason': 'budget_exceeded',
      'tokenmeter.rejection.scope': 'user',
      'tokenmeter.outcome': 'budget_exceeded',
      'error.type': 'budget_exceeded',
      'http.response.status_code': 402,
      'tokenmeter.reserved.usd': body.error.requiredUsd,
      'tokenmeter.budget.remaining.usd': body.error.budget.remainingUsd,
    });
    expect(body.error.budget.remainingUsd).toBe(0.0001);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(spanNamed(otel.spans, `chat ${MODEL}`)).toBeUndefined();

    const metrics = await otel.metrics();
    expect(sumPoints(metrics, 'tokenmeter.admission.rejections')).toEqual([
      {
        attributes: {
          'tokenmeter.rejection.reason': 'budget_exceeded',
          'gen_ai.operation.name': 'chat',
          'gen_ai.request.model': MODEL,
          'gen_ai.provider.name': 'anthropic',
        },
        value: 1,
      },
    ]);
    // Nothing streamed: no stream, token, cost or reservation series.
    for (const name of [
      'tokenmeter.streams',
      'tokenmeter.cost',
      'tokenmeter.streams.active',
      'tokenmeter.reservations.opened',
    ]) {
      expect(sumPoints(metrics, name)).toEqual([]);
    }
    expect(histogramPoints(metrics, 'gen_ai.client.token.usage')).toEqual([]);
    expect(histogramPoints(metrics, 'gen_ai.client.operation.duration')).toEqual([]);
  });

  it('a rate-limit rejection is rate_limited; an unknown model stays off the metrics', async () => {
    await start({
      middleware: { rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] } },
    });
    expect((await postSSE(app.url, prompt, { headers: { 'x-user': 'eve' } })).status).toBe(200);
    const limited = await postSSE(app.url, prompt, { headers: { 'x-user': 'eve' } });
    expect(limited.status).toBe(429);
    const unknown = await postSSE(
      app.url,
      { ...prompt, model: 'not-a-model-xyz' },
      { headers: { 'x-user': 'eve' } },
    );
    expect(unknown.status).toBe(400);

    const rejected = await waitFor(
      () =>
        otel.spans
          .getFinishedSpans()
          .find((s) => s.attributes['tokenmeter.outcome'] === 'rate_limited'),
      'the rate_limited span',
    );
    expect(rejected.name).toBe(`admit ${MODEL}`);
    expect(rejected.attributes).toMatchObject({
      'tokenmeter.rejection.reason': 'rate_limited',
      'tokenmeter.rejection.scope': 'user',
      'http.response.status_code': 429,
      'error.type': 'rate_limited',
    });
    expect(Math.ceil((rejected.attributes['tokenmeter.retry_after_ms'] as number) / 1000)).toBe(
      Number(limited.headers.get('retry-after')),
    );
    const unknownSpan = await waitFor(
      () => spanNamed(otel.spans, 'admit not-a-model-xyz'),
      'the unknown model span',
    );
    expect(unknownSpan.attributes).toMatchObject({
      'tokenmeter.rejection.reason': 'unknown_model',
      'http.response.status_code': 400,
    });
    expect(unknownSpan.attributes['tokenmeter.outcome']).toBeUndefined();

    const metrics = await otel.metrics();
    const rejections = sumPoints(metrics, 'tokenmeter.admission.rejections');
    expect(total(rejections, { 'tokenmeter.rejection.reason': 'rate_limited' })).toBe(1);
    const unknownPoint = rejections.find(
      (p) => p.attributes['tokenmeter.rejection.reason'] === 'unknown_model',
    );
    // The client's made-up model name must not become a metric series.
    expect(unknownPoint).toEqual({
      attributes: {
        'tokenmeter.rejection.reason': 'unknown_model',
        'gen_ai.operation.name': 'chat',
      },
      value: 1,
    });
    expect(
      total(sumPoints(metrics, 'tokenmeter.streams'), { 'tokenmeter.outcome': 'completed' }),
    ).toBe(1);
  });

  it('the cost cap stops a stream mid-way: budget_exceeded, an abort event, the error event cost', async () => {
    // A route whose own request() sends max_tokens 300 whatever was admitted: the stream
    // itself stops at what the cap covers.
    await start({
      middleware: {
        maxCostPerRequestUsd: '0.0002',
        request: () => ({ model: MODEL, maxTokens: 300, input: { messages: prompt.messages } }),
        upstream: (req, meter) =>
          anthropicClient(fake.url).messages.create(
            { model: meter.model, max_tokens: 300, messages: prompt.messages, stream: true },
            { signal: meter.signal, headers: knobHeaders(req) },
          ),
      },
    });
    const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'fay' } });
    const error = eventData<ErrorEvent>(result, 'error');
    expect(error.code).toBe('budget_exceeded');
    const [settle] = await app.waitForSettles(1);
    expect(settle!.final.costNanos).toBe(error.costNanos);
    const span = await chatSpan();
    expect(span.attributes).toMatchObject({
      'tokenmeter.outcome': 'budget_exceeded',
      'error.type': 'budget_exceeded',
      'tokenmeter.cost.nanos': error.costNanos,
      'tokenmeter.cost.estimated': error.estimated,
      'gen_ai.usage.output_tokens': error.usage.outputTokens,
      'gen_ai.usage.input_tokens': error.usage.inputTokens,
    });
    expect(error.costNanos).toBeLessThanOrEqual(usd('0.0002') + 5_000);
    expect(event(span, 'tokenmeter.abort')?.attributes).toEqual({
      'tokenmeter.abort.reason': 'budget_exceeded',
    });
    const metrics = await otel.metrics();
    expect(
      total(sumPoints(metrics, 'tokenmeter.cost'), { 'tokenmeter.outcome': 'budget_exceeded' }),
    ).toBe(error.costNanos / 1e9);
  });
});

describe('upstream errors', () => {
  it('an error event mid-stream: upstream_error, error.type the provider error, status ERROR, the error event cost', async () => {
    await start();
    const result = await postSSE(app.url, prompt, {
      headers: {
        'x-user': 'gus',
        'x-fake-llm-fault': 'error-mid-stream',
        'x-fake-llm-fault-after': '30',
      },
    });
    const error = eventData<ErrorEvent>(result, 'error');
    expect(error).toMatchObject({ code: 'upstream_error', upstreamType: 'overloaded_error' });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const [settle] = await app.waitForSettles(1);
    expect(error.costNanos).toBe(handCost(record.inputTokens, settle!.final.usage.outputTokens));

    const span = await chatSpan();
    expect(span.attributes).toMatchObject({
      'tokenmeter.outcome': 'upstream_error',
      'error.type': 'overloaded_error',
      'gen_ai.usage.input_tokens': record.inputTokens,
      'gen_ai.usage.output_tokens': error.usage.outputTokens,
      'tokenmeter.cost.nanos': error.costNanos,
      'tokenmeter.cost.usd': error.costUsd,
      'tokenmeter.cost.estimated': true,
      'gen_ai.response.id': record.id.replace(/^req_/, 'msg_'),
    });
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'The model provider reported overloaded_error mid-stream.',
    });
    const metrics = await otel.metrics();
    const duration = histogramPoints(metrics, 'gen_ai.client.operation.duration');
    expect(duration.map((p) => p.attributes['error.type'])).toEqual(['overloaded_error']);
    expect(sumPoints(metrics, 'tokenmeter.streams')).toEqual([
      { attributes: expect.objectContaining({ 'tokenmeter.outcome': 'upstream_error' }), value: 1 },
    ]);
    expect(total(sumPoints(metrics, 'tokenmeter.cost'), {})).toBe(error.costNanos / 1e9);
    const tokens = histogramPoints(metrics, 'gen_ai.client.token.usage');
    expect(tokens.find((p) => p.attributes['gen_ai.token.type'] === 'input')?.sum).toBe(
      record.inputTokens,
    );
  });

  it('HTTP 529 before the stream: refused, $0, error.type overloaded_error, no token usage recorded', async () => {
    await start();
    const result = await postSSE(app.url, prompt, {
      headers: { 'x-user': 'hal', 'x-fake-llm-fault': '529' },
    });
    const error = eventData<ErrorEvent>(result, 'error');
    expect(error).toMatchObject({ code: 'upstream_error', costNanos: 0 });
    const span = await chatSpan();
    expect(span.attributes).toMatchObject({
      'tokenmeter.outcome': 'upstream_error',
      'error.type': 'overloaded_error',
      'tokenmeter.cost.nanos': 0,
      'gen_ai.usage.input_tokens': 0,
      'gen_ai.usage.output_tokens': 0,
    });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.status.message).toMatch(/HTTP 529/);
    expect(span.attributes['tokenmeter.time_to_first_token_ms']).toBeUndefined();
    expect(event(span, 'tokenmeter.first_token')).toBeUndefined();
    const metrics = await otel.metrics();
    expect(histogramPoints(metrics, 'gen_ai.client.token.usage')).toEqual([]);
    expect(histogramPoints(metrics, 'gen_ai.client.operation.time_to_first_chunk')).toEqual([]);
    expect(
      histogramPoints(metrics, 'gen_ai.client.operation.duration')[0]!.attributes,
    ).toMatchObject({ 'error.type': 'overloaded_error' });
    expect(sumPoints(metrics, 'tokenmeter.cost')).toEqual([
      { attributes: expect.objectContaining({ 'tokenmeter.outcome': 'upstream_error' }), value: 0 },
    ]);
  });
});

describe('opt-ins', () => {
  it('records nothing about subjects or content by default', async () => {
    await start();
    await postSSE(app.url, prompt, { headers: { 'x-user': 'ida' } });
    const span = await chatSpan();
    const keys = Object.keys(span.attributes);
    expect(keys.filter((k) => k.startsWith('tokenmeter.subject.'))).toEqual([]);
    expect(keys.filter((k) => /^gen_ai\.(input|output|system)/.test(k))).toEqual([]);
    expect(JSON.stringify(span.attributes)).not.toContain('ida');
    expect(JSON.stringify(span.events)).not.toContain('Hello there');
  });

  it('recordSubjects and recordContent put subject ids and the text on the span, ids on cost', async () => {
    await start({ telemetry: { recordSubjects: ['user'], recordContent: true } });
    const body = { ...prompt, system: 'Be brief.' };
    const result = await postSSE(app.url, body, { headers: { 'x-user': 'jo' } });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const done = eventData<Done>(result, 'done');
    const span = await chatSpan();
    expect(span.attributes['tokenmeter.subject.user']).toBe('jo');
    expect(JSON.parse(span.attributes['gen_ai.input.messages'] as string)).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'Hello there.' }] },
    ]);
    expect(JSON.parse(span.attributes['gen_ai.system_instructions'] as string)).toEqual([
      { type: 'text', content: 'Be brief.' },
    ]);
    expect(JSON.parse(span.attributes['gen_ai.output.messages'] as string)).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: record.text }], finish_reason: 'stop' },
    ]);
    expect(record.text.length).toBeGreaterThan(50);
    const metrics = await otel.metrics();
    expect(sumPoints(metrics, 'tokenmeter.cost')).toEqual([
      {
        attributes: expect.objectContaining({ 'tokenmeter.subject.user': 'jo' }),
        value: done.costNanos / 1e9,
      },
    ]);
    // Histograms stay per model: one series per subject and bucket would be too many.
    for (const p of histogramPoints(metrics, 'gen_ai.client.token.usage')) {
      expect(p.attributes['tokenmeter.subject.user']).toBeUndefined();
    }
  });
});

describe('the time between output chunks (timePerOutputChunk)', () => {
  const paced = { headers: { 'x-user': 'kim', 'x-fake-llm-tps': '300' } };

  it('is off by default', async () => {
    await start();
    await postSSE(app.url, prompt, paced);
    await app.waitForSettles(1);
    const metrics = await otel.metrics();
    expect(metrics.has('gen_ai.client.operation.duration')).toBe(true);
    expect(histogramPoints(metrics, 'gen_ai.client.operation.time_per_output_chunk')).toEqual([]);
  });

  it.each([
    ['previous', 'gen_ai.client.operation.time_per_output_chunk'],
    ['latest', 'gen_ai.client.inference.time_per_output_chunk'],
  ] as const)(
    '%s names: one point per text chunk after the first, within the stream',
    async (conventions, name) => {
      await start({ telemetry: { timePerOutputChunk: true, conventions } });
      const result = await postSSE(app.url, prompt, paced);
      const [settle] = await app.waitForSettles(1);
      // Each text delta the provider sent is one chunk (and one `delta` event here).
      const chunks = result.events.filter((e) => e.event === 'delta').length;
      expect(chunks).toBe(30); // 90 tokens, 3 a delta
      const metrics = await otel.metrics();
      const points = histogramPoints(metrics, name);
      expect(points).toEqual([
        {
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'anthropic',
            'gen_ai.request.model': MODEL,
          },
          count: chunks - 1,
          sum: expect.any(Number),
          boundaries: [...semconv.TIME_PER_OUTPUT_CHUNK_BUCKETS],
        },
      ]);
      expect(metrics.get(name)!.descriptor.unit).toBe('s');
      // The gaps add up to the time from the first chunk to the last: inside the stream.
      expect(points[0]!.sum).toBeGreaterThan(0);
      expect(points[0]!.sum).toBeLessThanOrEqual(
        (settle!.durationMs - settle!.timeToFirstTokenMs!) / 1000,
      );
    },
  );

  it('through the gateway: one point per relayed text chunk after the first', async () => {
    otel = createOtel();
    store = createMemoryStore();
    const gateway = await startGateway(express5, anthropicGateway, {
      apiKey: 'upstream-key',
      baseURL: fake.url,
      store,
      identify: (key) => (key ? { user: key } : undefined),
      telemetry: { tracer: otel.tracer, meter: otel.meter, timePerOutputChunk: true },
    });
    try {
      const client = new Anthropic({ apiKey: 'caller-key', baseURL: gateway.url, maxRetries: 0 });
      const stream = await client.messages.create(
        { ...prompt, stream: true },
        { headers: { 'x-fake-llm-tps': '300' } },
      );
      let chunks = 0;
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') chunks++;
      }
      expect(chunks).toBe(30);
      const [settle] = await waitForSettles(gateway, 1);
      const points = histogramPoints(
        await otel.metrics(),
        'gen_ai.client.operation.time_per_output_chunk',
      );
      expect(points.map((p) => p.count)).toEqual([chunks - 1]);
      expect(points[0]!.sum).toBeGreaterThanOrEqual(0);
      expect(points[0]!.sum).toBeLessThanOrEqual(
        (settle!.durationMs - settle!.timeToFirstTokenMs!) / 1000,
      );
    } finally {
      await gateway.close();
    }
  });

  it('must be true or false', () => {
    expect(() => new Telemetry({ timePerOutputChunk: 'yes' as unknown as boolean })).toThrow(
      /timePerOutputChunk must be true or false/,
    );
  });
});

describe('the store', () => {
  function failingStore(base: MemoryStore, admit: Store['admit']): Store {
    return {
      admit,
      settle: (id, actual) => base.settle(id, actual),
      extend: (id, request) => base.extend(id, request),
      release: (id) => base.release(id),
      getState: (scope, policy) => base.getState(scope, policy),
      now: () => base.now(),
    };
  }

  it('store failures and timeouts are in the store latency metric with error.type, and the 503 is an ERROR span', async () => {
    const base = createMemoryStore();
    let calls = 0;
    const flaky = failingStore(base, (request) => {
      calls++;
      if (calls === 1) return Promise.reject(new Error('ECONNREFUSED'));
      if (calls === 2) return new Promise(() => {}); // never answers
      return base.admit(request);
    });
    await start({ store: flaky, middleware: { storeTimeoutMs: 100 } });
    const refused = await postSSE(app.url, prompt, { headers: { 'x-user': 'kim' } });
    expect(refused.status).toBe(503);
    const timedOut = await postSSE(app.url, prompt, { headers: { 'x-user': 'kim' } });
    expect(timedOut.status).toBe(503);
    const ok = await postSSE(app.url, prompt, { headers: { 'x-user': 'kim' } });
    expect(ok.status).toBe(200);
    await app.waitForSettles(1);
    await base.shutdown?.();

    const span = await waitFor(() => spanNamed(otel.spans, `admit ${MODEL}`), 'the admit span');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toMatchObject({
      'tokenmeter.rejection.reason': 'store_unavailable',
      'tokenmeter.outcome': 'store_unavailable',
      'http.response.status_code': 503,
    });
    const metrics = await otel.metrics();
    const admits = histogramPoints(metrics, 'tokenmeter.store.operation.duration').filter(
      (p) => p.attributes['tokenmeter.store.operation'] === 'admit',
    );
    const byError = new Map(admits.map((p) => [p.attributes['error.type'], p]));
    expect(byError.get('store_unavailable')?.count).toBe(1);
    expect(byError.get('timeout')?.count).toBe(1);
    expect(byError.get('timeout')!.sum).toBeGreaterThanOrEqual(0.099);
    expect(byError.get(undefined)?.count).toBe(1);
    expect(
      total(sumPoints(metrics, 'tokenmeter.admission.rejections'), {
        'tokenmeter.rejection.reason': 'store_unavailable',
      }),
    ).toBe(2);
  });

  it('observeScopes exports the store-side open and expired reservation counts', async () => {
    await start({ telemetry: { observeScopes: [{ kind: 'user', id: 'lee' }] } });
    const scope = { kind: 'user', id: 'lee' };
    const budget = { limitNanos: usd('1.00'), period: 'day' as const };
    await store.admit({ scope, budget, reserveNanos: 1_000, estimatedTokens: 1, ttlMs: 60_000 });
    await store.admit({ scope, budget, reserveNanos: 1_000, estimatedTokens: 1, ttlMs: 1 });
    await store.admit({ scope, budget, reserveNanos: 1_000, estimatedTokens: 1, ttlMs: 1 });
    await new Promise((r) => setTimeout(r, 20));
    const metrics = await otel.metrics();
    const attrs = { 'tokenmeter.scope.kind': 'user', 'tokenmeter.scope.id': 'lee' };
    expect(sumPoints(metrics, 'tokenmeter.store.reservations.open')).toEqual([
      { attributes: attrs, value: 1 },
    ]);
    expect(sumPoints(metrics, 'tokenmeter.store.reservations.expired')).toEqual([
      { attributes: attrs, value: 2 },
    ]);
  });
});

describe('robustness and cardinality', () => {
  it('a model priced by the unknown-model fallback is `_OTHER` on metrics, its real name on the span', async () => {
    await start({
      middleware: { pricing: new Pricing({ unknownModel: { fallbackModel: MODEL } }) },
    });
    const result = await postSSE(
      app.url,
      { ...prompt, model: 'my-finetune-7' },
      { headers: { 'x-user': 'max' } },
    );
    expect(result.status).toBe(200);
    const done = eventData<Done>(result, 'done');
    const span = await waitFor(() => spanNamed(otel.spans, 'chat my-finetune-7'), 'the chat span');
    expect(span.attributes['gen_ai.request.model']).toBe('my-finetune-7');
    expect(span.attributes['tokenmeter.cost.nanos']).toBe(done.costNanos);
    const metrics = await otel.metrics();
    const cost = sumPoints(metrics, 'tokenmeter.cost');
    expect(cost).toHaveLength(1);
    expect(cost[0]!.attributes['gen_ai.request.model']).toBe('_OTHER');
    expect(cost[0]!.attributes['gen_ai.response.model']).toBeUndefined();
    expect(JSON.stringify([...metrics.values()].map((m) => m.dataPoints))).not.toContain(
      'my-finetune-7',
    );
  });

  it('a tracer or meter that throws never breaks a stream or its settlement', async () => {
    const boom = () => {
      throw new Error('exporter on fire');
    };
    const tracer = { startSpan: boom, startActiveSpan: boom } as unknown as Tracer;
    const real = createOtel().meter;
    const throwing = { add: boom, record: boom };
    const meter = {
      createCounter: () => throwing,
      createUpDownCounter: () => throwing,
      createHistogram: () => throwing,
      createObservableGauge: (name: string) => real.createObservableGauge(name),
      addBatchObservableCallback: () => {},
    } as unknown as Meter;
    await start({ telemetry: { tracer, meter } });
    const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'ned' } });
    expect(result.status).toBe(200);
    const done = eventData<Done>(result, 'done');
    const [settle] = await app.waitForSettles(1);
    expect(settle!.final.costNanos).toBe(done.costNanos);
    const state = await store.getState(
      { kind: 'user', id: 'ned' },
      { budget: { limitNanos: usd('1.00'), period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(done.costNanos);
    expect(state.budget!.reservedNanos).toBe(0);
    const refused = await postSSE(app.url, prompt);
    expect(refused.status).toBe(401);
  });
});

describe('the latest GenAI conventions (semantic-conventions-genai v0.1.0), opted into', () => {
  it('the same span with cache_write in place of cache_creation, inference metrics and token counters equal to the usage', async () => {
    await start({
      telemetry: { conventions: 'latest', server: { address: '127.0.0.1', port: fake.port } },
    });
    const result = await postSSE(app.url, prompt, CACHED);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const [settle] = await app.waitForSettles(1);
    const done = eventData<Done>(result, 'done');
    const usage = record.usage!;
    const totalInput = usage.inputTokens + 100 + 20 + 5;
    const cost = handCost(usage.inputTokens, usage.outputTokens, 100, 20, 5);
    expect(done.costNanos).toBe(cost);

    const span = await chatSpan();
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.request.stream': true,
      'gen_ai.usage.input_tokens': totalInput,
      'gen_ai.usage.output_tokens': 90,
      'gen_ai.usage.cache_read.input_tokens': 100,
      'gen_ai.usage.cache_write.input_tokens': 25,
      'tokenmeter.cost.amount': cost / 1e9,
      'tokenmeter.cost.currency': 'USD',
      'tokenmeter.cost.source': 'local',
      'tokenmeter.cost.nanos': cost,
      'tokenmeter.cost.estimated': false,
    });
    // The previous names are gone, not doubled.
    expect(span.attributes['gen_ai.usage.cache_creation.input_tokens']).toBeUndefined();
    expect(span.attributes['tokenmeter.cost.usd']).toBeUndefined();

    const metrics = await otel.metrics();
    const base = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': MODEL,
      'server.address': '127.0.0.1',
      'server.port': fake.port,
    };
    const unknown = { ...base, 'gen_ai.token.modality': 'unknown' };
    const counter = (name: string) => sumPoints(metrics, `gen_ai.client.inference.usage.${name}`);
    expect(counter('input_tokens')).toEqual([{ attributes: unknown, value: totalInput }]);
    expect(counter('output_tokens')).toEqual([{ attributes: unknown, value: 90 }]);
    expect(counter('cache_read.input_tokens')).toEqual([{ attributes: unknown, value: 100 }]);
    expect(counter('cache_write.input_tokens')).toEqual([{ attributes: unknown, value: 25 }]);
    // No reasoning in this answer: the counter has no point, not a 0 of a kind that never ran.
    expect(counter('reasoning.output_tokens')).toEqual([]);
    for (const [name, { unit }] of Object.entries(CONVENTIONS.latest.metrics)) {
      // Not in this answer (no reasoning), or not asked for (timePerOutputChunk).
      if (name.includes('reasoning') || name.includes('time_per_output_chunk')) continue;
      expect(metrics.get(name)?.descriptor.unit, name).toBe(unit);
    }
    expect(histogramPoints(metrics, 'gen_ai.client.inference.operation.input_tokens')).toEqual([
      {
        attributes: base,
        count: 1,
        sum: totalInput,
        boundaries: [...semconv.GEN_AI_TOKEN_USAGE_BUCKETS],
      },
    ]);
    expect(
      histogramPoints(metrics, 'gen_ai.client.inference.operation.output_tokens')[0],
    ).toMatchObject({ attributes: base, count: 1, sum: 90 });
    expect(histogramPoints(metrics, 'gen_ai.client.inference.duration')).toEqual([
      {
        attributes: base,
        count: 1,
        sum: settle!.durationMs / 1000,
        boundaries: [...semconv.GEN_AI_DURATION_BUCKETS],
      },
    ]);
    expect(histogramPoints(metrics, 'gen_ai.client.inference.time_to_first_chunk')).toEqual([
      {
        attributes: base,
        count: 1,
        sum: settle!.timeToFirstTokenMs! / 1000,
        boundaries: [...semconv.GEN_AI_DURATION_BUCKETS],
      },
    ]);
    // The cost in the proposed gen_ai.client.operation.cost shape, under tokenmeter.*.
    expect(histogramPoints(metrics, 'tokenmeter.client.operation.cost')).toEqual([
      {
        attributes: {
          ...base,
          'tokenmeter.cost.currency': 'USD',
          'tokenmeter.cost.source': 'local',
        },
        count: 1,
        sum: cost / 1e9,
        boundaries: [...semconv.COST_BUCKETS],
      },
    ]);
    // tokenmeter's own counter is the same in both versions.
    expect(total(sumPoints(metrics, 'tokenmeter.cost'), {})).toBe(cost / 1e9);
    for (const name of Object.keys(CONVENTIONS.previous.metrics)) {
      expect(metrics.has(name), name).toBe(false);
    }
  });

  it('counts only what the provider reported: a disconnect adds its input and 0 output (the estimate is on the span and in the cost)', async () => {
    const slow = await startFakeLLM({ tps: 200, chunk: 1, tokens: 2_000, seed: 2 });
    try {
      await start({
        telemetry: { conventions: 'latest' },
        middleware: {
          upstream: (req, meter) =>
            anthropicClient(slow.url).messages.create(
              {
                model: meter.model,
                max_tokens: meter.maxTokens,
                messages: prompt.messages,
                stream: true,
              },
              { signal: meter.signal, headers: knobHeaders(req) },
            ),
        },
      });
      const controller = new AbortController();
      const response = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': 'kim' },
        body: JSON.stringify({ ...prompt, max_tokens: 2_000 }),
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      let seen = '';
      while (!seen.includes('event: delta'))
        seen += new TextDecoder().decode((await reader.read()).value);
      controller.abort();
      const [settle] = await app.waitForSettles(1);
      const record = await slow.waitForRequest(slow.lastRequest!.id);
      expect(settle!.outcome).toBe('client_disconnected');
      expect(settle!.final.estimated).toBe(true);
      expect(settle!.final.usage.outputTokens).toBeGreaterThan(0);
      const span = await chatSpan();
      expect(span.attributes['gen_ai.usage.output_tokens']).toBe(settle!.final.usage.outputTokens);
      const metrics = await otel.metrics();
      const counted = (name: string) =>
        total(sumPoints(metrics, `gen_ai.client.inference.usage.${name}`), {});
      expect(counted('input_tokens')).toBe(record.inputTokens);
      expect(counted('output_tokens')).toBe(0);
      expect(histogramPoints(metrics, 'gen_ai.client.inference.operation.output_tokens')).toEqual(
        [],
      );
      expect(
        histogramPoints(metrics, 'gen_ai.client.inference.duration')[0]!.attributes['error.type'],
      ).toBe('client_disconnected');
    } finally {
      await slow.close();
    }
  });

  it('OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental picks the latest names; anything else the previous', () => {
    expect(semconv.conventionsFromEnv('http,gen_ai_latest_experimental')).toBe('latest');
    expect(semconv.conventionsFromEnv(' gen_ai_latest_experimental ')).toBe('latest');
    expect(semconv.conventionsFromEnv('http/dup')).toBe('previous');
    expect(semconv.conventionsFromEnv('')).toBe('previous');
    expect(semconv.conventionsFromEnv(undefined)).toBe('previous');
  });
});

describe.each(['previous', 'latest'] as const)('every name, %s conventions', (conventions) => {
  it('is one the conventions define at their tag (span attributes, metric names, units, metric attributes), or tokenmeter.*', async () => {
    await start({
      telemetry: {
        conventions,
        recordContent: true,
        timePerOutputChunk: true,
        server: { address: '127.0.0.1', port: fake.port },
      },
    });
    // A completed answer with cache reads and writes, one refused (HTTP 529) and one refused
    // by a rate limit: every attribute tokenmeter writes on a chat span, admit span or metric.
    await postSSE(
      app.url,
      { ...prompt, system: 'Be brief.' },
      {
        headers: {
          'x-user': 'lee',
          'x-fake-llm-cache-read': '10',
          'x-fake-llm-cache-write-1h': '3',
        },
      },
    );
    await postSSE(app.url, prompt, { headers: { 'x-user': 'lee', 'x-fake-llm-fault': '529' } });
    await postSSE(app.url, { ...prompt, model: 'no-such-model' }, { headers: { 'x-user': 'lee' } });
    await app.waitForSettles(2);
    const spec = CONVENTIONS[conventions];
    const other = CONVENTIONS[conventions === 'latest' ? 'previous' : 'latest'];
    const allowed = new Set<string>(spec.spanAttributes);
    const spans = await waitFor(() => {
      const found = otel.spans
        .getFinishedSpans()
        .filter((s) => s.name.startsWith('chat ') || s.name.startsWith('admit'));
      return found.length >= 3 ? found : undefined;
    }, 'three tokenmeter spans');
    const emitted = new Set(spans.flatMap((s) => Object.keys(s.attributes)));
    const foreign = [...emitted].filter((k) => isConventionName(k) && !allowed.has(k));
    expect(foreign, `not in ${spec.tag}`).toEqual([]);
    expect(emitted).toContain(
      conventions === 'latest'
        ? 'gen_ai.usage.cache_write.input_tokens'
        : 'gen_ai.usage.cache_creation.input_tokens',
    );
    for (const k of emitted) expect(k).toMatch(/^(gen_ai|error|server|http|tokenmeter)\./);

    const metrics = await otel.metrics();
    const metricAttributes = new Set<string>(spec.metricAttributes);
    for (const [name, metric] of metrics) {
      if (name.startsWith('tokenmeter.')) continue;
      const defined = (spec.metrics as Record<string, { type: string; unit: string }>)[name];
      expect(defined, `${name} is not a metric of ${spec.tag}`).toBeDefined();
      expect(metric.descriptor.unit, name).toBe(defined!.unit);
      const isHistogram = metric.dataPointType === 0; // DataPointType.HISTOGRAM
      expect(isHistogram ? 'histogram' : 'counter', name).toBe(defined!.type);
      for (const point of metric.dataPoints as Array<{ attributes: Attributes }>) {
        for (const key of Object.keys(point.attributes)) {
          if (key.startsWith('tokenmeter.')) continue;
          expect(metricAttributes.has(key), `${name}: ${key}`).toBe(true);
        }
      }
    }
    for (const name of Object.keys(other.metrics)) expect(metrics.has(name), name).toBe(false);
    // The opt-in metric was emitted, so the check above covered it.
    expect(
      metrics.has(
        conventions === 'latest'
          ? 'gen_ai.client.inference.time_per_output_chunk'
          : 'gen_ai.client.operation.time_per_output_chunk',
      ),
    ).toBe(true);
  });
});
