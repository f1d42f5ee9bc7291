import { describe, expect, it, vi } from 'vitest';
import { admitAll, extendAll } from './admit-all.js';
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
