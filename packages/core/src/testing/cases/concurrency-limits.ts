/**
 * Conformance cases for concurrency limits (`{ kind: 'concurrency', limit }`): at most
 * `limit` reservations of a scope open at once. A slot is taken by admission and given
 * back exactly once, by whatever ends the reservation — settle, release, releaseByKey, or
 * expiry after its TTL (the lease that frees a crashed process's slots); `extend({ ttlMs })`
 * renews the lease. A window rule that fails names the rejection before a full
 * concurrency limit does, since only its wait is known. The race — many admissions at
 * once against one limit — is in the 'concurrency' group with the other races.
 */
import type { ConcurrencyLimitRule, RateLimitState } from '../../store/types.js';
import {
  assert,
  countAdmitted,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectNotEnded,
  expectRejected,
  MINUTE_MS,
  request,
  uniqueToken,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

const RACERS = 200;
const SLOTS = 37;

function slots(limit: number): ConcurrencyLimitRule {
  return { kind: 'concurrency', limit };
}

function expectSlots(state: RateLimitState | undefined, used: number, rule: string): void {
  assert.ok(state, `${rule}: a state for the concurrency rule`);
  assert.equal(state.kind, 'concurrency', `${rule}: kind`);
  assert.equal(state.used, used, `${rule}: open reservations`);
  assert.equal(state.remaining, Math.max(0, state.limit - used), `${rule}: remaining`);
}

export const concurrencyLimitCases: readonly ConformanceCase[] = [
  defineCase(
    'concurrency-limits',
    'a concurrency limit of N admits N open reservations and refuses the next, recording nothing',
    async ({ store, scope }) => {
      const user = scope();
      const budget = { limitNanos: 100_000, period: 'day' as const };
      const rateLimits = [slots(3)];
      for (let i = 1; i <= 3; i++) {
        const admitted = expectAdmitted(
          await store.admit(request(user, { budget, rateLimits })),
          `admission ${i} of 3`,
        );
        expectSlots(admitted.rateLimits[0], i, `after admission ${i}`);
        assert.equal(admitted.rateLimits[0]?.resetMs, MINUTE_MS, 'reset: when the last lease ends');
      }
      const refused = expectRejected(
        await store.admit(request(user, { budget, rateLimits })),
        'the fourth open reservation',
        'rate_limit',
      );
      if (refused.reason !== 'rate_limit') return;
      expectSlots(refused.rateLimit, 3, 'the rejection names the concurrency rule');
      expectSlots(refused.rateLimits[0], 3, 'the rejection reports the rule');
      assert.equal(refused.retryAfterMs, MINUTE_MS, 'Retry after: until the soonest lease expires');
      const state = await store.getState(user, { budget, rateLimits });
      assert.equal(state.budget?.reservedNanos, 3_000, 'the refused request reserved nothing');
      assert.equal(state.reservations.open, 3, 'open reservations');
      expectSlots(state.rateLimits[0], 3, 'getState');
    },
  ),

  defineCase(
    'concurrency-limits',
    'settle, release and releaseByKey each give a slot back, once',
    async ({ store, scope }) => {
      const user = scope();
      const rateLimits = [slots(2)];
      const admit = (requestKey?: string) =>
        store.admit(request(user, { rateLimits, ...(requestKey ? { requestKey } : {}) }));
      const a = expectAdmitted(await admit(), 'a');
      const b = expectAdmitted(await admit(), 'b');
      expectRejected(await admit(), 'a third while two are open', 'rate_limit');

      expectEnded(
        await store.settle(a.reservation.id, { costNanos: 1, tokens: 1 }),
        'settled',
        'a',
      );
      const key = `key-${uniqueToken()}`;
      const c = expectAdmitted(await admit(key), 'a settled reservation gave its slot back');
      expectRejected(await admit(), 'full again', 'rate_limit');

      expectEnded(await store.release(b.reservation.id), 'released', 'b');
      expectAdmitted(await admit(), 'a released reservation gave its slot back');
      expectRejected(await admit(), 'full again after release', 'rate_limit');

      if (typeof store.releaseByKey === 'function') {
        expectEnded(await store.releaseByKey(user, key), 'released', 'c by its key');
      } else {
        expectEnded(await store.release(c.reservation.id), 'released', 'c');
      }
      const last = expectAdmitted(
        await admit(),
        'a reservation released by key gave its slot back',
      );
      expectSlots(last.rateLimits[0], 2, 'two open again');

      // Ending an ended reservation again frees nothing more.
      expectNotEnded(
        await store.settle(a.reservation.id, { costNanos: 1, tokens: 1 }),
        'settled',
        'a again',
      );
      expectNotEnded(await store.release(b.reservation.id), 'released', 'b again');
      expectRejected(await admit(), 'no slot freed twice', 'rate_limit');
      const state = await store.getState(user, { rateLimits });
      expectSlots(state.rateLimits[0], 2, 'getState');
    },
  ),

  defineCase(
    'concurrency-limits',
    'an expired lease frees its slot at its expiry, and extend({ ttlMs }) renews it',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rateLimits = [slots(1)];
      const ttlMs = 10_000;
      expectAdmitted(await store.admit(request(user, { rateLimits, ttlMs })), 'the first lease');
      clock.advance(4_000);
      const refused = expectRejected(
        await store.admit(request(user, { rateLimits, ttlMs })),
        'while the first lease runs',
        'rate_limit',
      );
      assert.equal(refused.retryAfterMs, 6_000, 'Retry after: when the lease expires');
      assert.equal(refused.rateLimits[0]?.resetMs, 6_000, 'reset: when the lease expires');
      clock.advance(5_999);
      expectRejected(
        await store.admit(request(user, { rateLimits, ttlMs })),
        '1 ms before',
        'rate_limit',
      );
      clock.advance(1);
      const second = expectAdmitted(
        await store.admit(request(user, { rateLimits, ttlMs })),
        'at the expiry: the slot is free (a crashed holder cannot keep it)',
      );
      let state = await store.getState(user, { rateLimits });
      assert.equal(state.reservations.expired, 1, 'the first lease ended by expiry');

      clock.advance(5_000);
      const renewed = await store.extend(second.reservation.id, { addNanos: 0, ttlMs });
      assert.ok(renewed.extended, 'a heartbeat renews the lease');
      clock.advance(9_999);
      const held = expectRejected(
        await store.admit(request(user, { rateLimits, ttlMs })),
        'the renewed lease still holds the slot past its first expiry',
        'rate_limit',
      );
      assert.equal(held.retryAfterMs, 1, 'Retry after: until the renewed expiry');
      clock.advance(1);
      expectAdmitted(
        await store.admit(request(user, { rateLimits, ttlMs })),
        'after the renewed expiry',
      );
      state = await store.getState(user, { rateLimits });
      expectSlots(state.rateLimits[0], 1, 'one open');
      assert.equal(state.reservations.expired, 2, 'two leases expired');
    },
  ),

  defineCase(
    'concurrency-limits',
    'a concurrency limit of 0 refuses everything, and waiting cannot help',
    async ({ store, scope }) => {
      const user = scope();
      const refused = expectRejected(
        await store.admit(request(user, { rateLimits: [slots(0)] })),
        'limit 0',
        'rate_limit',
      );
      assert.equal(refused.retryAfterMs, null, 'retryAfterMs: null');
      const state = await store.getState(user, { rateLimits: [slots(0)] });
      assert.equal(state.reservations.open, 0, 'nothing open');
    },
  ),

  defineCase(
    'concurrency-limits',
    'a failing window rule names the rejection before a full concurrency limit',
    async ({ store, clock, scope }) => {
      const user = scope();
      const both = [slots(1), { kind: 'requests' as const, limit: 1, windowMs: MINUTE_MS }];
      const a = expectAdmitted(await store.admit(request(user, { rateLimits: both })), 'a');
      const refused = expectRejected(
        await store.admit(request(user, { rateLimits: both })),
        'both rules full',
        'rate_limit',
      );
      if (refused.reason !== 'rate_limit') return;
      assert.equal(refused.rateLimit.kind, 'requests', 'the window rule is named');
      assert.equal(refused.retryAfterMs, MINUTE_MS, 'Retry after: the window');
      expectSlots(refused.rateLimits[0], 1, 'the concurrency rule is reported too');

      expectEnded(
        await store.settle(a.reservation.id, { costNanos: 0, tokens: 0 }),
        'settled',
        'a',
      );
      const window = expectRejected(
        await store.admit(request(user, { rateLimits: both })),
        'a slot is free, the window is not',
        'rate_limit',
      );
      if (window.reason === 'rate_limit') assert.equal(window.rateLimit.kind, 'requests');

      const other = scope();
      const loose = [slots(1), { kind: 'requests' as const, limit: 10, windowMs: MINUTE_MS }];
      expectAdmitted(await store.admit(request(other, { rateLimits: loose })), 'other: a');
      clock.advance(1_000);
      const full = expectRejected(
        await store.admit(request(other, { rateLimits: loose })),
        'only the concurrency rule fails',
        'rate_limit',
      );
      if (full.reason === 'rate_limit') assert.equal(full.rateLimit.kind, 'concurrency');
      assert.equal(full.retryAfterMs, MINUTE_MS - 1_000, 'Retry after: the lease');
    },
  ),

  defineCase(
    'concurrency-limits',
    'every open reservation of the scope holds a slot, whatever rules admitted it; a budget refusal takes none',
    async ({ store, scope }) => {
      const user = scope();
      expectAdmitted(await store.admit(request(user)), 'no rules');
      expectAdmitted(
        await store.admit(
          request(user, { rateLimits: [{ kind: 'requests', limit: 5, windowMs: MINUTE_MS }] }),
        ),
        'a requests rule',
      );
      const state = await store.getState(user, { rateLimits: [slots(5)] });
      expectSlots(state.rateLimits[0], 2, 'both count');
      const budget = { limitNanos: 5_000, period: 'day' as const };
      expectRejected(
        await store.admit(request(user, { rateLimits: [slots(3)], budget, reserveNanos: 6_000 })),
        'too big for the budget',
        'budget',
      );
      const third = expectAdmitted(
        await store.admit(request(user, { rateLimits: [slots(3)], budget })),
        'the budget refusal took no slot',
      );
      expectSlots(third.rateLimits[0], 3, 'three open');
      expectRejected(
        await store.admit(request(user, { rateLimits: [slots(3)] })),
        'full',
        'rate_limit',
      );
    },
  ),

  defineCase(
    'concurrency',
    `${RACERS} concurrent admissions against a concurrency limit of ${SLOTS} admit exactly ${SLOTS}`,
    async ({ store, scope }) => {
      const user = scope();
      const rateLimits = [slots(SLOTS)];
      const results = await Promise.all(
        Array.from({ length: RACERS }, () => store.admit(request(user, { rateLimits }))),
      );
      assert.equal(countAdmitted(results), SLOTS, `exactly ${SLOTS} slots are taken`);
      for (const result of results) {
        if (!result.admitted) assert.equal(result.reason, 'rate_limit', 'the others: rate_limit');
      }
      const state = await store.getState(user, { rateLimits });
      expectSlots(state.rateLimits[0], SLOTS, 'getState');
      assert.equal(state.reservations.open, SLOTS, 'open reservations');
    },
  ),
];
