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

  const deadlines = new Deadlines(timeoutMs);
  function call<T>(operation: Operation, invoke: () => Promise<T>, onLate?: (value: T) => void) {
    return bounded(operation, deadlines, invoke, onLate);
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

/** A call waiting for the store, until its deadline. */
interface Pending {
  readonly deadline: number;
  done: boolean;
  readonly expire: () => void;
}

/**
 * The deadlines of one guarded store's pending calls, behind one timer. Every call gets the
 * same timeout, so deadlines come in the order calls start: a queue whose head is the next
 * to expire. A timer per call would be created and cleared on every store call of every
 * stream (most answer within a millisecond); this one wakes at most once per timeout while
 * calls are pending, and does not keep the process alive.
 */
class Deadlines {
  private queue: Pending[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly timeoutMs: number) {}

  add(expire: () => void): Pending {
    const entry: Pending = { deadline: performance.now() + this.timeoutMs, done: false, expire };
    this.queue.push(entry);
    if (this.timer === undefined) this.arm(this.timeoutMs);
    return entry;
  }

  /** The call answered (or expired): its deadline no longer matters. */
  settle(entry: Pending): void {
    entry.done = true;
    if (this.queue[this.head] === entry) this.trim();
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.fire, ms);
    this.timer.unref?.();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    const queue = this.queue;
    while (this.head < queue.length) {
      const entry = queue[this.head] as Pending;
      if (!entry.done) {
        if (entry.deadline > now) break;
        entry.done = true;
        entry.expire();
      }
      this.head++;
    }
    this.trim();
    const next = this.queue[this.head];
    if (next) this.arm(Math.max(1, Math.ceil(next.deadline - now)));
  };

  /** Drops answered calls from the head; compacts the array once most of it is behind. */
  private trim(): void {
    const queue = this.queue;
    while (this.head < queue.length && (queue[this.head] as Pending).done) this.head++;
    if (this.head === queue.length) {
      queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1_024 && this.head * 2 >= queue.length) {
      this.queue = queue.slice(this.head);
      this.head = 0;
    }
  }
}

function bounded<T>(
  operation: Operation,
  deadlines: Deadlines,
  invoke: () => Promise<T>,
  onLate?: (value: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timeoutMs = deadlines.timeoutMs;
    const pending = deadlines.add(() =>
      reject(
        new TokenmeterError(
          'store_unavailable',
          `The store did not answer ${operation}() within ${timeoutMs} ms. ` +
            'Check the store backend (e.g. Redis) is reachable and healthy, or raise timeoutMs.',
          { details: { operation, timeoutMs } },
        ),
      ),
    );
    let answer: Promise<T>;
    try {
      answer = Promise.resolve(invoke());
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      (value) => {
        if (pending.done) {
          onLate?.(value);
          return;
        }
        deadlines.settle(pending);
        resolve(value);
      },
      (error: unknown) => {
        if (pending.done) return;
        deadlines.settle(pending);
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
