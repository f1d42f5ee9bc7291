/**
 * Conformance cases for atomicity under real concurrency: many calls in flight at once
 * (Promise.all), so a store that reads, awaits, then writes — check-then-deduct — lets
 * them interleave and fails. Budgets, request windows, token windows, settle and extend
 * are each raced, and multi-scope admission through `admitAll` on a shared scope.
 */
import { admitAll } from '../../store/admit-all.js';
import type { AdmitResult } from '../../store/types.js';
import {
  assert,
  countAdmitted,
  defineCase,
  expectAdmitted,
  MINUTE_MS,
  request,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const CONCURRENT = 200;
const FITS = 37;

function race<T>(count: number, call: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => call(index)));
}

function assertAllRejectedFor(results: readonly AdmitResult[], reason: string, rule: string) {
  for (const result of results) {
    if (!result.admitted) assert.equal(result.reason, reason, `${rule}: rejection reason`);
  }
}

export const concurrencyCases: readonly ConformanceCase[] = [
  defineCase(
    'concurrency',
    `${CONCURRENT} concurrent admissions against a budget that fits ${FITS} admit exactly ${FITS}`,
    async ({ store, scope }) => {
      const user = scope();
      const budget = { limitNanos: FITS * 1_000 + 999, period: 'day' as const };
      const results = await race(CONCURRENT, () =>
        store.admit(request(user, { budget, reserveNanos: 1_000 })),
      );
      assert.equal(countAdmitted(results), FITS, `exactly ${FITS} reservations fit`);
      assertAllRejectedFor(results, 'budget', 'the others');
      const ids = new Set(results.flatMap((r) => (r.admitted ? [r.reservation.id] : [])));
      assert.equal(ids.size, FITS, 'every reservation has its own id');
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.reservedNanos, FITS * 1_000, 'reserved = admitted × 1,000');
      assert.equal(state.reservations.open, FITS, 'open reservations');
    },
  ),

  defineCase(
    'concurrency',
    `${CONCURRENT} concurrent admissions against ${FITS} requests per window admit exactly ${FITS}`,
    async ({ store, scope }) => {
      const user = scope();
      const rateLimits = [{ kind: 'requests' as const, limit: FITS, windowMs: MINUTE_MS }];
      const results = await race(CONCURRENT, () => store.admit(request(user, { rateLimits })));
      assert.equal(countAdmitted(results), FITS, `exactly ${FITS} requests pass`);
      assertAllRejectedFor(results, 'rate_limit', 'the others');
      const state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, FITS, 'the window counts what passed');
    },
  ),

  defineCase(
    'concurrency',
    `${CONCURRENT} concurrent admissions against a token window that fits ${FITS} estimates admit exactly ${FITS}`,
    async ({ store, scope }) => {
      const user = scope();
      const rateLimits = [{ kind: 'tokens' as const, limit: FITS * 10 + 9, windowMs: MINUTE_MS }];
      const results = await race(CONCURRENT, () =>
        store.admit(request(user, { rateLimits, estimatedTokens: 10 })),
      );
      assert.equal(countAdmitted(results), FITS, `exactly ${FITS} estimates fit`);
      const state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, FITS * 10, 'the window counts what passed');
    },
  ),

  defineCase(
    'concurrency',
    'concurrent settles and releases of one reservation end it exactly once',
    async ({ store, scope }) => {
      const user = scope();
      const budget = { limitNanos: 100_000, period: 'day' as const };
      const first = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 5_000 })),
        'admission',
      ).reservation;
      const settles = await race(20, () => store.settle(first.id, { costNanos: 3_000, tokens: 1 }));
      assert.equal(settles.filter((r) => r.ended).length, 1, 'exactly one settle ends it');
      let state = await store.getState(user, { budget });
      assert.equal(state.budget?.spentNanos, 3_000, 'charged exactly once');

      const second = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 5_000 })),
        'admission',
      ).reservation;
      const mixed = await race(20, (i) =>
        i % 2 === 0
          ? store.settle(second.id, { costNanos: 4_000, tokens: 1 })
          : store.release(second.id),
      );
      const winners = mixed.filter((r) => r.ended);
      assert.equal(winners.length, 1, 'exactly one of settle/release ends it');
      const winner = winners[0];
      state = await store.getState(user, { budget });
      const expectedSpent = winner?.ended && winner.outcome === 'settled' ? 7_000 : 3_000;
      assert.equal(state.budget?.spentNanos, expectedSpent, 'the winner decides the charge');
      assert.equal(state.budget?.reservedNanos, 0, 'nothing held');
      for (const loser of mixed.filter((r) => !r.ended)) {
        if (!loser.ended && winner?.ended) {
          assert.equal(loser.previously, winner.outcome, 'losers report how it ended');
        }
      }
    },
  ),

  defineCase(
    'concurrency',
    'concurrent extends never grow reservations past the budget',
    async ({ store, scope }) => {
      const user = scope();
      const budget = { limitNanos: 10_000, period: 'day' as const };
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { budget, reserveNanos: 1_000 })),
        'admission',
      );
      const results = await race(50, () => store.extend(reservation.id, { addNanos: 500 }));
      assert.equal(results.filter((r) => r.extended).length, 18, '9,000 remaining fits 18 × 500');
      const state = await store.getState(user, { budget });
      assert.equal(state.budget?.reservedNanos, 10_000, 'reserved exactly the limit');
    },
  ),

  defineCase(
    'concurrency',
    'concurrent multi-scope admissions never overspend a shared scope and roll back the rest',
    async ({ store, scope }) => {
      const team = scope('team');
      const users = Array.from({ length: 30 }, () => scope('user'));
      const teamBudget = { limitNanos: 10_500, period: 'month' as const };
      const userPolicy = {
        budget: { limitNanos: 1_000_000, period: 'day' as const },
        rateLimits: [{ kind: 'requests' as const, limit: 5, windowMs: MINUTE_MS }],
      };
      const results = await Promise.all(
        users.map((user) =>
          admitAll(store, [
            request(user, { ...userPolicy, reserveNanos: 1_000 }),
            request(team, { budget: teamBudget, reserveNanos: 1_000 }),
          ]),
        ),
      );
      const admitted = results.filter((r) => r.admitted).length;
      assert.equal(admitted, 10, 'the team budget fits exactly 10');
      const teamState = await store.getState(team, { budget: teamBudget });
      assert.equal(teamState.budget?.reservedNanos, 10_000, 'the team holds 10 reservations');
      const userStates = await Promise.all(users.map((user) => store.getState(user, userPolicy)));
      const held = userStates.reduce((sum, s) => sum + (s.budget?.reservedNanos ?? 0), 0);
      const counted = userStates.reduce((sum, s) => sum + (s.rateLimits[0]?.used ?? 0), 0);
      assert.equal(held, 10_000, 'rejected users were rolled back: only 10 users hold budget');
      assert.equal(counted, 10, 'rolled-back requests left the users’ windows');
    },
  ),
];
