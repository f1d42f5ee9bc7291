/**
 * What the memory store keeps per scope — budget buckets per period, rate-limit logs,
 * open reservations, expiry counters — and the pure helpers over it: find the current
 * period's bucket, find a rule's log, report state, and decide whether a scope still
 * matters (if not, it can be dropped without changing any answer the store gives).
 */
import type {
  BudgetRule,
  BudgetState,
  RateLimitRule,
  ScopeRef,
  WindowRateLimitRule,
} from '@tokenmeter/core';
import {
  periodBounds,
  periodId,
  type RateLimitState,
  type Reservation,
} from '@tokenmeter/core/store';
import { type LogEntry, SlidingLog } from './sliding-log.js';

/** Spend and holds of one scope in one period. */
export interface Bucket {
  readonly start: number;
  readonly end: number | null;
  spent: number;
  reserved: number;
}

export interface ScopeEntry {
  readonly key: string;
  readonly scope: ScopeRef;
  /** The current bucket per period kind; older buckets live on in their reservations. */
  readonly buckets: Map<string, Bucket>;
  /** One log per `kind/windowMs`. */
  readonly logs: Map<string, SlidingLog>;
  readonly open: Map<string, OpenReservation>;
  /** No open reservation expires before this (a lower bound: may be stale-low). */
  nextExpiry: number;
  expired: number;
  expiredNanos: number;
}

export interface OpenReservation {
  readonly id: string;
  readonly entry: ScopeEntry;
  /** The bucket of the period it was made in: it settles there even after rollover. */
  readonly bucket: Bucket | null;
  readonly budget: BudgetRule | null;
  readonly createdAt: number;
  reserved: number;
  tokens: number;
  expiresAt: number;
  /** Its admission key within the scope (see `keyedBy`), when the request gave one. */
  readonly keyed: string | undefined;
  readonly requestEntries: Array<{ log: SlidingLog; entry: LogEntry }>;
  readonly tokenEntries: Array<{ log: SlidingLog; entry: LogEntry }>;
}

export function newScopeEntry(key: string, scope: ScopeRef): ScopeEntry {
  return {
    key,
    // A copy: the caller's object may be mutated after the call.
    scope: { kind: scope.kind, id: scope.id },
    buckets: new Map(),
    logs: new Map(),
    open: new Map(),
    nextExpiry: Number.POSITIVE_INFINITY,
    expired: 0,
    expiredNanos: 0,
  };
}

/** The bucket of the period holding `now`, starting a fresh one at a period boundary. */
export function currentBucket(entry: ScopeEntry, budget: BudgetRule, now: number): Bucket {
  const id = periodId(budget.period);
  const bounds = periodBounds(budget.period, now);
  let bucket = entry.buckets.get(id);
  if (!bucket || bucket.start !== bounds.start) {
    bucket = { start: bounds.start, end: bounds.end, spent: 0, reserved: 0 };
    entry.buckets.set(id, bucket);
  }
  return bucket;
}

/** The state of a budget with no bucket yet (a scope never charged in this period). */
export function emptyBudgetState(budget: BudgetRule, now: number): BudgetState {
  const { start, end } = periodBounds(budget.period, now);
  return budgetState({ start, end, spent: 0, reserved: 0 }, budget);
}

export function budgetState(bucket: Bucket, budget: BudgetRule): BudgetState {
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

export function logFor(entry: ScopeEntry, rule: WindowRateLimitRule): SlidingLog {
  const key = `${rule.kind}/${rule.windowMs}`;
  let log = entry.logs.get(key);
  if (!log) {
    log = new SlidingLog(rule.windowMs);
    entry.logs.set(key, log);
  }
  return log;
}

export function rateLimitState(
  entry: ScopeEntry | undefined,
  rule: RateLimitRule,
  now: number,
): RateLimitState {
  if (rule.kind === 'concurrency') {
    const used = entry?.open.size ?? 0;
    let last = now;
    for (const open of entry?.open.values() ?? []) last = Math.max(last, open.expiresAt);
    return {
      kind: 'concurrency',
      limit: rule.limit,
      used,
      remaining: Math.max(0, rule.limit - used),
      resetMs: last - now,
    };
  }
  const log = entry?.logs.get(`${rule.kind}/${rule.windowMs}`);
  if (log) return log.state(rule, now);
  return {
    kind: rule.kind,
    limit: rule.limit,
    windowMs: rule.windowMs,
    used: 0,
    remaining: rule.limit,
    resetMs: 0,
  };
}

/**
 * Ms until enough open leases expire for one more reservation to fit under `limit` (the
 * bound if no holder ends its stream sooner), or `null` when none ever can (limit 0).
 * Call after expiring overdue reservations.
 */
export function slotFreesIn(entry: ScopeEntry, limit: number, now: number): number | null {
  if (limit <= 0) return null;
  const must = entry.open.size - limit + 1;
  if (must <= 0) return 0;
  const expiries = [...entry.open.values()].map((open) => open.expiresAt).sort((a, b) => a - b);
  return (expiries[must - 1] as number) - now;
}

export function toReservation(open: OpenReservation): Reservation {
  return {
    id: open.id,
    scope: open.entry.scope,
    reservedNanos: open.reserved,
    estimatedTokens: open.tokens,
    createdAt: open.createdAt,
    expiresAt: open.expiresAt,
    periodStart: open.bucket ? open.bucket.start : null,
    periodEnd: open.bucket ? open.bucket.end : null,
  };
}

/**
 * True when dropping the scope changes no answer the store gives: no open reservation,
 * no spend in a period that has not ended (lifetime spend never ends), nothing counted in
 * any rate-limit window. Call after expiring overdue reservations. Expiry counters are
 * lost with the scope; the store-wide counters in `stats()` keep them.
 */
export function scopeMatters(entry: ScopeEntry, now: number): boolean {
  if (entry.open.size > 0) return true;
  for (const bucket of entry.buckets.values()) {
    const ended = bucket.end !== null && bucket.end <= now;
    if (!ended && (bucket.spent !== 0 || bucket.reserved !== 0)) return true;
  }
  for (const log of entry.logs.values()) {
    if (log.used(now) !== 0) return true;
  }
  return false;
}

/**
 * The earliest time at which the scope will stop mattering if nothing else happens to it
 * (`Infinity` if never: lifetime spend). Earlier events (a settle, a release) can only
 * make it sooner; new admissions later. Used to avoid rescanning a full store in vain.
 */
export function quietAt(entry: ScopeEntry, now: number): number {
  let at = now;
  for (const open of entry.open.values()) at = Math.max(at, open.expiresAt);
  for (const bucket of entry.buckets.values()) {
    const ended = bucket.end !== null && bucket.end <= now;
    if (ended || (bucket.spent === 0 && bucket.reserved === 0)) continue;
    if (bucket.end === null) return Number.POSITIVE_INFINITY;
    at = Math.max(at, bucket.end);
  }
  for (const log of entry.logs.values()) at = Math.max(at, now + log.resetMs(now));
  return at;
}
