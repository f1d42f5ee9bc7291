/**
 * The OpenAI Responses API as costTrackedSSE() sources, as apps hand them over: the SDK's
 * `responses.create({ stream: true })`, the AI SDK's default OpenAI model (`openai(model)`,
 * which speaks the Responses API) and LangChain's `ChatOpenAI({ useResponsesApi: true })`,
 * against the testkit's `/v1/responses`. Each answer is charged to the nano-dollar against a
 * hand computation, cached prompts and hidden reasoning included; a client that leaves
 * closes the upstream within one chunk.
 */
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, type RequestRecord, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { type ChatBody, RESPONSES_SOURCES, sourceUpstream } from '../helpers/sources.js';
import { postSSE } from '../helpers/sse-client.js';

/** o4-mini's published rates in nano-dollars per token, typed by hand. */
const O4_MINI = { input: 1_100, read: 275, output: 4_400 };

/** What the provider billed, by hand: Responses input_tokens include the cached ones. */
function handCost(record: RequestRecord): number {
  const u = record.usage!;
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
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 40, seed: 8 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  fake.reset();
});

async function start(): Promise<void> {
  store = createMemoryStore();
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '10.00', period: 'day' } },
      upstream: sourceUpstream(fake.url),
    },
  });
}

const body: ChatBody = {
  model: 'o4-mini',
  max_tokens: 2_048,
  messages: [{ role: 'user', content: 'Erkläre mir bitte Prompt-Caching 🧠 — 简短地说' }],
};

const CASES: Array<[string, Record<string, string>]> = [
  ['plain', { 'input-tokens': '800', text: 'cjk' }],
  [
    'cached prompt and hidden reasoning',
    { 'input-tokens': '800', 'cache-read': '1024', 'reasoning-tokens': '96' },
  ],
];

describe.each(RESPONSES_SOURCES)('%s', (source) => {
  it.each(CASES)('%s: the answer, charged to the nano-dollar', async (_name, knobs) => {
    await start();
    const result = await postSSE(app.url, body, {
      headers: {
        'x-user': `u-${source}`,
        'x-source': source,
        ...Object.fromEntries(Object.entries(knobs).map(([k, v]) => [`x-fake-llm-${k}`, v])),
      },
    });
    const [settle] = await app.waitForSettles(1);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.path).toBe('/v1/responses');
    expect(result.status).toBe(200);
    expect(settle!.outcome).toBe('completed');
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.outputSource).toBe('provider');
    expect(settle!.final.usage.reasoningTokens).toBe(Number(knobs['reasoning-tokens'] ?? 0));
    expect(settle!.final.usage.cacheReadTokens).toBe(Number(knobs['cache-read'] ?? 0));
    expect(settle!.final.costNanos).toBe(handCost(record));
    expect(result.text).toBe(record.text);
    const done = result.events.find((e) => e.event === 'done')!.json as { costNanos: number };
    expect(done.costNanos).toBe(handCost(record));
  });

  it('a client that leaves: the upstream closes within one chunk, charged once and estimated', async () => {
    await start();
    const result = await postSSE(app.url, body, {
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
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    expect(settle!.final.usage.outputTokens).toBeGreaterThanOrEqual(3);
    const state = await store.getState(
      { kind: 'user', id: 'leaver' },
      { budget: { limitNanos: 10_000_000_000, period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(settle!.final.costNanos);
    expect(state.budget!.reservedNanos).toBe(0);
  });

  it('a client that leaves after hidden reasoning: charged the output limit, never below what was billed', async () => {
    await start();
    await postSSE(app.url, body, {
      headers: {
        'x-user': 'thinker',
        'x-source': source,
        'x-fake-llm-tokens': '2000',
        'x-fake-llm-tps': '400',
        'x-fake-llm-chunk': '1',
        'x-fake-llm-reasoning-tokens': '600',
      },
      abortWhen: (_event, all) => all.filter((e) => e.event === 'delta').length === 3,
    });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    // Reasoning is never streamed: what it cost is bounded only by max_output_tokens.
    expect(settle!.final.usage.outputTokens).toBe(body.max_tokens);
    expect(settle!.final.usage.outputTokens).toBeGreaterThanOrEqual(
      record.reasoningTokens + record.tokensSent,
    );
  });
});
