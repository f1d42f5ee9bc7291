/**
 * A route's settings: `parseOptions()` checks the options of every adapter once, at
 * creation, and resolves them into a frozen `Config` grouped by concern (services, policy,
 * timing, hooks, protocol). A broken contract throws here with a message that says what to
 * do; nothing is discovered per request. The checks themselves are in `option-checks.ts`.
 */

import type {
  BudgetRule,
  ConcurrencyLimitRule,
  Pricing,
  RateLimitRule,
  ServerToolLimit,
  SseEncoder,
  Store,
} from '@tokenmeter/core';
import type { ReservationMode, ReservationPolicy } from '@tokenmeter/core/meter';
import type { TokenCounter } from '@tokenmeter/core/tokens';
import type { BodyLimits } from './body.js';
import type { EngineEvents } from './events.js';
import type { WireProtocol } from './protocols.js';
import type {
  BudgetAlert,
  Logger,
  MeteredOptions,
  MeteredStream,
  RequestParams,
  SettleInfo,
} from './types.js';

/**
 * A route's settings, resolved once from its options and frozen: every default filled in,
 * every value checked, grouped by concern.
 */
export interface Config<R = never> {
  /** What the engine calls on: the store, prices, token counts, telemetry, the log. */
  readonly services: Services<R>;
  /** Who may spend what: budgets, rate limits, the reservation, the request limits. */
  readonly policy: Policy<R>;
  /** Every timeout and interval. */
  readonly timing: Timing;
  /** The app's callbacks. */
  readonly hooks: Hooks<R>;
  /** How requests are read and answers written. */
  readonly protocol: Protocol;
}

export interface Services<R = never> {
  /** The store wrapped with the timeout and error mapping (and telemetry). */
  readonly store: Store;
  readonly pricing: Pricing;
  readonly tokenCounter: TokenCounter;
  /**
   * An exact prompt count that is free where the route calls a provider itself (a gateway
   * to Anthropic: count_tokens), used where the bound cannot decide: before a request is
   * refused or given less than it asked, and for content no rule bounds.
   */
  readonly countExactly:
    | ((req: R, input: Record<string, unknown>, model: string) => Promise<number>)
    | undefined;
  /** Who hears the engine's events: telemetry (spans and metrics; no-ops without an OTel SDK). */
  readonly events: EngineEvents;
  readonly logger: Logger;
  /** Runs a hook, logging what it throws or rejects with; a promise only if the hook returned one. */
  readonly guard: (hook: () => unknown) => Promise<void> | undefined;
}

export interface Policy<R = never> {
  /** Synchronous when the app's function is: no microtask per request for a fixed rule. */
  readonly budgets: Readonly<
    Record<
      string,
      (id: string, req: R) => BudgetWithAlerts | undefined | Promise<BudgetWithAlerts | undefined>
    >
  >;
  readonly rateLimits: Readonly<Record<string, readonly RateLimitRule[]>>;
  /**
   * A concurrency limit for the first scope `identify` returns (the caller's own), where
   * `rateLimits` gives that kind none: the gateways' default; `null` for `costTrackedSSE()`.
   */
  readonly callerConcurrency: ConcurrencyLimitRule | null;
  /** How much is reserved, and the cost cap. */
  readonly reservation: ReservationPolicy;
  /** Lease steps (`'lease'` only; 0 otherwise). */
  readonly leaseStepTokens: number;
  readonly leaseInitialTokens: number;
  readonly maxCostNanos: number | undefined;
  /** The route's own max_tokens limit; undefined: each model's published maximum. */
  readonly maxTokensLimit: number | undefined;
  readonly maxInputTokens: number;
  readonly serverTools: Readonly<Record<string, ServerToolLimit>>;
  readonly storeFailure: 'closed' | 'open';
  readonly budgetExceededStatus: number;
}

export interface Timing {
  readonly storeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly stallTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly handoverTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly usageIntervalMs: number;
  /** Reservation TTL: the stream cannot outlive its total timeout, plus a grace. */
  readonly reservationTtlMs: number;
  /** Delays before each settlement attempt (first is 0). */
  readonly settleRetryDelaysMs: readonly number[];
}

export interface Hooks<R = never> {
  readonly identify: MeteredOptions<R>['identify'];
  readonly request: (req: R, body: unknown) => RequestParams | Promise<RequestParams>;
  readonly upstream: ((req: R, meter: MeteredStream) => unknown) | undefined;
  readonly onSettle: (info: SettleInfo) => void | Promise<void>;
  readonly onSettleFailure: (info: SettleInfo, error: unknown) => void | Promise<void>;
  readonly onBudgetAlert: ((alert: BudgetAlert) => void | Promise<void>) | undefined;
}

export interface Protocol {
  /** How answers look on the wire: tokenmeter's SSE protocol, or a provider's (gateways). */
  readonly wire: WireProtocol;
  readonly encoder: SseEncoder;
  /** A body no parser read is read at admission, after `identify`, within these limits. */
  readonly body: BodyLimits;
  /**
   * True when `request()` reads the provider body from the parsed body (the default, and
   * the gateways): admission then writes the bounds it reserved into it (`req.body`).
   */
  readonly rewritesBody: boolean;
}

/** A budget rule and the alert thresholds of its scope (kept apart from what the store sees). */
export interface BudgetWithAlerts {
  rule: BudgetRule;
  alerts: readonly number[];
}

/** Every option of `costTrackedSSE()`: the compiler keeps this list and the interface equal. */
export const OPTION_NAMES = {
  store: true,
  identify: true,
  budgets: true,
  rateLimits: true,
  request: true,
  maxTokensLimit: true,
  maxInputTokens: true,
  maxBodyBytes: true,
  uploadsPerAddress: true,
  reservationTtlMs: true,
  pricing: true,
  tokenCounter: true,
  serverTools: true,
  reservation: true,
  maxCostPerRequestUsd: true,
  storeFailure: true,
  storeTimeoutMs: true,
  idleTimeoutMs: true,
  stallTimeoutMs: true,
  totalTimeoutMs: true,
  handoverTimeoutMs: true,
  keepAliveMs: true,
  usageIntervalMs: true,
  encoder: true,
  budgetExceededStatus: true,
  upstream: true,
  onBudgetAlert: true,
  onSettle: true,
  onSettleFailure: true,
  logger: true,
  telemetry: true,
} satisfies Record<keyof MeteredOptions<unknown>, true>;

/**
 * Every default of a metered route's options, in one place (the express README's options
 * table says the same). What differs between entries (the reservation mode, the body
 * limit) is in `ParseDefaults`.
 */
export const DEFAULTS = {
  storeTimeoutMs: 1_000,
  storeFailure: 'closed',
  totalTimeoutMs: 600_000,
  idleTimeoutMs: 60_000,
  stallTimeoutMs: 30_000,
  handoverTimeoutMs: 30_000,
  keepAliveMs: 15_000,
  usageIntervalMs: 250,
  /** A reservation outlives the stream's total timeout by this much. */
  reservationTtlGraceMs: 60_000,
  uploadsPerAddress: 16,
  maxInputTokens: 200_000,
  budgetExceededStatus: 402,
  budgetPeriod: 'day',
  /** `'fit'`: the least output a request is admitted for. */
  minOutputTokens: 1_024,
  /** `'lease'`: output reserved at admission, and added at each step. */
  initialOutputTokens: 256,
  stepOutputTokens: 256,
} as const;

/** What differs between `costTrackedSSE()` and a gateway when an option is left out. */
export interface ParseDefaults<R = unknown> {
  /** `'fit'` for `costTrackedSSE()`, `'lease'` for the gateways. */
  reservation: ReservationMode;
  /** 1 MiB for `costTrackedSSE()`, 20 MB for the gateways. */
  maxBodyBytes: number;
  /** Whether a body of any content type is read (a gateway's routes take JSON only). */
  readAnyBody: boolean;
  /** The function the options were given to, for error messages. */
  entry: string;
  /** True where there is no next handler to hand a stream to (Web, Fastify). */
  requireUpstream?: boolean;
  /** The wire protocol, when not tokenmeter's own (a gateway speaks its provider's). */
  wire?: (logger: Logger) => WireProtocol;
  /** Whether admission writes its bounds into the body (defaults to: no `request()` given). */
  rewritesBody?: boolean;
  /** Open streams per caller where `rateLimits` sets none (the gateways). */
  callerConcurrency?: ConcurrencyLimitRule;
  /** An exact, free prompt count (a gateway to Anthropic: count_tokens). */
  countExactly?: Services<R>['countExactly'];
}

/** What `costTrackedSSE()` assumes when an option is left out. */
export const SSE_DEFAULTS: ParseDefaults = {
  reservation: 'fit',
  maxBodyBytes: 1024 * 1024,
  readAnyBody: false,
  entry: 'costTrackedSSE',
};

/**
 * The rate limits of one scope of a request: the route's rules for its kind, plus the
 * caller concurrency default for the first scope when its kind has no concurrency rule.
 * Memoised per kind, so a request allocates nothing for it.
 */
export function rulesFor(
  config: Config,
  kind: string,
  first: boolean,
): readonly RateLimitRule[] | undefined {
  const own = config.policy.rateLimits[kind];
  const caller = config.policy.callerConcurrency;
  if (!first || caller === null) return own;
  let memo = CALLER_RULES.get(config);
  if (!memo) {
    memo = new Map();
    CALLER_RULES.set(config, memo);
  }
  let rules = memo.get(kind);
  if (!rules) {
    rules = own?.some((rule) => rule.kind === 'concurrency') ? own : [...(own ?? []), caller];
    if (memo.size < 256) memo.set(kind, rules);
  }
  return rules;
}

const CALLER_RULES = new WeakMap<Config, Map<string, readonly RateLimitRule[]>>();
