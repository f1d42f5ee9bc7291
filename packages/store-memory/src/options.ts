/**
 * Options of the memory store, their defaults, and `parseOptions()`, which checks them
 * once at creation and returns a fully-filled configuration.
 */
import { TokenmeterError } from '@tokenmeter/core';
import type { Clock, ExpiryPolicy } from '@tokenmeter/core/store';

export interface MemoryStoreOptions {
  /**
   * Where the store takes its time from (epoch ms). Tests pass a controllable clock.
   * Defaults to `{ now: Date.now }`.
   *
   * @example
   * createMemoryStore({ clock: createTestClock(Date.UTC(2026, 0, 1)) })
   */
  clock?: Clock;
  /**
   * The most scopes (subjects) held at once. A scope is held while it matters: spend in
   * its current period (any spend, for lifetime budgets), an open reservation, or an
   * entry in a rate-limit window. Scopes that no longer matter are purged to make room;
   * when every held scope still matters, admitting a *new* scope is refused with
   * `store_unavailable` (counted in `stats().refusedAdmissions`) instead of evicting one —
   * evicting spend would silently reset a budget within its period. About 1.6 kB per
   * scope with a budget and two windows, plus its window entries. Defaults to 100,000.
   *
   * @example
   * createMemoryStore({ max: 1_000_000 })
   */
  max?: number;
  /**
   * What an expired reservation (TTL passed without settle or release: a crashed or hung
   * process) costs: `'charge-reserved'` charges the reserved worst case to the period it
   * was made in, `'release'` charges nothing. Defaults to `'charge-reserved'`.
   *
   * @example
   * createMemoryStore({ onExpiry: 'release' })
   */
  onExpiry?: ExpiryPolicy;
  /**
   * How often a background sweep expires overdue reservations and purges scopes that no
   * longer matter (expiry is also applied on every call touching a scope, so this only
   * bounds memory and keeps stats fresh). The timer is `unref`'d. Defaults to 60,000 ms.
   *
   * @example
   * createMemoryStore({ sweepIntervalMs: 10_000 })
   */
  sweepIntervalMs?: number;
  /**
   * How many ended reservation ids are remembered, so a late or repeated settle reports
   * how the reservation ended (`previously: 'settled'`) rather than `'unknown'`. Either
   * way nothing is charged twice. Defaults to 100,000.
   *
   * @example
   * createMemoryStore({ rememberEnded: 10_000 })
   */
  rememberEnded?: number;
}

export interface MemoryStoreConfig {
  readonly clock: Clock;
  readonly max: number;
  readonly onExpiry: ExpiryPolicy;
  readonly sweepIntervalMs: number;
  readonly rememberEnded: number;
}

export function parseOptions(options: MemoryStoreOptions = {}): MemoryStoreConfig {
  const clock = options.clock ?? { now: Date.now };
  if (typeof clock?.now !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      'createMemoryStore: clock must be an object with a now() method returning epoch ms, e.g. { now: Date.now }.',
    );
  }
  const onExpiry = options.onExpiry ?? 'charge-reserved';
  if (onExpiry !== 'charge-reserved' && onExpiry !== 'release') {
    throw new TokenmeterError(
      'invalid_config',
      `createMemoryStore: onExpiry must be 'charge-reserved' or 'release', got ${String(onExpiry)}.`,
    );
  }
  return {
    clock,
    onExpiry,
    max: positiveInteger(options.max ?? 100_000, 'max'),
    sweepIntervalMs: positiveInteger(options.sweepIntervalMs ?? 60_000, 'sweepIntervalMs'),
    rememberEnded: positiveInteger(options.rememberEnded ?? 100_000, 'rememberEnded'),
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TokenmeterError(
      'invalid_config',
      `createMemoryStore: ${name} must be a positive integer, got ${String(value)}.`,
    );
  }
  return value;
}
