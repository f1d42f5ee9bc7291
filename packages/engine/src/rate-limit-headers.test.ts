import type { RateLimitRejection } from '@tokenmeter/core/store';
import { describe, expect, it } from 'vitest';
import {
  policyName,
  rateLimitHeaders,
  rateLimitMessage,
  retryAfterMsOf,
  retryAfterSeconds,
} from './rate-limit-headers.js';

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

  it('writes a concurrency policy without a window; t is 0 while a slot is free, else the 1 s hint', () => {
    const open = {
      kind: 'concurrency' as const,
      limit: 16,
      used: 3,
      remaining: 13,
      resetMs: 660_000,
    };
    const full = { ...open, used: 16, remaining: 0 };
    expect(policyName({ kind: 'key', id: 'k' }, open)).toBe('key-concurrency');
    expect(rateLimitHeaders([{ scope: { kind: 'key', id: 'k' }, state: open }])).toEqual({
      'RateLimit-Policy': '"key-concurrency";q=16',
      RateLimit: '"key-concurrency";r=13;t=0',
    });
    expect(rateLimitHeaders([{ scope: { kind: 'key', id: 'k' }, state: full }]).RateLimit).toBe(
      '"key-concurrency";r=0;t=1',
    );
  });

  it('tells a caller refused for concurrency to retry within 1 s, not at the lease expiry', () => {
    const base = {
      admitted: false as const,
      reason: 'rate_limit' as const,
      scope,
      budget: null,
      now: 0,
    };
    const slots = {
      kind: 'concurrency' as const,
      limit: 2,
      used: 2,
      remaining: 0,
      resetMs: 660_000,
    };
    const refused: RateLimitRejection = {
      ...base,
      retryAfterMs: 660_000,
      rateLimit: slots,
      rateLimits: [slots],
    };
    expect(retryAfterMsOf(refused)).toBe(1_000);
    expect(retryAfterMsOf({ ...refused, retryAfterMs: 300 })).toBe(300);
    expect(retryAfterMsOf({ ...refused, retryAfterMs: null })).toBeNull();
    expect(rateLimitMessage(refused)).toBe(
      'Too many open streams for this user: the limit is 2 at once. Try again when one has ended.',
    );
    const window: RateLimitRejection = {
      ...base,
      retryAfterMs: 41_000,
      rateLimit: state,
      rateLimits: [state],
    };
    expect(retryAfterMsOf(window)).toBe(41_000);
    expect(rateLimitMessage(window)).toBe(
      'Too many requests for this user: the limit is 20 per 60 s.',
    );
  });

  it('rounds Retry-After up to whole seconds, at least 1', () => {
    expect(retryAfterSeconds(0)).toBe('1');
    expect(retryAfterSeconds(1_001)).toBe('2');
    expect(retryAfterSeconds(60_000)).toBe('60');
  });
});
