/**
 * The ledger behind the real middleware: 1,000 concurrent streams (real HTTP, the official
 * Anthropic SDK against the testkit, the memory store) settle into exactly 1,000 rows, and
 * each user's spend in the ledger equals the store's budget counter for the same period.
 */
import {
  createPostgresLedger,
  type PostgresLedger,
  reconcile,
  spendByPeriod,
  streamRecord,
} from '@tokenmeter/ledger-postgres';
import { type PrivatePostgres, startPostgres } from '@tokenmeter/ledger-postgres/testing';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';

let db: PrivatePostgres;
let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;
let ledger: PostgresLedger;

beforeAll(async () => {
  db = await startPostgres();
  fake = await startFakeLLM({ tps: 0, chunk: 4, tokens: 24, seed: 5 });
  store = createMemoryStore();
  ledger = createPostgresLedger({ connectionString: db.url });
  const client = anthropicClient(fake.url);
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '10.00', period: 'day' } },
      upstream: (req, meter) =>
        client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: (req.body as { messages: [] }).messages,
            stream: true,
          },
          { signal: meter.signal },
        ),
      onSettle: ledger.onSettle,
    },
  });
}, 60_000);
afterAll(async () => {
  await app?.close();
  await ledger?.close();
  await fake?.close();
  db?.destroy();
});

it('1,000 concurrent streams: 1,000 rows, and the ledger agrees with the budget counters', async () => {
  const users = Array.from({ length: 10 }, (_, i) => `user-${i}`);
  const results = await Promise.all(
    Array.from({ length: 1_000 }, (_, i) =>
      postSSE(
        app.url,
        {
          model: 'claude-haiku-4-5',
          max_tokens: 200,
          messages: [{ role: 'user', content: `Frage Nummer ${i} 🙂` }],
        },
        { headers: { 'x-user': users[i % users.length]! } },
      ),
    ),
  );
  expect(results.every((r) => r.status === 200)).toBe(true);
  const settles = await app.waitForSettles(1_000, 60_000);
  expect(await ledger.flush(20_000)).toBe(true);
  expect(ledger.stats()).toMatchObject({ written: 1_000, duplicates: 0, dropped: 0 });
  const day = new Date();
  day.setUTCHours(0, 0, 0, 0);
  const range = { from: day, to: new Date(day.getTime() + 86_400_000) };
  let total = 0;
  for (const id of users) {
    const [row] = await spendByPeriod(ledger.pool, { kind: 'user', id }, 'day', range);
    const state = await store.getState(
      { kind: 'user', id },
      { budget: { limitNanos: 10_000_000_000, period: 'day' } },
    );
    expect(row!.streams).toBe(100);
    expect(row!.costNanos).toBe(state.budget!.spentNanos);
    total += row!.costNanos;
  }
  // And the settlements themselves, priced by hand: haiku-4-5 at $1 / $5 per million.
  const byHand = fake.requests.reduce(
    (sum, r) => sum + r.usage!.inputTokens * 1_000 + r.usage!.outputTokens * 5_000,
    0,
  );
  expect(total).toBe(byHand);
  const one = settles[0]!;
  const record = await streamRecord(ledger.pool, one.requestId);
  expect(record).toMatchObject({
    costNanos: one.final.costNanos,
    outcome: 'completed',
    provider: 'anthropic',
    reservedNanos: one.reservedNanos,
    estimated: false,
  });
  expect(record!.startedAt.getTime()).toBe(one.startedAt);

  // reconcile() says so, scope by scope; and reports a settlement the ledger never saw.
  const scopes = users.map((id) => ({ kind: 'user', id }));
  const agreed = await reconcile(ledger.pool, store, scopes, 'day');
  expect(agreed.map((r) => r.differenceNanos)).toEqual(users.map(() => 0));
  expect(agreed[0]!.ledgerNanos).toBeGreaterThan(0);
  const admitted = await store.admit({
    scope: { kind: 'user', id: 'user-3' },
    budget: { limitNanos: 10_000_000_000, period: 'day' },
    reserveNanos: 5_000,
    estimatedTokens: 10,
    ttlMs: 60_000,
  });
  if (!admitted.admitted) throw new Error('the extra admission was refused');
  await store.settle(admitted.reservation.id, { costNanos: 4_321, tokens: 10 });
  const after = await reconcile(ledger.pool, store, scopes, 'day');
  expect(after.filter((r) => r.differenceNanos !== 0)).toEqual([
    expect.objectContaining({ scope: { kind: 'user', id: 'user-3' }, differenceNanos: -4_321 }),
  ]);
}, 120_000);
