/**
 * Conformance cases for single-scope admission and the reservation lifecycle: budget
 * checks, what a rejection records (nothing), settle, release, extend, unknown ids, and
 * "every reservation ends exactly once".
 */

import {
  assert,
  DAY_MS,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectNotEnded,
  expectRejected,
  MINUTE_MS,
  request,
  START,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const DAY_START = Math.floor(START / DAY_MS) * DAY_MS;
const DAY_END = DAY_START + DAY_MS;
const dailyBudget = (limitNanos: number) => ({ limitNanos, period: 'day' as const });

export const admissionCases: readonly ConformanceCase[] = [
  defineCase(
    'admission',
    'admits within budget and reports the reservation and what remains',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(10_000);
      const result = expectAdmitted(
        await store.admit(
          request(user, { budget, reserveNanos: 3_000, estimatedTokens: 10, ttlMs: MINUTE_MS }),
        ),
        'a reservation within budget',
      );
      const { reservation } = result;
      assert.equal(typeof reservation.id, 'string', 'reservation.id is a string');
      assert.ok(reservation.id.length > 0, 'reservation.id is not empty');
      assert.deepEqual(reservation.scope, user, 'reservation.scope');
      assert.equal(reservation.reservedNanos, 3_000, 'reservation.reservedNanos');
      assert.equal(reservation.estimatedTokens, 10, 'reservation.estimatedTokens');
      assert.equal(reservation.createdAt, START, 'reservation.createdAt is store time');
      assert.equal(reservation.expiresAt, START + MINUTE_MS, 'reservation.expiresAt = now + ttlMs');
      assert.equal(reservation.periodStart, DAY_START, 'reservation.periodStart');
      assert.equal(reservation.periodEnd, DAY_END, 'reservation.periodEnd');
      assert.equal(result.now, START, 'result.now is store time');
      const expectedBudget = {
        limitNanos: 10_000,
        spentNanos: 0,
        reservedNanos: 3_000,
        remainingNanos: 7_000,
        period: 'day',
        periodStart: DAY_START,
        periodEnd: DAY_END,
      };
      assert.deepEqual(result.budget, expectedBudget, 'budget after admission');
      const state = await store.getState(user, { budget });
      assert.deepEqual(state.budget, expectedBudget, 'getState budget');
      assert.deepEqual(
        state.reservations,
        { open: 1, openNanos: 3_000, expired: 0, expiredNanos: 0 },
        'getState reservation counts',
      );
      assert.deepEqual(state.scope, user, 'getState scope');
    },
  ),

  defineCase(
    'admission',
    'rejects a reservation larger than what remains and records nothing',
    async ({ store, scope }) => {
      const user = scope();
      const policy = {
        budget: dailyBudget(10_000),
        rateLimits: [{ kind: 'requests' as const, limit: 10, windowMs: MINUTE_MS }],
      };
      expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 6_000 })),
        'first reservation',
      );
      const rejection = expectRejected(
        await store.admit(request(user, { ...policy, reserveNanos: 5_000 })),
        'a reservation above the remaining budget',
        'budget',
      );
      assert.equal(rejection.budget?.remainingNanos, 4_000, 'rejection reports what remains');
      assert.equal(rejection.budget?.reservedNanos, 6_000, 'rejection reports what is reserved');
      assert.equal(
        rejection.retryAfterMs,
        DAY_END - START,
        'budget retryAfterMs is the time to the period end',
      );
      assert.deepEqual(rejection.scope, user, 'rejection names the scope');
      const state = await store.getState(user, policy);
      assert.equal(state.budget?.reservedNanos, 6_000, 'the rejected reservation holds nothing');
      assert.equal(state.rateLimits[0]?.used, 1, 'the rejected request is not counted');
      assert.equal(state.reservations.open, 1, 'one open reservation');
      const exact = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 4_000 })),
        'a reservation that exactly fits',
      );
      assert.equal(exact.budget?.remainingNanos, 0, 'nothing remains after an exact fit');
    },
  ),

  defineCase(
    'admission',
    'an exhausted budget admits nothing, not even a zero reservation',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(5_000);
      expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 5_000 })),
        'filling the budget',
      );
      const rejection = expectRejected(
        await store.admit(request(user, { budget, reserveNanos: 0 })),
        'a zero reservation against an exhausted budget',
        'budget',
      );
      assert.equal(rejection.retryAfterMs, DAY_END - START, 'retry at the period end');
      const zero = expectRejected(
        await store.admit(request(scope(), { budget: dailyBudget(0), reserveNanos: 0 })),
        'a zero budget',
        'budget',
      );
      assert.equal(zero.retryAfterMs, null, 'a zero budget never admits: waiting cannot help');
    },
  ),

  defineCase(
    'admission',
    'a reservation larger than the whole limit, or an exhausted lifetime budget, cannot be retried',
    async ({ store, scope }) => {
      const tooBig = expectRejected(
        await store.admit(request(scope(), { budget: dailyBudget(1_000), reserveNanos: 1_001 })),
        'a reservation above the limit',
        'budget',
      );
      assert.equal(tooBig.retryAfterMs, null, 'retryAfterMs is null when waiting cannot help');
      const user = scope();
      const lifetime = { limitNanos: 1_000, period: 'lifetime' as const };
      expectAdmitted(
        await store.admit(request(user, { budget: lifetime, reserveNanos: 1_000 })),
        'filling a lifetime budget',
      );
      const exhausted = expectRejected(
        await store.admit(request(user, { budget: lifetime, reserveNanos: 1 })),
        'an exhausted lifetime budget',
        'budget',
      );
      assert.equal(exhausted.retryAfterMs, null, 'a lifetime budget never resets');
      assert.equal(exhausted.budget?.periodEnd, null, 'lifetime has no period end');
    },
  ),

  defineCase('admission', 'without a budget, spend is not capped', async ({ store, scope }) => {
    const user = scope();
    const result = expectAdmitted(
      await store.admit(request(user, { reserveNanos: 1_000_000_000_000 })),
      'a large reservation without a budget',
    );
    assert.equal(result.budget, null, 'no budget state without a budget');
    assert.equal(result.reservation.periodStart, null, 'no period without a budget');
    assert.deepEqual(result.rateLimits, [], 'no rate-limit state without rules');
    const state = await store.getState(user, {});
    assert.equal(state.budget, null, 'getState without a budget');
    assert.equal(state.reservations.open, 1, 'the reservation is still tracked');
    expectEnded(
      await store.settle(result.reservation.id, { costNanos: 5, tokens: 1 }),
      'settled',
      'settling an unbudgeted reservation',
    );
  }),

  defineCase(
    'admission',
    'settle charges the actual cost and releases the rest',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(10_000);
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 4_000 })),
        'admission',
      );
      const result = expectEnded(
        await store.settle(reservation.id, { costNanos: 1_500, tokens: 5 }),
        'settled',
        'settle',
      );
      assert.equal(result.chargedNanos, 1_500, 'chargedNanos');
      assert.equal(result.releasedNanos, 2_500, 'releasedNanos');
      assert.equal(result.overrunNanos, 0, 'overrunNanos');
      assert.equal(result.reservation.id, reservation.id, 'the ended reservation');
      assert.equal(result.budget?.spentNanos, 1_500, 'spent after settle');
      assert.equal(result.budget?.reservedNanos, 0, 'reserved after settle');
      assert.equal(result.budget?.remainingNanos, 8_500, 'remaining after settle');
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 1_500, 'getState spent');
      assert.equal(state.budget?.reservedNanos, 0, 'getState reserved');
      assert.equal(state.reservations.open, 0, 'no open reservation');
    },
  ),

  defineCase(
    'admission',
    'settle charges a cost above the reservation in full and reports the overrun',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(10_000);
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 1_000 })),
        'admission',
      );
      const result = expectEnded(
        await store.settle(reservation.id, { costNanos: 1_600, tokens: 5 }),
        'settled',
        'settle above the reservation',
      );
      assert.equal(result.chargedNanos, 1_600, 'the provider billed it: charged in full');
      assert.equal(result.releasedNanos, 0, 'nothing released');
      assert.equal(result.overrunNanos, 600, 'overrunNanos');
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 1_600, 'spent includes the overrun');
    },
  ),

  defineCase(
    'admission',
    'release frees the reservation and takes the request out of its windows',
    async ({ store, scope }) => {
      const user = scope();
      const policy = {
        budget: dailyBudget(10_000),
        rateLimits: [
          { kind: 'requests' as const, limit: 2, windowMs: MINUTE_MS },
          { kind: 'tokens' as const, limit: 100, windowMs: MINUTE_MS },
        ],
      };
      const admitted = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, estimatedTokens: 40 })),
        'admission',
      );
      assert.deepEqual(
        admitted.rateLimits.map((limit) => limit.used),
        [1, 40],
        'the request and its token estimate are counted at admission',
      );
      const result = expectEnded(
        await store.release(admitted.reservation.id),
        'released',
        'release',
      );
      assert.equal(result.chargedNanos, 0, 'release charges nothing');
      assert.equal(result.releasedNanos, 3_000, 'release frees the whole reservation');
      const state = await store.getState(user, policy);
      assert.equal(state.budget?.spentNanos, 0, 'spent after release');
      assert.equal(state.budget?.reservedNanos, 0, 'reserved after release');
      assert.deepEqual(
        state.rateLimits.map((limit) => limit.used),
        [0, 0],
        'a released request no longer counts in its windows',
      );
      assert.equal(state.reservations.open, 0, 'no open reservation');
    },
  ),

  defineCase(
    'admission',
    'extend grows within the budget, refuses beyond it, and shrinks',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(10_000);
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 4_000 })),
        'admission',
      );
      const grown = await store.extend(reservation.id, { addNanos: 3_000 });
      assert.ok(grown.extended, 'growth that fits is accepted');
      assert.equal(grown.reservation.reservedNanos, 7_000, 'reservation after growth');
      assert.equal(grown.budget?.remainingNanos, 3_000, 'remaining after growth');
      const refused = await store.extend(reservation.id, { addNanos: 3_001 });
      assert.ok(!refused.extended && refused.reason === 'budget', 'growth beyond budget refused');
      if (!refused.extended && refused.reason === 'budget') {
        assert.equal(refused.reservation.reservedNanos, 7_000, 'a refused growth changes nothing');
        assert.equal(refused.budget.remainingNanos, 3_000, 'refusal reports what remains');
      }
      const shrunk = await store.extend(reservation.id, { addNanos: -5_000 });
      assert.ok(shrunk.extended, 'shrinking always succeeds');
      assert.equal(shrunk.reservation.reservedNanos, 2_000, 'reservation after shrinking');
      assert.equal(shrunk.budget?.remainingNanos, 8_000, 'shrinking frees budget');
      const floored = await store.extend(reservation.id, { addNanos: -5_000 });
      assert.ok(floored.extended, 'shrinking below zero succeeds');
      assert.equal(floored.reservation.reservedNanos, 0, 'a reservation never goes below zero');
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.reservedNanos, 0, 'reserved after shrinking to zero');
      assert.equal(state.reservations.open, 1, 'the reservation is still open');
    },
  ),

  defineCase(
    'admission',
    'a rejected admission records nothing, and rate limits are checked before the budget',
    async ({ store, scope }) => {
      const user = scope();
      const policy = {
        budget: dailyBudget(1_000),
        rateLimits: [{ kind: 'requests' as const, limit: 2, windowMs: MINUTE_MS }],
      };
      expectAdmitted(await store.admit(request(user, { ...policy, reserveNanos: 800 })), 'first');
      expectRejected(
        await store.admit(request(user, { ...policy, reserveNanos: 800 })),
        'a budget rejection',
        'budget',
      );
      expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 200 })),
        'the budget rejection did not use a request slot',
      );
      const both = expectRejected(
        await store.admit(request(user, { ...policy, reserveNanos: 0 })),
        'a request over both the rate limit and the budget',
        'rate_limit',
      );
      assert.equal(both.retryAfterMs, MINUTE_MS, 'retry when the first request leaves the window');
    },
  ),
];

export const lifecycleCases: readonly ConformanceCase[] = [
  defineCase(
    'lifecycle',
    'a second settle is a no-op, reported, and charges nothing more',
    async ({ store, scope }) => {
      const user = scope();
      const budget = dailyBudget(10_000);
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 2_000 })),
        'admission',
      );
      expectEnded(
        await store.settle(reservation.id, { costNanos: 500, tokens: 1 }),
        'settled',
        'first settle',
      );
      expectNotEnded(
        await store.settle(reservation.id, { costNanos: 900, tokens: 1 }),
        'settled',
        'second settle',
      );
      expectNotEnded(await store.release(reservation.id), 'settled', 'release after settle');
      const extended = await store.extend(reservation.id, { addNanos: 100 });
      assert.ok(
        !extended.extended && extended.reason === 'ended' && extended.previously === 'settled',
        'extend after settle reports the end',
      );
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 500, 'charged once');
      assert.equal(state.budget?.reservedNanos, 0, 'nothing held');
    },
  ),

  defineCase('lifecycle', 'settle after release charges nothing', async ({ store, scope }) => {
    const user = scope();
    const budget = dailyBudget(10_000);
    const { reservation } = expectAdmitted(
      await store.admit(request(user, { budget, reserveNanos: 2_000 })),
      'admission',
    );
    expectEnded(await store.release(reservation.id), 'released', 'release');
    expectNotEnded(
      await store.settle(reservation.id, { costNanos: 700, tokens: 1 }),
      'released',
      'settle after release',
    );
    expectNotEnded(await store.release(reservation.id), 'released', 'a second release');
    const state = await store.getState(user, { budget });
    assert.equal(state.budget?.spentNanos, 0, 'nothing charged');
  }),

  defineCase(
    'lifecycle',
    'calls on an unknown reservation id change nothing and say so',
    async ({ store }) => {
      const id = 'never-issued-reservation-id';
      expectNotEnded(await store.settle(id, { costNanos: 1, tokens: 1 }), 'unknown', 'settle');
      expectNotEnded(await store.release(id), 'unknown', 'release');
      const extended = await store.extend(id, { addNanos: 1 });
      assert.ok(
        !extended.extended && extended.reason === 'ended' && extended.previously === 'unknown',
        'extend of an unknown id',
      );
    },
  ),
];
