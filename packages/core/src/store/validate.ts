/**
 * Argument checks shared by every store, so the memory store, the Redis store and a
 * user's store reject the same bad input with the same `invalid_argument` message — and
 * `assertStore()`, which refuses an object that does not implement the contract at
 * creation time instead of failing on the first request.
 */
import { TokenmeterError } from '../errors.js';
import { assertBudgetPeriod } from './period.js';
import type {
  AdmitRequest,
  ExtendRequest,
  RateLimitRule,
  ScopePolicy,
  ScopeRef,
  SettleRequest,
  Store,
} from './types.js';

const STORE_METHODS = ['admit', 'settle', 'extend', 'release', 'getState', 'now'] as const;

/** Throws `invalid_config` unless `store` has every method of the Store contract. */
export function assertStore(store: unknown): Store {
  if (typeof store !== 'object' || store === null) {
    throw new TokenmeterError(
      'invalid_config',
      `store must be a Store object (e.g. createMemoryStore()), got ${typeof store}.`,
    );
  }
  const missing = STORE_METHODS.filter(
    (name) => typeof (store as Record<string, unknown>)[name] !== 'function',
  );
  if (missing.length > 0) {
    throw new TokenmeterError(
      'invalid_config',
      `store is missing ${missing.join(', ')}: it does not implement the tokenmeter Store contract. ` +
        'Use @tokenmeter/store-memory or @tokenmeter/store-redis, or implement every method and run ' +
        "runStoreConformance() from '@tokenmeter/core/testing' against it.",
    );
  }
  const shutdown = (store as Record<string, unknown>).shutdown;
  if (shutdown !== undefined && typeof shutdown !== 'function') {
    throw new TokenmeterError('invalid_config', 'store.shutdown must be a function when present.');
  }
  const releaseByKey = (store as Record<string, unknown>).releaseByKey;
  if (releaseByKey !== undefined && typeof releaseByKey !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      'store.releaseByKey must be a function when present.',
    );
  }
  return store as Store;
}

/** Throws `invalid_argument` unless `scope` is `{ kind: non-empty string, id: string }`. */
export function assertScope(scope: unknown, what = 'scope'): ScopeRef {
  const candidate = scope as Partial<ScopeRef> | null | undefined;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    typeof candidate.kind !== 'string' ||
    candidate.kind.length === 0 ||
    typeof candidate.id !== 'string'
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      `${what} must be { kind: string, id: string } with a non-empty kind, e.g. { kind: 'user', id: req.user.id }.`,
    );
  }
  return candidate as ScopeRef;
}

/** Throws `invalid_argument` unless the policy's budget and rate limits are well formed. */
export function assertScopePolicy(policy: ScopePolicy | undefined): void {
  if (policy === undefined) return;
  if (policy.budget !== undefined) {
    const { limitNanos, period } = policy.budget;
    nonNegativeNanos(limitNanos, 'budget.limitNanos');
    assertBudgetPeriod(period);
  }
  if (policy.rateLimits === undefined) return;
  if (!Array.isArray(policy.rateLimits)) {
    throw new TokenmeterError('invalid_argument', 'rateLimits must be an array of rules.');
  }
  const seen = new Set<string>();
  policy.rateLimits.forEach((rule: RateLimitRule, index: number) => {
    const what = `rateLimits[${index}]`;
    if (rule?.kind === 'concurrency') {
      nonNegativeInteger(rule.limit, `${what}.limit`);
      if (rule.windowMs !== undefined) {
        throw new TokenmeterError(
          'invalid_argument',
          `${what} is a concurrency limit (open streams at once), which has no window: drop windowMs, or use kind 'requests' to count requests per window.`,
        );
      }
      if (seen.has('concurrency')) {
        throw new TokenmeterError(
          'invalid_argument',
          `${what} repeats a concurrency limit; keep one per scope (the smaller limit).`,
        );
      }
      seen.add('concurrency');
      return;
    }
    if (rule?.kind !== 'requests' && rule?.kind !== 'tokens') {
      throw new TokenmeterError(
        'invalid_argument',
        `${what}.kind must be 'requests', 'tokens' or 'concurrency'.`,
      );
    }
    nonNegativeInteger(rule.limit, `${what}.limit`);
    positiveInteger(rule.windowMs, `${what}.windowMs`);
    const key = `${rule.kind}/${rule.windowMs}`;
    if (seen.has(key)) {
      throw new TokenmeterError(
        'invalid_argument',
        `${what} repeats a ${rule.kind} limit over ${rule.windowMs} ms; keep one rule per kind and window (the smaller limit).`,
      );
    }
    seen.add(key);
  });
}

/** Throws `invalid_argument` unless `request` is a well-formed AdmitRequest. */
export function assertAdmitRequest(request: AdmitRequest): AdmitRequest {
  if (typeof request !== 'object' || request === null) {
    throw new TokenmeterError('invalid_argument', 'admit() needs an AdmitRequest object.');
  }
  assertScope(request.scope);
  assertScopePolicy(request);
  nonNegativeNanos(request.reserveNanos, 'reserveNanos');
  nonNegativeInteger(request.estimatedTokens, 'estimatedTokens');
  positiveInteger(request.ttlMs, 'ttlMs');
  if (request.requestKey !== undefined) assertRequestKey(request.requestKey);
  return request;
}

/** Throws `invalid_argument` unless `key` is an admission key: a string of 1–200 characters. */
export function assertRequestKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 200) {
    throw new TokenmeterError(
      'invalid_argument',
      'requestKey must be a string of 1 to 200 characters, unique per request (e.g. a UUID).',
    );
  }
  return key;
}

/** Throws `invalid_argument` unless `name` and `expiresAt` are a well-formed `claimOnce()` call. */
export function assertClaim(name: unknown, expiresAt: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new TokenmeterError(
      'invalid_argument',
      'claimOnce name must be a string of 1 to 200 characters (e.g. "budget-alert:day:1764720000000:80").',
    );
  }
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `claimOnce expiresAt must be epoch milliseconds (a non-negative integer), got ${String(expiresAt)}.`,
    );
  }
}

/** Throws `invalid_argument` unless `actual` is a well-formed SettleRequest. */
export function assertSettleRequest(actual: SettleRequest): SettleRequest {
  if (typeof actual !== 'object' || actual === null) {
    throw new TokenmeterError('invalid_argument', 'settle() needs { costNanos, tokens }.');
  }
  nonNegativeNanos(actual.costNanos, 'costNanos');
  nonNegativeInteger(actual.tokens, 'tokens');
  return actual;
}

/** Throws `invalid_argument` unless `request` is a well-formed ExtendRequest. */
export function assertExtendRequest(request: ExtendRequest): ExtendRequest {
  if (typeof request !== 'object' || request === null) {
    throw new TokenmeterError(
      'invalid_argument',
      'extend() needs { addNanos, addTokens?, ttlMs? }.',
    );
  }
  integerNanos(request.addNanos, 'addNanos');
  if (request.addTokens !== undefined && !Number.isSafeInteger(request.addTokens)) {
    throw new TokenmeterError('invalid_argument', 'addTokens must be an integer when given.');
  }
  if (request.ttlMs !== undefined) positiveInteger(request.ttlMs, 'ttlMs');
  return request;
}

/** Throws `invalid_argument` unless `id` is a non-empty string. */
export function assertReservationId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new TokenmeterError(
      'invalid_argument',
      'reservation id must be the non-empty string from admit().reservation.id.',
    );
  }
  return id;
}

function nonNegativeNanos(value: unknown, what: string): void {
  integerNanos(value, what);
  if ((value as number) < 0) {
    throw new TokenmeterError('invalid_argument', `${what} must not be negative, got ${value}.`);
  }
}

// Money mistakes are caller bugs like any other argument: one code, `invalid_argument`.
function integerNanos(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new TokenmeterError(
      'invalid_argument',
      `${what} must be a whole number of nano-dollars, got ${String(value)}. Convert dollars with usd('1.50').`,
    );
  }
}

function nonNegativeInteger(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `${what} must be a non-negative integer, got ${String(value)}.`,
    );
  }
}

function positiveInteger(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `${what} must be a positive integer number of milliseconds, got ${String(value)}.`,
    );
  }
}
