/**
 * The Store contract: what every tokenmeter store (memory, Redis, a user's own) must do,
 * as types. A store keeps three kinds of state per subject (a *scope*): sliding-window
 * rate-limit logs, budget spend per period, and open reservations. The rules behind these
 * types are written here once and checked by the conformance suite in
 * `@tokenmeter/core/testing` against every store.
 *
 * What is atomic: one `admit()` for one scope (all its rate limits, its concurrency limit and its budget are
 * checked and recorded as one step, or nothing is recorded), one `settle()`, one
 * `extend()`, one `release()` and one `releaseByKey()`. Concurrent calls behave as if they ran one after the
 * other in some order. What is not atomic: admission across several scopes — that is
 * `admitAll()` in core, which admits scope after scope and releases the earlier ones
 * when a later one rejects (see admit-all.ts for why that can never overspend).
 *
 * Time: each store has exactly one clock (the memory store an injectable `Clock`, Redis
 * its `TIME`), every timestamp in these types comes from it, and `now()` exposes it so
 * headers are computed in the store's time, not the caller's.
 */
import type { Nanos } from '../money.js';

/** A source of time in epoch milliseconds. `{ now: Date.now }` in production. */
export interface Clock {
  now(): number;
}

/**
 * Who pays or is limited: a user, an API key, a team, a conversation, everyone. Both
 * strings are arbitrary (they come from users and may hold any character, any length);
 * stores must keep `{ kind: 'a:b', id: 'c' }` and `{ kind: 'a', id: 'b:c' }` apart.
 */
export interface ScopeRef {
  /** What the id names, e.g. 'user', 'key', 'team', 'global'. Must not be empty. */
  readonly kind: string;
  readonly id: string;
}

/**
 * A window of fixed length aligned to the Unix epoch (plus `offsetMs`): with
 * `windowMs: 7 * 86_400_000` and `offsetMs: 4 * 86_400_000` weeks start on Monday 00:00 UTC.
 */
export interface CustomPeriod {
  /** Length of one period in milliseconds; a positive integer. */
  readonly windowMs: number;
  /** Shift of the period boundaries from the epoch. Defaults to 0. */
  readonly offsetMs?: number;
}

/**
 * When spend resets: at 00:00 UTC (`'day'`), on the 1st of the month 00:00 UTC
 * (`'month'`), never (`'lifetime'`), or at the boundaries of a custom window.
 */
export type BudgetPeriod = 'day' | 'month' | 'lifetime' | CustomPeriod;

/** A spending cap for one scope and period. */
export interface BudgetRule {
  /** The most the scope may spend in one period, in nano-dollars (`usd('5.00')`). */
  readonly limitNanos: Nanos;
  readonly period: BudgetPeriod;
}

/**
 * A sliding-window rate limit: at most `limit` requests (or tokens) in any `windowMs`
 * span. Windows are exact sliding logs: an entry made at time t counts while
 * `now - t < windowMs`, so a request at t leaves the window at exactly `t + windowMs`.
 */
export interface WindowRateLimitRule {
  /** Count requests (each admission counts 1) or tokens (estimate, corrected on settle). */
  readonly kind: 'requests' | 'tokens';
  /** Allowed amount per window; a non-negative integer (0 blocks everything). */
  readonly limit: number;
  /** Window length in milliseconds; a positive integer. */
  readonly windowMs: number;
}

/**
 * A concurrency limit: at most `limit` reservations of the scope open at once — one per
 * stream in flight, so "open streams per scope". It has no window: a slot is taken by
 * admission and given back when the reservation ends, whichever way (settled, released,
 * or expired after its TTL, which is the lease that frees the slot of a crashed process).
 * Every open reservation of the scope holds a slot, whichever rules it was admitted under.
 */
export interface ConcurrencyLimitRule {
  readonly kind: 'concurrency';
  /** Open reservations allowed at once; a non-negative integer (0 blocks everything). */
  readonly limit: number;
  /** A concurrency limit has no window; giving one is refused as a mistake. */
  readonly windowMs?: undefined;
}

/** A rate limit of one scope: a sliding window of requests or tokens, or a concurrency limit. */
export type RateLimitRule = WindowRateLimitRule | ConcurrencyLimitRule;

/**
 * The limits that apply to one scope. Stores do not keep policies: the caller passes the
 * policy with every call, so changing a limit takes effect on the next request.
 */
export interface ScopePolicy {
  /** No budget: spend is not capped (and not tracked). */
  readonly budget?: BudgetRule;
  /**
   * At most one rule per (kind, windowMs), and one concurrency rule. Checked before the
   * budget; when several fail, the rejection names the window rule that clears last, or
   * the concurrency rule when no window rule fails (when a slot frees is not knowable).
   */
  readonly rateLimits?: readonly RateLimitRule[];
}

/** One admission for one scope. */
export interface AdmitRequest extends ScopePolicy {
  readonly scope: ScopeRef;
  /** Worst-case cost to hold against the budget until settle/release/expiry. */
  readonly reserveNanos: Nanos;
  /** Tokens counted against `tokens` rate limits until settle replaces them. */
  readonly estimatedTokens: number;
  /** The reservation expires this many ms after admission unless extended. */
  readonly ttlMs: number;
  /**
   * An admission key: an opaque id the caller chooses, unique per request (a UUID; the
   * same key may be used for each scope of one request, never for two requests), 1–200
   * characters. A store that implements `releaseByKey()` remembers which reservation this
   * scope made for it, so when `admit()` rejects without an answer (a connection dropped
   * after the admission ran) the caller can still release it instead of letting it expire
   * and be charged. Stores without `releaseByKey()` ignore it. Defaults to none.
   */
  readonly requestKey?: string;
}

/** What to do with an expired reservation's money. */
export type ExpiryPolicy =
  /**
   * Default. Charge the full reserved amount to the period the reservation was made in:
   * after a crash we cannot know what the provider generated, and the reservation is an
   * upper bound of it, so the budget is never undercounted.
   */
  | 'charge-reserved'
  /** Free the reserved amount and charge nothing (favours users over the budget). */
  | 'release';

/** A scope's budget at one moment. */
export interface BudgetState {
  readonly limitNanos: Nanos;
  /** Charged in this period: settled costs, plus expired reservations under 'charge-reserved'. */
  readonly spentNanos: Nanos;
  /** Held by open reservations made in this period. */
  readonly reservedNanos: Nanos;
  /** `max(0, limit - spent - reserved)`. */
  readonly remainingNanos: Nanos;
  readonly period: BudgetPeriod;
  /** Start of the period (epoch ms, inclusive); 0 for 'lifetime'. */
  readonly periodStart: number;
  /** End of the period (epoch ms, exclusive): when spend resets. `null` for 'lifetime'. */
  readonly periodEnd: number | null;
}

/** One window rate limit at one moment: enough for `RateLimit` / `RateLimit-Policy` headers. */
export interface WindowRateLimitState {
  readonly kind: 'requests' | 'tokens';
  readonly limit: number;
  readonly windowMs: number;
  /** Requests or tokens counted in the window now. May exceed `limit` after token corrections. */
  readonly used: number;
  /** `max(0, limit - used)`. */
  readonly remaining: number;
  /** Ms until everything counted now has left the window (0 when nothing is counted). */
  readonly resetMs: number;
}

/** One concurrency limit at one moment. */
export interface ConcurrencyLimitState {
  readonly kind: 'concurrency';
  readonly limit: number;
  readonly windowMs?: undefined;
  /** Reservations of the scope open now (after expiring those past their TTL). */
  readonly used: number;
  /** `max(0, limit - used)`. */
  readonly remaining: number;
  /**
   * Ms until the last lease open now expires (0 when none is open): when every slot is
   * free at the latest, should no holder end its stream sooner. Streams usually end far
   * sooner; this is a bound, not a forecast.
   */
  readonly resetMs: number;
}

/** One rate limit at one moment. */
export type RateLimitState = WindowRateLimitState | ConcurrencyLimitState;

/** An open hold on a scope's budget and rate limits, as returned by admit and extend. */
export interface Reservation {
  /**
   * Opaque, made by the store, unique within it, and enough on its own to find the
   * reservation (a Redis store may encode the scope's hash tag in it).
   */
  readonly id: string;
  readonly scope: ScopeRef;
  readonly reservedNanos: Nanos;
  readonly estimatedTokens: number;
  /** Store time of admission. */
  readonly createdAt: number;
  /** Store time at which the reservation expires unless extended (exclusive). */
  readonly expiresAt: number;
  /** The budget period it was made in (and settles into); `null` without a budget. */
  readonly periodStart: number | null;
  readonly periodEnd: number | null;
}

/** The request was admitted for this scope and holds `reservation`. */
export interface AdmitAccepted {
  readonly admitted: true;
  readonly scope: ScopeRef;
  readonly reservation: Reservation;
  /** After the reservation; `null` without a budget. */
  readonly budget: BudgetState | null;
  /** After counting this request, in the order of the request's rules. */
  readonly rateLimits: readonly RateLimitState[];
  /** Store time of the decision. */
  readonly now: number;
}

interface RejectionBase {
  readonly admitted: false;
  readonly scope: ScopeRef;
  /**
   * Ms until retrying can succeed (assuming nothing else is admitted meanwhile), for
   * `Retry-After`. `null` when waiting cannot help: the request needs more than the limit,
   * or a lifetime budget is exhausted. For a concurrency limit: until enough open leases
   * expire to free a slot — a bound that holds even if their holders crashed; a stream
   * that ends frees its slot sooner.
   */
  readonly retryAfterMs: number | null;
  /** Unchanged by the rejection; `null` without a budget. */
  readonly budget: BudgetState | null;
  /** Unchanged by the rejection. */
  readonly rateLimits: readonly RateLimitState[];
  readonly now: number;
}

/** A rate limit rejected the request; nothing was recorded. */
export interface RateLimitRejection extends RejectionBase {
  readonly reason: 'rate_limit';
  /**
   * The failing rule that names the rejection (it decides `retryAfterMs`): the window rule
   * that clears last, else the concurrency rule.
   */
  readonly rateLimit: RateLimitState;
}

/**
 * The reservation does not fit in the remaining budget (an exhausted budget admits
 * nothing, not even a zero reservation); nothing was recorded. `retryAfterMs` is the
 * time to the period's end: open reservations may end sooner, but that is not promised.
 */
export interface BudgetRejection extends RejectionBase {
  readonly reason: 'budget';
  readonly budget: BudgetState;
}

export type AdmitRejected = RateLimitRejection | BudgetRejection;
export type AdmitResult = AdmitAccepted | AdmitRejected;

/** What a request really used, reported once at its end. */
export interface SettleRequest {
  /** Actual cost; charged in full even above the reservation (the provider billed it). */
  readonly costNanos: Nanos;
  /** Actual tokens; replaces the estimate in `tokens` windows, at the admission's timestamp. */
  readonly tokens: number;
}

/** Grow (or shrink) an open reservation mid-stream, and/or push back its expiry. */
export interface ExtendRequest {
  /**
   * Added to the reservation. Growth is admitted only if it fits in the remaining budget
   * of the reservation's period; a negative amount shrinks the reservation (never below
   * 0) and always succeeds.
   */
  readonly addNanos: Nanos;
  /** Added to the token estimate in `tokens` windows, without a rate-limit check. Defaults to 0. */
  readonly addTokens?: number;
  /** When given, the reservation now expires `ttlMs` after this call (a heartbeat). */
  readonly ttlMs?: number;
}

/** How a reservation ended. */
export type EndOutcome = 'settled' | 'released' | 'expired';

/** This call ended the reservation. */
export interface Ended {
  readonly ended: true;
  readonly outcome: 'settled' | 'released';
  /** The reservation as it was just before it ended. */
  readonly reservation: Reservation;
  /** Charged to the reservation's period (0 for release). */
  readonly chargedNanos: Nanos;
  /** Part of the reservation given back: `max(0, reserved - charged)`. */
  readonly releasedNanos: Nanos;
  /** Charged beyond the reservation: `max(0, charged - reserved)`. Non-zero means a cap leaked. */
  readonly overrunNanos: Nanos;
  /** The reservation's period after the change, for the final "remaining" figure; `null` without a budget. */
  readonly budget: BudgetState | null;
  readonly now: number;
}

/**
 * The reservation had already ended (nothing changed, nothing charged again), or the store
 * does not know the id (`'unknown'`: never made, or ended so long ago it was forgotten).
 */
export interface NotEnded {
  readonly ended: false;
  readonly previously: EndOutcome | 'unknown';
  readonly now: number;
}

export type EndResult = Ended | NotEnded;

export interface Extended {
  readonly extended: true;
  /** The reservation after the change. */
  readonly reservation: Reservation;
  /** The reservation's period after the change; `null` without a budget. */
  readonly budget: BudgetState | null;
  readonly now: number;
}

/** The growth does not fit in the budget: the reservation is unchanged and still open. */
export interface ExtendRejected {
  readonly extended: false;
  readonly reason: 'budget';
  readonly reservation: Reservation;
  readonly budget: BudgetState;
  readonly now: number;
}

/** The reservation had already ended (or is unknown); nothing changed. */
export interface ExtendAfterEnd {
  readonly extended: false;
  readonly reason: 'ended';
  readonly previously: EndOutcome | 'unknown';
  readonly now: number;
}

export type ExtendResult = Extended | ExtendRejected | ExtendAfterEnd;

/** Reservation counts for one scope: leaked reservations must be visible. */
export interface ReservationCounts {
  /** Open now (not yet expired), in any period. */
  readonly open: number;
  /** Sum held by the open ones. */
  readonly openNanos: Nanos;
  /** Ended by expiry since the store began tracking the scope. */
  readonly expired: number;
  /** Reserved amount of those expired ones (charged or released per the expiry policy). */
  readonly expiredNanos: Nanos;
}

/** Everything a store knows about one scope under a policy, at its `now`. */
export interface ScopeState {
  readonly scope: ScopeRef;
  /** The current period's budget; `null` when the policy has none. */
  readonly budget: BudgetState | null;
  /** One per rule of the policy, in its order. */
  readonly rateLimits: readonly RateLimitState[];
  readonly reservations: ReservationCounts;
  readonly now: number;
}

/**
 * A tokenmeter store. Every method returns a promise; errors are rejections, never
 * synchronous throws, and a method that cannot reach its backend rejects (wrap the store
 * with `guardStore()` to bound the wait and map failures to `store_unavailable`).
 * Invalid arguments reject with a `TokenmeterError` of code `invalid_argument`.
 */
export interface Store {
  /** Rate limits and budget for one scope, checked and recorded in one atomic step. */
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** Charge the actual cost and release the rest; a no-op (reported) if already ended. */
  settle(reservationId: string, actual: SettleRequest): Promise<EndResult>;
  /** Grow/shrink an open reservation or refresh its TTL. */
  extend(reservationId: string, request: ExtendRequest): Promise<ExtendResult>;
  /**
   * Undo the admission: free the reservation and remove its request and token entries
   * from the rate-limit windows, as if it had never been admitted (for rollback, or a
   * request that never reached the provider). A request that did run ends with `settle`
   * (even at cost 0), which keeps it counted.
   */
  release(reservationId: string): Promise<EndResult>;
  /** Read one scope's state under `policy` (which period and windows to report). */
  getState(scope: ScopeRef, policy?: ScopePolicy): Promise<ScopeState>;
  /** The store's own time in epoch ms, for headers. Never runs backwards. */
  now(): Promise<number>;
  /**
   * Optional. Release the reservation `scope` made for the admission key `requestKey`
   * (see `AdmitRequest.requestKey`), if any, exactly as `release()` would: for an
   * admission whose reply was lost, so nobody holds its id. A no-op reporting
   * `previously: 'unknown'` when that admission never ran (or was forgotten), and
   * `previously: <how it ended>` when it had already ended. Stores that cannot lose a
   * reply may still implement it; callers must work without it.
   */
  releaseByKey?(scope: ScopeRef, requestKey: string): Promise<EndResult>;
  /**
   * Optional. Marks `name` as done for `scope` until `expiresAt` (store time, epoch ms) in
   * one atomic step: resolves true for the one caller that marked it, false for every
   * other caller until then — in every process sharing the store. For once-per-period
   * events (a budget alert fires once per threshold, scope and period). `name` is the
   * caller's (1–200 characters); an `expiresAt` already past marks nothing (always true).
   */
  claimOnce?(scope: ScopeRef, name: string, expiresAt: number): Promise<boolean>;
  /** Stop timers and release connections the store owns. Calls after it reject. */
  shutdown?(): Promise<void>;
  /**
   * Optional. The longest any call takes before the store itself rejects it with
   * `store_unavailable` (a network store's own bound). The middleware uses it as its one
   * store timeout, so there is a single figure to set.
   */
  readonly timeoutMs?: number;
}
