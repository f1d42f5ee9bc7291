/**
 * Public types of the store conformance suite: the controllable clock a store under test
 * must read its time from, the factory a store author hands to the suite, and the case
 * objects the suite is made of.
 */
import type { Clock, ExpiryPolicy, Store } from '../store/types.js';

/** A clock the suite moves by hand. Time never runs backwards within one case. */
export interface TestClock extends Clock {
  /** Current time in epoch ms. */
  now(): number;
  /** Moves time forward by `ms` (≥ 0) and returns the new time. */
  advance(ms: number): number;
  /** Moves time to `ms` (not earlier than now). */
  set(ms: number): void;
}

/** What the suite gives a store factory for one case. */
export interface StoreFactoryContext {
  /** The store must take all its time from this clock (in Redis: pass it as ARGV). */
  readonly clock: TestClock;
  /** The store must apply this expiry policy (the suite tests both). */
  readonly onExpiry: ExpiryPolicy;
}

/**
 * Makes the store for one case. Called once per case; the suite calls `shutdown()` on
 * the result when the case ends. Returning one shared backend is fine (every case uses
 * fresh, unique scope ids), as long as the store reads time from `ctx.clock`.
 */
export type StoreFactory = (ctx: StoreFactoryContext) => Store | Promise<Store>;

/** The rule families the suite checks; each case belongs to one. */
export type ConformanceGroup =
  | 'admission'
  | 'lifecycle'
  | 'expiry'
  | 'periods'
  | 'rate-limits'
  | 'concurrency'
  | 'concurrency-limits'
  | 'multi-scope'
  | 'admission-keys'
  | 'scopes'
  | 'clock'
  | 'validation'
  | 'amounts'
  | 'once';

/**
 * One check of the contract, runnable without a test framework: `run()` resolves when the
 * store conforms and rejects (with an AssertionError saying which rule broke) when not.
 */
export interface ConformanceCase {
  readonly group: ConformanceGroup;
  readonly name: string;
  run(factory: StoreFactory): Promise<void>;
}
