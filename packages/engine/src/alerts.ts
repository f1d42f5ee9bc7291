/**
 * Budget alerts: after a stream settled, `onBudgetAlert` hears of each threshold a scope's
 * spend reached this period, once per scope, period and threshold — this process
 * remembers what it saw, the store's `claimOnce()` decides across instances. Run after the
 * stream ended, never awaited by it.
 */
import type { BudgetState, ScopeRef } from '@tokenmeter/core';
import { periodId } from '@tokenmeter/core/store';
import type { Hooks, Services, Timing } from './options.js';
import { describe } from './upstream-errors.js';

/** A map key for a scope. */
export function scopeKeyOf(scope: ScopeRef): string {
  return `${scope.kind}\u0000${scope.id}`;
}

/** What one settlement tells: each scope's budget after it, and its thresholds. */
export interface SettledBudget {
  scope: ScopeRef;
  budget: BudgetState;
  /** Percentages of the limit, ascending. */
  thresholds: readonly number[];
}

/** Marks this process keeps before it sweeps expired ones (then forgets all, if need be). */
const MAX_MARKS = 10_000;
/** How long a mark of a budget without periods ('lifetime') lives. */
const LIFETIME_MS = 10 * 365 * 86_400_000;

/** True when `spent / limit ≥ percent / 100`, in integers (the product may pass 2^53). */
export function thresholdReached(spentNanos: number, limitNanos: number, percent: number): boolean {
  return (
    BigInt(spentNanos) * 100n >= (BigInt(Math.ceil(percent * 1_000)) * BigInt(limitNanos)) / 1_000n
  );
}

/**
 * Until when a mark for a period must live: until no settlement can land in the period any
 * more. A stream admitted at the period's last instant settles within its reservation's
 * lifetime (and one may settle after the period ended, so never before `now`).
 */
export function markUntil(periodEnd: number | null, now: number, reservationTtlMs: number): number {
  return periodEnd === null ? now + LIFETIME_MS : Math.max(periodEnd, now) + reservationTtlMs;
}

export class BudgetAlerts {
  /** Alerts this process already claimed (or saw claimed), until their period ends. */
  private readonly marks = new Map<string, number>();

  constructor(
    private readonly config: {
      services: Pick<Services, 'store' | 'guard' | 'logger'>;
      hooks: Pick<Hooks, 'onBudgetAlert'>;
      timing: Pick<Timing, 'reservationTtlMs'>;
    },
  ) {}

  /** Tells the hook of every threshold reached and not yet told; resolves when all ran. */
  async fire(settled: readonly SettledBudget[], requestId: string): Promise<void> {
    const { config } = this;
    const hook = config.hooks.onBudgetAlert;
    if (!hook) return;
    for (const { scope, budget, thresholds } of settled) {
      const now = Date.now();
      const until = markUntil(budget.periodEnd, now, config.timing.reservationTtlMs);
      for (const percent of thresholds) {
        if (!thresholdReached(budget.spentNanos, budget.limitNanos, percent)) break;
        const name = `budget-alert:${periodId(budget.period)}:${budget.periodStart}:${percent}`;
        const key = `${scope.kind}\u0000${scope.id}\u0000${name}`;
        if (!this.firstSeen(key, now, until)) continue;
        let won = true;
        if (config.services.store.claimOnce) {
          try {
            won = await config.services.store.claimOnce(scope, name, until);
          } catch (error) {
            // Not claimed: the next settlement tries again.
            this.marks.delete(key);
            config.services.logger.warn(
              'tokenmeter: a budget alert could not be claimed; it will be tried again',
              { scope, percent, error: describe(error) },
            );
            continue;
          }
        }
        if (!won) continue;
        await config.services.guard(() =>
          hook({
            scope,
            percent,
            limitNanos: budget.limitNanos,
            spentNanos: budget.spentNanos,
            period: budget.period,
            periodStart: budget.periodStart,
            periodEnd: budget.periodEnd,
            requestId,
          }),
        );
      }
    }
  }

  /** True the first time this process sees `key` before `until`; after, false. */
  private firstSeen(key: string, now: number, until: number): boolean {
    const seen = this.marks.get(key);
    if (seen !== undefined && seen > now) return false;
    if (this.marks.size >= MAX_MARKS) {
      for (const [k, u] of this.marks) if (u <= now) this.marks.delete(k);
      if (this.marks.size >= MAX_MARKS) this.marks.clear();
    }
    this.marks.set(key, until);
    return true;
  }
}
