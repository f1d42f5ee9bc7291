/**
 * Conformance cases for the optional `claimOnce()`: a name is claimed once per scope
 * until it expires (by the store's clock), by exactly one of many concurrent callers —
 * with a shared backend, across every instance (the Redis store's e2e test) — what makes a budget alert fire once per
 * threshold, scope and period whatever the number of app instances. A store without it
 * passes (the middleware then keeps alerts once per process, and says so).
 */
import type { Store } from '../../store/types.js';
import { assert, defineCase, expectErrorCode, MINUTE_MS } from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

function claimer(store: Store) {
  const claim = store.claimOnce;
  return claim ? claim.bind(store) : undefined;
}

export const onceCases: readonly ConformanceCase[] = [
  defineCase(
    'once',
    'claimOnce is true once per scope and name until expiresAt, then claimable again',
    async ({ store, clock, scope }) => {
      const claim = claimer(store);
      if (!claim) return;
      const user = scope();
      const until = clock.now() + MINUTE_MS;
      assert.equal(await claim(user, 'alert:80', until), true, 'the first claim');
      assert.equal(await claim(user, 'alert:80', until), false, 'the same claim again');
      assert.equal(await claim(user, 'alert:80', until + MINUTE_MS), false, 'a later expiry');
      assert.equal(await claim(user, 'alert:50', until), true, 'another name');
      assert.equal(await claim(scope(), 'alert:80', until), true, 'another scope');
      clock.advance(MINUTE_MS - 1);
      assert.equal(await claim(user, 'alert:80', until), false, 'one ms before expiry');
      clock.advance(1);
      assert.equal(
        await claim(user, 'alert:80', until + MINUTE_MS),
        true,
        'claimable again at expiresAt',
      );
    },
  ),
  defineCase(
    'once',
    'of 25 concurrent claims exactly one wins',
    async ({ store, clock, scope }) => {
      const claim = claimer(store);
      if (!claim) return;
      const user = scope();
      const until = clock.now() + MINUTE_MS;
      const results = await Promise.all(
        Array.from({ length: 25 }, () => claim(user, 'period-alert', until)),
      );
      assert.equal(results.filter(Boolean).length, 1, 'one winner');
    },
  ),
  defineCase('once', 'claimOnce refuses a bad name or expiry', async ({ store, clock, scope }) => {
    const claim = claimer(store);
    if (!claim) return;
    const user = scope();
    await expectErrorCode(claim(user, '', clock.now() + 1), 'invalid_argument', 'an empty name');
    await expectErrorCode(
      claim(user, 'x'.repeat(201), clock.now() + 1),
      'invalid_argument',
      'a name of 201 characters',
    );
    await expectErrorCode(claim(user, 'n', 1.5), 'invalid_argument', 'a fractional expiry');
    await expectErrorCode(
      claim({ kind: '', id: 'x' }, 'n', clock.now() + 1),
      'invalid_argument',
      'a bad scope',
    );
  }),
];
