/**
 * The failure boundary around a store: every call gets a bounded timeout, and every way
 * a call can fail (rejection, synchronous throw, timeout, a store that returns no
 * promise) becomes one `TokenmeterError` with code `store_unavailable`, so the
 * middleware's fail-open / fail-closed policy has exactly one thing to catch — never a
 * hang, never a silent pass. Argument errors (`invalid_argument`, `invalid_config`) pass
 * through unchanged: they are bugs in the caller, and no failure policy should hide them.
 */
import { TokenmeterError } from '../errors.js';
import type { AdmitResult, Store } from './types.js';
import { assertStore } from './validate.js';

export interface GuardStoreOptions {
  /**
   * The longest any store call may take before it is reported as `store_unavailable`.
   * A timed-out call is not cancelled (stores cannot be); its late result is ignored,
   * except a late *admission*, which is released so it does not hold budget until expiry.
   * Defaults to 500 ms.
   *
   * @example
   * guardStore(createRedisStore({ client }), { timeoutMs: 100 })
   */
  timeoutMs?: number;
  /**
   * Told about late admissions that were released, and about failures to release them.
   * A hook that throws is ignored. Defaults to none.
   *
   * @example
   * guardStore(store, { onLateAdmission: (id, error) => logger.warn({ id, error }, 'late admission') })
   */
  onLateAdmission?: (reservationId: string, releaseError: unknown) => void;
}

type Operation =
  | 'admit'
  | 'settle'
  | 'extend'
  | 'release'
  | 'releaseByKey'
  | 'claimOnce'
  | 'getState'
  | 'now'
  | 'shutdown';

const PASS_THROUGH = new Set(['invalid_argument', 'invalid_config', 'store_unavailable']);

/**
 * Wraps `store` so every method resolves or rejects within `timeoutMs`, rejecting with a
 * `store_unavailable` TokenmeterError (the original error as `cause`, the operation in
 * `details`). Throws `invalid_config` at once if `store` does not implement the contract.
 *
 * @example
 * const store = guardStore(createMemoryStore(), { timeoutMs: 250 });
 * try { await store.admit(request) } catch (error) { if (error.code === 'store_unavailable') failClosed() }
 */
export function guardStore(store: Store, options: GuardStoreOptions = {}): Store {
  assertStore(store);
  const timeoutMs = options.timeoutMs ?? 500;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TokenmeterError(
      'invalid_config',
      `guardStore timeoutMs must be a positive number of milliseconds, got ${timeoutMs}.`,
    );
  }

  function call<T>(operation: Operation, invoke: () => Promise<T>, onLate?: (value: T) => void) {
    return bounded(operation, timeoutMs, invoke, onLate);
  }

  function releaseLate(result: AdmitResult): void {
    if (!result.admitted) return;
    const id = result.reservation.id;
    const report = (error: unknown) => {
      try {
        options.onLateAdmission?.(id, error);
      } catch {
        // A failing log hook must not become an unhandled rejection.
      }
    };
    Promise.resolve()
      .then(() => store.release(id))
      .then(
        () => report(undefined),
        (error: unknown) => report(error),
      );
  }

  const guarded: Store = {
    admit: (request) => call('admit', () => store.admit(request), releaseLate),
    settle: (id, actual) => call('settle', () => store.settle(id, actual)),
    extend: (id, request) => call('extend', () => store.extend(id, request)),
    release: (id) => call('release', () => store.release(id)),
    getState: (scope, policy) => call('getState', () => store.getState(scope, policy)),
    now: () => call('now', () => store.now()),
  };
  const claimOnce = store.claimOnce;
  if (claimOnce) {
    guarded.claimOnce = (scope, name, expiresAt) =>
      call('claimOnce', () => claimOnce.call(store, scope, name, expiresAt));
  }
  const releaseByKey = store.releaseByKey;
  if (releaseByKey) {
    guarded.releaseByKey = (scope, key) =>
      call('releaseByKey', () => releaseByKey.call(store, scope, key));
  }
  const shutdown = store.shutdown;
  if (shutdown) guarded.shutdown = () => call('shutdown', () => shutdown.call(store));
  return guarded;
}

function bounded<T>(
  operation: Operation,
  timeoutMs: number,
  invoke: () => Promise<T>,
  onLate?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new TokenmeterError(
          'store_unavailable',
          `The store did not answer ${operation}() within ${timeoutMs} ms. ` +
            'Check the store backend (e.g. Redis) is reachable and healthy, or raise timeoutMs.',
          { details: { operation, timeoutMs } },
        ),
      );
    }, timeoutMs);
    // A pending store call must not keep the process alive on its own.
    timer.unref?.();

    let pending: Promise<T>;
    try {
      pending = Promise.resolve(invoke());
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        if (settled) {
          onLate?.(value);
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(toStoreError(operation, error));
      },
    );
  });
}

function toStoreError(operation: Operation, error: unknown): unknown {
  if (TokenmeterError.isInstance(error) && PASS_THROUGH.has(error.code)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TokenmeterError(
    'store_unavailable',
    `The store failed during ${operation}(): ${reason}. Check the store backend; the request is handled by the failure policy (fail closed unless configured to fail open).`,
    { cause: error, details: { operation } },
  );
}
