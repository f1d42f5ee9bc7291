/**
 * The named checks `parseOptions()` runs, one per option or group of options: each takes
 * what the app gave, fills in its default, and throws a `TokenmeterError`
 * (`invalid_config`) that says what to write when the value cannot work.
 */
import {
  DEFAULT_SERVER_TOOL_LIMITS,
  Pricing,
  type RateLimitRule,
  type ServerToolLimit,
  type Store,
  TokenmeterError,
  usd,
} from '@tokenmeter/core';
import { isThenable, type ReservationMode } from '@tokenmeter/core/meter';
import type { TokenCounter } from '@tokenmeter/core/tokens';
import type { BodyLimits } from './body.js';
import {
  type BudgetWithAlerts,
  DEFAULTS,
  type Hooks,
  OPTION_NAMES,
  type ParseDefaults,
  type Policy,
  type Services,
  type Timing,
} from './options.js';
import type { BudgetInput, Logger, MeteredOptions, ReservationStrategy } from './types.js';

/**
 * The checks every entry makes before anything else: an options object, no unknown
 * option names, `identify()`, and `upstream()` where there is no next handler.
 */
export function checkEntry<R>(options: MeteredOptions<R>, defaults: ParseDefaults<R>): void {
  const entry = defaults.entry;
  if (typeof options !== 'object' || options === null) {
    throw new TokenmeterError(
      'invalid_config',
      `${entry}(options) needs an options object with at least { store, identify }.`,
    );
  }
  checkOptionNames(options, OPTION_NAMES, entry);
  if (typeof options.identify !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} needs identify(req): who pays, from something your app trusts — never the request body. ` +
        'For example: identify: (req) => req.user && { user: req.user.id } (after your auth middleware), ' +
        "or identify: (req) => ({ key: verifiedKeyId(req.get('authorization')) }).",
    );
  }
  if (defaults.requireUpstream && typeof options.upstream !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      `${entry} needs upstream(req, meter): the provider call, started with meter.signal, e.g. upstream: (req, meter) => anthropic.messages.create({ ...meter.body, ...meter.params, stream: true }, { signal: meter.signal }).`,
    );
  }
}

/**
 * Refuses option names the function does not know, naming the nearest known one: a typo
 * (`budget:` for `budgets:`) would otherwise be ignored in silence — no budget at all.
 */
export function checkOptionNames(
  options: object,
  known: Readonly<Record<string, unknown>>,
  fn: string,
): void {
  for (const name of Object.keys(options)) {
    if (Object.hasOwn(known, name)) continue;
    const nearest = nearestName(name, Object.keys(known));
    throw new TokenmeterError(
      'invalid_config',
      `${fn} has no option "${name}"${nearest ? `: did you mean "${nearest}"?` : '.'} Its options: ${Object.keys(known).join(', ')}.`,
    );
  }
}

/** The known name closest to `name` (edit distance, case-insensitive), if any is close. */
function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * One store timeout: the store's own when it has one (the Redis store's `timeoutMs`), else
 * `storeTimeoutMs`. Two different figures would leave one of them a lie.
 */
export function storeTimeoutOf(store: Store, asked: number | undefined): number {
  const own = (store as { timeoutMs?: unknown }).timeoutMs;
  const declared = typeof own === 'number' && Number.isFinite(own) && own > 0 ? own : undefined;
  if (declared !== undefined && asked !== undefined && asked !== declared) {
    throw new TokenmeterError(
      'invalid_config',
      `storeTimeoutMs (${asked} ms) differs from the store's own timeoutMs (${declared} ms): set the store timeout once, on the store (createRedisStore({ timeoutMs })), and leave storeTimeoutMs out.`,
    );
  }
  return positiveInt(asked ?? declared ?? DEFAULTS.storeTimeoutMs, 'storeTimeoutMs');
}

/** Every timeout and interval; a reservation must outlive the longest stream. */
export function parseTiming<R>(options: MeteredOptions<R>, storeTimeoutMs: number): Timing {
  const ms = (name: keyof typeof DEFAULTS & keyof MeteredOptions<R>) =>
    positiveInt((options[name] as number | undefined) ?? (DEFAULTS[name] as number), name);
  const totalTimeoutMs = ms('totalTimeoutMs');
  const reservationTtlMs = positiveInt(
    options.reservationTtlMs ?? totalTimeoutMs + DEFAULTS.reservationTtlGraceMs,
    'reservationTtlMs',
  );
  if (reservationTtlMs <= totalTimeoutMs) {
    throw new TokenmeterError(
      'invalid_config',
      `reservationTtlMs (${reservationTtlMs}) must be longer than totalTimeoutMs (${totalTimeoutMs}): a stream must never outlive its reservation.`,
    );
  }
  return Object.freeze({
    storeTimeoutMs,
    idleTimeoutMs: ms('idleTimeoutMs'),
    stallTimeoutMs: ms('stallTimeoutMs'),
    totalTimeoutMs,
    handoverTimeoutMs: ms('handoverTimeoutMs'),
    keepAliveMs: ms('keepAliveMs'),
    usageIntervalMs: nonNegativeInt(
      options.usageIntervalMs ?? DEFAULTS.usageIntervalMs,
      'usageIntervalMs',
    ),
    reservationTtlMs,
    settleRetryDelaysMs: SETTLE_RETRY_DELAYS_MS,
  });
}

/** Delays before each settlement attempt: at once, then three retries over ~1.3 s. */
const SETTLE_RETRY_DELAYS_MS: readonly number[] = Object.freeze([0, 50, 250, 1_000]);

export function checkPricing(pricing: Pricing | undefined): Pricing {
  const given = pricing ?? new Pricing();
  if (!(given instanceof Pricing) && typeof (given as Pricing).costOf !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      'pricing must be a Pricing instance: new Pricing({ catalog, unknownModel }).',
    );
  }
  return given;
}

/** Who may spend what: budgets, rate limits, the reservation and cap, the request limits. */
export function parsePolicy<R>(options: MeteredOptions<R>, defaults: ParseDefaults<R>): Policy<R> {
  const storeFailure = options.storeFailure ?? DEFAULTS.storeFailure;
  if (storeFailure !== 'closed' && storeFailure !== 'open') {
    throw new TokenmeterError(
      'invalid_config',
      "storeFailure must be 'closed' (default: answer 503) or 'open' (let requests through unmetered).",
    );
  }
  const strategy = parseReservation(options.reservation ?? defaults.reservation);
  const maxCostNanos = parseCap(options.maxCostPerRequestUsd);
  return Object.freeze({
    budgets: parseBudgets(options.budgets),
    rateLimits: parseRateLimits(options.rateLimits),
    callerConcurrency: defaults.callerConcurrency ?? null,
    reservation: {
      mode: strategy.mode,
      minOutputTokens: strategy.minOutputTokens,
      leaseInitialTokens: strategy.initialOutputTokens,
      capNanos: maxCostNanos ?? null,
    },
    leaseStepTokens: strategy.mode === 'lease' ? strategy.stepOutputTokens : 0,
    leaseInitialTokens: strategy.initialOutputTokens,
    maxCostNanos,
    maxTokensLimit:
      options.maxTokensLimit === undefined
        ? undefined
        : positiveInt(options.maxTokensLimit, 'maxTokensLimit'),
    maxInputTokens: positiveInt(
      options.maxInputTokens ?? DEFAULTS.maxInputTokens,
      'maxInputTokens',
    ),
    serverTools: parseServerTools(options.serverTools),
    storeFailure,
    budgetExceededStatus: httpStatus(options.budgetExceededStatus ?? DEFAULTS.budgetExceededStatus),
  });
}

function parseCap(amount: string | number | undefined): number | undefined {
  if (amount === undefined) return undefined;
  const nanos = usd(amount);
  if (nanos <= 0) {
    throw new TokenmeterError(
      'invalid_config',
      'maxCostPerRequestUsd must be above 0 (leave it out for no cap).',
    );
  }
  return nanos;
}

/** Budgets per scope kind, each as a function of the scope's id (sync when the app's is). */
function parseBudgets<R>(input: MeteredOptions<R>['budgets']): Policy<R>['budgets'] {
  const budgets: Record<string, Policy<R>['budgets'][string]> = {};
  for (const [kind, given] of Object.entries(input ?? {})) {
    if (typeof given === 'function') {
      const convert = (value: Awaited<ReturnType<typeof given>>, id: string) =>
        value === undefined
          ? undefined
          : toBudgetRule(value, `budgets.${kind}(${JSON.stringify(id).slice(0, 40)})`);
      budgets[kind] = (id, req) => {
        const value = given(id, req);
        return isThenable(value)
          ? Promise.resolve(value).then((v) => convert(v, id))
          : convert(value, id);
      };
    } else {
      const rule = toBudgetRule(given, `budgets.${kind}`);
      budgets[kind] = () => rule;
    }
  }
  return Object.freeze(budgets);
}

function parseRateLimits<R>(input: MeteredOptions<R>['rateLimits']): Policy<R>['rateLimits'] {
  const rateLimits: Record<string, readonly RateLimitRule[]> = {};
  for (const [kind, rules] of Object.entries(input ?? {})) {
    if (!Array.isArray(rules)) {
      throw new TokenmeterError(
        'invalid_config',
        `rateLimits.${kind} must be an array of { kind: 'requests' | 'tokens', limit, windowMs } or { kind: 'concurrency', limit }.`,
      );
    }
    for (const [i, rule] of rules.entries()) checkRateLimit(rule, `rateLimits.${kind}[${i}]`);
    if (rules.filter((rule) => rule.kind === 'concurrency').length > 1) {
      throw new TokenmeterError(
        'invalid_config',
        `rateLimits.${kind} has more than one concurrency limit; keep one (the smaller).`,
      );
    }
    rateLimits[kind] = rules;
  }
  return Object.freeze(rateLimits);
}

/** The limits of a body read at admission. */
export function parseBodyLimits<R>(
  options: MeteredOptions<R>,
  defaults: ParseDefaults<R>,
): BodyLimits {
  return Object.freeze({
    maxBytes: positiveInt(options.maxBodyBytes ?? defaults.maxBodyBytes, 'maxBodyBytes'),
    uploadsPerAddress:
      options.uploadsPerAddress === false
        ? null
        : positiveInt(options.uploadsPerAddress ?? DEFAULTS.uploadsPerAddress, 'uploadsPerAddress'),
    always: defaults.readAnyBody,
  });
}

/** Runs a user hook: what it throws or rejects with is logged, and the stream carries on. */
export function hookGuard(logger: Logger): Services['guard'] {
  const hookFailed = (error: unknown) => {
    logger.error('tokenmeter: a hook threw; the stream carried on', {
      error: error instanceof Error ? error.message : String(error),
    });
  };
  return (hook) => {
    try {
      const result = hook();
      if (isThenable(result)) return Promise.resolve(result).then(() => undefined, hookFailed);
    } catch (error) {
      hookFailed(error);
    }
    return undefined;
  };
}

/** The default `onSettleFailure`: a charge that could not be recorded, logged to reconcile. */
export function logUnrecordedCharge(logger: Logger): Hooks['onSettleFailure'] {
  return (info, error) =>
    logger.error(
      info.unmetered
        ? 'tokenmeter: a stream ran unmetered (the store failed open); record this charge by hand'
        : 'tokenmeter: settlement could not be recorded; the reservation will expire — reconcile this charge',
      {
        requestId: info.requestId,
        scopes: info.scopes,
        costNanos: info.final.costNanos,
        outcome: info.outcome,
        error: error instanceof Error ? error.message : String(error),
      },
    );
}

/** Writes to the console when the app gave no logger. */
export const CONSOLE_LOGGER: Logger = {
  warn: (message, fields) => console.warn(message, fields ?? ''),
  error: (message, fields) => console.error(message, fields ?? ''),
};

/** A reservation strategy, as given, with its defaults. */
export function parseReservation(input: ReservationStrategy): {
  mode: ReservationMode;
  minOutputTokens: number;
  initialOutputTokens: number;
  stepOutputTokens: number;
} {
  const fail = () =>
    new TokenmeterError(
      'invalid_config',
      "reservation must be 'strict', 'fit' or 'lease', or { mode, minOutputTokens?, initialOutputTokens?, stepOutputTokens? }.",
    );
  let mode: ReservationMode;
  let given: {
    minOutputTokens?: number;
    initialOutputTokens?: number;
    stepOutputTokens?: number;
  } = {};
  if (typeof input === 'string') {
    // 'worst-case' is the earlier name of 'strict'.
    mode = input === 'worst-case' ? 'strict' : (input as ReservationMode);
  } else if (typeof input === 'object' && input !== null && 'incremental' in input) {
    // { incremental } is the earlier way to ask for leases.
    mode = 'lease';
    given = input.incremental ?? {};
  } else if (typeof input === 'object' && input !== null) {
    mode = input.mode;
    given = input;
  } else {
    throw fail();
  }
  if (mode !== 'strict' && mode !== 'fit' && mode !== 'lease') throw fail();
  return {
    mode,
    minOutputTokens: positiveInt(
      given.minOutputTokens ?? DEFAULTS.minOutputTokens,
      'reservation.minOutputTokens',
    ),
    initialOutputTokens: positiveInt(
      given.initialOutputTokens ?? DEFAULTS.initialOutputTokens,
      'reservation.initialOutputTokens',
    ),
    stepOutputTokens: positiveInt(
      given.stepOutputTokens ?? DEFAULTS.stepOutputTokens,
      'reservation.stepOutputTokens',
    ),
  };
}

export function checkTokenCounter(counter: TokenCounter): TokenCounter {
  if (
    typeof counter !== 'object' ||
    counter === null ||
    typeof counter.countInputTokens !== 'function'
  ) {
    throw new TokenmeterError(
      'invalid_config',
      'tokenCounter must have countInputTokens(request, ctx) (and optionally measureInputTokens): use heuristicTokenCounter or anthropicTokenCounter(client).',
    );
  }
  return counter;
}

export function parseServerTools(
  input: Readonly<Record<string, ServerToolLimit>> | undefined,
): Readonly<Record<string, ServerToolLimit>> {
  const limits: Record<string, ServerToolLimit> = { ...DEFAULT_SERVER_TOOL_LIMITS };
  for (const [name, limit] of Object.entries(input ?? {})) {
    const what = `serverTools.${name}`;
    if (typeof limit !== 'object' || limit === null) {
      throw new TokenmeterError(
        'invalid_config',
        `${what} must be { defaultMaxUses, inputTokensPerUse } (e.g. { defaultMaxUses: 3, inputTokensPerUse: 15000 }).`,
      );
    }
    limits[name] = {
      defaultMaxUses: positiveInt(limit.defaultMaxUses, `${what}.defaultMaxUses`),
      inputTokensPerUse: nonNegativeInt(limit.inputTokensPerUse, `${what}.inputTokensPerUse`),
    };
  }
  return Object.freeze(limits);
}

function toBudgetRule(input: BudgetInput, what: string): BudgetWithAlerts {
  if (typeof input !== 'object' || input === null) {
    throw new TokenmeterError(
      'invalid_config',
      `${what} must be { limitUsd, period } (e.g. { limitUsd: '5.00', period: 'day' }).`,
    );
  }
  const limitNanos =
    input.limitNanos ?? (input.limitUsd === undefined ? undefined : usd(input.limitUsd));
  if (limitNanos === undefined || !Number.isSafeInteger(limitNanos) || limitNanos < 0) {
    throw new TokenmeterError(
      'invalid_config',
      `${what} needs a non-negative limitUsd (e.g. '5.00') or limitNanos.`,
    );
  }
  const alerts = input.alerts ?? [];
  if (
    !Array.isArray(alerts) ||
    alerts.some((p) => typeof p !== 'number' || !Number.isFinite(p) || p <= 0 || p > 1_000)
  ) {
    throw new TokenmeterError(
      'invalid_config',
      `${what}.alerts must be percentages of the limit above 0 (e.g. [50, 80, 100]).`,
    );
  }
  return {
    rule: { limitNanos, period: input.period ?? DEFAULTS.budgetPeriod },
    alerts: [...new Set(alerts)].sort((a, b) => a - b),
  };
}

function checkRateLimit(rule: RateLimitRule, what: string): void {
  if (rule?.kind === 'concurrency') {
    nonNegativeInt(rule.limit, `${what}.limit`);
    if (rule.windowMs !== undefined) {
      throw new TokenmeterError(
        'invalid_config',
        `${what} is a concurrency limit (open streams at once), which has no window: drop windowMs.`,
      );
    }
    return;
  }
  if (!rule || (rule.kind !== 'requests' && rule.kind !== 'tokens')) {
    throw new TokenmeterError(
      'invalid_config',
      `${what}.kind must be 'requests', 'tokens' or 'concurrency'.`,
    );
  }
  nonNegativeInt(rule.limit, `${what}.limit`);
  positiveInt(rule.windowMs, `${what}.windowMs`);
}

function positiveInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TokenmeterError(
      'invalid_config',
      `${what} must be a positive whole number, got ${String(value)}.`,
    );
  }
  return value;
}

function nonNegativeInt(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TokenmeterError(
      'invalid_config',
      `${what} must be a whole number ≥ 0, got ${String(value)}.`,
    );
  }
  return value;
}

function httpStatus(value: number): number {
  if (!Number.isInteger(value) || value < 400 || value > 599) {
    throw new TokenmeterError(
      'invalid_config',
      `budgetExceededStatus must be a 4xx or 5xx status, got ${String(value)}.`,
    );
  }
  return value;
}
