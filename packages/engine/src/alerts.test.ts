import type { BudgetState, Store } from '@tokenmeter/core';
import { describe, expect, it, vi } from 'vitest';
import { BudgetAlerts, markUntil, thresholdReached } from './alerts.js';
import type { BudgetAlert } from './types.js';

const DAY = 86_400_000;
/** One period for every settlement of a test: its start names it. */
const PERIOD_END = Date.now() + DAY;

function budget(spentNanos: number, periodEnd: number | null = PERIOD_END): BudgetState {
  return {
    limitNanos: 1_000_000_000,
    spentNanos,
    reservedNanos: 0,
    remainingNanos: 1_000_000_000 - spentNanos,
    period: 'day',
    periodStart: periodEnd === null ? 0 : periodEnd - DAY,
    periodEnd,
  } as BudgetState;
}

function alerts(claimOnce?: Store['claimOnce']) {
  const heard: BudgetAlert[] = [];
  const warned: string[] = [];
  const dog = new BudgetAlerts({
    hooks: {
      onBudgetAlert: (alert) => {
        heard.push(alert);
      },
    },
    services: {
      store: { claimOnce } as Store,
      guard: (hook) => {
        hook();
        return undefined;
      },
      logger: { warn: (m) => warned.push(m), error() {} },
    },
    timing: { reservationTtlMs: 60_000 },
  });
  return { dog, heard, warned };
}

const scope = { kind: 'user', id: 'u1' };

describe('budget alerts', () => {
  it('a threshold is reached at exactly its share of the limit, in integers', () => {
    expect(thresholdReached(499_999_999, 1_000_000_000, 50)).toBe(false);
    expect(thresholdReached(500_000_000, 1_000_000_000, 50)).toBe(true);
    // A fractional percent is taken up to the next thousandth: never early.
    expect(thresholdReached(333_339_999, 1_000_000_000, 33.3333)).toBe(false);
    expect(thresholdReached(333_340_000, 1_000_000_000, 33.3333)).toBe(true);
    // Past 2^53 in the product: still exact.
    expect(thresholdReached(9_007_199_254_740_991, 9_007_199_254_740_991, 100)).toBe(true);
    expect(thresholdReached(9_007_199_254_740_990, 9_007_199_254_740_991, 100)).toBe(false);
  });

  it('a mark lives until no settlement can land in its period: its end (or now) plus the reservation lifetime', () => {
    expect(markUntil(10_000, 5_000, 60_000)).toBe(70_000);
    // Settled after the period ended: counted from now, never already expired.
    expect(markUntil(10_000, 20_000, 60_000)).toBe(80_000);
    expect(markUntil(null, 0, 60_000)).toBe(10 * 365 * DAY);
  });

  it('each threshold reached is told once per scope and period, in order, not the ones above', async () => {
    const { dog, heard } = alerts(async () => true);
    await dog.fire([{ scope, budget: budget(800_000_000), thresholds: [50, 80, 100] }], 'r1');
    await dog.fire([{ scope, budget: budget(900_000_000), thresholds: [50, 80, 100] }], 'r2');
    expect(heard.map((a) => [a.percent, a.requestId])).toEqual([
      [50, 'r1'],
      [80, 'r1'],
    ]);
  });

  it('another instance that claimed it first: not told here', async () => {
    const { dog, heard } = alerts(async () => false);
    await dog.fire([{ scope, budget: budget(1_000_000_000), thresholds: [100] }], 'r1');
    expect(heard).toEqual([]);
  });

  it('a claim the store could not make is tried again at the next settlement', async () => {
    const claim = vi
      .fn<NonNullable<Store['claimOnce']>>()
      .mockRejectedValueOnce(new Error('store down'))
      .mockResolvedValue(true);
    const { dog, heard, warned } = alerts(claim);
    const settled = [{ scope, budget: budget(1_000_000_000), thresholds: [100] }];
    await dog.fire(settled, 'r1');
    expect(heard).toEqual([]);
    expect(warned).toEqual([
      'tokenmeter: a budget alert could not be claimed; it will be tried again',
    ]);
    await dog.fire(settled, 'r2');
    expect(heard.map((a) => a.requestId)).toEqual(['r2']);
    expect(claim).toHaveBeenCalledTimes(2);
  });
});
