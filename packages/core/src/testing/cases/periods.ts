/**
 * Conformance cases for budget periods: spend resets exactly at UTC day and month
 * boundaries (leap February, December into January) and custom window edges, never for
 * lifetime, and a reservation settles into the period it was made in.
 */
import type { BudgetRule, ScopeRef, Store } from '../../store/types.js';
import {
  assert,
  DAY_MS,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectRejected,
  MINUTE_MS,
  request,
  START,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

async function spend(store: Store, scope: ScopeRef, budget: BudgetRule, costNanos: number) {
  const { reservation } = expectAdmitted(
    await store.admit(request(scope, { budget, reserveNanos: costNanos })),
    `reserving ${costNanos}`,
  );
  expectEnded(
    await store.settle(reservation.id, { costNanos, tokens: 1 }),
    'settled',
    `settling ${costNanos}`,
  );
}

const midnight = Date.UTC(2026, 2, 15);

export const periodCases: readonly ConformanceCase[] = [
  defineCase(
    'periods',
    'daily spend resets at exactly 00:00 UTC',
    async ({ store, clock, scope }) => {
      const user = scope();
      const budget = { limitNanos: 10_000, period: 'day' as const };
      await spend(store, user, budget, 8_000);
      const rejection = expectRejected(
        await store.admit(request(user, { budget, reserveNanos: 3_000 })),
        'over the daily budget at 23:59:59.999',
        'budget',
      );
      assert.equal(rejection.retryAfterMs, 1, 'one millisecond to midnight');
      assert.equal(rejection.budget?.periodEnd, midnight, 'the period ends at midnight');
      clock.advance(1);
      const admitted = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 3_000 })),
        'the same request at 00:00:00.000',
      );
      assert.deepEqual(
        admitted.budget,
        {
          limitNanos: 10_000,
          spentNanos: 0,
          reservedNanos: 3_000,
          remainingNanos: 7_000,
          period: 'day',
          periodStart: midnight,
          periodEnd: midnight + DAY_MS,
        },
        'a fresh day',
      );
    },
    { startAt: midnight - 1 },
  ),

  defineCase(
    'periods',
    'monthly spend resets on the 1st: leap February, and December into January',
    async ({ store, clock, scope }) => {
      const user = scope();
      const budget = { limitNanos: 10_000, period: 'month' as const };
      await spend(store, user, budget, 8_000);
      let state = await store.getState(user, { budget });
      assert.equal(state.budget?.periodStart, Date.UTC(2028, 1, 1), 'February 2028 starts');
      assert.equal(state.budget?.periodEnd, Date.UTC(2028, 2, 1), 'leap February has 29 days');
      assert.equal(state.budget?.spentNanos, 8_000, 'spent on the 29th');
      clock.advance(1);
      state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 0, 'spend resets on 1 March');
      assert.equal(state.budget?.periodStart, Date.UTC(2028, 2, 1), 'March starts');
      clock.set(Date.UTC(2028, 11, 31, 23, 59, 59, 999));
      await spend(store, user, budget, 9_000);
      state = await store.getState(user, { budget });
      assert.equal(state.budget?.periodEnd, Date.UTC(2029, 0, 1), 'December ends on 1 January');
      assert.equal(state.budget?.spentNanos, 9_000, 'spent on 31 December');
      clock.advance(1);
      state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 0, 'spend resets in the new year');
      assert.equal(state.budget?.periodStart, Date.UTC(2029, 0, 1), 'January 2029 starts');
      assert.equal(state.budget?.periodEnd, Date.UTC(2029, 1, 1), 'January 2029 ends');
    },
    { startAt: Date.UTC(2028, 1, 29, 23, 59, 59, 999) },
  ),

  defineCase('periods', 'lifetime spend never resets', async ({ store, clock, scope }) => {
    const user = scope();
    const budget = { limitNanos: 10_000, period: 'lifetime' as const };
    await spend(store, user, budget, 8_000);
    clock.advance(400 * DAY_MS);
    const state = await store.getState(user, { budget });
    assert.equal(state.budget?.spentNanos, 8_000, 'spent 400 days later');
    assert.equal(state.budget?.periodEnd, null, 'lifetime has no end');
  }),

  defineCase(
    'periods',
    'custom windows reset at boundaries aligned to the epoch',
    async ({ store, clock, scope }) => {
      const user = scope();
      const hour = 60 * MINUTE_MS;
      const budget = { limitNanos: 10_000, period: { windowMs: hour } };
      clock.advance(30 * MINUTE_MS);
      await spend(store, user, budget, 8_000);
      let state = await store.getState(user, { budget });
      assert.equal(state.budget?.periodStart, START, 'the hour started at 10:00');
      assert.equal(state.budget?.periodEnd, START + hour, 'and ends at 11:00');
      clock.set(START + hour - 1);
      state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 8_000, 'still spent at 10:59:59.999');
      clock.advance(1);
      state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 0, 'reset at 11:00');
      assert.equal(state.budget?.periodStart, START + hour, 'the next hour');
    },
  ),

  defineCase(
    'periods',
    'a reservation made in one period settles (and extends) into that period',
    async ({ store, clock, scope }) => {
      const user = scope();
      const budget = { limitNanos: 10_000, period: 'day' as const };
      const day1 = midnight - DAY_MS;
      const old = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 6_000, ttlMs: 10 * MINUTE_MS })),
        'a reservation at 23:59',
      ).reservation;
      clock.advance(2 * MINUTE_MS);
      const today = await store.getState(user, { budget });
      assert.equal(today.budget?.periodStart, midnight, 'a new day');
      assert.equal(today.budget?.reservedNanos, 0, "yesterday's reservation does not hold today");
      assert.equal(today.budget?.remainingNanos, 10_000, "today's budget is whole");
      assert.equal(today.reservations.open, 1, 'the old reservation is still open');
      expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 10_000 })),
        "today's full budget",
      );
      const refused = await store.extend(old.id, { addNanos: 4_001 });
      assert.ok(
        !refused.extended && refused.reason === 'budget',
        "growth is checked against yesterday's remaining 4,000",
      );
      const grown = await store.extend(old.id, { addNanos: 4_000 });
      assert.ok(grown.extended, "growth that fits yesterday's budget");
      assert.equal(grown.budget?.periodStart, day1, "the extension is in yesterday's period");
      const settled = expectEnded(
        await store.settle(old.id, { costNanos: 5_000, tokens: 1 }),
        'settled',
        'settling after midnight',
      );
      assert.equal(settled.budget?.periodStart, day1, "charged to yesterday's period");
      assert.equal(settled.budget?.spentNanos, 5_000, "yesterday's spend");
      const after = await store.getState(user, { budget });
      assert.equal(after.budget?.spentNanos, 0, 'today is not charged');
      assert.equal(after.budget?.reservedNanos, 10_000, "today's reservation is untouched");
    },
    { startAt: midnight - MINUTE_MS },
  ),

  defineCase(
    'periods',
    'spend is kept per period kind: a daily and a monthly budget of one scope are independent',
    async ({ store, scope }) => {
      const user = scope();
      const daily = { limitNanos: 10_000, period: 'day' as const };
      const monthly = { limitNanos: 100_000, period: 'month' as const };
      await spend(store, user, daily, 4_000);
      await spend(store, user, monthly, 7_000);
      const day = await store.getState(user, { budget: daily });
      const month = await store.getState(user, { budget: monthly });
      assert.equal(day.budget?.spentNanos, 4_000, 'daily spend');
      assert.equal(month.budget?.spentNanos, 7_000, 'monthly spend');
    },
  ),
];
