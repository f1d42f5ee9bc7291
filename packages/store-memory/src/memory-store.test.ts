/**
 * What only the memory store promises, beyond the conformance suite: bounded size that
 * never forgets spend (refuse, don't evict), purging of scopes that no longer matter,
 * stats, the background sweep, monotonic time, options checking and shutdown.
 */
import { type ScopeRef, TokenmeterError } from '@tokenmeter/core';
import type { AdmitRequest } from '@tokenmeter/core/store';
import { createTestClock } from '@tokenmeter/core/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryStore, type MemoryStore } from './index.js';

const T0 = Date.UTC(2026, 2, 14, 10);
const user = (id: string): ScopeRef => ({ kind: 'user', id });
const lifetime = { limitNanos: 10_000, period: 'lifetime' as const };

function request(scope: ScopeRef, overrides: Partial<AdmitRequest> = {}): AdmitRequest {
  return { scope, reserveNanos: 1_000, estimatedTokens: 10, ttlMs: 60_000, ...overrides };
}

async function spend(store: MemoryStore, scope: ScopeRef, overrides: Partial<AdmitRequest> = {}) {
  const result = await store.admit(request(scope, overrides));
  if (!result.admitted) throw new Error(`not admitted: ${result.reason}`);
  await store.settle(result.reservation.id, { costNanos: 1_000, tokens: 10 });
}

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return TokenmeterError.isInstance(error) ? error.code : 'not a TokenmeterError';
  }
}

const stores: MemoryStore[] = [];
function track(store: MemoryStore): MemoryStore {
  stores.push(store);
  return store;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(stores.splice(0).map((store) => store.shutdown()));
});

describe('memory store: bounded without forgetting spend', () => {
  it('refuses a new scope when every held scope has spend in its period, and keeps the spend', async () => {
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, max: 3 }));
    for (const id of ['a', 'b', 'c']) await spend(store, user(id), { budget: lifetime });
    expect(await errorCode(store.admit(request(user('d'), { budget: lifetime })))).toBe(
      'store_unavailable',
    );
    await expect(store.admit(request(user('d')))).rejects.toThrow(/Raise `max`/);
    expect(store.stats()).toMatchObject({
      scopes: 3,
      maxScopes: 3,
      refusedAdmissions: 2,
      evictedScopes: 0,
    });
    // Known scopes keep working, and their spend was never reset.
    const again = await store.admit(request(user('a'), { budget: lifetime }));
    expect(again.admitted && again.budget?.spentNanos).toBe(1_000);
  });

  it('purges scopes that no longer matter to make room, least recently used first', async () => {
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, max: 2 }));
    const rateLimits = [{ kind: 'requests' as const, limit: 5, windowMs: 1_000 }];
    const day = { limitNanos: 10_000, period: 'day' as const };
    await spend(store, user('windowed'), { rateLimits });
    await spend(store, user('daily'), { budget: day });
    // Within the window and the day, both matter: no room.
    expect(await errorCode(store.admit(request(user('new'))))).toBe('store_unavailable');
    clock.advance(1_000); // the window entry left; the day's spend still matters
    await spend(store, user('new'));
    expect(store.stats()).toMatchObject({ scopes: 2, purgedScopes: 1, evictedScopes: 0 });
    const daily = await store.getState(user('daily'), { budget: day });
    expect(daily.budget?.spentNanos).toBe(1_000);
  });

  it('lets a daily budget go once its day is over, never before', async () => {
    const clock = createTestClock(Date.UTC(2026, 2, 14, 23, 59, 59));
    const store = track(createMemoryStore({ clock, max: 1 }));
    const day = { limitNanos: 10_000, period: 'day' as const };
    await spend(store, user('a'), { budget: day });
    expect(await errorCode(store.admit(request(user('b'))))).toBe('store_unavailable');
    clock.advance(999);
    expect(await errorCode(store.admit(request(user('b'))))).toBe('store_unavailable');
    clock.advance(1); // midnight: yesterday's spend no longer limits anything
    await spend(store, user('b'));
    expect(store.stats().purgedScopes).toBe(1);
  });

  it('keeps a scope with an open reservation, and frees it once the reservation has ended', async () => {
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, max: 1, onExpiry: 'release' }));
    const held = await store.admit(request(user('a'), { ttlMs: 5_000 }));
    expect(held.admitted).toBe(true);
    clock.advance(1_000);
    expect(await errorCode(store.admit(request(user('b'))))).toBe('store_unavailable');
    clock.advance(4_000); // expired (released): nothing of 'a' matters any more
    await spend(store, user('b'));
    expect(store.stats()).toMatchObject({ expiredReservations: 1, openReservations: 0 });
  });

  it('makes room at once when a release leaves a scope with nothing to remember', async () => {
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, max: 1 }));
    const held = await store.admit(request(user('a'), { ttlMs: 60_000 }));
    if (!held.admitted) throw new Error('not admitted');
    expect(await errorCode(store.admit(request(user('b'))))).toBe('store_unavailable');
    await store.release(held.reservation.id);
    await spend(store, user('b'));
    expect(store.stats()).toMatchObject({ scopes: 1, purgedScopes: 1, refusedAdmissions: 1 });
  });

  it('does not insert a scope whose admission was rejected', async () => {
    const store = track(createMemoryStore({ clock: createTestClock(T0), max: 1 }));
    const rejected = await store.admit(
      request(user('a'), { budget: { limitNanos: 10, period: 'day' } }),
    );
    expect(rejected.admitted).toBe(false);
    expect(store.stats().scopes).toBe(0);
    const state = await store.getState(user('a'), { budget: lifetime });
    expect(state.budget?.remainingNanos).toBe(10_000);
    expect(store.stats().scopes).toBe(0);
  });
});

describe('memory store: housekeeping', () => {
  it('expires overdue reservations in the background sweep, on an unref’d timer', async () => {
    vi.useFakeTimers();
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, sweepIntervalMs: 1_000 }));
    await store.admit(request(user('a'), { ttlMs: 500 }));
    clock.advance(500);
    expect(store.stats().expiredReservations).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(store.stats()).toMatchObject({ expiredReservations: 1, openReservations: 0 });
  });

  it('does not keep the process alive', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    track(createMemoryStore());
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBe(before);
  });

  it('forgets ended reservations beyond rememberEnded, and still never charges twice', async () => {
    const clock = createTestClock(T0);
    const store = track(createMemoryStore({ clock, rememberEnded: 2 }));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await store.admit(request(user('a'), { budget: lifetime }));
      if (!result.admitted) throw new Error('not admitted');
      ids.push(result.reservation.id);
      await store.settle(result.reservation.id, { costNanos: 100, tokens: 1 });
    }
    const [first, , last] = ids as [string, string, string];
    await expect(store.settle(first, { costNanos: 100, tokens: 1 })).resolves.toMatchObject({
      ended: false,
      previously: 'unknown',
    });
    await expect(store.settle(last, { costNanos: 100, tokens: 1 })).resolves.toMatchObject({
      ended: false,
      previously: 'settled',
    });
    const state = await store.getState(user('a'), { budget: lifetime });
    expect(state.budget?.spentNanos).toBe(300);
  });

  it('never lets its time run backwards, and floors fractional clocks', async () => {
    let now = T0 + 0.7;
    const store = track(createMemoryStore({ clock: { now: () => now } }));
    expect(await store.now()).toBe(T0);
    now = T0 - 5_000;
    expect(await store.now()).toBe(T0);
    const result = await store.admit(request(user('a'), { ttlMs: 1_000 }));
    expect(result.admitted && result.reservation.createdAt).toBe(T0);
  });

  it('rejects every call after shutdown with store_unavailable', async () => {
    const store = createMemoryStore();
    await store.shutdown();
    await store.shutdown(); // idempotent
    expect(await errorCode(store.admit(request(user('a'))))).toBe('store_unavailable');
    expect(await errorCode(store.now())).toBe('store_unavailable');
    expect(await errorCode(store.getState(user('a')))).toBe('store_unavailable');
  });

  it.each([
    [{ max: 0 }, /max/],
    [{ max: 1.5 }, /max/],
    [{ sweepIntervalMs: -1 }, /sweepIntervalMs/],
    [{ rememberEnded: 0 }, /rememberEnded/],
    [{ onExpiry: 'refund' as never }, /onExpiry/],
    [{ clock: {} as never }, /clock/],
  ])('refuses bad options %j at creation', (options, message) => {
    expect(() => createMemoryStore(options)).toThrow(message);
    try {
      createMemoryStore(options);
    } catch (error) {
      expect(TokenmeterError.isInstance(error) && error.code).toBe('invalid_config');
    }
  });
});
