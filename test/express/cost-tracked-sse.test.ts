/**
 * costTrackedSSE end to end: a real Express app (4 and 5) on loopback, the official
 * Anthropic SDK against the testkit's fake upstream, the memory store, and a client that
 * parses SSE with eventsource-parser.
 */
import type Anthropic from '@anthropic-ai/sdk';
import { usd } from '@tokenmeter/core';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient,
  EXPRESS_VERSIONS,
  identifyByHeader,
  startApp,
  type TestApp,
} from '../helpers/app.js';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';

const MODEL = 'claude-haiku-4-5'; // $1 input, $5 output per million tokens
const handCost = (input: number, output: number) => input * 1_000 + output * 5_000;
const prompt = {
  model: MODEL,
  max_tokens: 400,
  messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
};

let fake: FakeLLM;
let client: Anthropic;

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 2, tokens: 120, seed: 7 });
  client = anthropicClient(fake.url);
});
afterAll(() => fake.close());

describe.each(EXPRESS_VERSIONS)('%s', (_name, express) => {
  let app: TestApp;
  let store: MemoryStore;
  afterEach(async () => {
    await app?.close();
    await store?.shutdown?.();
    fake.reset();
  });

  async function start(extra: Partial<Parameters<typeof startApp>[0]['middleware']> = {}) {
    store = createMemoryStore();
    app = await startApp({
      express,
      middleware: {
        store,
        identify: identifyByHeader,
        budgets: { user: { limitUsd: '1.00', period: 'day' } },
        upstream: (req, meter) =>
          client.messages.create(
            {
              model: meter.model,
              max_tokens: meter.maxTokens,
              messages: (req.body as typeof prompt).messages,
              stream: true,
            },
            { signal: meter.signal, headers: knobHeaders(req) },
          ),
        ...extra,
      },
    });
    return app;
  }

  it('streams the exact text and settles the exact cost, sent in done', async () => {
    await start();
    const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'alice' } });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(result.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(result.headers.get('x-accel-buffering')).toBe('no');
    const record = fake.lastRequest!;
    await fake.waitForRequest(record.id);
    expect(result.text).toBe(record.text);
    expect(result.text.length).toBeGreaterThan(100);
    expect(result.events[0]!.event).toBe('meta');
    expect(result.events.at(-1)!.event).toBe('done');
    const done = eventData<{
      costNanos: number;
      costUsd: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
      stopReason: string;
      budget: { remainingUsd: number };
    }>(result, 'done');
    const expected = handCost(record.usage!.inputTokens, record.usage!.outputTokens);
    expect(record.usage!.outputTokens).toBe(120);
    expect(done.costNanos).toBe(expected);
    expect(done.costUsd).toBe(expected / 1e9);
    expect(done.estimated).toBe(false);
    expect(done.stopReason).toBe('end_turn');
    expect(done.usage).toMatchObject({ inputTokens: record.usage!.inputTokens, outputTokens: 120 });
    expect(done.budget.remainingUsd).toBe((1_000_000_000 - expected) / 1e9);
    const state = await store.getState(
      { kind: 'user', id: 'alice' },
      { budget: { limitNanos: usd('1.00'), period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(expected);
    expect(state.budget!.reservedNanos).toBe(0);
    const settles = await app.waitForSettles(1);
    expect(settles[0]!.outcome).toBe('completed');
  });

  it('aborts the upstream call when the client leaves after the first delta, and charges once', async () => {
    await start();
    const result = await postSSE(app.url, prompt, {
      headers: {
        'x-user': 'bob',
        'x-fake-llm-tokens': '2000',
        'x-fake-llm-tps': '400',
        'x-fake-llm-chunk': '1',
      },
      abortWhen: (event) => event.event === 'delta',
    });
    expect(result.events.filter((e) => e.event === 'delta')).toHaveLength(1);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.clientClosedAt).toBeDefined();
    // The fake stopped generating within one chunk of the close it observed.
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(1);
    expect(record.tokensGenerated).toBeLessThan(200);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    // Input as reported by message_start, output estimated from what was received.
    expect(settle!.final.usage.inputTokens).toBe(record.inputTokens);
    expect(settle!.final.costNanos).toBe(
      handCost(record.inputTokens, settle!.final.usage.outputTokens),
    );
    const state = await store.getState(
      { kind: 'user', id: 'bob' },
      { budget: { limitNanos: usd('1.00'), period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(settle!.final.costNanos);
    expect(state.budget!.reservedNanos).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(app.settles).toHaveLength(1);
  });

  it('admits exactly k of N concurrent requests when the budget fits k worst-case reservations', async () => {
    // Each reservation: input estimate + 400 output tokens at $5/M ≈ $0.002; fits 5 in $0.0105.
    await start({ budgets: { user: { limitUsd: '0.0105', period: 'day' } } });
    const N = 20;
    const results = await Promise.all(
      Array.from({ length: N }, () =>
        postSSE(app.url, prompt, { headers: { 'x-user': 'carol', 'x-fake-llm-tps': '2000' } }),
      ),
    );
    const admitted = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status === 402);
    const reserve =
      (eventData<{ reservedUsd: number }>(admitted[0]!, 'meta').reservedUsd * 1e9) | 0;
    expect(admitted).toHaveLength(Math.floor(10_500_000 / reserve));
    expect(admitted.length + rejected.length).toBe(N);
    expect(rejected[0]!.body).toMatchObject({ error: { code: 'budget_exceeded', scope: 'user' } });
    const settles = await app.waitForSettles(admitted.length);
    const total = settles.reduce((sum, s) => sum + s.final.costNanos, 0);
    const state = await store.getState(
      { kind: 'user', id: 'carol' },
      { budget: { limitNanos: usd('0.0105'), period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(total);
    expect(state.budget!.spentNanos).toBeLessThanOrEqual(10_500_000);
    expect(state.budget!.reservedNanos).toBe(0);
  });

  it('streams a request no budget or rate limit applies to, with no store call and no settlement failure', async () => {
    // Budgets only for teams; this caller is identified as a user alone.
    const failures: unknown[] = [];
    await start({
      budgets: { team: { limitUsd: '1.00', period: 'day' } },
      onSettleFailure: (info) => {
        failures.push(info);
      },
    });
    const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'solo' } });
    expect(result.status).toBe(200);
    expect(eventData(result, 'meta')).toMatchObject({ budget: null });
    const done = eventData<{ costNanos: number; budget: unknown }>(result, 'done');
    expect(done.budget).toBeNull();
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('completed');
    expect(settle!.final.costNanos).toBe(done.costNanos);
    // Nothing was reserved, so nothing failed to be recorded.
    expect(settle!.recorded).toBe(false);
    expect(failures).toEqual([]);
    expect(app.errors).toEqual([]);
    expect(store.stats()).toMatchObject({ scopes: 0, openReservations: 0 });
  });

  it('reserves a prompt that asks for cache writes at the cache-write rate, and settles within it', async () => {
    await start();
    type Meta = {
      reservedUsd: number;
      inputTokens: number;
      reservedInputTokens: number;
      reservedOutputTokens: number;
    };
    const withCache = (ttl?: '1h') => ({
      ...prompt,
      system: [
        {
          type: 'text',
          text: 'You are a terse storyteller.',
          cache_control: { type: 'ephemeral', ...(ttl ? { ttl } : {}) },
        },
      ],
    });
    // claude-haiku-4-5 per token: input 1,000, 5-min cache write 1,250, 1-hour 2,000, output
    // 5,000 nano-dollars; the reservation is the prompt's upper bound plus max_tokens (400).
    const cases: Array<[object, number]> = [
      [prompt, 1_000],
      [withCache(), 1_250],
      [withCache('1h'), 2_000],
    ];
    for (const [body, promptRate] of cases) {
      const result = await postSSE(app.url, body, { headers: { 'x-user': 'cache-writer' } });
      expect(result.status).toBe(200);
      const meta = eventData<Meta>(result, 'meta');
      expect(meta.inputTokens).toBeGreaterThan(0);
      expect(meta.reservedInputTokens).toBeGreaterThan(meta.inputTokens);
      expect(meta.reservedOutputTokens).toBe(400);
      expect(Math.round(meta.reservedUsd * 1e9)).toBe(
        meta.reservedInputTokens * promptRate + 400 * 5_000,
      );
    }

    // The provider bills the whole prompt bound as a 1-hour cache write: the actual cost
    // (hand computed) reaches the reservation exactly; at the input rate it would not have.
    const first = eventData<Meta>(
      await postSSE(app.url, withCache('1h'), { headers: { 'x-user': 'cache-writer' } }),
      'meta',
    );
    const n = first.reservedInputTokens;
    const result = await postSSE(app.url, withCache('1h'), {
      headers: {
        'x-user': 'cache-writer',
        'x-fake-llm-input-tokens': '0',
        'x-fake-llm-cache-write-1h': String(n),
        'x-fake-llm-tokens': '400',
      },
    });
    const meta = eventData<Meta>(result, 'meta');
    const done = eventData<{ costNanos: number; usage: { outputTokens: number } }>(result, 'done');
    expect(done.usage.outputTokens).toBe(400);
    expect(done.costNanos).toBe(n * 2_000 + 400 * 5_000);
    expect(done.costNanos).toBe(Math.round(meta.reservedUsd * 1e9));
    expect(done.costNanos).toBeGreaterThan(n * 1_000 + 400 * 5_000);
  });

  it('answers the (N+1)th request in a window with 429, Retry-After and RateLimit headers', async () => {
    await start({ rateLimits: { user: [{ kind: 'requests', limit: 3, windowMs: 60_000 }] } });
    for (let i = 0; i < 3; i++) {
      const ok = await postSSE(app.url, prompt, { headers: { 'x-user': 'dave' } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit')).toBe(`"user-requests-60s";r=${2 - i};t=60`);
    }
    const limited = await postSSE(app.url, prompt, { headers: { 'x-user': 'dave' } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(limited.headers.get('ratelimit-policy')).toBe('"user-requests-60s";q=3;w=60');
    expect(limited.headers.get('ratelimit')).toMatch(/^"user-requests-60s";r=0;t=\d+$/);
    expect(limited.body).toMatchObject({
      error: { code: 'rate_limited', scope: 'user', limit: 'requests' },
    });
    // Another user is not affected.
    expect((await postSSE(app.url, prompt, { headers: { 'x-user': 'erin' } })).status).toBe(200);
  });

  it('rejects unidentified callers, bad max_tokens and unknown models before streaming, charging nothing', async () => {
    await start();
    const anonymous = await postSSE(app.url, prompt);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: { code: 'unauthenticated' } });
    for (const max_tokens of [0, -1, 1.5, '100', 1_000_000, undefined]) {
      const bad = await postSSE(
        app.url,
        { ...prompt, max_tokens },
        { headers: { 'x-user': 'frank' } },
      );
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ error: { code: 'invalid_request' } });
    }
    const unknown = await postSSE(
      app.url,
      { ...prompt, model: 'claude-nonexistent-9' },
      { headers: { 'x-user': 'frank' } },
    );
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ error: { code: 'unknown_model' } });
    expect(fake.requests).toHaveLength(0);
    const state = await store.getState(
      { kind: 'user', id: 'frank' },
      { budget: { limitNanos: usd('1.00'), period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(0);
  });
});
