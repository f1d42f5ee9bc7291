/**
 * Budget period maths, as pure functions every store shares: where the period holding a
 * given instant starts and ends (UTC days and months, lifetime, custom windows aligned to
 * the epoch), and a stable identity string for the period *kind* so a store can keep
 * several budgets of one scope apart.
 */
import { TokenmeterError } from '../errors.js';
import type { BudgetPeriod } from './types.js';

const DAY_MS = 86_400_000;

/** Where a period starts (inclusive) and ends (exclusive, `null` = never), in epoch ms. */
export interface PeriodBounds {
  readonly start: number;
  readonly end: number | null;
}

/**
 * The period of kind `period` that contains the instant `nowMs`. Days and months are UTC
 * (JavaScript time has no leap seconds, so a UTC day is always 86,400,000 ms).
 *
 * @example
 * periodBounds('month', Date.UTC(2024, 1, 29, 12)) // { start: Date.UTC(2024, 1, 1), end: Date.UTC(2024, 2, 1) }
 */
export function periodBounds(period: BudgetPeriod, nowMs: number): PeriodBounds {
  if (period === 'lifetime') return { start: 0, end: null };
  if (period === 'day') {
    const start = Math.floor(nowMs / DAY_MS) * DAY_MS;
    return { start, end: start + DAY_MS };
  }
  if (period === 'month') {
    const date = new Date(nowMs);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth();
    // Date.UTC carries month 12 into January of the next year.
    return { start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
  }
  const { windowMs } = period;
  const offset = normaliseOffset(period.offsetMs ?? 0, windowMs);
  const start = Math.floor((nowMs - offset) / windowMs) * windowMs + offset;
  return { start, end: start + windowMs };
}

/**
 * A stable name for the kind of period — `'day'`, `'month'`, `'lifetime'`,
 * `'window:3600000'`, `'window:604800000+345600000'` — so spend under one period kind
 * is never read as spend under another. Equal offsets modulo the window name the same
 * periods.
 */
export function periodId(period: BudgetPeriod): string {
  if (typeof period === 'string') return period;
  const offset = normaliseOffset(period.offsetMs ?? 0, period.windowMs);
  return offset === 0 ? `window:${period.windowMs}` : `window:${period.windowMs}+${offset}`;
}

/** Throws `invalid_argument` unless `period` is one tokenmeter understands. */
export function assertBudgetPeriod(period: unknown, what = 'budget.period'): BudgetPeriod {
  if (period === 'day' || period === 'month' || period === 'lifetime') return period;
  if (typeof period === 'object' && period !== null) {
    const { windowMs, offsetMs } = period as { windowMs?: unknown; offsetMs?: unknown };
    if (
      typeof windowMs === 'number' &&
      Number.isSafeInteger(windowMs) &&
      windowMs > 0 &&
      (offsetMs === undefined || (typeof offsetMs === 'number' && Number.isSafeInteger(offsetMs)))
    ) {
      return period as BudgetPeriod;
    }
  }
  throw new TokenmeterError(
    'invalid_argument',
    `${what} must be 'day', 'month', 'lifetime' or { windowMs: <positive integer ms>, offsetMs?: <integer ms> }, got ${describe(period)}.`,
  );
}

function normaliseOffset(offsetMs: number, windowMs: number): number {
  return ((offsetMs % windowMs) + windowMs) % windowMs;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
