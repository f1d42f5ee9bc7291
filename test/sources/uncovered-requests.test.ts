/**
 * Provider calls the admission did not see, made by the AI SDK on the route's behalf:
 * - with Anthropic thinking it sends `max_tokens` = maxOutputTokens + the thinking budget;
 * - a multi-step call (`stopWhen`, tool round trips) makes one provider request per step.
 * The promise holds through both: the reservation grows to cover what the provider may
 * bill, or the stream stops where the budget (or the per-request cap) ends, and every call
 * is charged — finished steps as billed, the one in flight on its bounds.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import type { MeteredRequest, MeteredStream } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, type RequestRecord, startFakeLLM } from '@tokenmeter/testkit';
import { jsonSchema, type ModelMessage, stepCountIs, streamText, tool } from 'ai';
import express from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';

const HAIKU_4_5 = { input: 1_000, output: 5_000 }; // $1 / $5 per million, by hand

/** What the fake billed for one request, by hand (for a cut one: what it generated). */
const billed = (r: RequestRecord) =>
  r.usage
    ? r.usage.inputTokens * HAIKU_4_5.input + r.usage.outputTokens * HAIKU_4_5.output
    : r.inputTokens * HAIKU_4_5.input + r.tokensGenerated * HAIKU_4_5.output;

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 1, tokens: 40, seed: 9, text: 'plain' });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  fake.reset();
});

const anthropic = () => createAnthropic({ baseURL: `${fake.url}/v1`, apiKey: 'test-key' });
const body = {
  model: 'claude-haiku-4-5',
  max_tokens: 100,
  messages: [{ role: 'user', content: 'Hi' }],
};

async function start(
  upstream: (req: MeteredRequest, meter: MeteredStream) => unknown,
  middleware: Record<string, unknown> = {},
) {
  store = createMemoryStore();
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      upstream,
      ...middleware,
    },
  });
}

async function spent(user: string, limitUsd: string) {
  const state = await store.getState(
    { kind: 'user', id: user },
    { budget: { limitNanos: Math.round(Number(limitUsd) * 1e9), period: 'day' } },
  );
  return state.budget!;
}

/** The thinking call as an app would write it without knowing the AI SDK adds the budget. */
const thinking = (req: MeteredRequest, meter: MeteredStream) =>
  streamText({
    model: anthropic()(meter.model),
    messages: (req.body as { messages: ModelMessage[] }).messages,
    maxOutputTokens: meter.maxTokens,
    providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1_024 } } },
    headers: knobHeaders(req),
    abortSignal: meter.signal,
    maxRetries: 0,
    onError: () => {},
  });

describe('the AI SDK sends a larger max_tokens than admitted (thinking)', () => {
  it('with money left, the reservation grows and the answer completes, charged as billed', async () => {
    await start(thinking);
    const result = await postSSE(app.url, body, {
      headers: { 'x-user': 'rich', 'x-fake-llm-thinking-tokens': '900' },
    });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect((record.body as { max_tokens: number }).max_tokens).toBe(1_124);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('completed');
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.costNanos).toBe(billed(record));
    const meta = result.events.find((e) => e.event === 'meta')!.json as { reservedUsd: number };
    // The bill is about ten times the reservation made for max_tokens 100.
    expect(billed(record)).toBeGreaterThan(5 * meta.reservedUsd * 1e9);
    const budget = await spent('rich', '1.00');
    expect(budget.spentNanos).toBe(billed(record));
    expect(budget.reservedNanos).toBe(0);
  });

  it('without money for it, the stream stops where the budget ends: never overrun', async () => {
    const limitUsd = '0.002'; // the reservation for max_tokens 100 fits; 900 thinking tokens do not
    await start(thinking, { budgets: { user: { limitUsd, period: 'day' } } });
    const result = await postSSE(app.url, body, {
      headers: { 'x-user': 'tight', 'x-fake-llm-thinking-tokens': '900' },
    });
    const end = result.events.at(-1)!;
    expect(end.event).toBe('error');
    expect(end.json).toMatchObject({ code: 'budget_exceeded', limit: 'lease_denied' });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    const [settle] = await app.waitForSettles(1);
    const limit = 2_000_000;
    // What the provider billed, and what was charged, stay within the budget (plus one
    // 1-token chunk in flight when the cut reached the provider).
    expect(billed(record)).toBeLessThanOrEqual(limit + 2 * HAIKU_4_5.output);
    expect(settle!.final.costNanos).toBeGreaterThanOrEqual(billed(record) - 2 * HAIKU_4_5.output);
    const budget = await spent('tight', limitUsd);
    expect(budget.spentNanos).toBe(settle!.final.costNanos);
    expect(budget.spentNanos).toBeLessThanOrEqual(limit + 2 * HAIKU_4_5.output);
  });

  it('the per-request cap holds against the larger max_tokens', async () => {
    await start(thinking, { maxCostPerRequestUsd: '0.001' });
    const result = await postSSE(app.url, body, {
      headers: { 'x-user': 'capped', 'x-fake-llm-thinking-tokens': '900' },
    });
    expect(result.events.at(-1)!.json).toMatchObject({
      code: 'budget_exceeded',
      limit: 'max_cost_per_request',
    });
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(billed(record)).toBeLessThanOrEqual(1_000_000 + 2 * HAIKU_4_5.output);
  });
});

/** A tool the AI SDK runs, forced at every step: each step is one more provider call. */
const steps = (count: number) => (req: MeteredRequest, meter: MeteredStream) =>
  streamText({
    model: anthropic()(meter.model),
    messages: (req.body as { messages: ModelMessage[] }).messages,
    maxOutputTokens: meter.maxTokens,
    tools: {
      lookup: tool({ inputSchema: jsonSchema({ type: 'object' }), execute: async () => 'ok' }),
    },
    toolChoice: 'required',
    stopWhen: stepCountIs(count),
    headers: knobHeaders(req),
    abortSignal: meter.signal,
    maxRetries: 0,
    onError: () => {},
  });

describe('a multi-step call: one provider request per step', () => {
  it('each step is reserved and charged; the total is the sum of the bills', async () => {
    await start(steps(4));
    await postSSE(app.url, body, { headers: { 'x-user': 'agent' } });
    const [settle] = await app.waitForSettles(1);
    expect(fake.requests).toHaveLength(4);
    const records = await Promise.all(fake.requests.map((r) => fake.waitForRequest(r.id)));
    const total = records.reduce((sum, r) => sum + billed(r), 0);
    expect(settle!.outcome).toBe('completed');
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.costNanos).toBe(total);
    const budget = await spent('agent', '1.00');
    expect(budget.spentNanos).toBe(total);
    expect(budget.reservedNanos).toBe(0);
  });

  it('the per-request cap stops the steps; the step in flight is charged too', async () => {
    await start(steps(6), { maxCostPerRequestUsd: '0.0012' });
    const result = await postSSE(app.url, body, { headers: { 'x-user': 'capped-agent' } });
    expect(result.events.at(-1)!.json).toMatchObject({
      code: 'budget_exceeded',
      limit: 'max_cost_per_request',
    });
    const [settle] = await app.waitForSettles(1);
    expect(fake.requests.length).toBeLessThan(6);
    const records = await Promise.all(fake.requests.map((r) => fake.waitForRequest(r.id)));
    const total = records.reduce((sum, r) => sum + billed(r), 0);
    // Never less than the provider billed; within the cap plus a chunk in flight.
    expect(settle!.final.costNanos).toBeGreaterThanOrEqual(total);
    expect(total).toBeLessThanOrEqual(1_200_000 + 2 * HAIKU_4_5.output);
  });

  it('a budget too small for another step stops the stream before reading it', async () => {
    const limitUsd = '0.0015';
    await start(steps(6), { budgets: { user: { limitUsd, period: 'day' } } });
    const result = await postSSE(app.url, body, { headers: { 'x-user': 'poor-agent' } });
    expect(result.events.at(-1)!.json).toMatchObject({
      code: 'budget_exceeded',
      limit: 'lease_denied',
    });
    const [settle] = await app.waitForSettles(1);
    const records = await Promise.all(fake.requests.map((r) => fake.waitForRequest(r.id)));
    const total = records.reduce((sum, r) => sum + billed(r), 0);
    expect(settle!.final.costNanos).toBeGreaterThanOrEqual(total);
    const budget = await spent('poor-agent', limitUsd);
    expect(budget.spentNanos).toBe(settle!.final.costNanos);
  });
});
