/**
 * Conformance cases for sliding-window rate limits. The contract asks for an exact
 * sliding log (an entry made at t counts while now - t < windowMs), so the cases check
 * exact window edges by hand, then compare long random traces against a reference log,
 * for requests and for tokens (estimate at admission, replaced by the actual on settle at
 * the admission's timestamp).
 */
import type { WindowRateLimitRule } from '../../store/types.js';
import {
  assert,
  defineCase,
  expectAdmitted,
  expectEnded,
  expectRejected,
  MINUTE_MS,
  request,
  seededRandom,
} from '../conformance-kit.js';
import type { ConformanceCase } from '../types.js';

/** The reference: an exact sliding log of (time, amount) entries. */
class ReferenceLog {
  private readonly entries: Array<{ t: number; n: number; id: string }> = [];
  constructor(private readonly rule: WindowRateLimitRule) {}

  used(now: number): number {
    return this.inWindow(now).reduce((sum, entry) => sum + entry.n, 0);
  }

  /** Admission rule shared by requests and tokens: used < limit and used + need ≤ limit. */
  admits(now: number, need: number): boolean {
    const used = this.used(now);
    return used < this.rule.limit && used + need <= this.rule.limit;
  }

  retryAfter(now: number, need: number): number | null {
    const target = this.rule.limit - Math.max(need, 1);
    if (target < 0) return null;
    let remaining = this.used(now);
    if (remaining <= target) return 0;
    for (const entry of this.inWindow(now)) {
      remaining -= entry.n;
      if (remaining <= target) return entry.t + this.rule.windowMs - now;
    }
    return null;
  }

  add(t: number, n: number, id: string): void {
    this.entries.push({ t, n, id });
  }

  correct(id: string, n: number): void {
    const entry = this.entries.find((candidate) => candidate.id === id);
    if (entry) entry.n = n;
  }

  oldestInWindow(now: number): number | undefined {
    return this.inWindow(now)[0]?.t;
  }

  private inWindow(now: number) {
    return this.entries.filter((entry) => now - entry.t < this.rule.windowMs);
  }
}

export const rateLimitCases: readonly ConformanceCase[] = [
  defineCase(
    'rate-limits',
    'N requests per window: the next one waits exactly until the oldest leaves',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rateLimits = [{ kind: 'requests' as const, limit: 3, windowMs: MINUTE_MS }];
      const t0 = clock.now();
      expectAdmitted(await store.admit(request(user, { rateLimits })), 'request 1 at 0 s');
      clock.set(t0 + 20_000);
      expectAdmitted(await store.admit(request(user, { rateLimits })), 'request 2 at 20 s');
      clock.set(t0 + 30_000);
      const third = expectAdmitted(
        await store.admit(request(user, { rateLimits })),
        'request 3 at 30 s',
      );
      assert.deepEqual(
        third.rateLimits,
        [
          {
            kind: 'requests',
            limit: 3,
            windowMs: MINUTE_MS,
            used: 3,
            remaining: 0,
            resetMs: 60_000,
          },
        ],
        'state after the third request (the window is clear 60 s after the last entry)',
      );
      const rejected = expectRejected(
        await store.admit(request(user, { rateLimits })),
        'request 4 at 30 s',
        'rate_limit',
      );
      assert.equal(rejected.retryAfterMs, 30_000, 'the first request leaves at 60 s');
      if (rejected.reason === 'rate_limit') {
        assert.deepEqual(
          rejected.rateLimit,
          {
            kind: 'requests',
            limit: 3,
            windowMs: MINUTE_MS,
            used: 3,
            remaining: 0,
            resetMs: 60_000,
          },
          'the rejection names the limit and its state',
        );
      }
      clock.set(t0 + 59_999);
      const edge = expectRejected(
        await store.admit(request(user, { rateLimits })),
        'at 59.999 s the first request is still in the window',
        'rate_limit',
      );
      assert.equal(edge.retryAfterMs, 1, 'one millisecond to go');
      clock.set(t0 + 60_000);
      expectAdmitted(
        await store.admit(request(user, { rateLimits })),
        'at exactly 60 s the first request has left',
      );
      const next = expectRejected(
        await store.admit(request(user, { rateLimits })),
        'the window is full again',
        'rate_limit',
      );
      assert.equal(next.retryAfterMs, 20_000, 'the 20 s request leaves at 80 s');
      const state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 3, 'getState used');
      assert.equal(state.rateLimits[0]?.resetMs, 60_000, 'getState resetMs');
    },
  ),

  defineCase(
    'rate-limits',
    'requests: a random trace matches an exact sliding log, edges included',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rule = { kind: 'requests' as const, limit: 4, windowMs: 1_000 };
      const model = new ReferenceLog(rule);
      const random = seededRandom(0x5eed);
      const admittedAt: number[] = [];
      const t0 = clock.now();
      for (let step = 0; step < 400; step++) {
        const now = clock.now();
        const oldest = model.oldestInWindow(now);
        const roll = random();
        // Land on window edges often: exactly when the oldest entry leaves, and 1 ms before.
        if (oldest !== undefined && roll < 0.2) clock.set(Math.max(now, oldest + rule.windowMs));
        else if (oldest !== undefined && roll < 0.35)
          clock.set(Math.max(now, oldest + rule.windowMs - 1));
        else if (roll < 0.6) clock.advance(0);
        else clock.advance(Math.floor(random() * 300));
        const at = clock.now();
        const expected = model.admits(at, 1);
        const result = await store.admit(request(user, { rateLimits: [rule] }));
        const where = `step ${step} at +${at - t0} ms (seed 0x5eed)`;
        assert.equal(result.admitted, expected, `${where}: admitted`);
        if (result.admitted) {
          model.add(at, 1, result.reservation.id);
          admittedAt.push(at);
        } else {
          assert.equal(result.retryAfterMs, model.retryAfter(at, 1), `${where}: retryAfterMs`);
        }
      }
      // The property itself: no span of windowMs holds more than `limit` admissions.
      for (const start of admittedAt) {
        const inSpan = admittedAt.filter((t) => t >= start && t < start + rule.windowMs).length;
        assert.ok(inSpan <= rule.limit, `at most ${rule.limit} in [${start}, +1000)`);
      }
      assert.ok(admittedAt.length > 50, 'the trace admitted a meaningful number of requests');
    },
  ),

  defineCase(
    'rate-limits',
    'tokens: the estimate counts at admission, settle replaces it at the admission timestamp',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rateLimits = [{ kind: 'tokens' as const, limit: 100, windowMs: MINUTE_MS }];
      const t0 = clock.now();
      const a = expectAdmitted(
        await store.admit(request(user, { rateLimits, estimatedTokens: 60 })),
        'A estimates 60',
      );
      assert.equal(a.rateLimits[0]?.used, 60, 'the estimate is counted');
      const early = expectRejected(
        await store.admit(request(user, { rateLimits, estimatedTokens: 50 })),
        '60 + 50 > 100',
        'rate_limit',
      );
      assert.equal(early.retryAfterMs, MINUTE_MS, 'A leaves the window after 60 s');
      clock.set(t0 + 10_000);
      expectEnded(
        await store.settle(a.reservation.id, { costNanos: 0, tokens: 20 }),
        'settled',
        'A used 20',
      );
      let state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 20, 'the actual replaces the estimate');
      const b = expectAdmitted(
        await store.admit(request(user, { rateLimits, estimatedTokens: 50 })),
        'B fits once A is corrected',
      );
      assert.equal(b.rateLimits[0]?.used, 70, '20 + 50');
      clock.set(t0 + 20_000);
      expectEnded(
        await store.settle(b.reservation.id, { costNanos: 0, tokens: 90 }),
        'settled',
        'B used 90',
      );
      state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 110, 'a correction may exceed the limit');
      assert.equal(state.rateLimits[0]?.remaining, 0, 'remaining never goes negative');
      const over = expectRejected(
        await store.admit(request(user, { rateLimits, estimatedTokens: 0 })),
        'a full window admits nothing, even a zero estimate',
        'rate_limit',
      );
      assert.equal(over.retryAfterMs, 40_000, 'A (at 0 s) leaves at 60 s, leaving 90 < 100');
      clock.set(t0 + 59_999);
      state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 110, 'both still counted at 59.999 s');
      clock.set(t0 + 60_000);
      state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 90, 'A left at its admission time, not settle time');
      clock.set(t0 + 70_000);
      state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 0, 'B left at 70 s');
      assert.equal(state.rateLimits[0]?.resetMs, 0, 'an empty window has nothing to reset');
    },
  ),

  defineCase(
    'rate-limits',
    'tokens: a random trace with settlements and releases matches an exact sliding log',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rule = { kind: 'tokens' as const, limit: 100, windowMs: 2_000 };
      const model = new ReferenceLog(rule);
      const random = seededRandom(0x70c3);
      const open: string[] = [];
      let admissions = 0;
      for (let step = 0; step < 300; step++) {
        clock.advance(Math.floor(random() * 250));
        const now = clock.now();
        const action = random();
        if (action < 0.25 && open.length > 0) {
          const id = open.splice(Math.floor(random() * open.length), 1)[0] as string;
          const tokens = Math.floor(random() * 70);
          expectEnded(
            await store.settle(id, { costNanos: 0, tokens }),
            'settled',
            `step ${step}: settle`,
          );
          model.correct(id, tokens);
        } else if (action < 0.35 && open.length > 0) {
          const id = open.splice(Math.floor(random() * open.length), 1)[0] as string;
          expectEnded(await store.release(id), 'released', `step ${step}: release`);
          model.correct(id, 0);
        } else {
          const need = Math.floor(random() * 45);
          const expected = model.admits(now, need);
          const result = await store.admit(
            request(user, { rateLimits: [rule], estimatedTokens: need, ttlMs: 3_600_000 }),
          );
          const where = `step ${step}: admit ${need} tokens with ${model.used(now)} used (seed 0x70c3)`;
          assert.equal(result.admitted, expected, `${where}: admitted`);
          if (result.admitted) {
            admissions += 1;
            model.add(now, need, result.reservation.id);
            open.push(result.reservation.id);
          } else {
            assert.equal(result.retryAfterMs, model.retryAfter(now, need), `${where}: retryAfter`);
          }
        }
        const state = await store.getState(user, { rateLimits: [rule] });
        assert.equal(state.rateLimits[0]?.used, model.used(now), `step ${step}: used`);
      }
      assert.ok(admissions > 40, 'the trace admitted a meaningful number of requests');
    },
  ),

  defineCase(
    'rate-limits',
    'tokens: extend adds to the estimate without a check; settle still replaces it',
    async ({ store, scope }) => {
      const user = scope();
      const rateLimits = [{ kind: 'tokens' as const, limit: 100, windowMs: MINUTE_MS }];
      const { reservation } = expectAdmitted(
        await store.admit(request(user, { rateLimits, estimatedTokens: 80 })),
        'admission of 80',
      );
      const full = await store.extend(reservation.id, { addNanos: 0, addTokens: 20 });
      assert.ok(full.extended, 'growing the estimate to exactly the limit');
      expectRejected(
        await store.admit(request(user, { rateLimits, estimatedTokens: 0 })),
        'a window used to exactly its limit admits nothing, not even a zero estimate',
        'rate_limit',
      );
      const grown = await store.extend(reservation.id, { addNanos: 0, addTokens: 30 });
      assert.ok(grown.extended, 'a token lease is not rate-limited once admitted');
      assert.equal(grown.reservation.estimatedTokens, 130, 'estimate after extend');
      let state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 130, 'the window counts the grown estimate');
      expectEnded(
        await store.settle(reservation.id, { costNanos: 0, tokens: 95 }),
        'settled',
        'settle',
      );
      state = await store.getState(user, { rateLimits });
      assert.equal(state.rateLimits[0]?.used, 95, 'the actual replaces the grown estimate');
    },
  ),

  defineCase(
    'rate-limits',
    'a request that needs more than the whole limit is told waiting cannot help',
    async ({ store, scope }) => {
      const tokens = expectRejected(
        await store.admit(
          request(scope(), {
            rateLimits: [{ kind: 'tokens', limit: 100, windowMs: MINUTE_MS }],
            estimatedTokens: 101,
          }),
        ),
        'an estimate above the token limit',
        'rate_limit',
      );
      assert.equal(tokens.retryAfterMs, null, 'tokens: retryAfterMs null');
      const blocked = expectRejected(
        await store.admit(
          request(scope(), { rateLimits: [{ kind: 'requests', limit: 0, windowMs: MINUTE_MS }] }),
        ),
        'a zero request limit',
        'rate_limit',
      );
      assert.equal(blocked.retryAfterMs, null, 'requests: retryAfterMs null');
    },
  ),

  defineCase(
    'rate-limits',
    'several rules: each is enforced, and a rejection names the one that clears last',
    async ({ store, clock, scope }) => {
      const user = scope();
      const rateLimits = [
        { kind: 'requests' as const, limit: 2, windowMs: 1_000 },
        { kind: 'requests' as const, limit: 6, windowMs: MINUTE_MS },
      ];
      const t0 = clock.now();
      expectAdmitted(await store.admit(request(user, { rateLimits })), 'a at 0');
      expectAdmitted(await store.admit(request(user, { rateLimits })), 'b at 0');
      const short = expectRejected(
        await store.admit(request(user, { rateLimits })),
        'c at 0: two per second',
        'rate_limit',
      );
      assert.equal(short.retryAfterMs, 1_000, 'the one-second window clears at 1 s');
      if (short.reason === 'rate_limit') {
        assert.equal(short.rateLimit.windowMs, 1_000, 'the per-second rule rejected');
      }
      for (const at of [1_000, 1_000, 2_000, 2_000]) {
        clock.set(t0 + at);
        expectAdmitted(await store.admit(request(user, { rateLimits })), `a request at ${at} ms`);
      }
      const both = expectRejected(
        await store.admit(request(user, { rateLimits })),
        'at 2 s both windows are full',
        'rate_limit',
      );
      assert.equal(both.retryAfterMs, 58_000, 'the per-minute window clears last, at 60 s');
      if (both.reason === 'rate_limit') {
        assert.equal(both.rateLimit.windowMs, MINUTE_MS, 'the rule that clears last is named');
      }
      assert.deepEqual(
        both.rateLimits.map((limit) => limit.used),
        [2, 6],
        'every rule is reported, in order',
      );
    },
  ),
];
