import { describe, expect, it } from 'vitest';
import { policyName, rateLimitHeaders, retryAfterSeconds } from './rate-limit-headers.js';

describe('IETF RateLimit headers', () => {
  const scope = { kind: 'user', id: 'secret-user-id' };
  const state = {
    kind: 'requests' as const,
    limit: 20,
    windowMs: 60_000,
    used: 7,
    remaining: 13,
    resetMs: 41_200,
  };

  it('names policies without user ids', () => {
    expect(policyName(scope, state)).toBe('user-requests-60s');
    expect(policyName({ kind: 'a "b"\n', id: 'x' }, state)).toBe('a__b__-requests-60s');
  });

  it('writes one structured-field item per policy', () => {
    const headers = rateLimitHeaders([
      { scope, state },
      {
        scope: { kind: 'team', id: 't' },
        state: { ...state, kind: 'tokens', limit: 100_000, remaining: 0, resetMs: 999 },
      },
    ]);
    expect(headers['RateLimit-Policy']).toBe(
      '"user-requests-60s";q=20;w=60, "team-tokens-60s";q=100000;w=60',
    );
    expect(headers.RateLimit).toBe('"user-requests-60s";r=13;t=42, "team-tokens-60s";r=0;t=1');
    expect(JSON.stringify(headers)).not.toContain('secret-user-id');
    expect(rateLimitHeaders([])).toEqual({});
  });

  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect(retryAfterSeconds(0)).toBe('1');
    expect(retryAfterSeconds(1_001)).toBe('2');
    expect(retryAfterSeconds(60_000)).toBe('60');
  });
});
