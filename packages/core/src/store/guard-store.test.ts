import { afterEach, describe, expect, it, vi } from 'vitest';
import { TokenmeterError } from '../errors.js';
import { guardStore } from './guard-store.js';
import type { AdmitAccepted, AdmitRequest, Store } from './types.js';

const scope = { kind: 'user', id: 'u1' };
const admitRequest: AdmitRequest = { scope, reserveNanos: 1, estimatedTokens: 1, ttlMs: 1_000 };
const accepted: AdmitAccepted = {
  admitted: true,
  scope,
  reservation: {
    id: 'r1',
    scope,
    reservedNanos: 1,
    estimatedTokens: 1,
    createdAt: 0,
    expiresAt: 1_000,
    periodStart: null,
    periodEnd: null,
  },
  budget: null,
  rateLimits: [],
  now: 0,
};

function stubStore(overrides: Partial<Store> = {}): Store {
  return {
    admit: async () => accepted,
    settle: async () => ({ ended: false, previously: 'unknown', now: 0 }),
    extend: async () => ({ extended: false, reason: 'ended', previously: 'unknown', now: 0 }),
    release: async () => ({ ended: false, previously: 'unknown', now: 0 }),
    getState: async () => {
      throw new Error('not used');
    },
    now: async () => 42,
    ...overrides,
  };
}

async function caught(promise: Promise<unknown>): Promise<TokenmeterError> {
  try {
    await promise;
  } catch (error) {
    if (TokenmeterError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('guardStore', () => {
  it('passes results through when the store answers in time', async () => {
    const store = guardStore(stubStore());
    await expect(store.admit(admitRequest)).resolves.toBe(accepted);
    await expect(store.now()).resolves.toBe(42);
  });

  it('turns a call that never answers into store_unavailable after timeoutMs', async () => {
    vi.useFakeTimers();
    const store = guardStore(stubStore({ now: () => new Promise<number>(() => {}) }), {
      timeoutMs: 250,
    });
    const pending = caught(store.now());
    await vi.advanceTimersByTimeAsync(249);
    let done = false;
    void pending.then(() => {
      done = true;
    });
    await Promise.resolve();
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const error = await pending;
    expect(error.code).toBe('store_unavailable');
    expect(error.details).toEqual({ operation: 'now', timeoutMs: 250 });
    expect(error.message).toMatch(/within 250 ms/);
  });

  it('times each pending call from its own start, with one timer for all of them', async () => {
    vi.useFakeTimers();
    const answers: Array<(value: number) => void> = [];
    const store = guardStore(
      stubStore({ now: () => new Promise<number>((resolve) => answers.push(resolve)) }),
      { timeoutMs: 250 },
    );
    const outcome = (promise: Promise<number>) =>
      promise.then(
        (value) => `answered ${value}`,
        (error: TokenmeterError) => error.code,
      );
    const first = outcome(store.now());
    await vi.advanceTimersByTimeAsync(100);
    const second = outcome(store.now());
    const third = outcome(store.now());
    const many = Array.from({ length: 100 }, () => outcome(store.now()));
    // 103 calls waiting: one timer, not one per call.
    expect(vi.getTimerCount()).toBe(1);
    // The first answers in time; the others are still within their 250 ms.
    answers[0]?.(1);
    for (const answer of answers.slice(3)) answer(2);
    await vi.advanceTimersByTimeAsync(150);
    expect(await first).toBe('answered 1');
    expect(await Promise.all(many)).toEqual(many.map(() => 'answered 2'));
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    // t = 349: the second and third started at 100, so they have 1 ms left.
    await vi.advanceTimersByTimeAsync(99);
    expect(secondDone).toBe(false);
    answers[2]?.(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(await second).toBe('store_unavailable');
    expect(await third).toBe('answered 3');
    // Nothing pending: the timer is gone and keeps nothing alive.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('maps rejections, synchronous throws and foreign TokenmeterErrors to store_unavailable', async () => {
    const boom = new Error('ECONNREFUSED');
    const store = guardStore(
      stubStore({
        settle: async () => {
          throw boom;
        },
        release: () => {
          throw new TypeError('sync');
        },
        extend: async () => {
          throw new TokenmeterError('internal_error', 'script failed');
        },
      }),
    );
    const fromRejection = await caught(store.settle('r1', { costNanos: 1, tokens: 1 }));
    expect(fromRejection.code).toBe('store_unavailable');
    expect(fromRejection.cause).toBe(boom);
    expect(fromRejection.message).toMatch(/ECONNREFUSED/);
    expect((await caught(store.release('r1'))).code).toBe('store_unavailable');
    expect((await caught(store.extend('r1', { addNanos: 1 }))).code).toBe('store_unavailable');
  });

  it('lets caller bugs (invalid_argument) through unchanged', async () => {
    const invalid = new TokenmeterError('invalid_argument', 'reserveNanos must not be negative');
    const store = guardStore(
      stubStore({
        admit: async () => {
          throw invalid;
        },
      }),
    );
    expect(await caught(store.admit(admitRequest))).toBe(invalid);
  });

  it('releases an admission that arrives after the timeout', async () => {
    vi.useFakeTimers();
    let answer: (value: AdmitAccepted) => void = () => {};
    const release = vi.fn(async () => ({
      ended: true as const,
      outcome: 'released' as const,
      reservation: accepted.reservation,
      chargedNanos: 0,
      releasedNanos: 1,
      overrunNanos: 0,
      budget: null,
      now: 0,
    }));
    const onLateAdmission = vi.fn();
    const store = guardStore(
      stubStore({ admit: () => new Promise((resolve) => (answer = resolve)), release }),
      { timeoutMs: 100, onLateAdmission },
    );
    const pending = caught(store.admit(admitRequest));
    await vi.advanceTimersByTimeAsync(100);
    expect((await pending).code).toBe('store_unavailable');
    answer(accepted);
    await vi.advanceTimersByTimeAsync(0);
    expect(release).toHaveBeenCalledWith('r1');
    expect(onLateAdmission).toHaveBeenCalledWith('r1', undefined);
  });

  it('refuses a store that does not implement the contract, at creation', () => {
    const { now: _now, ...withoutNow } = stubStore();
    expect(() => guardStore(withoutNow as Store)).toThrow(/missing now/);
    expect(() => guardStore(stubStore(), { timeoutMs: 0 })).toThrow(/timeoutMs/);
  });

  it('guards shutdown only when the store has one', async () => {
    expect(guardStore(stubStore()).shutdown).toBeUndefined();
    const shutdown = vi.fn(async () => {});
    await guardStore(stubStore({ shutdown })).shutdown?.();
    expect(shutdown).toHaveBeenCalledTimes(1);
  });

  it('guards releaseByKey only when the store has one, with the same timeout and error mapping', async () => {
    expect(guardStore(stubStore()).releaseByKey).toBeUndefined();
    const scope = { kind: 'user', id: 'u1' };
    const releaseByKey = vi.fn(
      async () => ({ ended: false, previously: 'unknown', now: 7 }) as const,
    );
    const ok = await guardStore(stubStore({ releaseByKey })).releaseByKey?.(scope, 'k1');
    expect(ok).toEqual({ ended: false, previously: 'unknown', now: 7 });
    expect(releaseByKey).toHaveBeenCalledWith(scope, 'k1');

    const failing = guardStore(
      stubStore({ releaseByKey: () => Promise.reject(new Error('ECONNRESET')) }),
    );
    const failed = await caught(failing.releaseByKey!(scope, 'k1'));
    expect(failed.code).toBe('store_unavailable');
    expect(failed.details).toMatchObject({ operation: 'releaseByKey' });

    const hanging = guardStore(stubStore({ releaseByKey: () => new Promise(() => {}) }), {
      timeoutMs: 20,
    });
    const timedOut = await caught(hanging.releaseByKey!(scope, 'k1'));
    expect(timedOut.code).toBe('store_unavailable');
    expect(timedOut.details).toMatchObject({ operation: 'releaseByKey', timeoutMs: 20 });
  });
});
