/**
 * Conformance case for bad input: a store rejects malformed calls with a TokenmeterError
 * of code `invalid_argument` (the helpers in core's store/validate.ts do it) and records
 * nothing, so caller bugs are never mistaken for store outages.
 */
import type { AdmitRequest } from '../../store/types.js';
import {
  assert,
  defineCase,
  expectAdmitted,
  expectErrorCode,
  MINUTE_MS,
  request,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

export const validationCases: readonly ConformanceCase[] = [
  defineCase(
    'validation',
    'malformed calls reject with invalid_argument and record nothing',
    async ({ store, scope }) => {
      const user = scope();
      const budget = { limitNanos: 10_000, period: 'day' as const };
      const bad: Array<[string, AdmitRequest]> = [
        ['a negative reservation', request(user, { budget, reserveNanos: -1 })],
        ['a fractional reservation', request(user, { budget, reserveNanos: 1.5 })],
        ['fractional tokens', request(user, { budget, estimatedTokens: 0.5 })],
        ['a zero TTL', request(user, { budget, ttlMs: 0 })],
        ['an empty scope kind', request({ kind: '', id: user.id }, { budget })],
        [
          'an unknown period',
          request(user, { budget: { limitNanos: 1, period: 'week' as unknown as 'day' } }),
        ],
        ['a negative limit', request(user, { budget: { limitNanos: -5, period: 'day' } })],
        [
          'a duplicate rate-limit rule',
          request(user, {
            rateLimits: [
              { kind: 'requests', limit: 1, windowMs: MINUTE_MS },
              { kind: 'requests', limit: 2, windowMs: MINUTE_MS },
            ],
          }),
        ],
        [
          'a zero window',
          request(user, { rateLimits: [{ kind: 'tokens', limit: 1, windowMs: 0 }] }),
        ],
        [
          'two concurrency limits',
          request(user, {
            rateLimits: [
              { kind: 'concurrency', limit: 1 },
              { kind: 'concurrency', limit: 2 },
            ],
          }),
        ],
        [
          'a concurrency limit with a window',
          request(user, {
            rateLimits: [{ kind: 'concurrency', limit: 1, windowMs: MINUTE_MS } as never],
          }),
        ],
        [
          'a fractional concurrency limit',
          request(user, { rateLimits: [{ kind: 'concurrency', limit: 1.5 }] }),
        ],
      ];
      for (const [what, req] of bad) {
        await expectErrorCode(store.admit(req), 'invalid_argument', `admit with ${what}`);
      }
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.reservedNanos, 0, 'nothing was reserved');
      assert.equal(state.reservations.open, 0, 'no reservation was made');

      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 1_000 })),
        'a valid admission',
      );
      await expectErrorCode(
        store.settle(reservation.id, { costNanos: -1, tokens: 0 }),
        'invalid_argument',
        'settle with a negative cost',
      );
      await expectErrorCode(
        store.extend(reservation.id, { addNanos: 0.5 }),
        'invalid_argument',
        'extend with a fractional amount',
      );
      const after = await store.getState(user, { budget });
      assert.equal(after.reservations.open, 1, 'the reservation survived the bad calls');
      assert.equal(after.budget?.reservedNanos, 1_000, 'and still holds its amount');
    },
  ),
];
