/**
 * Conformance cases for amounts near the largest tokenmeter keeps (MAX_NANOS, ~$9.0M): a
 * store is exact to the nano-dollar up to it, holds running totals at it rather than
 * passing it, and keeps answering (a total past 2^53 must never make replies unreadable).
 */
import { MAX_NANOS } from '../../money.js';
import {
  assert,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectRejected,
  MINUTE_MS,
  request,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const lifetime = (limitNanos: number) => ({ budget: { limitNanos, period: 'lifetime' as const } });

export const amountCases: readonly ConformanceCase[] = [
  defineCase(
    'amounts',
    'is exact to the nano-dollar at the largest budget',
    async ({ store, scope }) => {
      const user = scope();
      const policy = lifetime(MAX_NANOS);
      const big = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: MAX_NANOS - 10 })),
        'a reservation of all but 10 nanos',
      );
      expectRejected(
        await store.admit(request(user, { ...policy, reserveNanos: 11 })),
        'one nano more than remains',
        'budget',
      );
      const small = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 10 })),
        'exactly what remains',
      );
      const settled = expectEnded(
        await store.settle(big.reservation.id, { costNanos: MAX_NANOS - 15, tokens: 1 }),
        'settled',
        'settle near the maximum',
      );
      assert.equal(settled.budget?.spentNanos, MAX_NANOS - 15, 'spend exact near 2^53');
      assert.equal(settled.budget?.remainingNanos, 5, 'remaining exact near 2^53');
      await store.release(small.reservation.id);
      const state = await store.getState(user, policy);
      assert.equal(state.budget?.spentNanos, MAX_NANOS - 15, 'read back exactly');
      assert.equal(state.budget?.remainingNanos, 15, 'remaining after the release');
      expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 15 })),
        'the last 15 nanos',
      );
    },
  ),
  defineCase(
    'amounts',
    'holds spend at the maximum rather than passing it, and keeps answering',
    async ({ store, scope }) => {
      const user = scope();
      const policy = lifetime(1_000);
      const first = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 500 })),
        'first',
      );
      const second = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 500 })),
        'second',
      );
      // A provider that billed far past the reservation, twice: 2 × (2^53 − 1) in total.
      expectEnded(
        await store.settle(first.reservation.id, { costNanos: MAX_NANOS, tokens: 1 }),
        'settled',
        'first settle at the maximum',
      );
      const over = expectEnded(
        await store.settle(second.reservation.id, { costNanos: MAX_NANOS, tokens: 1 }),
        'settled',
        'second settle past the maximum',
      );
      assert.equal(over.budget?.spentNanos, MAX_NANOS, 'spend is held at MAX_NANOS');
      const state = await store.getState(user, policy);
      assert.equal(state.budget?.spentNanos, MAX_NANOS, 'and reads back as MAX_NANOS');
      assert.equal(state.budget?.remainingNanos, 0, 'nothing remains');
      expectRejected(
        await store.admit(request(user, { ...policy, reserveNanos: 0 })),
        'later admissions are refused for the budget, not failed',
        'budget',
      );
    },
  ),
  defineCase(
    'amounts',
    'holds the expired total at the maximum too',
    async ({ store, clock, scope }) => {
      const user = scope();
      for (let i = 0; i < 2; i++) {
        expectAdmitted(
          await store.admit(request(user, { reserveNanos: MAX_NANOS, ttlMs: MINUTE_MS })),
          `unbudgeted reservation ${i}`,
        );
      }
      clock.advance(MINUTE_MS);
      const state = await store.getState(user, {});
      assert.equal(state.reservations.expired, 2, 'both expired');
      assert.equal(state.reservations.expiredNanos, MAX_NANOS, 'expired nanos held at MAX_NANOS');
    },
  ),
];
