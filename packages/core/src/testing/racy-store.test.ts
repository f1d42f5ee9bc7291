/**
 * Proof that the conformance suite can fail. A deliberately naive store (plain Maps,
 * linear scans, nothing clever) passes the whole suite when each call runs without a
 * pause — showing the suite is not fitted to the memory store — and fails every
 * concurrency case when it is made racy: an `await` between reading state and writing
 * it (check-then-deduct, the LiteLLM bug), so concurrent calls interleave.
 */
import { describe, expect, it } from 'vitest';
import { saturatingAddNanos } from '../money.js';
import { periodBounds, periodId } from '../store/period.js';
import type {
  AdmitRequest,
  AdmitResult,
  BudgetRule,
  BudgetState,
  Clock,
  EndOutcome,
  EndResult,
  ExpiryPolicy,
  ExtendRequest,
  ExtendResult,
  RateLimitRule,
  RateLimitState,
  Reservation,
  ScopePolicy,
  ScopeRef,
  ScopeState,
  SettleRequest,
  Store,
  WindowRateLimitRule,
} from '../store/types.js';
import {
  assertAdmitRequest,
  assertExtendRequest,
  assertScope,
  assertScopePolicy,
  assertSettleRequest,
} from '../store/validate.js';
import { storeConformanceCases } from './conformance-cases.js';
import { runStoreConformance } from './run-store-conformance.js';
import type { StoreFactory } from './types.js';

interface Bucket {
  spent: number;
  reserved: number;
  start: number;
  end: number | null;
}
interface LogEntry {
  t: number;
  key: string;
  n: number;
  id: string;
}
interface Subject {
  key: string;
  buckets: Map<string, Bucket>;
  log: LogEntry[];
  expired: number;
  expiredNanos: number;
}
interface Held {
  reservation: Reservation;
  key: string;
  bucketKey: string | null;
  budget: BudgetRule | null;
}

class NaiveStore implements Store {
  private readonly subjects = new Map<string, Subject>();
  private readonly open = new Map<string, Held>();
  private readonly ended = new Map<string, EndOutcome>();
  private nextId = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onExpiry: ExpiryPolicy,
    private readonly racy: boolean,
  ) {}

  async now() {
    return this.clock.now();
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    assertAdmitRequest(request);
    const now = this.clock.now();
    this.sweep(now);
    const key = JSON.stringify([request.scope.kind, request.scope.id]);
    const subject = this.subject(key);
    const rules = request.rateLimits ?? [];
    // Read…
    const used = rules.map((rule) =>
      rule.kind === 'concurrency' ? this.openOf(key).length : this.used(subject, rule, now),
    );
    const bucket = request.budget ? this.bucket(subject, request.budget, now) : null;
    const held = bucket ? bucket.spent + bucket.reserved : 0;
    if (this.racy) await pause();
    // …then decide and write on what was read.
    const base = { admitted: false as const, scope: request.scope, now };
    let failing: { rule: RateLimitRule; retry: number | null } | undefined;
    let full: { rule: RateLimitRule; retry: number | null } | undefined;
    for (const [index, rule] of rules.entries()) {
      const u = used[index] as number;
      if (rule.kind === 'concurrency') {
        if (u >= rule.limit) full = { rule, retry: this.slotRetry(key, rule.limit, now) };
        continue;
      }
      const need = rule.kind === 'requests' ? 1 : request.estimatedTokens;
      if (u < rule.limit && u + need <= rule.limit) continue;
      const retry = this.retryAfter(subject, rule, need, now);
      // Report the rule that clears last; "never" (null) beats any wait.
      if (!failing || (failing.retry !== null && (retry === null || retry > failing.retry))) {
        failing = { rule, retry };
      }
    }
    failing ??= full;
    if (failing) {
      return {
        ...base,
        reason: 'rate_limit',
        rateLimit: this.rateState(subject, failing.rule, now),
        retryAfterMs: failing.retry,
        budget: bucket && request.budget ? this.budgetState(bucket, request.budget) : null,
        rateLimits: rules.map((r) => this.rateState(subject, r, now)),
      };
    }
    if (bucket && request.budget) {
      const limit = request.budget.limitNanos;
      if (!(held < limit && held + request.reserveNanos <= limit)) {
        const never = Math.max(request.reserveNanos, 1) > limit || bucket.end === null;
        return {
          ...base,
          reason: 'budget',
          retryAfterMs: never ? null : (bucket.end as number) - now,
          budget: this.budgetState(bucket, request.budget),
          rateLimits: rules.map((r) => this.rateState(subject, r, now)),
        };
      }
      bucket.reserved += request.reserveNanos;
    }
    this.nextId += 1;
    const id = `naive-${this.nextId}`;
    for (const rule of rules) {
      if (rule.kind === 'concurrency') continue;
      const n = rule.kind === 'requests' ? 1 : request.estimatedTokens;
      subject.log.push({ t: now, key: `${rule.kind}/${rule.windowMs}`, n, id });
    }
    const reservation: Reservation = {
      id,
      scope: { kind: request.scope.kind, id: request.scope.id },
      reservedNanos: request.reserveNanos,
      estimatedTokens: request.estimatedTokens,
      createdAt: now,
      expiresAt: now + request.ttlMs,
      periodStart: bucket ? bucket.start : null,
      periodEnd: bucket ? bucket.end : null,
    };
    this.open.set(id, {
      reservation,
      key,
      bucketKey: request.budget ? this.bucketKey(request.budget, now) : null,
      budget: request.budget ?? null,
    });
    return {
      admitted: true,
      scope: request.scope,
      reservation,
      budget: bucket && request.budget ? this.budgetState(bucket, request.budget) : null,
      rateLimits: rules.map((r) => this.rateState(subject, r, now)),
      now,
    };
  }

  async settle(id: string, actual: SettleRequest): Promise<EndResult> {
    assertSettleRequest(actual);
    return this.end(id, 'settled', actual);
  }

  async release(id: string): Promise<EndResult> {
    return this.end(id, 'released', { costNanos: 0, tokens: 0 });
  }

  async extend(id: string, request: ExtendRequest): Promise<ExtendResult> {
    assertExtendRequest(request);
    const now = this.clock.now();
    this.sweep(now);
    const held = this.open.get(id);
    if (!held) return { extended: false, reason: 'ended', previously: this.previously(id), now };
    const subject = this.subject(held.key);
    const bucket = held.bucketKey ? subject.buckets.get(held.bucketKey) : undefined;
    const before = bucket ? bucket.spent + bucket.reserved : 0;
    if (this.racy) await pause();
    const current = held.reservation.reservedNanos;
    const delta = Math.max(-current, request.addNanos);
    if (bucket && held.budget && delta > 0 && before + delta > held.budget.limitNanos) {
      return {
        extended: false,
        reason: 'budget',
        reservation: held.reservation,
        budget: this.budgetState(bucket, held.budget),
        now,
      };
    }
    if (bucket) bucket.reserved += delta;
    const addTokens = request.addTokens ?? 0;
    for (const entry of subject.log) {
      if (entry.id === id && entry.key.startsWith('tokens/')) {
        entry.n = Math.max(0, entry.n + addTokens);
      }
    }
    held.reservation = {
      ...held.reservation,
      reservedNanos: current + delta,
      estimatedTokens: Math.max(0, held.reservation.estimatedTokens + addTokens),
      expiresAt: request.ttlMs === undefined ? held.reservation.expiresAt : now + request.ttlMs,
    };
    return {
      extended: true,
      reservation: held.reservation,
      budget: bucket && held.budget ? this.budgetState(bucket, held.budget) : null,
      now,
    };
  }

  async getState(scope: ScopeRef, policy: ScopePolicy = {}): Promise<ScopeState> {
    assertScope(scope);
    assertScopePolicy(policy);
    const now = this.clock.now();
    this.sweep(now);
    const key = JSON.stringify([scope.kind, scope.id]);
    const subject = this.subject(key);
    const mine = [...this.open.values()].filter((held) => held.key === key);
    return {
      scope: { kind: scope.kind, id: scope.id },
      budget: policy.budget
        ? this.budgetState(this.bucket(subject, policy.budget, now), policy.budget)
        : null,
      rateLimits: (policy.rateLimits ?? []).map((rule) => this.rateState(subject, rule, now)),
      reservations: {
        open: mine.length,
        openNanos: mine.reduce((sum, held) => sum + held.reservation.reservedNanos, 0),
        expired: subject.expired,
        expiredNanos: subject.expiredNanos,
      },
      now,
    };
  }

  private async end(
    id: string,
    outcome: 'settled' | 'released',
    actual: SettleRequest,
  ): Promise<EndResult> {
    const now = this.clock.now();
    this.sweep(now);
    const held = this.open.get(id);
    if (!held) return { ended: false, previously: this.previously(id), now };
    if (this.racy) await pause();
    const subject = this.subject(held.key);
    const bucket = held.bucketKey ? subject.buckets.get(held.bucketKey) : undefined;
    const reserved = held.reservation.reservedNanos;
    if (bucket) {
      bucket.reserved -= reserved;
      bucket.spent = saturatingAddNanos(bucket.spent, actual.costNanos);
    }
    for (const entry of subject.log) {
      if (entry.id !== id) continue;
      if (outcome === 'released') entry.n = 0;
      else if (entry.key.startsWith('tokens/')) entry.n = actual.tokens;
    }
    this.open.delete(id);
    this.ended.set(id, outcome);
    return {
      ended: true,
      outcome,
      reservation: held.reservation,
      chargedNanos: actual.costNanos,
      releasedNanos: Math.max(0, reserved - actual.costNanos),
      overrunNanos: Math.max(0, actual.costNanos - reserved),
      budget: bucket && held.budget ? this.budgetState(bucket, held.budget) : null,
      now,
    };
  }

  private sweep(now: number): void {
    for (const [id, held] of this.open) {
      if (held.reservation.expiresAt > now) continue;
      const subject = this.subject(held.key);
      const bucket = held.bucketKey ? subject.buckets.get(held.bucketKey) : undefined;
      const reserved = held.reservation.reservedNanos;
      if (bucket) {
        bucket.reserved -= reserved;
        if (this.onExpiry === 'charge-reserved')
          bucket.spent = saturatingAddNanos(bucket.spent, reserved);
      }
      subject.expired += 1;
      subject.expiredNanos = saturatingAddNanos(subject.expiredNanos, reserved);
      this.open.delete(id);
      this.ended.set(id, 'expired');
    }
  }

  private previously(id: string): EndOutcome | 'unknown' {
    return this.ended.get(id) ?? 'unknown';
  }

  private subject(key: string): Subject {
    let subject = this.subjects.get(key);
    if (!subject) {
      subject = { key, buckets: new Map(), log: [], expired: 0, expiredNanos: 0 };
      this.subjects.set(key, subject);
    }
    return subject;
  }

  private bucketKey(budget: BudgetRule, now: number): string {
    return `${periodId(budget.period)}@${periodBounds(budget.period, now).start}`;
  }

  private bucket(subject: Subject, budget: BudgetRule, now: number): Bucket {
    const key = this.bucketKey(budget, now);
    let bucket = subject.buckets.get(key);
    if (!bucket) {
      const { start, end } = periodBounds(budget.period, now);
      bucket = { spent: 0, reserved: 0, start, end };
      subject.buckets.set(key, bucket);
    }
    return bucket;
  }

  private budgetState(bucket: Bucket, budget: BudgetRule): BudgetState {
    return {
      limitNanos: budget.limitNanos,
      spentNanos: bucket.spent,
      reservedNanos: bucket.reserved,
      remainingNanos: Math.max(0, budget.limitNanos - bucket.spent - bucket.reserved),
      period: budget.period,
      periodStart: bucket.start,
      periodEnd: bucket.end,
    };
  }

  private openOf(key: string): Held[] {
    return [...this.open.values()].filter((held) => held.key === key);
  }

  /** Ms until enough leases expire to fit one more under `limit`; null for limit 0. */
  private slotRetry(key: string, limit: number, now: number): number | null {
    if (limit <= 0) return null;
    const expiries = this.openOf(key)
      .map((held) => held.reservation.expiresAt)
      .sort((a, b) => a - b);
    const must = expiries.length - limit + 1;
    return must <= 0 ? 0 : (expiries[must - 1] as number) - now;
  }

  private entries(subject: Subject, rule: WindowRateLimitRule, now: number): LogEntry[] {
    const key = `${rule.kind}/${rule.windowMs}`;
    return subject.log.filter((e) => e.key === key && now - e.t < rule.windowMs);
  }

  private used(subject: Subject, rule: WindowRateLimitRule, now: number): number {
    return this.entries(subject, rule, now).reduce((sum, e) => sum + e.n, 0);
  }

  private rateState(subject: Subject, rule: RateLimitRule, now: number): RateLimitState {
    if (rule.kind === 'concurrency') {
      const open = this.openOf(subject.key);
      const last = Math.max(now, ...open.map((held) => held.reservation.expiresAt));
      return {
        kind: rule.kind,
        limit: rule.limit,
        used: open.length,
        remaining: Math.max(0, rule.limit - open.length),
        resetMs: last - now,
      };
    }
    const entries = this.entries(subject, rule, now).filter((e) => e.n > 0);
    const used = entries.reduce((sum, e) => sum + e.n, 0);
    const last = entries.at(-1);
    return {
      kind: rule.kind,
      limit: rule.limit,
      windowMs: rule.windowMs,
      used,
      remaining: Math.max(0, rule.limit - used),
      resetMs: last ? last.t + rule.windowMs - now : 0,
    };
  }

  private retryAfter(subject: Subject, rule: WindowRateLimitRule, need: number, now: number) {
    const target = rule.limit - Math.max(need, 1);
    if (target < 0) return null;
    let left = this.used(subject, rule, now);
    for (const entry of this.entries(subject, rule, now)) {
      left -= entry.n;
      if (left <= target) return entry.t + rule.windowMs - now;
    }
    return 0;
  }
}

// The bug under test: give other calls a turn between reading and writing. (The atomic
// variant must not even `await` a resolved promise there: that alone lets calls interleave.)
function pause(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const atomicNaive: StoreFactory = (ctx) => new NaiveStore(ctx.clock, ctx.onExpiry, false);
const racyNaive: StoreFactory = (ctx) => new NaiveStore(ctx.clock, ctx.onExpiry, true);

// The naive store, run without pauses, conforms: the suite is not fitted to one store.
runStoreConformance('naive (atomic)', atomicNaive);

describe('the conformance suite fails a check-then-deduct store', () => {
  const concurrency = storeConformanceCases.filter((c) => c.group === 'concurrency');
  const others = storeConformanceCases.filter((c) => c.group !== 'concurrency');

  it('has concurrency cases to prove with', () => {
    expect(concurrency.length).toBeGreaterThanOrEqual(6);
  });

  it.each(concurrency.map((c) => [c.name, c] as const))('racy store fails: %s', async (_, c) => {
    // An AssertionError from the case's own checks, not a crash of the racy store.
    const error = await c.run(racyNaive).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('AssertionError');
  });

  // Sequential cases never interleave, so the racy store passes them: the failures above
  // come from the race alone, not from some other defect of the racy store.
  it('racy store still passes every sequential case', async () => {
    for (const c of others) await c.run(racyNaive);
  });
});

describe('the conformance suite fails a store whose releaseByKey does nothing', () => {
  // Claims releaseByKey but never finds the admission: what a store that ignores
  // requestKey at admit would do.
  const forgetful: StoreFactory = (ctx) => {
    const store = new NaiveStore(ctx.clock, ctx.onExpiry, false);
    return Object.assign(store, {
      releaseByKey: async (): Promise<EndResult> => ({
        ended: false,
        previously: 'unknown',
        now: ctx.clock.now(),
      }),
    });
  };
  const keyed = storeConformanceCases.filter((c) => c.group === 'admission-keys');

  it.each(keyed.map((c) => [c.name, c] as const))('forgetful store fails: %s', async (_, c) => {
    const error = await c.run(forgetful).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('AssertionError');
  });
});
