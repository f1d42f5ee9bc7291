/**
 * Conformance case for time: a store takes all its time from its one clock and reports
 * it, so headers (Retry-After, RateLimit reset) are computed in the store's time.
 */

import { assert, defineCase, expectAdmitted, request, START } from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

export const clockCases: readonly ConformanceCase[] = [
  defineCase(
    'clock',
    "the store reports its clock's time and stamps every result with it",
    async ({ store, clock, scope }) => {
      assert.equal(await store.now(), START, 'now() is the injected clock');
      clock.advance(1_234);
      const at = START + 1_234;
      assert.equal(await store.now(), at, 'now() follows the clock');
      const user = scope();
      const admitted = expectAdmitted(await store.admit(request(user)), 'admission');
      assert.equal(admitted.now, at, 'admit result now');
      assert.equal(admitted.reservation.createdAt, at, 'reservation.createdAt');
      const state = await store.getState(user);
      assert.equal(state.now, at, 'getState now');
      clock.advance(10);
      const settled = await store.settle(admitted.reservation.id, { costNanos: 1, tokens: 1 });
      assert.equal(settled.now, at + 10, 'settle result now');
    },
  ),
];
