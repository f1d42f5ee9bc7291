/**
 * The Lua side checked piece by piece on a real Redis: the scripts' calendar maths agrees
 * with core's periodBounds() on every kind of period (random instants and every boundary
 * that matters), the script runner caches scripts by SHA, and the sliding-log code paths
 * that only run with many entries (chunked walks and trims) give exact answers.
 */
import type { BudgetPeriod } from '@tokenmeter/core';
import { periodBounds } from '@tokenmeter/core/store';
import { createTestClock } from '@tokenmeter/core/testing';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommendedRedisOptions } from './client.js';
import { type RedisProcess, startRedis } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';
import { runScript, scriptSha } from './script-runner.js';
import { ADMIT, PERIOD_BOUNDS_PROBE, SCRIPTS } from './scripts.js';

let server: RedisProcess;
let client: Redis;

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url, { ...recommendedRedisOptions(), lazyConnect: true });
  await client.connect();
});

afterAll(async () => {
  await client?.quit();
  await server?.stop();
});

async function luaBounds(period: BudgetPeriod, now: number) {
  const args =
    period === 'lifetime' || period === 'month'
      ? [period, 0, 0]
      : period === 'day'
        ? ['window', 86_400_000, 0]
        : [
            'window',
            period.windowMs,
            (((period.offsetMs ?? 0) % period.windowMs) + period.windowMs) % period.windowMs,
          ];
  const [start, end] = (await runScript(client, PERIOD_BOUNDS_PROBE, [], [...args, now])) as [
    number,
    number,
  ];
  return { start, end: end === -1 ? null : end };
}

const instant = fc.integer({ min: 0, max: Date.UTC(2200, 0, 1) });

describe('scripts: calendar', () => {
  it('agrees with periodBounds() for days, months, lifetime and custom windows', async () => {
    const periods = fc.oneof(
      fc.constantFrom<BudgetPeriod>('day', 'month', 'lifetime'),
      fc.record({
        windowMs: fc.integer({ min: 1, max: 400 * 86_400_000 }),
        offsetMs: fc.integer({ min: -1e12, max: 1e12 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(periods, instant, async (period, now) => {
        expect(await luaBounds(period, now)).toEqual(periodBounds(period, now));
      }),
      { numRuns: 400 },
    );
  });

  it('agrees at every month boundary from 1970 to 2200, and 1 ms either side', async () => {
    const instants: number[] = [];
    for (let year = 1970; year < 2200; year += 7) {
      for (let month = 0; month < 12; month++) {
        const boundary = Date.UTC(year, month, 1);
        instants.push(boundary, boundary + 1, Math.max(0, boundary - 1));
      }
    }
    instants.push(
      Date.UTC(2028, 1, 29, 23, 59, 59, 999),
      Date.UTC(2100, 1, 28, 12),
      Date.UTC(2000, 1, 29),
    );
    for (const now of instants) {
      expect(await luaBounds('month', now), new Date(now).toISOString()).toEqual(
        periodBounds('month', now),
      );
      expect(await luaBounds('day', now)).toEqual(periodBounds('day', now));
    }
  });
});

describe('scripts: runner', () => {
  it('names each script by the SHA-1 Redis gives it, and runs it by EVALSHA once cached', async () => {
    for (const script of Object.values(SCRIPTS)) {
      expect(await client.script('LOAD', script.source)).toBe(scriptSha(script));
    }
    await client.script('FLUSH');
    expect(await client.script('EXISTS', scriptSha(ADMIT))).toEqual([0]);
    const store = createRedisStore({ redis: client, logger: { warn: () => {} } });
    await store.admit({
      scope: { kind: 'u', id: 'sha' },
      reserveNanos: 0,
      estimatedTokens: 0,
      ttlMs: 1_000,
    });
    expect(await client.script('EXISTS', scriptSha(ADMIT))).toEqual([1]);
    await store.shutdown();
  });
});

describe('scripts: long sliding logs', () => {
  it('walks and trims token logs longer than one chunk exactly', async () => {
    const clock = createTestClock(Date.UTC(2026, 0, 1));
    const store = createRedisStore({ redis: client, clock, logger: { warn: () => {} } });
    const scope = { kind: 'user', id: 'long-log' };
    const windowMs = 1_000_000;
    const rule = { kind: 'tokens' as const, limit: 1_000, windowMs };
    const admit = (tokens: number) =>
      store.admit({
        scope,
        rateLimits: [rule],
        reserveNanos: 0,
        estimatedTokens: tokens,
        ttlMs: 3_600_000,
      });
    const t0 = clock.now();
    // 250 entries of 1 token, one per ms, then 150 zero-token entries on top.
    for (let i = 0; i < 250; i++) {
      expect((await admit(1)).admitted).toBe(true);
      clock.advance(1);
    }
    for (let i = 0; i < 150; i++) {
      expect((await admit(0)).admitted).toBe(true);
      clock.advance(1);
    }
    let state = await store.getState(scope, { rateLimits: [rule] });
    expect(state.rateLimits[0]?.used).toBe(250);
    // The newest entry that counts is the 250th (at t0 + 249), past 150 that do not.
    expect(state.rateLimits[0]?.resetMs).toBe(t0 + 249 + windowMs - clock.now());
    // 900 tokens do not fit until the 150 oldest have left: the 150th entry leaves at t0 + 149 + window.
    const refused = await admit(900);
    expect(refused.admitted).toBe(false);
    expect(refused.admitted ? 0 : refused.retryAfterMs).toBe(t0 + 149 + windowMs - clock.now());
    // 700 more (1,100 entries in all), then they all leave in one trim of two 1,000-entry chunks.
    for (let i = 0; i < 700; i++) {
      expect((await admit(1)).admitted).toBe(true);
    }
    expect((await admit(100)).admitted).toBe(false);
    clock.advance(windowMs);
    state = await store.getState(scope, { rateLimits: [rule] });
    expect(state.rateLimits[0]).toMatchObject({ used: 0, resetMs: 0, remaining: 1_000 });
    expect((await admit(1_000)).admitted).toBe(true);
    await store.shutdown();
  }, 30_000);
});
