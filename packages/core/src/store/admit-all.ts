/**
 * Admission across several scopes (user, API key, team, conversation, global) on top of
 * any Store's per-scope `admit()`: a request is admitted only if every scope admits it,
 * and scopes that admitted are released when a later one rejects or fails. Also the
 * matching group operations: settle, release and extend all of a request's reservations.
 *
 * What is atomic and what is not, and why nothing can be overspent:
 * - Each scope's admission is atomic in the store, so for every scope, at every moment,
 *   `spent + reserved ≤ limit` holds for what was admitted (and the windows hold at most
 *   `limit` entries). That invariant is per scope; it does not need the other scopes.
 * - Admission across scopes is NOT atomic: scopes are admitted one after the other, and a
 *   scope that admitted holds its reservation until a later scope's rejection makes us
 *   release it. Meanwhile a concurrent request may see that short-lived reservation and
 *   be rejected where it would otherwise have passed. That is the only effect: a
 *   reservation that is rolled back only ever *frees* budget, so the interleaving can
 *   cause a spurious rejection, never an admission past a limit. No locks are taken, so
 *   there is no deadlock between requests that share scopes in different orders.
 * - Rollback uses `release()`, which also removes the request from the scope's rate-limit
 *   windows: a user rejected by the team budget does not burn their own request quota.
 *   If a rollback release itself fails, the reservation ends by expiry (under
 *   'charge-reserved' it is then charged: an over-count, never an under-count) and
 *   `onRollbackError` is told.
 * - A store call that rejects may still have admitted (a connection dropped after the
 *   script ran, and its reply was lost): nobody holds that reservation's id. When the
 *   request carries a `requestKey` and the store implements `releaseByKey()`, admitAll
 *   makes one attempt to release it by key, in the background (the error is rethrown at
 *   once); `releaseLostAdmission()` retries later for callers (like the middleware) whose
 *   store may be down right now.
 * Spend can pass a limit only if `settle()` reports more than was reserved; the middleware
 * prevents that by reserving each request's worst case (or growing a lease with
 * `extend()` before the answer outgrows it).
 */
import { TokenmeterError } from '../errors.js';
import type { Nanos } from '../money.js';
import type {
  AdmitAccepted,
  AdmitRejected,
  AdmitRequest,
  EndResult,
  ExtendRejected,
  ExtendRequest,
  ExtendResult,
  ScopeRef,
  SettleRequest,
  Store,
} from './types.js';

/** Every scope admitted: one accepted result (and reservation) per request, in order. */
export interface AdmitAllAccepted {
  readonly admitted: true;
  readonly results: readonly AdmitAccepted[];
  /** `results[i].reservation.id`, in order: hand these to settleAll / releaseAll / extendAll. */
  readonly reservationIds: readonly string[];
}

/** One scope rejected; every scope admitted before it was released again. */
export interface AdmitAllRejected {
  readonly admitted: false;
  /** Index in the requests of the scope that rejected. */
  readonly rejectedIndex: number;
  readonly rejection: AdmitRejected;
  /** Reservation ids whose rollback release failed: they end by expiry instead. */
  readonly unreleased: readonly string[];
}

export type AdmitAllResult = AdmitAllAccepted | AdmitAllRejected;

export interface AdmitAllOptions {
  /**
   * Told when releasing an earlier scope's reservation during rollback fails (the
   * reservation then ends by expiry). A hook that throws is ignored. Defaults to none.
   *
   * @example
   * admitAll(store, requests, { onRollbackError: (error, id) => logger.warn({ error, id }, 'rollback failed') })
   */
  onRollbackError?: (error: unknown, reservationId: string) => void;
  /**
   * Told when a store call for a request with a `requestKey` rejected and the one attempt
   * to release that admission by key (`store.releaseByKey`) failed too: if the admission
   * ran, it ends by expiry unless released later (see `releaseLostAdmission`). A hook that
   * throws is ignored. Defaults to none.
   *
   * @example
   * admitAll(store, requests, { onLostAdmission: (error, scope, key) => retryLater(scope, key) })
   */
  onLostAdmission?: (error: unknown, scope: ScopeRef, requestKey: string) => void;
}

/**
 * Admits one request against several scopes, in the order given (put the scope most
 * likely to reject first to save round trips). Resolves with every reservation, or with
 * the first rejection after releasing what was admitted. If a store call rejects, the
 * error is rethrown at once; earlier reservations are released (and the failed one by its
 * key) in the background.
 *
 * @example
 * const result = await admitAll(store, [
 *   { scope: { kind: 'user', id: userId }, budget: { limitNanos: usd('5'), period: 'day' }, reserveNanos, estimatedTokens, ttlMs: 120_000 },
 *   { scope: { kind: 'team', id: teamId }, budget: { limitNanos: usd('500'), period: 'month' }, reserveNanos, estimatedTokens, ttlMs: 120_000 },
 * ]);
 * if (!result.admitted) return reject(result.rejection);
 */
export async function admitAll(
  store: Store,
  requests: readonly AdmitRequest[],
  options: AdmitAllOptions = {},
): Promise<AdmitAllResult> {
  assertDistinctScopes(requests);
  const accepted: AdmitAccepted[] = [];
  for (const [index, request] of requests.entries()) {
    let result: Awaited<ReturnType<Store['admit']>>;
    try {
      result = await store.admit(request);
    } catch (error) {
      // Cleaned up in the background: the store that just failed may take its whole
      // timeout again, and the caller's answer (a 503) must not wait for it.
      void Promise.all([
        rollback(store, accepted, options),
        releaseLost(store, request, options),
      ]).catch(() => {});
      throw error;
    }
    if (!result.admitted) {
      const unreleased = await rollback(store, accepted, options);
      return { admitted: false, rejectedIndex: index, rejection: result, unreleased };
    }
    accepted.push(result);
  }
  return {
    admitted: true,
    results: accepted,
    reservationIds: accepted.map((result) => result.reservation.id),
  };
}

/**
 * Settles every reservation of a request with the same actual usage (each scope pays the
 * full cost). Calls run in parallel; each result reports whether it ended the reservation.
 */
export function settleAll(
  store: Store,
  reservationIds: readonly string[],
  actual: SettleRequest,
): Promise<EndResult[]> {
  return Promise.all(reservationIds.map((id) => store.settle(id, actual)));
}

/** Releases every reservation of a request (the request never reached the provider). */
export function releaseAll(store: Store, reservationIds: readonly string[]): Promise<EndResult[]> {
  return Promise.all(reservationIds.map((id) => store.release(id)));
}

/** All reservations grew (or were already ended: see `results`). */
export interface ExtendAllAccepted {
  readonly extended: true;
  readonly results: readonly ExtendResult[];
}

/** One scope's budget refused the growth; the scopes extended before it were shrunk back. */
export interface ExtendAllRejected {
  readonly extended: false;
  readonly rejectedIndex: number;
  readonly rejection: ExtendRejected;
}

export type ExtendAllResult = ExtendAllAccepted | ExtendAllRejected;

/**
 * Grows every reservation of a request by the same amount (an incremental lease), in
 * order; if one scope's budget refuses, the growth already applied to earlier scopes is
 * undone with a negative extend, so a refused lease holds nothing. A reservation that has
 * already ended does not stop the others (its result says `reason: 'ended'`).
 *
 * @example
 * const lease = await extendAll(store, ids, { addNanos: usd('0.01'), ttlMs: 120_000 });
 * if (!lease.extended) abortStream('budget_exceeded');
 */
export async function extendAll(
  store: Store,
  reservationIds: readonly string[],
  request: ExtendRequest,
): Promise<ExtendAllResult> {
  const results: ExtendResult[] = [];
  for (const [index, id] of reservationIds.entries()) {
    let result: ExtendResult;
    try {
      result = await store.extend(id, request);
    } catch (error) {
      await undoGrowth(store, reservationIds, results, request);
      throw error;
    }
    if (!result.extended && result.reason === 'budget') {
      await undoGrowth(store, reservationIds, results, request);
      return { extended: false, rejectedIndex: index, rejection: result };
    }
    results.push(result);
  }
  return { extended: true, results };
}

async function rollback(
  store: Store,
  accepted: readonly AdmitAccepted[],
  options: AdmitAllOptions,
): Promise<string[]> {
  const ids = accepted.map((result) => result.reservation.id);
  const outcomes = await Promise.allSettled(ids.map((id) => store.release(id)));
  const unreleased: string[] = [];
  outcomes.forEach((outcome, index) => {
    if (outcome.status === 'fulfilled') return;
    const id = ids[index] as string;
    unreleased.push(id);
    try {
      options.onRollbackError?.(outcome.reason, id);
    } catch {
      // A failing log hook must not turn a clean rejection into an error.
    }
  });
  return unreleased;
}

/**
 * The one attempt admitAll makes to release the admission of a store call that rejected:
 * it may have run with its reply lost. Never rejects.
 */
async function releaseLost(
  store: Store,
  request: AdmitRequest,
  options: AdmitAllOptions,
): Promise<void> {
  const key = request?.requestKey;
  if (typeof key !== 'string' || !store.releaseByKey) return;
  const scope: ScopeRef = { kind: request.scope.kind, id: request.scope.id };
  try {
    await store.releaseByKey(scope, key);
  } catch (error) {
    try {
      options.onLostAdmission?.(error, scope, key);
    } catch {
      // A failing log hook must not replace the store error being rethrown.
    }
  }
}

export interface ReleaseLostAdmissionOptions {
  /**
   * Ms to wait before each attempt, in order; when `attempts` is larger, the last delay
   * repeats. Defaults to [1_000, 5_000, 15_000, 30_000]: the store may be down right now.
   */
  delaysMs?: readonly number[];
  /** How many attempts at most. Defaults to `delaysMs.length`. */
  attempts?: number;
  /** Told when every attempt failed (the reservation, if any, ends by its TTL). */
  onGiveUp?: (error: unknown) => void;
}

const LOST_ADMISSION_DELAYS_MS = [1_000, 5_000, 15_000, 30_000] as const;

/**
 * Releases, in the background, the reservation `scope` may hold for `requestKey` after
 * an admission call failed without an answer (the admission may have run, its reply
 * lost): tries `store.releaseByKey` after each delay until one call answers (whatever it
 * reports: released, already ended, or unknown) or the attempts run out. Its timers do
 * not keep the process alive. Resolves with the answer, or `undefined` when the store has
 * no `releaseByKey` or every attempt failed; never rejects, so it can be left unawaited.
 *
 * @example
 * try { await admitAll(store, requests) } catch (error) {
 *   for (const r of requests) void releaseLostAdmission(store, r.scope, requestId);
 *   throw error;
 * }
 */
export async function releaseLostAdmission(
  store: Store,
  scope: ScopeRef,
  requestKey: string,
  options: ReleaseLostAdmissionOptions = {},
): Promise<EndResult | undefined> {
  const releaseByKey = store.releaseByKey;
  if (!releaseByKey) return undefined;
  const delays = options.delaysMs ?? LOST_ADMISSION_DELAYS_MS;
  const attempts = options.attempts ?? delays.length;
  const target: ScopeRef = { kind: scope.kind, id: scope.id };
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const delay = delays[Math.min(attempt, delays.length - 1)] ?? 0;
    if (delay > 0) await sleep(delay);
    try {
      return await releaseByKey.call(store, target, requestKey);
    } catch (error) {
      lastError = error;
      // A caller's bug (a malformed scope or key) will not fix itself by waiting.
      if (TokenmeterError.isInstance(error) && error.code === 'invalid_argument') break;
    }
  }
  try {
    options.onGiveUp?.(lastError);
  } catch {
    // A failing log hook must not become an unhandled rejection.
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
}

async function undoGrowth(
  store: Store,
  reservationIds: readonly string[],
  results: readonly ExtendResult[],
  request: ExtendRequest,
): Promise<void> {
  const undo: { addNanos: Nanos; addTokens: number } = {
    addNanos: -request.addNanos,
    addTokens: -(request.addTokens ?? 0),
  };
  await Promise.allSettled(
    results.map((result, index) =>
      // Only growth that happened is undone; a failed undo leaves an over-reservation,
      // which blocks budget until settle but can never overspend.
      result.extended ? store.extend(reservationIds[index] as string, undo) : undefined,
    ),
  );
}

function assertDistinctScopes(requests: readonly AdmitRequest[]): void {
  const seen = new Set<string>();
  for (const request of requests) {
    const kind = request?.scope?.kind;
    const id = request?.scope?.id;
    const key = `${String(kind).length}:${String(kind)}:${String(id)}`;
    if (seen.has(key)) {
      throw new TokenmeterError(
        'invalid_argument',
        `admitAll() got scope ${String(kind)}/${String(id)} twice; list each scope once (it would be charged twice).`,
      );
    }
    seen.add(key);
  }
}
