/**
 * One budget across many instances: three Node processes, each with its own
 * costTrackedSSE app and Redis store, share one Redis. 100 concurrent streams at one
 * subject whose budget fits k worst-case reservations: exactly k are admitted, the Redis
 * spend equals the sum of settled costs, and nothing is overspent. The same test with a
 * naive check-then-deduct store overspends — proof the test can fail.
 */
import { fileURLToPath } from 'node:url';
import { costOf, emptyUsage } from '@tokenmeter/core';
import { measureRequestTokens } from '@tokenmeter/core/tokens';
import { createRedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  type RedisServer,
  startNodeApp,
  startRedisServer,
} from '../helpers/processes.js';
import { postSSE } from '../helpers/sse-client.js';

const script = fileURLToPath(new URL('../fixtures/redis-app-instance.mjs', import.meta.url));
const MODEL = 'claude-haiku-4-5';
const MAX_TOKENS = 100;
const body = {
  model: MODEL,
  max_tokens: MAX_TOKENS,
  messages: [{ role: 'user', content: 'Count to a hundred.' }],
};
// The worst-case reservation the middleware makes for this body: the prompt's upper bound
// (the heuristic's, for Anthropic) plus max_tokens of output.
const inputTokens = measureRequestTokens(body, { provider: 'anthropic' }).upperBound;
const reserve = costOf({ ...emptyUsage(), inputTokens, outputTokens: MAX_TOKENS }, MODEL).nanos;
const K = 7;
const BUDGET = K * reserve + Math.floor(reserve / 2);

let redis: RedisServer;
let fake: FakeLLM;
beforeAll(async () => {
  redis = await startRedisServer();
  fake = await startFakeLLM({ tps: 0 });
});
afterAll(async () => {
  await fake?.close();
  await redis?.stop();
});

/** Starts three instances of the app on the one Redis into `apps` (so a failed start still stops the others). */
async function startInstances(apps: AppProcess[], env: Record<string, string>): Promise<void> {
  for (let i = 0; i < 3; i++) {
    apps.push(await startNodeApp(script, { REDIS_URL: redis.url, UPSTREAM_URL: fake.url, ...env }));
  }
}

async function race(store: 'real' | 'naive', prefix: string) {
  const apps: AppProcess[] = [];
  try {
    await startInstances(apps, { BUDGET_NANOS: String(BUDGET), STORE: store, PREFIX: prefix });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        postSSE(`http://127.0.0.1:${apps[i % 3]!.port}/chat`, body, {
          headers: { 'x-user': 'shared' },
        }),
      ),
    );
    const admitted = results.filter((r) => r.status === 200).length;
    const rejected = results.filter((r) => r.status === 402).length;
    const statuses: Record<number, number> = {};
    for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const settles = (
      await Promise.all(
        apps.map(async (a) => (await fetch(`http://127.0.0.1:${a.port}/settles`)).json()),
      )
    ).flat() as Array<{ costNanos: number; recorded: boolean }>;
    return {
      admitted,
      rejected,
      statuses,
      settles,
      settledTotal: settles.reduce((s, x) => s + x.costNanos, 0),
    };
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
  }
}

describe('one budget across three instances on one Redis', () => {
  it('admits exactly k of 100 concurrent streams, and the spend is the sum of settled costs', async () => {
    const { statuses, settles, settledTotal } = await race('real', 'mi-real:');
    expect(statuses).toEqual({ 200: K, 402: 100 - K });
    expect(settles).toHaveLength(K);
    expect(settles.every((s) => s.recorded)).toBe(true);
    const store = createRedisStore({ url: redis.url, prefix: 'mi-real:' });
    try {
      const state = await store.getState(
        { kind: 'user', id: 'shared' },
        { budget: { limitNanos: BUDGET, period: 'day' } },
      );
      expect(state.budget!.spentNanos).toBe(settledTotal);
      expect(state.budget!.reservedNanos).toBe(0);
      expect(Math.max(0, state.budget!.spentNanos - BUDGET)).toBe(0); // overspend: $0
    } finally {
      await store.shutdown();
    }
  });

  it('a naive check-then-deduct store on the same setup overspends', async () => {
    const { admitted, settledTotal } = await race('naive', 'mi-naive:');
    expect(admitted).toBeGreaterThan(K);
    const client = new Redis(redis.url);
    try {
      const spent = Number(await client.get('mi-naive:user:shared:spent'));
      expect(spent).toBe(settledTotal);
      expect(spent).toBeGreaterThan(BUDGET);
    } finally {
      client.disconnect();
    }
  });

  it('budget alerts at 50 % and 80 % fire exactly once per scope, from whichever instance', async () => {
    const apps: AppProcess[] = [];
    try {
      await startInstances(apps, {
        // Ten worst-case reservations per user; each stream settles a little under one.
        BUDGET_NANOS: String(10 * reserve),
        STORE: 'real',
        PREFIX: 'mi-alerts:',
        TTFT_MS: '200',
        ALERTS: '50,80,100',
      });
      const users = ['ana', 'ben'];
      // Two waves of 60 concurrent streams over the three instances: settlements of one
      // scope land on every instance at nearly the same time.
      for (let wave = 0; wave < 2; wave++) {
        await Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            postSSE(`http://127.0.0.1:${apps[i % 3]!.port}/chat`, body, {
              headers: { 'x-user': users[i % 2]! },
            }),
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 300)); // alerts run after the streams end
      const alerts = (
        await Promise.all(
          apps.map(async (a) => (await fetch(`http://127.0.0.1:${a.port}/alerts`)).json()),
        )
      ).flat() as Array<{
        scope: { id: string };
        percent: number;
        spentNanos: number;
        limitNanos: number;
        periodStart: number;
      }>;
      const store = createRedisStore({ url: redis.url, prefix: 'mi-alerts:' });
      try {
        for (const id of users) {
          const state = await store.getState(
            { kind: 'user', id },
            { budget: { limitNanos: 10 * reserve, period: 'day' } },
          );
          const spentPercent = (100 * state.budget!.spentNanos) / state.budget!.limitNanos;
          expect(spentPercent).toBeGreaterThanOrEqual(80);
          expect(spentPercent).toBeLessThan(100);
          const mine = alerts.filter((a) => a.scope.id === id);
          expect(mine.map((a) => a.percent).sort((x, y) => x - y)).toEqual([50, 80]);
          for (const a of mine) {
            expect(a.spentNanos * 100).toBeGreaterThanOrEqual(a.percent * a.limitNanos);
            expect(a.periodStart).toBe(state.budget!.periodStart);
          }
        }
      } finally {
        await store.shutdown();
      }
    } finally {
      await Promise.all(apps.map((a) => a.stop()));
    }
  });

  it('streams admitted in one period and settled after it ended: each alert once across instances', async () => {
    // A 4 s window period; six streams admitted early in one window (two per instance)
    // answer after it ended and settle into the period they were admitted in.
    const windowMs = 4_000;
    const apps: AppProcess[] = [];
    try {
      await startInstances(apps, {
        BUDGET_NANOS: String(6 * reserve + Math.floor(reserve / 2)),
        STORE: 'real',
        PREFIX: 'mi-alerts-end:',
        TTFT_MS: String(windowMs + 500),
        ALERTS: '10,20',
        PERIOD_WINDOW_MS: String(windowMs),
      });
      await new Promise((r) => setTimeout(r, windowMs - (Date.now() % windowMs) + 100));
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          postSSE(`http://127.0.0.1:${apps[i % 3]!.port}/chat`, body, {
            headers: { 'x-user': 'cal' },
          }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      await new Promise((r) => setTimeout(r, 300)); // alerts run after the streams end
      const alerts = (
        await Promise.all(
          apps.map(async (a) => (await fetch(`http://127.0.0.1:${a.port}/alerts`)).json()),
        )
      ).flat() as Array<{
        percent: number;
        periodStart: number;
        periodEnd: number;
        firedAt: number;
      }>;
      // Each fired after its period ended (the case under test), and each threshold once.
      expect(alerts.length).toBeGreaterThan(0);
      for (const a of alerts) expect(a.firedAt).toBeGreaterThan(a.periodEnd);
      expect(new Set(alerts.map((a) => a.periodStart)).size).toBe(1);
      expect(alerts.map((a) => a.percent).sort((x, y) => x - y)).toEqual([10, 20]);
    } finally {
      await Promise.all(apps.map((a) => a.stop()));
    }
  });
});
