import { describe, expect, it, vi } from 'vitest';
import { admitAll, extendAll, releaseLostAdmission } from './admit-all.js';
import type {
  AdmitRequest,
  AdmitResult,
  EndResult,
  ExtendResult,
  Reservation,
  Store,
} from './types.js';

// The helpers' behaviour against real stores is in the conformance suite ('multi-scope',
// 'concurrency'); these tests cover what a conforming store cannot provoke.

function req(kind: string, id = 'x'): AdmitRequest {
  return { scope: { kind, id }, reserveNanos: 10, estimatedTokens: 1, ttlMs: 1_000 };
}

function reservation(id: string, request: AdmitRequest = req('a')): Reservation {
  return {
    id,
    scope: request.scope,
    reservedNanos: request.reserveNanos,
    estimatedTokens: request.estimatedTokens,
    createdAt: 0,
    expiresAt: 1_000,
    periodStart: null,
    periodEnd: null,
  };
}

function accept(request: AdmitRequest, id: string): AdmitResult {
  return {
    admitted: true,
    scope: request.scope,
    reservation: reservation(id, request),
    budget: null,
    rateLimits: [],
    now: 0,
  };
}

const released: EndResult = { ended: false, previously: 'unknown', now: 0 };

function fakeStore(admit: Store['admit'], release: Store['release']): Store {
  return {
    admit,
    release,
    settle: async () => released,
    extend: async () => ({ extended: false, reason: 'ended', previously: 'unknown', now: 0 }),
    getState: async () => {
      throw new Error('unused');
    },
    now: async () => 0,
  };
}

describe('admitAll', () => {
  it('reports reservations whose rollback failed and tells the hook, even if the hook throws', async () => {
    const release = vi.fn(async (id: string) => {
      if (id === 'r-a') throw new Error('redis down');
      return released;
    });
    const store = fakeStore(async (request) => {
      if (request.scope.kind === 'c') {
        return {
          admitted: false,
          scope: request.scope,
          reason: 'budget',
          retryAfterMs: null,
          budget: {
            limitNanos: 0,
            spentNanos: 0,
            reservedNanos: 0,
            remainingNanos: 0,
            period: 'lifetime',
            periodStart: 0,
            periodEnd: null,
          },
          rateLimits: [],
          now: 0,
        };
      }
      return accept(request, `r-${request.scope.kind}`);
    }, release);
    const onRollbackError = vi.fn(() => {
      throw new Error('logger broke');
    });
    const result = await admitAll(store, [req('a'), req('b'), req('c')], { onRollbackError });
    expect(result.admitted).toBe(false);
    if (!result.admitted) {
      expect(result.rejectedIndex).toBe(2);
      expect(result.unreleased).toEqual(['r-a']);
    }
    expect(release.mock.calls.map(([id]) => id).sort()).toEqual(['r-a', 'r-b']);
    expect(onRollbackError).toHaveBeenCalledWith(expect.any(Error), 'r-a');
  });

  it('rethrows a store error after rolling back, without calling later scopes', async () => {
    const admit = vi.fn(async (request: AdmitRequest) => {
      if (request.scope.kind === 'b') throw new Error('timeout');
      return accept(request, `r-${request.scope.kind}`);
    });
    const release = vi.fn(async () => released);
    await expect(
      admitAll(fakeStore(admit, release), [req('a'), req('b'), req('c')]),
    ).rejects.toThrow('timeout');
    expect(release).toHaveBeenCalledWith('r-a');
    expect(admit).toHaveBeenCalledTimes(2);
  });

  it('tries once to release a failed admission by its key, and tells onLostAdmission when that fails', async () => {
    const admit = vi.fn(async (request: AdmitRequest) => {
      if (request.scope.kind === 'b') throw new Error('connection lost');
      return accept(request, `r-${request.scope.kind}`);
    });
    const release = vi.fn(async () => released);
    const releaseByKey = vi.fn(async (): Promise<EndResult> => {
      throw new Error('still down');
    });
    const onLostAdmission = vi.fn(() => {
      throw new Error('logger broke');
    });
    const store: Store = { ...fakeStore(admit, release), releaseByKey };
    const keyed = (kind: string) => ({ ...req(kind), requestKey: 'req-1' });
    await expect(
      admitAll(store, [keyed('a'), keyed('b'), keyed('c')], { onLostAdmission }),
    ).rejects.toThrow('connection lost');
    expect(release).toHaveBeenCalledWith('r-a');
    // Only the scope whose call failed: the earlier one is released by id, the later never ran.
    expect(releaseByKey).toHaveBeenCalledTimes(1);
    expect(releaseByKey).toHaveBeenCalledWith({ kind: 'b', id: 'x' }, 'req-1');
    expect(onLostAdmission).toHaveBeenCalledWith(
      expect.any(Error),
      { kind: 'b', id: 'x' },
      'req-1',
    );
  });

  it('does not release by key without a requestKey', async () => {
    const releaseByKey = vi.fn(async (): Promise<EndResult> => released);
    const store: Store = {
      ...fakeStore(
        async () => {
          throw new Error('down');
        },
        async () => released,
      ),
      releaseByKey,
    };
    await expect(admitAll(store, [req('a')])).rejects.toThrow('down');
    expect(releaseByKey).not.toHaveBeenCalled();
  });

  it('refuses the same scope twice, which would charge it twice', async () => {
    const store = fakeStore(
      async (request) => accept(request, 'r'),
      async () => released,
    );
    await expect(admitAll(store, [req('user', 'u'), req('user', 'u')])).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    // Look-alike scopes are different scopes.
    await expect(admitAll(store, [req('a:b', 'c'), req('a', 'b:c')])).resolves.toMatchObject({
      admitted: true,
    });
  });
});

describe('extendAll', () => {
  it('does not undo anything when a reservation had already ended', async () => {
    const extend = vi.fn(
      async (id: string): Promise<ExtendResult> =>
        id === 'gone'
          ? { extended: false, reason: 'ended', previously: 'expired', now: 0 }
          : { extended: true, reservation: reservation(id), budget: null, now: 0 },
    );
    const store = {
      ...fakeStore(
        async (r) => accept(r, 'x'),
        async () => released,
      ),
      extend,
    };
    const result = await extendAll(store, ['gone', 'live'], { addNanos: 5 });
    expect(result.extended).toBe(true);
    expect(extend).toHaveBeenCalledTimes(2);
  });
});

describe('releaseLostAdmission', () => {
  const scope = { kind: 'user', id: 'u' };
  const unknown: EndResult = { ended: false, previously: 'unknown', now: 0 };

  it('retries after each delay until the store answers, then stops', async () => {
    let calls = 0;
    const releaseByKey = vi.fn(async (): Promise<EndResult> => {
      calls += 1;
      if (calls < 3) throw new Error('down');
      return unknown;
    });
    const store: Store = { ...fakeStore(vi.fn(), vi.fn()), releaseByKey };
    const result = await releaseLostAdmission(store, scope, 'k', { delaysMs: [1, 1, 1, 1, 1] });
    expect(result).toBe(unknown);
    expect(releaseByKey).toHaveBeenCalledTimes(3);
    expect(releaseByKey).toHaveBeenCalledWith(scope, 'k');
  });

  it('gives up after the attempts, tells onGiveUp, and never rejects', async () => {
    const releaseByKey = vi.fn(async (): Promise<EndResult> => {
      throw new Error('down');
    });
    const onGiveUp = vi.fn();
    const store: Store = { ...fakeStore(vi.fn(), vi.fn()), releaseByKey };
    await expect(
      releaseLostAdmission(store, scope, 'k', { delaysMs: [0, 1], attempts: 4, onGiveUp }),
    ).resolves.toBeUndefined();
    expect(releaseByKey).toHaveBeenCalledTimes(4);
    expect(onGiveUp).toHaveBeenCalledWith(expect.any(Error));
  });

  it('does nothing for a store without releaseByKey', async () => {
    const store = fakeStore(vi.fn(), vi.fn());
    await expect(
      releaseLostAdmission(store, scope, 'k', { delaysMs: [0] }),
    ).resolves.toBeUndefined();
  });
});
