/**
 * Conformance cases for admission keys (`AdmitRequest.requestKey`) and the optional
 * `releaseByKey()`: an admission whose reply was lost can be released by its key, once,
 * and only that one; a key whose reservation already ended, or that never admitted,
 * changes nothing. A store without `releaseByKey()` must still accept keyed requests.
 */
import { admitAll } from '../../store/admit-all.js';
import type { Store } from '../../store/types.js';
import {
  assert,
  defineCase,
  eventually,
  expectAdmitted,
  expectEnded,
  expectNotEnded,
  MINUTE_MS,
  request,
  uniqueToken,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const policy = {
  budget: { limitNanos: 10_000, period: 'day' as const },
  rateLimits: [
    { kind: 'requests' as const, limit: 10, windowMs: MINUTE_MS },
    { kind: 'tokens' as const, limit: 1_000, windowMs: MINUTE_MS },
  ],
};

export const admissionKeyCases: readonly ConformanceCase[] = [
  defineCase(
    'admission-keys',
    'releaseByKey releases the keyed admission as release() would, once, and nothing else',
    async ({ store, scope }) => {
      const user = scope();
      const key = `req-${uniqueToken()}`;
      const admitted = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 3_000, requestKey: key })),
        'a keyed admission',
      );
      if (typeof store.releaseByKey !== 'function') {
        // Optional: without it the key is ignored and the admission is an ordinary one.
        expectEnded(await store.release(admitted.reservation.id), 'released', 'release by id');
        const state = await store.getState(user, policy);
        assert.equal(state.budget?.reservedNanos, 0, 'released by id');
        return;
      }
      const other = expectAdmitted(
        await store.admit(request(user, { ...policy, reserveNanos: 2_000, requestKey: `${key}x` })),
        'a second keyed admission in the same scope',
      );

      const unknown = await store.releaseByKey(user, `never-${uniqueToken()}`);
      expectNotEnded(unknown, 'unknown', 'a key that never admitted');
      const elsewhere = await store.releaseByKey(scope(), key);
      expectNotEnded(elsewhere, 'unknown', 'the same key in another scope');
      let state = await store.getState(user, policy);
      assert.equal(state.budget?.reservedNanos, 5_000, 'unknown keys changed nothing');
      assert.equal(state.reservations.open, 2, 'both still open');

      const released = expectEnded(await store.releaseByKey(user, key), 'released', 'by key');
      assert.equal(released.reservation.id, admitted.reservation.id, 'the keyed reservation');
      assert.deepEqual(released.reservation.scope, user, 'its scope');
      assert.equal(released.chargedNanos, 0, 'nothing charged');
      assert.equal(released.releasedNanos, 3_000, 'its whole reservation given back');
      state = await store.getState(user, policy);
      assert.equal(state.budget?.reservedNanos, 2_000, 'only the other reservation is held');
      assert.equal(state.budget?.spentNanos, 0, 'nothing spent');
      assert.equal(state.rateLimits[0]?.used, 1, 'its request left the window');
      assert.equal(state.rateLimits[1]?.used, 10, 'its tokens left the window');
      assert.equal(state.reservations.open, 1, 'one open reservation left');

      expectNotEnded(await store.releaseByKey(user, key), 'released', 'a second releaseByKey');
      expectNotEnded(await store.release(admitted.reservation.id), 'released', 'by id after');
      expectEnded(await store.release(other.reservation.id), 'released', 'the other, by id');
      state = await store.getState(user, policy);
      assert.equal(state.budget?.reservedNanos, 0, 'nothing held');
      assert.equal(state.rateLimits[0]?.used, 0, 'the windows are empty');
    },
  ),

  defineCase(
    'admission-keys',
    'a key whose reservation was settled or expired reports how it ended and changes nothing',
    async ({ store, clock, scope }) => {
      const user = scope();
      const settledKey = `req-${uniqueToken()}`;
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { ...policy, requestKey: settledKey })),
        'admission',
      );
      expectEnded(
        await store.settle(reservation.id, { costNanos: 700, tokens: 4 }),
        'settled',
        'settle',
      );
      if (typeof store.releaseByKey !== 'function') {
        const state = await store.getState(user, policy);
        assert.equal(state.budget?.spentNanos, 700, 'a keyed admission settles as any other');
        return;
      }
      expectNotEnded(await store.releaseByKey(user, settledKey), 'settled', 'after settle');
      let state = await store.getState(user, policy);
      assert.equal(state.budget?.spentNanos, 700, 'still charged');
      assert.equal(state.rateLimits[0]?.used, 1, 'still counted');
      assert.equal(state.rateLimits[1]?.used, 4, 'its actual tokens still counted');

      const expiringKey = `req-${uniqueToken()}`;
      expectAdmitted(
        await store.admit(
          request(user, { ...policy, reserveNanos: 1_000, ttlMs: 1_000, requestKey: expiringKey }),
        ),
        'a short admission',
      );
      clock.advance(1_000);
      expectNotEnded(await store.releaseByKey(user, expiringKey), 'expired', 'after its TTL');
      state = await store.getState(user, policy);
      assert.equal(
        state.budget?.spentNanos,
        1_700,
        'the expiry charged it; the call did not undo that',
      );
      assert.equal(state.reservations.expired, 1, 'counted as expired');
    },
  ),

  defineCase(
    'admission-keys',
    'admitAll releases by key an admission whose call failed after it ran (a lost reply)',
    async ({ store, scope }) => {
      const user = scope('user');
      const team = scope('team');
      const key = `req-${uniqueToken()}`;
      // The team's admission runs, then its reply is "lost".
      const lossy: Store = {
        admit: async (req) => {
          const result = await store.admit(req);
          if (req.scope.kind === 'team') throw new Error('connection lost after the script ran');
          return result;
        },
        settle: (id, actual) => store.settle(id, actual),
        extend: (id, req) => store.extend(id, req),
        release: (id) => store.release(id),
        getState: (s, p) => store.getState(s, p),
        now: () => store.now(),
      };
      const releaseByKey = store.releaseByKey;
      if (releaseByKey) lossy.releaseByKey = (s, k) => releaseByKey.call(store, s, k);
      let caught: unknown;
      try {
        await admitAll(lossy, [
          request(user, { ...policy, requestKey: key }),
          request(team, { ...policy, requestKey: key }),
        ]);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof Error, 'the store error surfaces');
      // Both clean-ups run in the background, after the error surfaced.
      const userState = await eventually(
        () => store.getState(user, policy),
        (s) => s.budget?.reservedNanos === 0,
      );
      assert.equal(userState.budget?.reservedNanos, 0, 'the user was rolled back by id');
      if (typeof store.releaseByKey !== 'function') {
        const teamState = await store.getState(team, policy);
        // Without releaseByKey the lost admission is held until its TTL (the known limit).
        assert.equal(teamState.reservations.open, 1, 'the lost admission is still open');
        const ok = await admitAll(store, [request(scope('user'), { ...policy, requestKey: key })]);
        assert.ok(ok.admitted, 'keyed requests still admit');
        return;
      }
      const teamState = await eventually(
        () => store.getState(team, policy),
        (s) => s.reservations.open === 0,
      );
      assert.equal(teamState.budget?.reservedNanos, 0, 'the lost admission was released by key');
      assert.equal(teamState.rateLimits[0]?.used, 0, 'and left the window');
      assert.equal(teamState.reservations.open, 0, 'nothing open');
      assert.equal(teamState.reservations.expired, 0, 'nothing left to expire');
    },
  ),
];
