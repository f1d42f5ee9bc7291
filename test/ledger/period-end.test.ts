/**
 * One dating rule for the store and the ledger: a stream that runs across the end of a
 * budget period is charged by the store to the period it was admitted in, and the ledger
 * counts it there too — not in the period it ended in. A 4 s window stands in for a day.
 */
import type { Store } from '@tokenmeter/core';
import type { EndResult } from '@tokenmeter/core/store';
import {
  createPostgresLedger,
  type PostgresLedger,
  reconcile,
  streamRecord,
} from '@tokenmeter/ledger-postgres';
import { type PrivatePostgres, startPostgres } from '@tokenmeter/ledger-postgres/testing';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';

const WINDOW_MS = 4_000;
const period = { windowMs: WINDOW_MS };

let db: PrivatePostgres;
let fake: FakeLLM;
let app: TestApp;
let ledger: PostgresLedger;
const memory = createMemoryStore();
/** What the store's settle() answered: the period it charged. */
const ends: EndResult[] = [];
const store: Store = new Proxy(memory, {
  get(target, key) {
    if (key === 'settle') {
      return async (...args: Parameters<Store['settle']>) => {
        const result = await target.settle(...args);
        ends.push(result);
        return result;
      };
    }
    const value = Reflect.get(target, key, target);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});

beforeAll(async () => {
  db = await startPostgres();
  // 45 tokens at 10 a second: the answer takes about 4.5 s, longer than the window.
  fake = await startFakeLLM({ tps: 10, chunk: 1, tokens: 45, seed: 9 });
  ledger = createPostgresLedger({ connectionString: db.url });
  const client = anthropicClient(fake.url);
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '10.00', period } },
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

it('a stream across a period end is counted in the period it was admitted in, by the store and the ledger alike', async () => {
  // Start just after a window begins, so admission is well inside it and the end well past it.
  await new Promise((r) => setTimeout(r, WINDOW_MS - (Date.now() % WINDOW_MS) + 100));
  const user = 'crosser';
  const result = await postSSE(
    app.url,
    { model: 'claude-haiku-4-5', max_tokens: 200, messages: [{ role: 'user', content: 'Hallo' }] },
    { headers: { 'x-user': user } },
  );
  expect(result.status).toBe(200);
  const [settled] = await app.waitForSettles(1, 30_000);
  expect(await ledger.flush(10_000)).toBe(true);

  const end = ends.find((e) => e.ended);
  if (!end?.ended) throw new Error('the store never settled the stream');
  const { periodStart, periodEnd } = end.reservation;
  // The store charged the window of admission, though the stream ended in the next one.
  expect(end.chargedNanos).toBe(settled!.final.costNanos);
  expect(end.chargedNanos).toBeGreaterThan(0);
  const record = await streamRecord(ledger.pool, settled!.requestId);
  expect(record!.endedAt.getTime()).toBeGreaterThanOrEqual(periodEnd!);
  // The ledger dates it in that same window: by the store's own time of admission, which
  // the middleware hands over (SettleInfo.admittedAt), to the millisecond.
  expect(settled!.admittedAt).toBe(end.reservation.createdAt);
  expect(record!.admittedAt.getTime()).toBe(end.reservation.createdAt);
  expect(record!.admittedAt.getTime()).toBeGreaterThanOrEqual(periodStart!);
  expect(record!.admittedAt.getTime()).toBeLessThan(periodEnd!);
  const { rows } = await ledger.pool.query<{ cost: string }>(
    `SELECT sum(cost_nanos) AS cost FROM tokenmeter_stream_scopes
      WHERE scope_kind = 'user' AND scope_id = $1 AND admitted_at >= $2 AND admitted_at < $3`,
    [user, new Date(periodStart!), new Date(periodEnd!)],
  );
  expect(Number(rows[0]!.cost)).toBe(end.chargedNanos);
  // And in the window the stream ended in (the current one), both say nothing was spent:
  // dated by its end, the ledger would show the whole cost here against the store's 0.
  const [now] = await reconcile(ledger.pool, store, [{ kind: 'user', id: user }], period);
  expect(now!.period.start.getTime()).toBe(periodEnd);
  expect(record!.endedAt.getTime()).toBeLessThan(now!.period.end!.getTime());
  expect(now).toMatchObject({ ledgerNanos: 0, storeNanos: 0, differenceNanos: 0 });
}, 60_000);
