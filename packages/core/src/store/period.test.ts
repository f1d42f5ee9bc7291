import { describe, expect, it } from 'vitest';
import { TokenmeterError } from '../errors.js';
import { assertBudgetPeriod, periodBounds, periodId } from './period.js';

describe('periodBounds', () => {
  it('puts a UTC day from midnight to midnight, both edges exact', () => {
    const midnight = Date.UTC(2026, 2, 14);
    expect(periodBounds('day', midnight)).toEqual({ start: midnight, end: midnight + 86_400_000 });
    expect(periodBounds('day', midnight - 1)).toEqual({
      start: midnight - 86_400_000,
      end: midnight,
    });
    expect(periodBounds('day', midnight + 86_399_999).end).toBe(midnight + 86_400_000);
  });

  it('gives months their real lengths, leap years included', () => {
    const length = (year: number, month: number) => {
      const { start, end } = periodBounds('month', Date.UTC(year, month, 15));
      return ((end ?? 0) - start) / 86_400_000;
    };
    expect(length(2026, 0)).toBe(31);
    expect(length(2026, 1)).toBe(28);
    expect(length(2024, 1)).toBe(29); // divisible by 4
    expect(length(2100, 1)).toBe(28); // by 100, not 400
    expect(length(2000, 1)).toBe(29); // by 400
    expect(length(2026, 3)).toBe(30);
  });

  it('rolls December over into January of the next year', () => {
    const lastMs = Date.UTC(2027, 0, 1) - 1;
    expect(periodBounds('month', lastMs)).toEqual({
      start: Date.UTC(2026, 11, 1),
      end: Date.UTC(2027, 0, 1),
    });
    expect(periodBounds('month', lastMs + 1)).toEqual({
      start: Date.UTC(2027, 0, 1),
      end: Date.UTC(2027, 1, 1),
    });
  });

  it('keeps lifetime open-ended', () => {
    expect(periodBounds('lifetime', Date.UTC(2026, 5, 1))).toEqual({ start: 0, end: null });
  });

  it('aligns custom windows to the epoch, and shifts them by offsetMs', () => {
    const hour = 3_600_000;
    expect(periodBounds({ windowMs: hour }, 5 * hour + 1)).toEqual({
      start: 5 * hour,
      end: 6 * hour,
    });
    expect(periodBounds({ windowMs: hour }, 6 * hour)).toEqual({ start: 6 * hour, end: 7 * hour });
    // Weeks starting Monday 00:00 UTC (1970-01-01 was a Thursday: Monday is 4 days later).
    const week = { windowMs: 7 * 86_400_000, offsetMs: 4 * 86_400_000 };
    const wednesday = Date.UTC(2026, 2, 18, 15);
    expect(periodBounds(week, wednesday)).toEqual({
      start: Date.UTC(2026, 2, 16),
      end: Date.UTC(2026, 2, 23),
    });
  });

  it('handles instants before an offset origin and negative offsets', () => {
    expect(periodBounds({ windowMs: 10, offsetMs: 3 }, 2)).toEqual({ start: -7, end: 3 });
    expect(periodBounds({ windowMs: 10, offsetMs: -7 }, 2)).toEqual({ start: -7, end: 3 });
  });
});

describe('periodId', () => {
  it('names each period kind distinctly and offsets modulo the window', () => {
    expect(periodId('day')).toBe('day');
    expect(periodId({ windowMs: 1000 })).toBe('window:1000');
    expect(periodId({ windowMs: 1000, offsetMs: 0 })).toBe('window:1000');
    expect(periodId({ windowMs: 1000, offsetMs: 1250 })).toBe('window:1000+250');
    expect(periodId({ windowMs: 1000, offsetMs: -750 })).toBe('window:1000+250');
    expect(periodId({ windowMs: 1000 })).not.toBe(periodId({ windowMs: 10_000 }));
  });
});

describe('assertBudgetPeriod', () => {
  it('accepts the named periods and well-formed windows', () => {
    expect(assertBudgetPeriod('month')).toBe('month');
    expect(assertBudgetPeriod({ windowMs: 60_000, offsetMs: 5 })).toEqual({
      windowMs: 60_000,
      offsetMs: 5,
    });
  });

  it.each([
    'week',
    null,
    { windowMs: 0 },
    { windowMs: 1.5 },
    { windowMs: 1000, offsetMs: 0.5 },
    {},
  ])('rejects %j with invalid_argument', (period) => {
    try {
      assertBudgetPeriod(period);
      expect.unreachable();
    } catch (error) {
      expect(TokenmeterError.isInstance(error) && error.code).toBe('invalid_argument');
    }
  });
});
