/**
 * Turns the scripts' flat replies (see the reply layouts in scripts.ts) into the Store
 * contract's result objects. A reply of the wrong shape throws MalformedReplyError, which
 * the store reports as `store_unavailable`: never a half-read result.
 */
import {
  type BudgetPeriod,
  type BudgetState,
  MAX_NANOS,
  type RateLimitRule,
  type ScopeRef,
} from '@tokenmeter/core';
import type {
  AdmitRequest,
  AdmitResult,
  EndResult,
  ExtendResult,
  NotEnded,
  RateLimitState,
  Reservation,
  ScopePolicy,
  ScopeState,
} from '@tokenmeter/core/store';
import { decodeScope } from './keys.js';
import { MalformedReplyError, type Operation } from './store-errors.js';

class Reply {
  private readonly values: readonly unknown[];

  constructor(
    readonly operation: Operation,
    raw: unknown,
  ) {
    if (!Array.isArray(raw) || raw.length < 2) throw new MalformedReplyError(operation, raw);
    this.values = raw;
  }

  get length(): number {
    return this.values.length;
  }

  int(index: number): number {
    const value = this.values[index];
    const number =
      typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(number)) throw new MalformedReplyError(this.operation, this.values);
    return number;
  }

  /**
   * A running total of nano-dollars: the scripts hold totals at MAX_NANOS, and a total
   * written past it before they did (or by hand) reads as MAX_NANOS, never as a failure.
   */
  nanos(index: number): number {
    const value = this.values[index];
    const number =
      typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
    if (Number.isInteger(number) && number > MAX_NANOS) return MAX_NANOS;
    return this.int(index);
  }

  /** -1 is the scripts' null. */
  intOrNull(index: number): number | null {
    const number = this.int(index);
    return number === -1 ? null : number;
  }

  text(index: number): string {
    const value = this.values[index];
    if (typeof value !== 'string') throw new MalformedReplyError(this.operation, this.values);
    return value;
  }
}

/** The period as kept in a reservation: exactly the caller's value, without extra fields. */
export function periodJson(period: BudgetPeriod): string {
  if (typeof period === 'string') return JSON.stringify(period);
  return JSON.stringify(
    period.offsetMs === undefined
      ? { windowMs: period.windowMs }
      : { windowMs: period.windowMs, offsetMs: period.offsetMs },
  );
}

function budgetState(
  limitNanos: number,
  spentNanos: number,
  reservedNanos: number,
  period: BudgetPeriod,
  periodStart: number,
  periodEnd: number | null,
): BudgetState {
  return {
    limitNanos,
    spentNanos,
    reservedNanos,
    remainingNanos: Math.max(0, limitNanos - spentNanos - reservedNanos),
    period,
    periodStart,
    periodEnd,
  };
}

function rateStates(
  rules: readonly RateLimitRule[],
  reply: Reply,
  offset: number,
): RateLimitState[] {
  if (reply.length !== offset + rules.length * 2) {
    throw new MalformedReplyError(
      reply.operation,
      `${reply.length} values for ${rules.length} rules`,
    );
  }
  return rules.map((rule, index): RateLimitState => {
    const used = reply.int(offset + index * 2);
    const remaining = Math.max(0, rule.limit - used);
    const resetMs = reply.int(offset + index * 2 + 1);
    if (rule.kind === 'concurrency') {
      return { kind: rule.kind, limit: rule.limit, used, remaining, resetMs };
    }
    return {
      kind: rule.kind,
      limit: rule.limit,
      windowMs: rule.windowMs,
      used,
      remaining,
      resetMs,
    };
  });
}

/** admit reply: { status, now, n, expiresAt, spent, reserved, start, end, retry, rule, (used, reset)* }. */
export function decodeAdmit(
  raw: unknown,
  request: AdmitRequest,
  scope: ScopeRef,
  idOf: (sequence: number) => string,
): AdmitResult {
  const reply = new Reply('admit', raw);
  const status = reply.int(0);
  const now = reply.int(1);
  const rules = request.rateLimits ?? [];
  const rateLimits = rateStates(rules, reply, 10);
  const budget = request.budget
    ? budgetState(
        request.budget.limitNanos,
        reply.nanos(4),
        reply.nanos(5),
        request.budget.period,
        reply.int(6),
        reply.intOrNull(7),
      )
    : null;
  if (status === 1) {
    const reservation: Reservation = {
      id: idOf(reply.int(2)),
      scope,
      reservedNanos: request.reserveNanos,
      estimatedTokens: request.estimatedTokens,
      createdAt: now,
      expiresAt: reply.int(3),
      periodStart: budget ? budget.periodStart : null,
      periodEnd: budget ? budget.periodEnd : null,
    };
    return { admitted: true, scope, reservation, budget, rateLimits, now };
  }
  const retryAfterMs = reply.intOrNull(8);
  if (status === 2) {
    const rateLimit = rateLimits[reply.int(9) - 1];
    if (!rateLimit) throw new MalformedReplyError('admit', raw);
    return {
      admitted: false,
      reason: 'rate_limit',
      scope,
      retryAfterMs,
      budget,
      rateLimits,
      rateLimit,
      now,
    };
  }
  if (status === 3 && budget) {
    return { admitted: false, reason: 'budget', scope, retryAfterMs, budget, rateLimits, now };
  }
  throw new MalformedReplyError('admit', raw);
}

const PREVIOUSLY = { 0: 'unknown', 2: 'settled', 3: 'released', 4: 'expired' } as const;

function notEnded(reply: Reply, operation: Operation): NotEnded | undefined {
  const code = reply.int(0);
  if (code !== 0 && code !== 2 && code !== 3 && code !== 4) return undefined;
  if (reply.length !== 2) throw new MalformedReplyError(operation, code);
  return { ended: false, previously: PREVIOUSLY[code], now: reply.int(1) };
}

interface ReservationReply {
  readonly reservation: Reservation;
  readonly budget: BudgetState | null;
}

/** { code, now, scope, reserved, tokens, createdAt, expiresAt, start, end, limit, period, spent, reserved }. */
function reservationReply(reply: Reply, id: string, operation: Operation): ReservationReply {
  if (reply.length !== 13) throw new MalformedReplyError(operation, reply.length);
  const limitNanos = reply.intOrNull(9);
  const periodStart = reply.int(7);
  const periodEnd = reply.intOrNull(8);
  const reservation: Reservation = {
    id,
    scope: decodeScope(reply.text(2)),
    reservedNanos: reply.int(3),
    estimatedTokens: reply.int(4),
    createdAt: reply.int(5),
    expiresAt: reply.int(6),
    periodStart: limitNanos === null ? null : periodStart,
    periodEnd: limitNanos === null ? null : periodEnd,
  };
  const budget =
    limitNanos === null
      ? null
      : budgetState(
          limitNanos,
          reply.nanos(11),
          reply.nanos(12),
          JSON.parse(reply.text(10)) as BudgetPeriod,
          periodStart,
          periodEnd,
        );
  return { reservation, budget };
}

/** settle / release reply. */
export function decodeEnd(
  raw: unknown,
  id: string,
  outcome: 'settled' | 'released',
  costNanos: number,
): EndResult {
  const operation = outcome === 'settled' ? 'settle' : 'release';
  const reply = new Reply(operation, raw);
  const previously = notEnded(reply, operation);
  if (previously) return previously;
  if (reply.int(0) !== 1) throw new MalformedReplyError(operation, raw);
  const { reservation, budget } = reservationReply(reply, id, operation);
  const reserved = reservation.reservedNanos;
  return {
    ended: true,
    outcome,
    reservation,
    chargedNanos: costNanos,
    releasedNanos: Math.max(0, reserved - costNanos),
    overrunNanos: Math.max(0, costNanos - reserved),
    budget,
    now: reply.int(1),
  };
}

/** extend reply. */
export function decodeExtend(raw: unknown, id: string): ExtendResult {
  const reply = new Reply('extend', raw);
  const previously = notEnded(reply, 'extend');
  if (previously) {
    return {
      extended: false,
      reason: 'ended',
      previously: previously.previously,
      now: previously.now,
    };
  }
  const code = reply.int(0);
  const { reservation, budget } = reservationReply(reply, id, 'extend');
  const now = reply.int(1);
  if (code === 1) return { extended: true, reservation, budget, now };
  if (code === 5 && budget) return { extended: false, reason: 'budget', reservation, budget, now };
  throw new MalformedReplyError('extend', raw);
}

/** getState reply: { now, open, openNanos, expired, expiredNanos, spent, reserved, start, end, (used, reset)* }. */
export function decodeState(raw: unknown, scope: ScopeRef, policy: ScopePolicy): ScopeState {
  const reply = new Reply('getState', raw);
  const budget = policy.budget
    ? budgetState(
        policy.budget.limitNanos,
        reply.nanos(5),
        reply.nanos(6),
        policy.budget.period,
        reply.int(7),
        reply.intOrNull(8),
      )
    : null;
  return {
    scope,
    budget,
    rateLimits: rateStates(policy.rateLimits ?? [], reply, 9),
    reservations: {
      open: reply.int(1),
      openNanos: reply.nanos(2),
      expired: reply.int(3),
      expiredNanos: reply.nanos(4),
    },
    now: reply.int(0),
  };
}
