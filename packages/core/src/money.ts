/**
 * Money as integer nano-dollars (1e-9 USD). Every counter, reservation and cost in
 * tokenmeter is a `Nanos`: exact under addition, exact in Redis `INCRBY`, never a
 * float. Conversion to USD happens only at the edges (JSON, headers, display).
 */
import { numberToPlainDecimal } from './decimal.js';
import { TokenmeterError } from './errors.js';

/** An integer number of nano-dollars. A plain number: safe up to ±$9,007,199. */
export type Nanos = number;

/** Nano-dollars per US dollar. */
export const NANOS_PER_USD = 1_000_000_000;

/**
 * The largest amount tokenmeter keeps: Number.MAX_SAFE_INTEGER nano-dollars
 * ($9,007,199.254740991). Budgets, costs and reservations above it are refused (at start-up
 * for configured budgets); a store's running totals are exact up to it and stay at it.
 */
export const MAX_NANOS: Nanos = Number.MAX_SAFE_INTEGER;

const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

/** Throws unless `value` is a safe integer amount of nano-dollars. */
export function assertNanos(value: number, what = 'amount'): Nanos {
  if (!Number.isSafeInteger(value)) {
    throw new TokenmeterError(
      'money_out_of_range',
      `${what} must be a whole number of nano-dollars within ±${MAX_NANOS}, got ${String(value)}. ` +
        'Convert dollars with usd().',
    );
  }
  return value;
}

/**
 * Parses a decimal USD amount exactly into nano-dollars: `'0.000001'` → 1000.
 * Accepts a decimal string (exact; preferred for prices and budgets) or a finite
 * number (rounded to the nearest nano-dollar; numbers like 0.1 are not exact in binary,
 * the rounding makes them so). More than 9 decimals is an error for strings.
 */
export function usd(amount: number | string): Nanos {
  if (typeof amount === 'number') {
    if (!Number.isFinite(amount)) {
      throw new TokenmeterError('invalid_argument', `USD amount must be finite, got ${amount}.`);
    }
    // Go through the shortest decimal representation so 0.1 becomes exactly 100000000.
    return usd(numberToDecimalString(amount));
  }
  const match = DECIMAL.exec(amount.trim());
  if (!match) {
    throw new TokenmeterError(
      'invalid_argument',
      `"${amount}" is not a decimal USD amount. Write it like "12.5" or "0.000003".`,
    );
  }
  const [, sign, whole = '0', frac = ''] = match;
  if (frac.length > 9) {
    throw new TokenmeterError(
      'invalid_argument',
      `"${amount}" has more than 9 decimals; tokenmeter counts whole nano-dollars (1e-9 USD).`,
    );
  }
  const nanos = BigInt(whole) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
  const signed = sign === '-' ? -nanos : nanos;
  if (signed > BigInt(MAX_NANOS) || signed < -BigInt(MAX_NANOS)) {
    throw new TokenmeterError(
      'money_out_of_range',
      `"${amount}" USD is out of range (max ~$9.0M).`,
    );
  }
  return Number(signed);
}

/**
 * Nano-dollars to a USD number, for JSON at the edges. The number's shortest decimal
 * is the exact amount below $1,000,000 (15 significant digits); above that, use
 * nanosToDecimalString.
 */
export function nanosToUsd(nanos: Nanos): number {
  assertNanos(nanos);
  // Dividing an integer by 1e9 gives the nearest double to the exact decimal, whose
  // shortest representation is that decimal: 1234 → 0.000001234.
  return nanos / NANOS_PER_USD;
}

/**
 * Nano-dollars as an exact decimal string without trailing zeros: 1234 → "0.000001234",
 * 5_000_000_000 → "5". No float is involved.
 */
export function nanosToDecimalString(nanos: Nanos): string {
  assertNanos(nanos);
  const negative = nanos < 0;
  const abs = BigInt(Math.abs(nanos));
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

export interface FormatUsdOptions {
  /**
   * Minimum fraction digits shown. Defaults to 2 (`$1.50`). Digits beyond it appear
   * only when non-zero, up to 9, so no amount is ever rounded away: `$0.000001234`.
   */
  minimumFractionDigits?: number;
  /** Round to this many fraction digits (half away from zero). Defaults to 9 (exact). */
  maximumFractionDigits?: number;
}

/** Display string: `formatUsd(1_500_000_000)` → `"$1.50"`, 1234 → `"$0.000001234"`. */
export function formatUsd(nanos: Nanos, options: FormatUsdOptions = {}): string {
  assertNanos(nanos);
  const min = options.minimumFractionDigits ?? 2;
  const max = options.maximumFractionDigits ?? 9;
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && max <= 9 && min <= max)) {
    throw new TokenmeterError(
      'invalid_argument',
      'formatUsd: fraction digits must be integers with 0 ≤ minimum ≤ maximum ≤ 9.',
    );
  }
  const negative = nanos < 0;
  let abs = BigInt(Math.abs(nanos));
  const step = 10n ** BigInt(9 - max);
  abs = ((abs + step / 2n) / step) * step; // half away from zero, on the magnitude
  const whole = (abs / 1_000_000_000n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  let frac = (abs % 1_000_000_000n).toString().padStart(9, '0').slice(0, max);
  frac = frac.replace(/0+$/, '').padEnd(min, '0');
  return `${negative ? '-' : ''}$${whole}${frac ? `.${frac}` : ''}`;
}

/** Sum of amounts, checked to stay exact. */
export function addNanos(...amounts: Nanos[]): Nanos {
  let total = 0;
  for (const amount of amounts) total += assertNanos(amount);
  return assertNanos(total, 'sum');
}

/**
 * `a + b` for non-negative amounts, held at `MAX_NANOS` (~$9.0M) rather than passing it:
 * how stores keep a running total (spend, expired amounts) exact to the nano-dollar up to
 * the largest amount tokenmeter keeps, and never unreadable past it.
 */
export function saturatingAddNanos(a: Nanos, b: Nanos): Nanos {
  const sum = a + b;
  return sum < MAX_NANOS ? sum : MAX_NANOS;
}

function numberToDecimalString(value: number): string {
  const plain = numberToPlainDecimal(value);
  const [whole = '0', frac = ''] = plain.split('.');
  // Numbers with more than 9 decimals round to the nearest nano-dollar (half away from zero).
  return frac.length > 9 ? roundDecimal(whole, frac) : plain;
}

function roundDecimal(whole: string, frac: string): string {
  const sign = whole.startsWith('-') ? '-' : '';
  const scaled = BigInt(whole.replace('-', '') + frac.slice(0, 9));
  const total = scaled + (Number(frac[9] ?? '0') >= 5 ? 1n : 0n);
  const digits = total.toString().padStart(10, '0');
  return `${sign}${digits.slice(0, -9)}.${digits.slice(-9)}`;
}
