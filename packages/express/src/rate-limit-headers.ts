/**
 * IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers, structured-field form):
 * `RateLimit-Policy: "user-requests";q=20;w=60` and `RateLimit: "user-requests";r=3;t=41`,
 * one item per policy, plus `Retry-After` (seconds) on rejections.
 */
import type { RateLimitState, ScopeRef } from '@tokenmeter/core';

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
  return `${kind}-${state.kind}-${Math.round(state.windowMs / 1000)}s`;
}

/** Header values for the given limit states; empty when there are none. */
export function rateLimitHeaders(limits: readonly ScopedRateLimit[]): Record<string, string> {
  if (limits.length === 0) return {};
  const policies: string[] = [];
  const current: string[] = [];
  for (const { scope, state } of limits) {
    const name = policyName(scope, state);
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
