/**
 * One span tree when the AI SDK's own telemetry is on (`experimental_telemetry`): its
 * `ai.streamText` span (and the `ai.streamText.doStream` span of the provider call) nest
 * under tokenmeter's `chat {model}` span, which nests under the HTTP server span — in the
 * terminal mode (`upstream`) and in a route handler after the middleware (`meter.stream()`).
 * tokenmeter's span stays the one that carries the cost and the GenAI usage attributes;
 * LangChain.js, which has no OpenTelemetry spans of its own, simply runs inside it.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { semconv } from '@tokenmeter/engine';
import type { MeteredRequest, MeteredStream } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { jsonSchema, type ModelMessage, stepCountIs, streamText, tool } from 'ai';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { sourceUpstream } from '../helpers/sources.js';
import { postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';
import {
  createOtel,
  histogramPoints,
  type Otel,
  serverSpan,
  spanNamed,
  useAsyncContext,
  waitFor,
} from './otel.js';

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

describe('a tool loop through the AI SDK: one provider call per step', () => {
  const SONNET_4_5 = { input: 3_000, output: 15_000 }; // $3 / $15 per million; $6 / $22.50 above 200,000

  /** A tool forced at every step: each step is one more provider call. */
  const loop = (req: MeteredRequest, meter: MeteredStream) =>
    streamText({
      model: createAnthropic({ baseURL: `${fake.url}/v1`, apiKey: 'test-key' })(meter.model),
      messages: (req.body as { messages: ModelMessage[] }).messages,
      maxOutputTokens: meter.maxTokens,
      tools: {
        lookup: tool({ inputSchema: jsonSchema({ type: 'object' }), execute: async () => 'ok' }),
      },
      toolChoice: 'required',
      stopWhen: stepCountIs(3),
      headers: knobHeaders(req),
      abortSignal: meter.signal,
      maxRetries: 0,
      onError: () => {},
    });

  it.each(['previous', 'latest'] as const)(
    'an invoke_agent span with a chat child per call, each with its usage and cost; each call priced alone (%s names)',
    async (conventions) => {
      otel = createOtel();
      store = createMemoryStore();
      fake.reset();
      app = await startApp({
        express,
        before: [serverSpan(otel.tracer)],
        middleware: {
          store,
          identify: identifyByHeader,
          budgets: { user: { limitUsd: '5.00', period: 'day' } },
          telemetry: { tracer: otel.tracer, meter: otel.meter, conventions },
          upstream: loop,
        },
      });
      // Every call reports a 150,000-token prompt: three calls are 450,000, but each request
      // is under the 200,000-token tier and billed at the base rate.
      const result = await postSSE(
        app.url,
        {
          model: 'claude-sonnet-4-5',
          max_tokens: 200,
          messages: [{ role: 'user', content: 'Look it up.' }],
        },
        { headers: { 'x-user': 'agent', 'x-fake-llm-input-tokens': '150000' } },
      );
      expect(result.status).toBe(200);
      const [settle] = await app.waitForSettles(1);
      const records = await Promise.all(fake.requests.map((r) => fake.waitForRequest(r.id)));
      expect(records).toHaveLength(3);
      const billed = records.map(
        (r) => r.usage!.inputTokens * SONNET_4_5.input + r.usage!.outputTokens * SONNET_4_5.output,
      );
      expect(records.every((r) => r.usage!.inputTokens === 150_000)).toBe(true);
      const total = billed.reduce((a, b) => a + b, 0);
      expect(settle!.outcome).toBe('completed');
      expect(settle!.final.costNanos).toBe(total);
      expect(settle!.final.cost.tierAbove).toBeUndefined();

      const agent = await waitFor(() => spanNamed(otel.spans, 'invoke_agent'), 'agent span');
      const server = await waitFor(() => spanNamed(otel.spans, 'POST /chat'), 'server span');
      expect(agent.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(agent.attributes).toMatchObject({
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.usage.input_tokens': 450_000,
        'tokenmeter.cost.nanos': total,
        'tokenmeter.outcome': 'completed',
      });
      // The breakdown and the cost amount are the calls', not summed again on the agent.
      expect(agent.attributes['gen_ai.usage.cache_read.input_tokens']).toBeUndefined();
      expect(agent.attributes['tokenmeter.cost.amount']).toBeUndefined();
      const chats = otel.spans
        .getFinishedSpans()
        .filter((s) => s.name === 'chat claude-sonnet-4-5')
        .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
      expect(chats).toHaveLength(3);
      chats.forEach((chat, i) => {
        expect(chat.parentSpanContext?.spanId).toBe(agent.spanContext().spanId);
        expect(chat.attributes).toMatchObject({
          'gen_ai.operation.name': 'chat',
          'gen_ai.usage.input_tokens': 150_000,
          'gen_ai.usage.output_tokens': records[i]!.usage!.outputTokens,
          // toolChoice 'required': every step, the last too, ends on a tool call.
          'gen_ai.response.finish_reasons': ['tool_use'],
          'tokenmeter.cost.nanos': billed[i],
          'tokenmeter.cost.amount': billed[i]! / 1e9,
          'tokenmeter.cost.currency': 'USD',
        });
        expect(
          chat.attributes[
            conventions === 'latest'
              ? 'gen_ai.usage.cache_write.input_tokens'
              : 'gen_ai.usage.cache_creation.input_tokens'
          ],
        ).toBe(0);
      });
      const metrics = await otel.metrics();
      const duration =
        conventions === 'latest'
          ? 'gen_ai.client.inference.duration'
          : 'gen_ai.client.operation.duration';
      expect(histogramPoints(metrics, duration)[0]!.count).toBe(3);
      if (conventions === 'latest') {
        const cost = histogramPoints(metrics, 'tokenmeter.client.operation.cost')[0]!;
        expect(cost.count).toBe(3);
        expect(cost.sum).toBeCloseTo(total / 1e9, 12);
      } else {
        const input = histogramPoints(metrics, 'gen_ai.client.token.usage').find(
          (p) => p.attributes['gen_ai.token.type'] === 'input',
        )!;
        expect(input).toMatchObject({ count: 3, sum: 450_000 });
      }
    },
  );
});
