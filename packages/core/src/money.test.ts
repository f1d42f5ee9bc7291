import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenmeterError } from './errors.js';
import {
  addNanos,
  assertNanos,
  formatUsd,
  MAX_NANOS,
  nanosToDecimalString,
  nanosToUsd,
  usd,
} from './money.js';

describe('money', () => {
  it('parses decimal strings exactly', () => {
    expect(usd('1')).toBe(1_000_000_000);
    expect(usd('0.000000001')).toBe(1);
    expect(usd('0.000001234')).toBe(1234);
    expect(usd('12.5')).toBe(12_500_000_000);
    expect(usd('-0.25')).toBe(-250_000_000);
    expect(usd(' 3.10 ')).toBe(3_100_000_000);
  });

  it('parses numbers through their shortest decimal, so 0.1 is exact', () => {
    expect(usd(0.1)).toBe(100_000_000);
    expect(usd(0.1 + 0.2)).toBe(300_000_000); // 0.30000000000000004 rounds to the nano
    expect(usd(1e-9)).toBe(1);
    expect(usd(2.5e-7)).toBe(250);
    expect(usd(1234.567891234)).toBe(1_234_567_891_234);
  });

  it('rejects what it cannot represent, saying what to do', () => {
    expect(() => usd('1.0000000001')).toThrow(/more than 9 decimals/);
    expect(() => usd('abc')).toThrow(/not a decimal USD amount/);
    expect(() => usd(Number.NaN)).toThrow(TokenmeterError);
    expect(() => usd('10000000')).toThrow(/out of range/);
    expect(() => assertNanos(1.5)).toThrow(/whole number of nano-dollars/);
  });

  it('converts to USD numbers and exact strings', () => {
    expect(nanosToUsd(1234)).toBe(0.000001234);
    expect(nanosToUsd(3_500_000)).toBe(0.0035);
    expect(nanosToDecimalString(1234)).toBe('0.000001234');
    expect(nanosToDecimalString(5_000_000_000)).toBe('5');
    expect(nanosToDecimalString(-1_500_000_001)).toBe('-1.500000001');
  });

  it('formats for display without losing small amounts', () => {
    expect(formatUsd(1_500_000_000)).toBe('$1.50');
    expect(formatUsd(1234)).toBe('$0.000001234');
    expect(formatUsd(1_234_567_000_000_000)).toBe('$1,234,567.00');
    expect(formatUsd(1_234_567, { maximumFractionDigits: 4 })).toBe('$0.0012');
    expect(formatUsd(1_250_000, { maximumFractionDigits: 2 })).toBe('$0.00');
    expect(formatUsd(5_000_000, { maximumFractionDigits: 2 })).toBe('$0.01'); // half up
    expect(formatUsd(-2_000_000_000)).toBe('-$2.00');
  });

  it('round-trips every amount through its decimal string (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -MAX_NANOS, max: MAX_NANOS }), (n) => {
        expect(usd(nanosToDecimalString(n))).toBe(n);
      }),
    );
  });

  it('round-trips through USD numbers below $1M, 15 significant digits (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -(1e15 - 1), max: 1e15 - 1 }), (n) => {
        expect(usd(nanosToUsd(n))).toBe(n);
      }),
    );
  });

  it('adds exactly and refuses to leave the safe range', () => {
    expect(addNanos(1, 2, 3)).toBe(6);
    expect(() => addNanos(MAX_NANOS, 1)).toThrow(/out of range|whole number/);
  });
});
