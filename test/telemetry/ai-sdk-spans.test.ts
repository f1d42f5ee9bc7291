/**
 * One span tree when the AI SDK's own telemetry is on (`experimental_telemetry`): its
 * `ai.streamText` span (and the `ai.streamText.doStream` span of the provider call) nest
 * under tokenmeter's `chat {model}` span, which nests under the HTTP server span — in the
 * terminal mode (`upstream`) and in a route handler after the middleware (`meter.stream()`).
 * tokenmeter's span stays the one that carries the cost and the GenAI usage attributes;
 * LangChain.js, which has no OpenTelemetry spans of its own, simply runs inside it.
 */
import { semconv } from '@tokenmeter/engine';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { sourceUpstream } from '../helpers/sources.js';
import { postSSE } from '../helpers/sse-client.js';
import { createOtel, type Otel, serverSpan, spanNamed, useAsyncContext, waitFor } from './otel.js';

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;
let otel: Otel;

beforeAll(async () => {
  useAsyncContext();
  fake = await startFakeLLM({ tps: 0, chunk: 4, tokens: 30, seed: 2 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  await otel?.shutdown();
});

const MODEL = 'claude-haiku-4-5'; // $1 / $5 per million tokens

describe.each([
  ['terminal upstream', 'upstream'],
  ['route handler after the middleware', 'handler'],
] as const)('AI SDK telemetry under tokenmeter (%s)', (_name, mode) => {
  it('ai.streamText and its doStream span are children of the chat span', async () => {
    otel = createOtel();
    store = createMemoryStore();
    const upstream = sourceUpstream(fake.url, { tracer: otel.tracer });
    app = await startApp({
      express,
      before: [serverSpan(otel.tracer)],
      middleware: {
        store,
        identify: identifyByHeader,
        budgets: { user: { limitUsd: '1.00', period: 'day' } },
        telemetry: { tracer: otel.tracer, meter: otel.meter },
        ...(mode === 'upstream' ? { upstream } : {}),
      },
      ...(mode === 'handler'
        ? { handler: (req, _res, meter) => meter.stream(upstream(req, meter)) }
        : {}),
    });
    const result = await postSSE(
      app.url,
      { model: MODEL, max_tokens: 200, messages: [{ role: 'user', content: 'Hi' }] },
      { headers: { 'x-user': 'otel', 'x-source': 'ai-sdk' } },
    );
    expect(result.status).toBe(200);
    const [settle] = await app.waitForSettles(1);
    const server = await waitFor(() => spanNamed(otel.spans, 'POST /chat'), 'server span');
    const chat = await waitFor(() => spanNamed(otel.spans, `chat ${MODEL}`), 'chat span');
    const streamText = await waitFor(() => spanNamed(otel.spans, 'ai.streamText'), 'AI SDK span');
    const doStream = await waitFor(
      () => spanNamed(otel.spans, 'ai.streamText.doStream'),
      'AI SDK provider-call span',
    );
    const parent = (s: typeof chat) => s.parentSpanContext?.spanId;
    expect(parent(chat)).toBe(server.spanContext().spanId);
    expect(parent(streamText)).toBe(chat.spanContext().spanId);
    expect(parent(doStream)).toBe(streamText.spanContext().spanId);
    const traceIds = new Set(otel.spans.getFinishedSpans().map((s) => s.spanContext().traceId));
    expect(traceIds.size).toBe(1);
    // One `chat` span: the AI SDK names its own spans ai.*, and the cost is on ours.
    expect(otel.spans.getFinishedSpans().filter((s) => s.name.startsWith('chat '))).toHaveLength(1);
    const record = fake.lastRequest!;
    expect(chat.attributes[semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]).toBe(
      record.usage!.outputTokens,
    );
    expect(chat.attributes[semconv.ATTR_TOKENMETER_COST_NANOS]).toBe(settle!.final.costNanos);
    expect(settle!.final.costNanos).toBe(
      record.usage!.inputTokens * 1_000 + record.usage!.outputTokens * 5_000,
    );
  });
});
