/**
 * The sources people already stream through — the Vercel AI SDK (`ai` + `@ai-sdk/anthropic`
 * + `@ai-sdk/openai`) and LangChain.js (`@langchain/anthropic` + `@langchain/openai`) —
 * handed to costTrackedSSE() as they are, against the testkit:
 * - the same answer costs the same to the nano-dollar as through the raw SDK stream (text,
 *   cache reads and writes of both TTLs, thinking and reasoning tokens), and the same as a
 *   hand computation from the published rates;
 * - a client that leaves closes the upstream call within one chunk and is charged the
 *   partial answer, marked estimated;
 * - budget and rate-limit rejections, and a provider's refusal, answer plain JSON before
 *   any byte, exactly as on the raw path.
 */
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, type RequestRecord, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { type ChatBody, SOURCES, type SourceName, sourceUpstream } from '../helpers/sources.js';
import { postSSE } from '../helpers/sse-client.js';

/** Published rates in nano-dollars per token (USD per million ÷ 1,000), typed by hand. */
const SONNET_4_6 = { input: 3_000, write5m: 3_750, write1h: 6_000, read: 300, output: 15_000 };
const O4_MINI = { input: 1_100, read: 275, output: 4_400 };

/** What the provider billed, by hand, from the usage the fake reported. */
function handCost(record: RequestRecord): number {
  const u = record.usage!;
  if (record.provider === 'anthropic') {
    return (
      u.inputTokens * SONNET_4_6.input +
      u.cacheWrite5mTokens * SONNET_4_6.write5m +
      u.cacheWrite1hTokens * SONNET_4_6.write1h +
      u.cacheReadTokens * SONNET_4_6.read +
      u.outputTokens * SONNET_4_6.output
    );
  }
  // OpenAI prompt_tokens include the cached ones.
  return (
    (u.inputTokens - u.cacheReadTokens) * O4_MINI.input +
    u.cacheReadTokens * O4_MINI.read +
    u.outputTokens * O4_MINI.output
  );
}

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 40, seed: 7 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  fake.reset();
});

async function start(middleware: Record<string, unknown> = {}): Promise<void> {
  store = createMemoryStore();
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '10.00', period: 'day' } },
      upstream: sourceUpstream(fake.url),
      ...middleware,
    },
  });
}

const body = (model: string, extra: Partial<ChatBody> = {}): ChatBody => ({
  model,
  max_tokens: 2_048,
  messages: [{ role: 'user', content: 'Erkläre mir bitte Prompt-Caching 🧠 — 简短地说' }],
  ...extra,
});

/** Streams one request through `source`; returns what the client saw, settled and billed. */
async function run(source: SourceName, request: ChatBody, knobs: Record<string, string>) {
  const before = app.settles.length;
  const result = await postSSE(app.url, request, {
    headers: {
      'x-user': `u-${source}`,
      'x-source': source,
      ...Object.fromEntries(Object.entries(knobs).map(([k, v]) => [`x-fake-llm-${k}`, v])),
    },
  });
  const [settle] = (await app.waitForSettles(before + 1)).slice(before);
  const record = await fake.waitForRequest(fake.lastRequest!.id);
  return { result, settle: settle!, record };
}

const CASES: Array<[string, ChatBody, Record<string, string>]> = [
  ['Claude, plain', body('claude-sonnet-4-6'), { 'input-tokens': '1200' }],
  [
    'Claude, cache reads and writes of both TTLs',
    body('claude-sonnet-4-6'),
    {
      'input-tokens': '900',
      'cache-read': '4000',
      'cache-write-5m': '1500',
      'cache-write-1h': '700',
      text: 'mixed',
    },
  ],
  [
    'Claude, extended thinking',
    body('claude-sonnet-4-6', { thinking: { type: 'enabled', budget_tokens: 1_024 } }),
    { 'input-tokens': '500', 'thinking-tokens': '30', text: 'emoji' },
  ],
  ['OpenAI o4-mini, plain', body('o4-mini'), { 'input-tokens': '800', text: 'cjk' }],
  [
    'OpenAI o4-mini, cached prompt and hidden reasoning',
    body('o4-mini'),
    { 'input-tokens': '800', 'cache-read': '1024', 'reasoning-tokens': '96' },
  ],
];

describe('the same answer costs the same through every source', () => {
  it.each(CASES)('%s', async (_name, request, knobs) => {
    await start();
    const seen = new Map<SourceName, Awaited<ReturnType<typeof run>>>();
    for (const source of SOURCES) seen.set(source, await run(source, request, knobs));
    const raw = seen.get('raw')!;
    expect(raw.settle.outcome).toBe('completed');
    expect(raw.settle.final.estimated).toBe(false);
    expect(raw.settle.final.costNanos).toBe(handCost(raw.record));
    for (const source of SOURCES) {
      const { result, settle, record } = seen.get(source)!;
      expect(result.status, source).toBe(200);
      expect(settle.outcome, source).toBe('completed');
      expect(settle.final.estimated, source).toBe(false);
      expect(settle.final.outputSource, source).toBe('provider');
      // Every token kind, the tier and the region as the raw SDK path read them. The AI
      // SDK's OpenAI chat model does not pass the service tier on (README, "Sources").
      const expected =
        source === 'ai-sdk' && record.provider === 'openai'
          ? { ...raw.settle.final.usage, serviceTier: undefined }
          : raw.settle.final.usage;
      expect(settle.final.usage, source).toEqual(expected);
      expect(settle.final.costNanos, source).toBe(raw.settle.final.costNanos);
      expect(settle.final.costNanos, source).toBe(handCost(record));
      // The client received the answer's text exactly, and the final event the same cost.
      expect(result.text, source).toBe(record.text);
      const done = result.events.find((e) => e.event === 'done')!.json as { costNanos: number };
      expect(done.costNanos, source).toBe(handCost(record));
      expect(settle.final.stopReason, source).toBe(raw.settle.final.stopReason);
    }
  });
});

describe('a client that leaves', () => {
  it.each(SOURCES.flatMap((s) => [[s, 'claude-sonnet-4-6'] as const, [s, 'o4-mini'] as const]))(
    '%s (%s): the upstream closes within one chunk; the partial answer is charged, estimated',
    async (source, model) => {
      await start();
      const result = await postSSE(app.url, body(model), {
        headers: {
          'x-user': 'leaver',
          'x-source': source,
          'x-fake-llm-tokens': '2000',
          'x-fake-llm-tps': '400',
          'x-fake-llm-chunk': '1',
        },
        abortWhen: (_event, all) => all.filter((e) => e.event === 'delta').length === 3,
      });
      expect(result.events.filter((e) => e.event === 'delta')).toHaveLength(3);
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(record.stopCause).toBe('client-closed');
      expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(1);
      expect(record.tokensGenerated).toBeLessThan(200);
      const [settle] = await app.waitForSettles(1);
      expect(settle!.outcome).toBe('client_disconnected');
      expect(settle!.final.estimated).toBe(true);
      // At least the three deltas the client saw, never above the reservation.
      expect(settle!.final.usage.outputTokens).toBeGreaterThanOrEqual(3);
      expect(settle!.final.costNanos).toBeGreaterThan(0);
      const meta = result.events.find((e) => e.event === 'meta')!.json as { reservedUsd: number };
      expect(settle!.final.costNanos).toBeLessThanOrEqual(Math.round(meta.reservedUsd * 1e9));
      const state = await store.getState(
        { kind: 'user', id: 'leaver' },
        { budget: { limitNanos: 10_000_000_000, period: 'day' } },
      );
      expect(state.budget!.spentNanos).toBe(settle!.final.costNanos);
      expect(state.budget!.reservedNanos).toBe(0);
    },
  );
});

describe('rejections come before any byte, as plain JSON', () => {
  it.each(SOURCES)(
    '%s: an exhausted budget is a 402 and the provider is never called',
    async (source) => {
      await start({ budgets: { user: { limitUsd: '0.000001', period: 'day' } } });
      const requestsBefore = fake.requests.length;
      const result = await postSSE(app.url, body('claude-sonnet-4-6'), {
        headers: { 'x-user': 'poor', 'x-source': source },
      });
      expect(result.status).toBe(402);
      expect(result.headers.get('content-type')).toMatch(/^application\/json/);
      expect(result.body).toMatchObject({ error: { code: 'budget_exceeded', scope: 'user' } });
      expect(fake.requests.length).toBe(requestsBefore);
    },
  );

  it.each(SOURCES)('%s: a rate limit is a 429 with Retry-After', async (source) => {
    await start({ rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] } });
    const first = await postSSE(app.url, body('o4-mini'), {
      headers: { 'x-user': 'busy', 'x-source': source },
    });
    expect(first.status).toBe(200);
    const requestsBefore = fake.requests.length;
    const second = await postSSE(app.url, body('o4-mini'), {
      headers: { 'x-user': 'busy', 'x-source': source },
    });
    expect(second.status).toBe(429);
    expect(second.body).toMatchObject({ error: { code: 'rate_limited' } });
    expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(fake.requests.length).toBe(requestsBefore);
  });

  it('a provider refusal (HTTP 529) ends every source the same way, and costs nothing', async () => {
    await start();
    const ends = [];
    for (const source of SOURCES) {
      const result = await postSSE(app.url, body('claude-sonnet-4-6'), {
        headers: { 'x-user': 'refused', 'x-source': source, 'x-fake-llm-fault': '529' },
      });
      expect(result.status).toBe(200);
      expect(result.events.map((e) => e.event)).toEqual(['meta', 'error']);
      ends.push(result.events[1]!.json);
    }
    expect(ends[0]).toMatchObject({
      code: 'upstream_error',
      upstreamStatus: 529,
      upstreamType: 'overloaded_error',
      costNanos: 0,
    });
    expect(ends[1]).toEqual(ends[0]);
    expect(ends[2]).toEqual(ends[0]);
    for (const settle of await app.waitForSettles(3)) {
      expect(settle.outcome).toBe('upstream_error');
      expect(settle.final.costNanos).toBe(0);
    }
  });
});

describe('misuse', () => {
  it('a route that hands over something that is no stream is told what it may hand over; nothing is charged', async () => {
    store = createMemoryStore();
    app = await startApp({
      express,
      middleware: {
        store,
        identify: identifyByHeader,
        budgets: { user: { limitUsd: '1.00', period: 'day' } },
        upstream: () => ({ text: 'not a stream' }),
      },
    });
    const result = await postSSE(app.url, body('o4-mini'), { headers: { 'x-user': 'm' } });
    const end = result.events.at(-1)!;
    expect(end.event).toBe('error');
    expect(end.json).toMatchObject({ code: 'handler_error', costNanos: 0 });
    expect((end.json as { message: string }).message).toMatch(
      /AI SDK streamText\(\) result, a LangChain model\.stream/,
    );
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('handler_error');
    expect(settle!.final.costNanos).toBe(0);
  });
});
