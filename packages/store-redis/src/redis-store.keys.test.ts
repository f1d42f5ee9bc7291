/**
 * Key layout and key hygiene against a real Redis: hostile scope ids (separators, braces,
 * glob characters, newlines, 10 kB, unicode, NUL, lone surrogates, Lua fragments) never
 * reach a key name or a script, never share state, and every key is namespaced under the
 * prefix and its scope's hash tag. Also: which keys expire when (idle scopes disappear,
 * lifetime spend never does), ended reservations shrink to tombstones, forged reservation
 * ids change nothing, and large money amounts stay exact.
 */
import { MAX_NANOS, type ScopeRef, type Store } from '@tokenmeter/core';
import { createTestClock } from '@tokenmeter/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommendedRedisOptions } from './client.js';
import { requestKeyHash, scopeRedisKey } from './keys.js';
import { KEY_GRACE_MS } from './options.js';
import { type RedisProcess, startRedis } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';

let server: RedisProcess;
let admin: Redis;
const quiet = { warn: () => {} };

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url, { ...recommendedRedisOptions(), lazyConnect: true });
  await admin.connect();
});

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

function expectAdmitted<T extends { admitted: boolean }>(
  result: T,
): Extract<T, { admitted: true }> {
  expect(result.admitted).toBe(true);
  return result as Extract<T, { admitted: true }>;
}

const HOSTILE_IDS = [
  'a:b',
  'a',
  'a:b:',
  '{tag}',
  '}{',
  '{',
  '*',
  '?[x]\\',
  'line\nbreak\r\n',
  'x'.repeat(10_240),
  '👩‍💻 naïve 東京',
  '\u0000nul',
  '\uD800',
  '\uDBFF',
  '\uFFFD',
  `"]] redis.call('FLUSHALL') --`,
  `'); redis.call('SET', 'pwned', '1') --`,
  'KEYS[1]',
  'tokenmeter:{x}',
];

describe('redis store keys', () => {
  it('hostile scope ids never share state, reach a key name, or inject into Lua', async () => {
    const prefix = 'hostile:';
    const store = createRedisStore({ redis: admin, prefix, logger: quiet });
    await admin.set('canary', 'alive');
    // Pairwise distinct, several of them look-alikes under a naive `kind:id` join.
    const scopes: ScopeRef[] = [
      ...HOSTILE_IDS.map((id) => ({ kind: 'user', id })),
      { kind: 'user:a', id: 'b' },
      { kind: 'user:a:b', id: '' },
      { kind: '{user}', id: '*' },
    ];
    expect(new Set(scopes.map((s) => JSON.stringify(s))).size).toBe(scopes.length);
    const policy = {
      budget: { limitNanos: 1_000_000, period: 'lifetime' as const },
      rateLimits: [
        { kind: 'requests' as const, limit: 100, windowMs: 60_000 },
        { kind: 'tokens' as const, limit: 100_000, windowMs: 60_000 },
      ],
    };
    // Hostile admission keys too: they reach Redis only as a SHA-256.
    const requestKeyOf = (index: number) =>
      (HOSTILE_IDS[index % HOSTILE_IDS.length] as string).slice(0, 200) || 'empty';
    for (const [index, scope] of scopes.entries()) {
      const cost = (index + 1) * 100;
      const { reservation } = expectAdmitted(
        await store.admit({
          scope,
          ...policy,
          reserveNanos: cost,
          estimatedTokens: index + 1,
          ttlMs: 60_000,
          requestKey: requestKeyOf(index),
        }),
      );
      const settled = await store.settle(reservation.id, { costNanos: cost, tokens: index + 1 });
      expect(settled.ended && settled.reservation.scope).toEqual(scope);
      expect(await store.releaseByKey(scope, requestKeyOf(index))).toMatchObject({
        ended: false,
        previously: 'settled',
      });
    }
    for (const [index, scope] of scopes.entries()) {
      const state = await store.getState(scope, policy);
      expect(state.budget?.spentNanos).toBe((index + 1) * 100);
      expect(state.rateLimits.map((limit) => limit.used)).toEqual([1, index + 1]);
    }

    expect(await admin.get('canary')).toBe('alive');
    expect(await admin.exists('pwned')).toBe(0);
    // Every key in the database: the canary, or prefix + hash tag (this file's prefixes).
    for (const key of await keysUnder('')) {
      if (key !== 'canary') expect(key).toMatch(/^[a-z]+:\{[A-Za-z0-9_-]{43}\}/);
    }
    const keys = await keysUnder(prefix);
    const LAYOUT =
      /^hostile:\{[A-Za-z0-9_-]{43}\}(:x|:r:\d+|:b:lifetime:0|:q:60000|:t:60000|:w:60000|:k:[0-9a-f]{64})?$/;
    for (const key of keys) expect(key).toMatch(LAYOUT);
    // Per scope: hash, lifetime budget, tombstone, two logs, weights, admission key (the
    // index is empty).
    expect(keys.length).toBe(scopes.length * 7);
    for (const scope of scopes) {
      const base = scopeRedisKey(scope, prefix);
      expect(keys.filter((key) => key.startsWith(base))).toHaveLength(7);
    }
    await store.shutdown();
  });

  it('forged or foreign reservation ids change nothing', async () => {
    const store = createRedisStore({ redis: admin, prefix: 'forged:', logger: quiet });
    const other = createRedisStore({ redis: admin, prefix: 'other:', logger: quiet });
    const scope = { kind: 'user', id: 'victim' };
    const budget = { limitNanos: 10_000, period: 'day' as const };
    const { reservation } = expectAdmitted(
      await store.admit({ scope, budget, reserveNanos: 4_000, estimatedTokens: 1, ttlMs: 60_000 }),
    );
    const [tag] = reservation.id.split('.');
    for (const id of [
      `${tag}.999`,
      `${tag}.1:x`,
      `${tag}.1\n`,
      `${reservation.id}0`,
      'x'.repeat(10_000),
      `${tag}.1 OR 1=1`,
    ]) {
      expect(await store.settle(id, { costNanos: 1, tokens: 1 })).toMatchObject({
        ended: false,
        previously: 'unknown',
      });
      expect(await store.release(id)).toMatchObject({ ended: false, previously: 'unknown' });
      expect(await store.extend(id, { addNanos: 1 })).toMatchObject({
        extended: false,
        previously: 'unknown',
      });
    }
    // The same id under another prefix is another store's business.
    expect(await other.release(reservation.id)).toMatchObject({
      ended: false,
      previously: 'unknown',
    });
    const state = await store.getState(scope, { budget });
    expect(state.budget?.reservedNanos).toBe(4_000);
    expect(state.reservations.open).toBe(1);
    await store.shutdown();
    await other.shutdown();
  });

  it('every key expires when its scope goes idle; only lifetime spend (and its scope) is kept', async () => {
    const prefix = 'ttl:';
    const retention = 5_000;
    const store = createRedisStore({
      redis: admin,
      prefix,
      endedRetentionMs: retention,
      logger: quiet,
    });
    const windowMs = 30_000;
    const policy = {
      budget: { limitNanos: 1_000_000, period: { windowMs: 3_600_000 } },
      rateLimits: [
        { kind: 'requests' as const, limit: 10, windowMs },
        { kind: 'tokens' as const, limit: 1_000, windowMs },
      ],
    };
    const daily = { kind: 'user', id: 'hourly' };
    const { reservation, budget, now } = expectAdmitted(
      await store.admit({
        scope: daily,
        ...policy,
        reserveNanos: 100,
        estimatedTokens: 5,
        ttlMs: 10_000,
        requestKey: 'ttl-key',
      }),
    );
    const periodEnd = budget?.periodEnd as number;
    const base = scopeRedisKey(daily, prefix);
    const r = `:r:${reservation.id.split('.')[1]}`;
    const ttl = async (suffix: string) => admin.pttl(`${base}${suffix}`);
    const near = (actual: number, expected: number) => {
      expect(actual).toBeLessThanOrEqual(expected);
      expect(actual).toBeGreaterThan(expected - 2_000);
    };
    near(await ttl(`:q:${windowMs}`), windowMs + KEY_GRACE_MS);
    near(await ttl(`:t:${windowMs}`), windowMs + KEY_GRACE_MS);
    near(await ttl(`:w:${windowMs}`), windowMs + KEY_GRACE_MS);
    // The period's counters and everything holding its money live until the period ends.
    const held = periodEnd - now + KEY_GRACE_MS;
    near(await ttl(`:b:window:3600000:${budget?.periodStart}`), held);
    near(await ttl(r), held);
    near(await ttl(''), held);
    near(await ttl(':x'), held);
    // An admission key is found while its reservation can be open and its tombstone kept.
    near(await ttl(`:k:${requestKeyHash('ttl-key')}`), 10_000 + KEY_GRACE_MS + retention);

    await store.settle(reservation.id, { costNanos: 50, tokens: 5 });
    near(await ttl(r), retention);
    expect(await admin.hgetall(`${base}${r}`)).toEqual({ st: 'settled' });
    for (const key of await keysUnder(prefix)) expect(await admin.pttl(key)).toBeGreaterThan(0);

    // Lifetime: the budget never resets, so its counters, the scope and open holds persist.
    const forever = { kind: 'user', id: 'lifetime' };
    const lifetime = { limitNanos: 1_000, period: 'lifetime' as const };
    const open = expectAdmitted(
      await store.admit({
        scope: forever,
        budget: lifetime,
        reserveNanos: 100,
        estimatedTokens: 1,
        ttlMs: 10_000,
      }),
    );
    const lifeBase = scopeRedisKey(forever, prefix);
    const lifeR = `${lifeBase}:r:${open.reservation.id.split('.')[1]}`;
    expect(await admin.pttl(`${lifeBase}:b:lifetime:0`)).toBe(-1);
    expect(await admin.pttl(lifeBase)).toBe(-1);
    expect(await admin.pttl(`${lifeBase}:x`)).toBe(-1);
    expect(await admin.pttl(lifeR)).toBe(-1);
    await store.release(open.reservation.id);
    near(await admin.pttl(lifeR), retention);
    await store.shutdown();
  });

  it('a scope whose hash expired while a long window still counts numbers afresh, without collisions', async () => {
    const clock = createTestClock(Date.UTC(2026, 0, 1));
    const prefix = 'reborn:';
    const store = createRedisStore({ redis: admin, prefix, clock, logger: quiet });
    const scope = { kind: 'user', id: 'phoenix' };
    const rateLimits = [
      { kind: 'tokens' as const, limit: 100, windowMs: 86_400_000 },
      { kind: 'requests' as const, limit: 10, windowMs: 86_400_000 },
    ];
    const admit = (tokens: number) =>
      store.admit({ scope, rateLimits, reserveNanos: 0, estimatedTokens: tokens, ttlMs: 60_000 });
    const first = expectAdmitted(await admit(30)).reservation;
    await store.settle(first.id, { costNanos: 0, tokens: 30 });
    clock.advance(20 * 60_000);
    // What Redis does to an idle scope after endedRetentionMs: its hash, index and
    // tombstones expire; the day-long windows stay.
    const base = scopeRedisKey(scope, prefix);
    await admin.del(base, `${base}:x`, `${base}:r:${first.id.split('.')[1]}`);
    const second = expectAdmitted(await admit(50)).reservation;
    expect(second.id).not.toBe(first.id);
    let state = await store.getState(scope, { rateLimits });
    expect(state.rateLimits.map((limit) => limit.used)).toEqual([80, 2]);
    expect(await store.settle(first.id, { costNanos: 1, tokens: 1 })).toMatchObject({
      ended: false,
      previously: 'unknown',
    });
    await store.release(second.id);
    state = await store.getState(scope, { rateLimits });
    expect(state.rateLimits.map((limit) => limit.used)).toEqual([30, 1]);
    await store.shutdown();
  });

  it('an idle scope whose reservation expired unswept is charged exactly once when next seen', async () => {
    const store = createRedisStore({ redis: admin, prefix: 'idle:', logger: quiet });
    const scope = { kind: 'user', id: 'crashed' };
    const budget = { limitNanos: 10_000, period: 'day' as const };
    for (let i = 0; i < 3; i++) {
      expectAdmitted(
        await store.admit({ scope, budget, reserveNanos: 1_000, estimatedTokens: 1, ttlMs: 50 }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const states = await Promise.all(
      Array.from({ length: 10 }, () => store.getState(scope, { budget })),
    );
    for (const state of states) {
      expect(state.budget).toMatchObject({
        spentNanos: 3_000,
        reservedNanos: 0,
        remainingNanos: 7_000,
      });
      expect(state.reservations).toEqual({
        open: 0,
        openNanos: 0,
        expired: 3,
        expiredNanos: 3_000,
      });
    }
    await store.shutdown();
  });

  it('money up to MAX_NANOS stays exact (no float or exponent formatting in the scripts)', async () => {
    const store: Store = createRedisStore({ redis: admin, prefix: 'money:', logger: quiet });
    const scope = { kind: 'user', id: 'whale' };
    const budget = { limitNanos: MAX_NANOS, period: 'lifetime' as const };
    const amounts = [2_000_000_000_000, 1_000_000_000_000_000, 4_000_000_000_000_000];
    let spent = 0;
    for (const amount of amounts) {
      const { reservation } = expectAdmitted(
        await store.admit({
          scope,
          budget,
          reserveNanos: amount,
          estimatedTokens: 1,
          ttlMs: 60_000,
        }),
      );
      const settled = await store.settle(reservation.id, { costNanos: amount + 1, tokens: 1 });
      spent += amount + 1;
      expect(settled.ended && settled.budget?.spentNanos).toBe(spent);
      expect(settled.ended && settled.overrunNanos).toBe(1);
    }
    const { reservation } = expectAdmitted(
      await store.admit({
        scope,
        budget,
        reserveNanos: MAX_NANOS - spent,
        estimatedTokens: 1,
        ttlMs: 60_000,
      }),
    );
    expect(reservation.reservedNanos).toBe(MAX_NANOS - spent);
    const state = await store.getState(scope, { budget });
    expect(state.budget).toMatchObject({
      spentNanos: spent,
      reservedNanos: MAX_NANOS - spent,
      remainingNanos: 0,
    });
    expect(state.reservations.openNanos).toBe(MAX_NANOS - spent);
    await store.shutdown?.();
  });
});
