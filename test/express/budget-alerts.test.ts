/**
 * Budget alerts on one instance (the memory store): a threshold fires once per scope and
 * period with the figures the store holds, a slow hook never delays a stream, and bad
 * thresholds are refused at creation. Across instances: test/redis/multi-instance.test.ts.
 */

import type { BudgetAlert } from '@tokenmeter/express';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 40, seed: 1 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown();
});

const body = {
  model: 'claude-haiku-4-5',
  max_tokens: 40,
  messages: [{ role: 'user' as const, content: 'Hi' }],
};

/**
 * The app both alert tests run: $0.001 a day per user (each 40-token answer, with a few
 * input tokens, spends about 21 %), the given thresholds and hook.
 */
async function startWithAlerts(
  alerts: number[],
  onBudgetAlert: (alert: BudgetAlert) => void | Promise<void>,
): Promise<void> {
  const client = anthropicClient(fake.url);
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '0.001', period: 'day', alerts } },
      upstream: (_req, meter) =>
        client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: body.messages,
            stream: true,
          },
          { signal: meter.signal },
        ),
      onBudgetAlert,
    },
  });
}

it('fires each threshold once per scope and period, after the stream, without delaying it', async () => {
  store = createMemoryStore();
  const alerts: BudgetAlert[] = [];
  await startWithAlerts([100, 25, 50], async (alert) => {
    alerts.push(alert);
    await new Promise((r) => setTimeout(r, 3_000)); // a slow webhook
  });
  const timings: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    const result = await postSSE(app.url, body, { headers: { 'x-user': 'ida' } });
    timings.push(performance.now() - t);
    expect(result.status).toBe(200);
    expect(result.events.at(-1)!.event).toBe('done');
  }
  // The slow hook (3 s) never held a stream: none took 2.5 s longer than the fastest.
  expect(Math.max(...timings)).toBeLessThan(Math.min(...timings) + 2_500);
  await app.waitForSettles(4);
  const state = await store.getState(
    { kind: 'user', id: 'ida' },
    { budget: { limitNanos: 1_000_000, period: 'day' } },
  );
  const spent = state.budget!.spentNanos;
  expect(spent).toBeGreaterThanOrEqual(500_000);
  expect(spent).toBeLessThan(1_000_000);
  // 25 % and 50 % crossed, each told once, in order; 100 % not reached.
  expect(alerts.map((a) => a.percent)).toEqual([25, 50]);
  for (const a of alerts) {
    expect(a.scope).toEqual({ kind: 'user', id: 'ida' });
    expect(a.limitNanos).toBe(1_000_000);
    expect(a.spentNanos * 100).toBeGreaterThanOrEqual(a.percent * a.limitNanos);
    expect(a.spentNanos).toBeLessThanOrEqual(spent);
    expect(a.periodStart).toBe(state.budget!.periodStart);
    expect(a.periodEnd).toBe(state.budget!.periodEnd);
  }
  expect(new Set(alerts.map((a) => a.requestId)).size).toBe(2);
});

it('refuses thresholds that are not percentages', () => {
  const make = (alerts: number[]) => () =>
    costTrackedSSE({
      store: createMemoryStore(),
      identify: () => ({ user: 'x' }),
      budgets: { user: { limitUsd: '1', alerts } },
    });
  expect(make([0])).toThrow(/alerts must be percentages/);
  expect(make([Number.NaN])).toThrow(/alerts must be percentages/);
  expect(make([50, 80])).not.toThrow();
});

it('a claim the store could not make is tried again at the next settlement, and fires once', async () => {
  const inner = createMemoryStore();
  let failures = 1;
  // The memory store, with claimOnce failing once (a store outage at the wrong moment).
  store = Object.assign(Object.create(inner) as MemoryStore, {
    claimOnce: (...args: Parameters<MemoryStore['claimOnce']>) =>
      failures-- > 0
        ? Promise.reject(new Error('store down for a moment'))
        : inner.claimOnce(...args),
  });
  const alerts: BudgetAlert[] = [];
  await startWithAlerts([10], (alert) => {
    alerts.push(alert);
  });
  const ask = () => postSSE(app.url, body, { headers: { 'x-user': 'ola' } });
  await ask(); // ~21 %: the 10 % claim fails
  await app.waitForSettles(1);
  await new Promise((r) => setTimeout(r, 50));
  expect(alerts).toEqual([]);
  expect(app.warnings.some((w) => w.includes('could not be claimed'))).toBe(true);
  await ask(); // the next settlement tries again
  await app.waitForSettles(2);
  await new Promise((r) => setTimeout(r, 50));
  await ask();
  await app.waitForSettles(3);
  await new Promise((r) => setTimeout(r, 50));
  expect(alerts.map((a) => a.percent)).toEqual([10]);
});

it('streams admitted in one period and settled after it ended tell each threshold once', async () => {
  // A 3 s window period; four streams admitted early in one window answer after it ended.
  // Each settles into the period it was admitted in: the mark of the first alert must
  // outlive the period, or each later settlement would fire it again.
  const windowMs = 3_000;
  store = createMemoryStore();
  const alerts: Array<BudgetAlert & { firedAt: number }> = [];
  const client = anthropicClient(fake.url);
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '0.002', period: { windowMs }, alerts: [5, 15] } },
      upstream: (_req, meter) =>
        client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: body.messages,
            stream: true,
          },
          { signal: meter.signal, headers: { 'x-fake-llm-ttft-ms': String(windowMs + 500) } },
        ),
      onBudgetAlert: (alert) => {
        alerts.push({ ...alert, firedAt: Date.now() });
      },
    },
  });
  await new Promise((r) => setTimeout(r, windowMs - (Date.now() % windowMs) + 100));
  const results = await Promise.all(
    Array.from({ length: 4 }, () => postSSE(app.url, body, { headers: { 'x-user': 'eve' } })),
  );
  expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  await app.waitForSettles(4);
  await new Promise((r) => setTimeout(r, 200)); // alerts run after the settlement
  // Every alert belongs to a period that had ended when it fired (the case under test).
  expect(alerts.length).toBeGreaterThan(0);
  for (const a of alerts) expect(a.firedAt).toBeGreaterThan(a.periodEnd!);
  const told = alerts.map((a) => `${a.periodStart}:${a.percent}`);
  expect(told.length).toBe(new Set(told).size);
  // All four were admitted in one window (each ~10 % of the limit): 5 % and 15 % once each.
  expect(new Set(alerts.map((a) => a.periodStart)).size).toBe(1);
  expect(alerts.map((a) => a.percent).sort((x, y) => x - y)).toEqual([5, 15]);
});
