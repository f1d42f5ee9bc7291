/**
 * Conformance cases for several scopes per request through core's `admitAll` /
 * `settleAll` / `extendAll` on the store under test: all-or-nothing admission with
 * rollback, each scope charged once, a refused lease undone everywhere, and a failing
 * scope rolling back the ones before it.
 */
import { admitAll, extendAll, settleAll } from '../../store/admit-all.js';
import type { Store } from '../../store/types.js';
import { assert, defineCase, eventually, MINUTE_MS, request } from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const userPolicy = {
  budget: { limitNanos: 10_000, period: 'day' as const },
  rateLimits: [{ kind: 'requests' as const, limit: 5, windowMs: MINUTE_MS }],
};

export const multiScopeCases: readonly ConformanceCase[] = [
  defineCase(
    'multi-scope',
    'admitted only if every scope admits; earlier scopes are rolled back',
    async ({ store, scope }) => {
      const user = scope('user');
      const key = scope('key');
      const team = scope('team');
      const teamPolicy = { budget: { limitNanos: 500, period: 'month' as const } };
      const result = await admitAll(store, [
        request(user, { ...userPolicy, reserveNanos: 1_000 }),
        request(key, { ...userPolicy, reserveNanos: 1_000 }),
        request(team, { ...teamPolicy, reserveNanos: 1_000 }),
      ]);
      assert.ok(!result.admitted, 'the team budget rejects');
      if (!result.admitted) {
        assert.equal(result.rejectedIndex, 2, 'the third scope rejected');
        assert.equal(result.rejection.reason, 'budget', 'for budget');
        assert.deepEqual(result.rejection.scope, team, 'the rejection names the team');
        assert.deepEqual(result.unreleased, [], 'every rollback succeeded');
      }
      for (const [name, subject] of [
        ['user', user],
        ['key', key],
      ] as const) {
        const state = await store.getState(subject, userPolicy);
        assert.equal(state.budget?.reservedNanos, 0, `${name}: nothing held after rollback`);
        assert.equal(state.rateLimits[0]?.used, 0, `${name}: the request left the window`);
        assert.equal(state.reservations.open, 0, `${name}: no open reservation`);
      }
    },
  ),

  defineCase(
    'multi-scope',
    'when every scope admits, each holds the reservation and settleAll charges each once',
    async ({ store, scope }) => {
      const scopes = [scope('user'), scope('key'), scope('team')];
      const result = await admitAll(
        store,
        scopes.map((s) => request(s, { ...userPolicy, reserveNanos: 1_000 })),
      );
      assert.ok(result.admitted, 'all three admit');
      if (!result.admitted) return;
      assert.equal(new Set(result.reservationIds).size, 3, 'one reservation per scope');
      const settled = await settleAll(store, result.reservationIds, { costNanos: 700, tokens: 3 });
      assert.ok(
        settled.every((r) => r.ended),
        'each reservation ended',
      );
      const again = await settleAll(store, result.reservationIds, { costNanos: 700, tokens: 3 });
      assert.ok(
        again.every((r) => !r.ended && r.previously === 'settled'),
        'a second settleAll is a no-op',
      );
      for (const s of scopes) {
        const state = await store.getState(s, userPolicy);
        assert.equal(state.budget?.spentNanos, 700, `${s.kind}: charged once`);
      }
    },
  ),

  defineCase(
    'multi-scope',
    'extendAll undoes earlier growth when a later scope refuses',
    async ({ store, scope }) => {
      const user = scope('user');
      const team = scope('team');
      const teamPolicy = { budget: { limitNanos: 3_000, period: 'month' as const } };
      const admitted = await admitAll(store, [
        request(user, { ...userPolicy, reserveNanos: 1_000 }),
        request(team, { ...teamPolicy, reserveNanos: 1_000 }),
      ]);
      assert.ok(admitted.admitted, 'both admit');
      if (!admitted.admitted) return;
      const refused = await extendAll(store, admitted.reservationIds, { addNanos: 2_500 });
      assert.ok(!refused.extended, 'the team cannot grow by 2,500');
      if (!refused.extended) assert.equal(refused.rejectedIndex, 1, 'the team refused');
      let userState = await store.getState(user, userPolicy);
      assert.equal(userState.budget?.reservedNanos, 1_000, "the user's growth was undone");
      const grown = await extendAll(store, admitted.reservationIds, { addNanos: 2_000 });
      assert.ok(grown.extended, 'growth that fits everywhere');
      userState = await store.getState(user, userPolicy);
      const teamState = await store.getState(team, teamPolicy);
      assert.equal(userState.budget?.reservedNanos, 3_000, 'user grew');
      assert.equal(teamState.budget?.reservedNanos, 3_000, 'team grew');
    },
  ),

  defineCase(
    'multi-scope',
    'a scope whose store call fails rolls back the scopes before it (in the background), and the error surfaces',
    async ({ store, scope }) => {
      const user = scope('user');
      const broken = scope('broken');
      const failing: Store = {
        ...bind(store),
        admit: (req) =>
          req.scope.kind === 'broken'
            ? Promise.reject(new Error('backend down'))
            : store.admit(req),
      };
      let caught: unknown;
      try {
        await admitAll(failing, [
          request(user, { ...userPolicy, reserveNanos: 1_000 }),
          request(broken, { reserveNanos: 1_000 }),
        ]);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof Error && caught.message === 'backend down', 'the error surfaces');
      // The rollback runs in the background (the error is not held back for it).
      const state = await eventually(
        () => store.getState(user, userPolicy),
        (s) => s.budget?.reservedNanos === 0,
      );
      assert.equal(state.budget?.reservedNanos, 0, 'the user was rolled back');
      assert.equal(state.reservations.open, 0, 'no open reservation left behind');
    },
  ),
];

function bind(store: Store): Store {
  return {
    admit: (req) => store.admit(req),
    settle: (id, actual) => store.settle(id, actual),
    extend: (id, req) => store.extend(id, req),
    release: (id) => store.release(id),
    getState: (s, policy) => store.getState(s, policy),
    now: () => store.now(),
  };
}
