/**
 * The machinery conformance cases are written with: `defineCase()` (fresh clock, fresh
 * store, unique scope ids, shutdown afterwards), request builders, and assertions that
 * narrow store results and say which rule of the contract broke. Framework-free on
 * purpose, so a case can run inside vitest or be awaited directly by a proof test.
 */
import assert from 'node:assert/strict';
import { TokenmeterError } from '../errors.js';
import type {
  AdmitAccepted,
  AdmitRejected,
  AdmitRequest,
  AdmitResult,
  Ended,
  EndResult,
  ExpiryPolicy,
  NotEnded,
  ScopeRef,
  Store,
} from '../store/types.js';
import { createTestClock } from './test-clock.js';
import type {
  ConformanceCase,
  ConformanceGroup,
  StoreFactory,
  StoreFactoryContext,
  TestClock,
} from './types.js';

/** Saturday 14 March 2026, 10:00:00.000 UTC: mid-day, mid-month, on an hour boundary. */
export const START = Date.UTC(2026, 2, 14, 10);
export const DAY_MS = 86_400_000;
export const MINUTE_MS = 60_000;

/** What a case body works with. */
export interface CaseContext {
  readonly store: Store;
  readonly clock: TestClock;
  /** A scope no other case (and no other run against a shared backend) uses. */
  scope(kind?: string): ScopeRef;
  /** Makes another store on the same backend with the same clock (for shared-backend checks). */
  readonly factory: StoreFactory;
  readonly context: StoreFactoryContext;
}

export interface CaseOptions {
  /** Where the clock starts. Defaults to START. */
  startAt?: number;
  /** The expiry policy handed to the factory. Defaults to 'charge-reserved'. */
  onExpiry?: ExpiryPolicy;
}

// Unique per process and per run, so cases can share one backend (a Redis) across runs.
const RUN_ID = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let sequence = 0;

/** A fresh token to build unique scope ids with. */
export function uniqueToken(): string {
  sequence += 1;
  return `${RUN_ID}-${sequence}`;
}

export function defineCase(
  group: ConformanceGroup,
  name: string,
  body: (t: CaseContext) => Promise<void>,
  options: CaseOptions = {},
): ConformanceCase {
  return {
    group,
    name,
    async run(factory: StoreFactory) {
      const clock = createTestClock(options.startAt ?? START);
      const context: StoreFactoryContext = {
        clock,
        onExpiry: options.onExpiry ?? 'charge-reserved',
      };
      const store = await factory(context);
      try {
        await body({
          store,
          clock,
          factory,
          context,
          scope: (kind = 'user') => ({ kind, id: `conformance-${uniqueToken()}` }),
        });
      } finally {
        await store.shutdown?.();
      }
    },
  };
}

/**
 * Reads until `ok` holds or `timeoutMs` (real time) passes, and returns the last value:
 * for effects that happen in the background (admitAll's clean-up after a failed call).
 */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 2_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await read();
  }
  return value;
}

/** An admission request with small defaults: reserve 1,000 nanos, 10 tokens, 60 s TTL. */
export function request(scope: ScopeRef, overrides: Partial<AdmitRequest> = {}): AdmitRequest {
  return { scope, reserveNanos: 1_000, estimatedTokens: 10, ttlMs: MINUTE_MS, ...overrides };
}

/** Asserts the admission was accepted and returns it narrowed. */
export function expectAdmitted(result: AdmitResult, rule: string): AdmitAccepted {
  if (!result.admitted) {
    assert.fail(
      `${rule}: expected the request to be admitted, but it was rejected for ${result.reason} ` +
        `(retryAfterMs ${String(result.retryAfterMs)}).`,
    );
  }
  return result;
}

/** Asserts the admission was rejected (for `reason`, when given) and returns it narrowed. */
export function expectRejected(
  result: AdmitResult,
  rule: string,
  reason?: AdmitRejected['reason'],
): AdmitRejected {
  if (result.admitted) {
    assert.fail(`${rule}: expected a rejection, but the request was admitted.`);
  }
  if (reason !== undefined) {
    assert.equal(result.reason, reason, `${rule}: rejection reason`);
  }
  return result;
}

/** Asserts this call ended the reservation with `outcome`. */
export function expectEnded(result: EndResult, outcome: Ended['outcome'], rule: string): Ended {
  if (!result.ended) {
    assert.fail(
      `${rule}: expected the call to end the reservation (${outcome}), but it reports previously ${result.previously}.`,
    );
  }
  assert.equal(result.outcome, outcome, `${rule}: outcome`);
  return result;
}

/** Asserts the call changed nothing because the reservation had ended as `previously`. */
export function expectNotEnded(
  result: EndResult,
  previously: NotEnded['previously'],
  rule: string,
): NotEnded {
  if (result.ended) {
    assert.fail(
      `${rule}: expected a no-op reporting previously ${previously}, but the call ended the reservation as ${result.outcome}.`,
    );
  }
  assert.equal(result.previously, previously, `${rule}: previously`);
  return result;
}

/** Asserts the promise rejects with a TokenmeterError of `code`. */
export async function expectErrorCode(
  promise: Promise<unknown>,
  code: string,
  rule: string,
): Promise<void> {
  let outcome: { error: unknown } | undefined;
  try {
    await promise;
  } catch (error) {
    outcome = { error };
  }
  if (!outcome) assert.fail(`${rule}: expected a rejection with code ${code}, but it resolved.`);
  const { error } = outcome;
  assert.ok(
    TokenmeterError.isInstance(error),
    `${rule}: expected a TokenmeterError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  assert.equal(error.code, code, `${rule}: error code (message: ${error.message})`);
}

/** Counts how many admissions were accepted. */
export function countAdmitted(results: readonly AdmitResult[]): number {
  return results.filter((result) => result.admitted).length;
}

/** A small deterministic PRNG (mulberry32), so random traces are reproducible by seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export { assert };
