/**
 * Conformance cases for reservation expiry: what an expired reservation charges under
 * each policy, the exact expiry instant, TTL heartbeats, the period an expiry charges,
 * and the open/expired counts that make leaked reservations visible.
 */

import {
  assert,
  DAY_MS,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectNotEnded,
  MINUTE_MS,
  request,
  START,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const policy = {
  budget: { limitNanos: 10_000, period: 'day' as const },
  rateLimits: [{ kind: 'requests' as const, limit: 10, windowMs: 10 * MINUTE_MS }],
};

export const expiryCases: readonly ConformanceCase[] = [
  defineCase(
    'expiry',
    "by default ('charge-reserved') an expired reservation is charged its full reserved amount",
    async ({ store, clock, scope }) => {
      const user = scope();
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, ttlMs: 1_000 })),
        'admission',
      );
      clock.advance(999);
      let state = await store.getState(user, policy);
      assert.equal(state.reservations.open, 1, 'open until its expiry instant');
      assert.equal(state.budget?.reservedNanos, 3_000, 'still reserved before expiry');
      clock.advance(1);
      state = await store.getState(user, policy);
      assert.deepEqual(
        state.reservations,
        { open: 0, openNanos: 0, expired: 1, expiredNanos: 3_000 },
        'the expired reservation is counted as expired, not open',
      );
      assert.equal(state.budget?.spentNanos, 3_000, 'expiry charges the reserved amount');
      assert.equal(state.budget?.reservedNanos, 0, 'expiry holds nothing any more');
      assert.equal(state.budget?.remainingNanos, 7_000, 'remaining after expiry');
      assert.equal(state.rateLimits[0]?.used, 1, 'an expired request still counts: it ran');
      expectNotEnded(
        await store.settle(reservation.id, { costNanos: 100, tokens: 1 }),
        'expired',
        'settle after expiry',
      );
      expectNotEnded(await store.release(reservation.id), 'expired', 'release after expiry');
      const extended = await store.extend(reservation.id, { addNanos: 1, ttlMs: 1_000 });
      assert.ok(
        !extended.extended && extended.reason === 'ended' && extended.previously === 'expired',
        'extend cannot revive an expired reservation',
      );
      state = await store.getState(user, policy);
      assert.equal(state.budget?.spentNanos, 3_000, 'a late settle does not charge again');
    },
  ),

  defineCase(
    'expiry',
    "with onExpiry 'release' an expired reservation charges nothing",
    async ({ store, clock, scope }) => {
      const user = scope();
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, ttlMs: 1_000 })),
        'admission',
      );
      clock.advance(1_000);
      // Admission itself must notice the expiry: the whole budget is free again.
      const whole = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 10_000 })),
        'the expired reservation no longer holds budget',
      );
      const state = await store.getState(user, policy);
      assert.deepEqual(
        state.reservations,
        { open: 1, openNanos: 10_000, expired: 1, expiredNanos: 3_000 },
        'the expiry is visible',
      );
      assert.equal(state.budget?.spentNanos, 0, 'nothing charged');
      assert.equal(state.budget?.reservedNanos, 10_000, 'only the new reservation is held');
      expectEnded(await store.release(whole.reservation.id), 'released', 'release');
      expectNotEnded(
        await store.settle(reservation.id, { costNanos: 100, tokens: 1 }),
        'expired',
        'settle after expiry',
      );
      const after = await store.getState(user, policy);
      assert.equal(after.budget?.spentNanos, 0, 'a late settle charges nothing');
    },
    { onExpiry: 'release' },
  ),

  defineCase(
    'expiry',
    'expiry is exact: a settle 1 ms before expiresAt ends normally, at expiresAt it is too late',
    async ({ store, clock, scope }) => {
      const user = scope();
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, ttlMs: 1_000 })),
        'admission',
      );
      clock.advance(999);
      const result = expectEnded(
        await store.settle(reservation.id, { costNanos: 200, tokens: 1 }),
        'settled',
        'settle at expiresAt - 1',
      );
      assert.equal(result.chargedNanos, 200, 'the actual cost, not the reservation');
      const other = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 1_000, ttlMs: 1_000 })),
        'a second reservation',
      ).reservation;
      clock.set(other.expiresAt);
      expectNotEnded(
        await store.settle(other.id, { costNanos: 300, tokens: 1 }),
        'expired',
        'a settle at exactly expiresAt finds it expired',
      );
      clock.advance(10_000);
      const state = await store.getState(user, policy);
      assert.equal(state.reservations.expired, 1, 'only the second reservation expired');
      assert.equal(state.budget?.spentNanos, 1_200, 'settled 200 + expired 1,000 charged');
    },
  ),

  defineCase(
    'expiry',
    'extend with ttlMs keeps a long stream alive (heartbeat)',
    async ({ store, clock, scope }) => {
      const user = scope();
      const live = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 1_000, ttlMs: 1_000 })),
        'the heartbeated reservation',
      ).reservation;
      expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 2_000, ttlMs: 1_000 })),
        'a reservation without heartbeat',
      );
      clock.advance(800);
      const first = await store.extend(live.id, { addNanos: 0, ttlMs: 1_000 });
      assert.ok(first.extended, 'heartbeat accepted');
      assert.equal(first.reservation.expiresAt, START + 1_800, 'expiresAt = now + ttlMs');
      clock.advance(900);
      const second = await store.extend(live.id, { addNanos: 0, ttlMs: 1_000 });
      assert.ok(second.extended, 'second heartbeat accepted after the original TTL');
      assert.equal(second.reservation.expiresAt, START + 2_700, 'expiresAt moved again');
      clock.advance(999);
      const state = await store.getState(user, policy);
      assert.equal(state.reservations.open, 1, 'the heartbeated reservation is open');
      assert.equal(state.reservations.expired, 1, 'the other one expired');
      expectEnded(
        await store.settle(live.id, { costNanos: 700, tokens: 1 }),
        'settled',
        'settle after heartbeats',
      );
      const after = await store.getState(user, policy);
      assert.equal(after.budget?.spentNanos, 2_700, 'expired 2,000 charged + settled 700');
      // A heartbeat may also shorten the TTL (on a fresh scope, with nothing else due).
      const other = scope();
      const shortened = expectAdmitted(
        await store.admit(request(other, { ...policy, reserveNanos: 100, ttlMs: MINUTE_MS })),
        'a reservation with a long TTL',
      ).reservation;
      const cut = await store.extend(shortened.id, { addNanos: 0, ttlMs: 10 });
      assert.ok(cut.extended, 'a shorter TTL is accepted');
      clock.advance(10);
      const end = await store.getState(other, policy);
      assert.equal(end.reservations.expired, 1, 'it expires at the new, earlier time');
    },
  ),

  defineCase(
    'expiry',
    'an expired reservation is charged to the period it was made in',
    async ({ store, clock, scope }) => {
      const user = scope();
      const yesterday = Math.floor(START / DAY_MS) * DAY_MS;
      // Reservations made at 23:59:59 of the case's first day.
      const short = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, ttlMs: 5_000 })),
        'a reservation that will expire after midnight',
      ).reservation;
      const long = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 4_000, ttlMs: MINUTE_MS })),
        'a reservation settled after midnight',
      ).reservation;
      assert.equal(short.periodStart, yesterday, 'made in the first day');
      clock.advance(10_000); // 00:00:09 of the next day: `short` has expired.
      const today = await store.getState(user, policy);
      assert.equal(today.budget?.periodStart, yesterday + DAY_MS, 'a new day has started');
      assert.equal(today.budget?.spentNanos, 0, "yesterday's expiry is not charged to today");
      assert.equal(today.budget?.reservedNanos, 0, "yesterday's reservations do not hold today");
      assert.equal(today.reservations.expired, 1, 'the expiry is counted');
      const settled = expectEnded(
        await store.settle(long.id, { costNanos: 1_000, tokens: 1 }),
        'settled',
        'settling the long reservation',
      );
      assert.equal(settled.budget?.periodStart, yesterday, "it settles into yesterday's period");
      assert.equal(
        settled.budget?.spentNanos,
        4_000,
        'yesterday = expired 3,000 charged + settled 1,000',
      );
    },
    { startAt: Math.floor(START / DAY_MS) * DAY_MS + DAY_MS - 1_000 },
  ),
];
