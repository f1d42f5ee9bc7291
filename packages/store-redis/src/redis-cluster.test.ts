/**
 * The Redis store on a real 3-master Redis Cluster (started here on free ports) through an
 * ioredis `Cluster` client: the conformance suite unchanged, scopes on different slots and
 * masters, every key of a scope in one slot, and multi-scope admission across slots with
 * rollback.
 */
import type { ScopeRef } from '@tokenmeter/core';
import { admitAll } from '@tokenmeter/core/store';
import { runStoreConformance } from '@tokenmeter/core/testing';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommendedClusterOptions } from './client.js';
import { scopeRedisKey } from './keys.js';
import { type RedisClusterProcess, redisCli, startCluster } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';

let cluster: RedisClusterProcess;
let client: Cluster;
const warnings: string[] = [];
const logger = { warn: (message: string) => void warnings.push(message) };

beforeAll(async () => {
  cluster = await startCluster();
  client = new Cluster([...cluster.nodes], { ...recommendedClusterOptions(), lazyConnect: true });
  await client.connect();
}, 40_000);

afterAll(async () => {
  await client?.quit();
  await cluster?.stop();
});

runStoreConformance(
  'redis cluster',
  (ctx) => createRedisStore({ redis: client, clock: ctx.clock, onExpiry: ctx.onExpiry, logger }),
  { timeoutMs: 30_000 },
);

async function slotOf(key: string): Promise<number> {
  return Number((await client.cluster('KEYSLOT', key)) as number);
}

/** Every key of the cluster (SCAN on each master). */
async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const node of client.nodes('master')) {
    keys.push(...(await node.keys('*')));
  }
  return keys;
}

describe('redis cluster: slots', () => {
  it('scopes land on different slots and masters, and all keys of a scope share one slot', async () => {
    const store = createRedisStore({ redis: client, logger, prefix: 'slots:' });
    const policy = {
      budget: { limitNanos: 1_000_000, period: 'day' as const },
      rateLimits: [
        { kind: 'requests' as const, limit: 100, windowMs: 60_000 },
        { kind: 'tokens' as const, limit: 100_000, windowMs: 60_000 },
      ],
    };
    const scopes: ScopeRef[] = Array.from({ length: 12 }, (_, i) => ({
      kind: 'user',
      id: `u${i}`,
    }));
    for (const scope of scopes) {
      const result = await store.admit({
        scope,
        ...policy,
        reserveNanos: 1_000,
        estimatedTokens: 10,
        ttlMs: 60_000,
      });
      expect(result.admitted).toBe(true);
    }
    const slots = new Set(
      await Promise.all(scopes.map((scope) => slotOf(scopeRedisKey(scope, 'slots:')))),
    );
    expect(slots.size).toBe(12);
    // 12 random slots over 3 masters: each master owns a third of the slots.
    const owners = new Set<string>();
    for (const scope of scopes) {
      const slot = await slotOf(scopeRedisKey(scope, 'slots:'));
      const shards = await client.cluster('SLOTS');
      const owner = shards.find(([from, to]) => slot >= from && slot <= to);
      owners.add(String(owner?.[2]?.[1]));
    }
    expect(owners.size).toBeGreaterThan(1);

    const keys = (await allKeys()).filter((key) => key.startsWith('slots:'));
    // base, index, reservation, budget, requests log, tokens log, token weights.
    expect(keys.length).toBe(12 * 7);
    for (const scope of scopes) {
      const base = scopeRedisKey(scope, 'slots:');
      const own = keys.filter((key) => key.startsWith(base));
      expect(own.length).toBe(7);
      const ownSlots = new Set(await Promise.all(own.map(slotOf)));
      expect([...ownSlots]).toEqual([await slotOf(base)]);
    }
    await store.shutdown();
  });

  it('hostile scope ids keep every key of their scope in one slot', async () => {
    const store = createRedisStore({ redis: client, logger, prefix: 'hostile:' });
    const ids = [
      '{tag}',
      '}{',
      '{',
      '{}',
      'a:b',
      'line\nbreak',
      'x'.repeat(10_240),
      '東京 👩‍💻',
      '\uD800',
    ];
    const rateLimits = [{ kind: 'tokens' as const, limit: 1_000, windowMs: 60_000 }];
    const budget = { limitNanos: 10_000, period: 'month' as const };
    for (const id of ids) {
      const scope = { kind: '{user}', id };
      const result = await store.admit({
        scope,
        budget,
        rateLimits,
        reserveNanos: 10,
        estimatedTokens: 1,
        ttlMs: 60_000,
      });
      expect(result.admitted).toBe(true);
      if (!result.admitted) continue;
      const settled = await store.settle(result.reservation.id, { costNanos: 5, tokens: 2 });
      expect(settled.ended && settled.reservation.scope).toEqual(scope);
      const base = scopeRedisKey(scope, 'hostile:');
      const own = (await allKeys()).filter((key) => key.startsWith(base));
      expect(own.length).toBe(5); // hash, tombstone, budget, tokens log, weights (the empty index is gone)
      expect(new Set(await Promise.all(own.map(slotOf)))).toEqual(new Set([await slotOf(base)]));
    }
    await store.shutdown();
  });

  it('admitAll across slots rolls back the scopes on other masters when the last one rejects', async () => {
    const store = createRedisStore({ redis: client, logger, prefix: 'multi:' });
    const user = { kind: 'user', id: 'alice' };
    const key = { kind: 'key', id: 'k-1' };
    const team = { kind: 'team', id: 'blue' };
    const slots = await Promise.all(
      [user, key, team].map((s) => slotOf(scopeRedisKey(s, 'multi:'))),
    );
    expect(new Set(slots).size).toBe(3);
    const userPolicy = {
      budget: { limitNanos: 10_000, period: 'day' as const },
      rateLimits: [{ kind: 'requests' as const, limit: 5, windowMs: 60_000 }],
    };
    const request = (scope: ScopeRef, extra: object) => ({
      scope,
      reserveNanos: 1_000,
      estimatedTokens: 10,
      ttlMs: 60_000,
      ...extra,
    });
    const rejected = await admitAll(store, [
      request(user, userPolicy),
      request(key, userPolicy),
      request(team, { budget: { limitNanos: 500, period: 'month' } }),
    ]);
    expect(rejected.admitted).toBe(false);
    if (!rejected.admitted) {
      expect(rejected.rejectedIndex).toBe(2);
      expect(rejected.unreleased).toEqual([]);
    }
    for (const scope of [user, key]) {
      const state = await store.getState(scope, userPolicy);
      expect(state.budget?.reservedNanos).toBe(0);
      expect(state.rateLimits[0]?.used).toBe(0);
      expect(state.reservations.open).toBe(0);
    }
    const accepted = await admitAll(store, [
      request(user, userPolicy),
      request(key, userPolicy),
      request(team, { budget: { limitNanos: 5_000, period: 'month' } }),
    ]);
    expect(accepted.admitted).toBe(true);
    if (accepted.admitted) {
      // Each id carries its own scope's hash tag, so each settle goes to its own slot.
      const tags = accepted.reservationIds.map((id) => id.split('.')[0]);
      expect(new Set(tags).size).toBe(3);
      const settled = await Promise.all(
        accepted.reservationIds.map((id) => store.settle(id, { costNanos: 700, tokens: 5 })),
      );
      expect(settled.every((result) => result.ended)).toBe(true);
    }
    const teamState = await store.getState(team, {
      budget: { limitNanos: 5_000, period: 'month' },
    });
    expect(teamState.budget?.spentNanos).toBe(700);
    await store.shutdown();
  });

  it('ran without a warning', () => {
    expect(warnings).toEqual([]);
  });
});

it('the cluster is a real 3-master cluster', async () => {
  const info = await redisCli(cluster.nodes[0]?.port as number, 'cluster', 'info');
  expect(info).toContain('cluster_state:ok');
  expect(info).toContain('cluster_size:3');
});
