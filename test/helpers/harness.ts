/**
 * Test helper for the hardening matrix: one Express 5 app with costTrackedSSE over a given
 * store, streaming from the fake upstream with the official Anthropic SDK (raw stream),
 * and the ledger checks every case ends with.
 */

import type { Store } from '@tokenmeter/core';
import type { FakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { expect } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from './app.js';
import { knobHeaders } from './upstream.js';

export const MODEL = 'claude-haiku-4-5'; // $1 input, $5 output per million tokens
export const handCost = (input: number, output: number) => input * 1_000 + output * 5_000;
export const BUDGET = { limitNanos: 1_000_000_000, period: 'day' as const };
export const body = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  max_tokens: 300,
  messages: [{ role: 'user', content: 'Tell me about tide pools.' }],
  ...extra,
});

export type MiddlewareExtra = Partial<Parameters<typeof startApp>[0]['middleware']>;

export async function startHarness(
  fake: FakeLLM,
  store: Store,
  extra: MiddlewareExtra = {},
): Promise<TestApp> {
  const client = anthropicClient(fake.url);
  return startApp({
    express: express5,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitNanos: BUDGET.limitNanos, period: 'day' } },
      upstream: (req, meter) =>
        client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: (req.body as { messages: never }).messages,
            stream: true,
          },
          { signal: meter.signal, headers: knobHeaders(req) },
        ),
      ...extra,
    },
  });
}

/** The books of one user: spend equals what was settled, nothing left reserved or open. */
export async function expectBooksBalanced(
  store: Store,
  user: string,
  app: TestApp,
  settledCount: number,
) {
  const settles = await app.waitForSettles(settledCount);
  const mine = settles.filter((s) => s.scopes.some((scope) => scope.id === user));
  const state = await store.getState({ kind: 'user', id: user }, { budget: BUDGET });
  expect(state.budget!.spentNanos).toBe(
    mine.reduce((sum, s) => sum + (s.recorded ? s.final.costNanos : 0), 0),
  );
  expect(state.budget!.reservedNanos).toBe(0);
  expect(state.reservations.open).toBe(0);
  return { state, settles: mine };
}
