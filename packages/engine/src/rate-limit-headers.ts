/**
 * IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers, structured-field form):
 * `RateLimit-Policy: "user-requests";q=20;w=60` and `RateLimit: "user-requests";r=3;t=41`,
 * one item per policy, plus `Retry-After` (seconds) on rejections. A concurrency limit has
 * no window: its policy carries no `w` (`"key-concurrency";q=16`), and its `t` is 0 while
 * a slot is free, else the same short hint as its `Retry-After`.
 */
import type { ScopeRef } from '@tokenmeter/core';
import type { AdmitRejected, RateLimitRejection, RateLimitState } from '@tokenmeter/core/store';

export interface ScopedRateLimit {
  scope: ScopeRef;
  state: RateLimitState;
}

/** Scope kinds as they appear in policy names (a few per app: kept, bounded). */
const KIND_NAMES = new Map<string, string>();

/** A short policy name without user ids: `user-requests-60s`. */
export function policyName(scope: ScopeRef, state: RateLimitState): string {
  let kind = KIND_NAMES.get(scope.kind);
  if (kind === undefined) {
    kind = scope.kind.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32);
    if (KIND_NAMES.size >= 256) KIND_NAMES.clear();
    KIND_NAMES.set(scope.kind, kind);
  }
  if (state.kind === 'concurrency') return `${kind}-concurrency`;
  return `${kind}-${state.kind}-${Math.round(state.windowMs / 1000)}s`;
}

/**
 * When a slot frees is not knowable (a stream ends when it ends); the store's figure is
 * when the soonest lease expires, a bound for a crashed holder, often minutes away. A
 * caller refused for concurrency is told to try again this soon instead, at most.
 */
const SLOT_RETRY_MS = 1_000;

/** The wait to send as `Retry-After` for a rejection: the store's, or the slot hint. */
export function retryAfterMsOf(rejection: AdmitRejected): number | null {
  const wait = rejection.retryAfterMs;
  if (wait === null || rejection.reason !== 'rate_limit') return wait;
  return rejection.rateLimit.kind === 'concurrency' ? Math.min(wait, SLOT_RETRY_MS) : wait;
}

/** The message of a 429: which limit, of which scope kind (never the scope's id). */
export function rateLimitMessage(rejection: RateLimitRejection): string {
  const { rateLimit, scope } = rejection;
  if (rateLimit.kind === 'concurrency') {
    return `Too many open streams for this ${scope.kind}: the limit is ${rateLimit.limit} at once. Try again when one has ended.`;
  }
  return `Too many ${rateLimit.kind} for this ${scope.kind}: the limit is ${rateLimit.limit} per ${Math.round(rateLimit.windowMs / 1000)} s.`;
}

/** Header values for the given limit states; empty when there are none. */
export function rateLimitHeaders(limits: readonly ScopedRateLimit[]): Record<string, string> {
  if (limits.length === 0) return {};
  const policies: string[] = [];
  const current: string[] = [];
  for (const { scope, state } of limits) {
    const name = policyName(scope, state);
    if (state.kind === 'concurrency') {
      const wait = state.remaining > 0 ? 0 : Math.min(state.resetMs, SLOT_RETRY_MS);
      policies.push(`"${name}";q=${state.limit}`);
      current.push(`"${name}";r=${state.remaining};t=${Math.ceil(wait / 1000)}`);
      continue;
    }
    const windowSeconds = Math.max(1, Math.ceil(state.windowMs / 1000));
    policies.push(`"${name}";q=${state.limit};w=${windowSeconds}`);
    current.push(`"${name}";r=${state.remaining};t=${Math.ceil(state.resetMs / 1000)}`);
  }
  return { 'RateLimit-Policy': policies.join(', '), RateLimit: current.join(', ') };
}

/** `Retry-After` in whole seconds, rounded up (at least 1). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
