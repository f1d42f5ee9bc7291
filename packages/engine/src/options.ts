/**
 * `parseOptions()`: validates the options of `costTrackedSSE()` once, at creation, and
 * merges defaults into a fully-required `Config`. A broken contract throws here with a
 * message that says what to do; nothing is discovered per request.
 */

import {
  assertStore,
  type BudgetRule,
  type ConcurrencyLimitRule,
  DEFAULT_SERVER_TOOL_LIMITS,
  guardStore,
  heuristicTokenCounter,
  isThenable,
  jsonSseEncoder,
  Pricing,
  type RateLimitRule,
  type ReservationMode,
  type ReservationPolicy,
  type ServerToolLimit,
  type SseEncoder,
  type Store,
  type StreamOutcome,
  Telemetry,
  type TokenCounter,
  TokenmeterError,
  usdToNanos,
} from '@tokenmeter/core';
import type { BodyLimits } from './body.js';
import { sendJsonError } from './http-errors.js';
import type { Transport } from './transport.js';
import type {
  BudgetAlert,
  BudgetInput,
  Logger,
  MeteredOptions,
  MeteredStream,
  RequestParams,
  ReservationStrategy,
  SettleInfo,
} from './types.js';
import type { UpstreamFailure } from './upstream-errors.js';

export interface Config<R = never> {
  /** The store wrapped with the timeout and error mapping. */
  store: Store;
  identify: MeteredOptions<R>['identify'];
  /** Synchronous when the app's function is: no microtask per request for a fixed rule. */
  budgets: Record<
    string,
    (id: string, req: R) => BudgetWithAlerts | undefined | Promise<BudgetWithAlerts | undefined>
  >;
  onBudgetAlert: ((alert: BudgetAlert) => void | Promise<void>) | undefined;
  rateLimits: Record<string, readonly RateLimitRule[]>;
  /**
   * A concurrency limit for the first scope `identify` returns (the caller's own), where
   * `rateLimits` gives that kind none: the gateways' default; `null` for `costTrackedSSE()`.
   */
  callerConcurrency: ConcurrencyLimitRule | null;
  request: (req: R, body: unknown) => RequestParams | Promise<RequestParams>;
  /** A body no parser read is read at admission, after `identify`, within these limits. */
  body: BodyLimits;
  /**
   * True when `request()` reads the provider body from the parsed body (the default, and
   * the gateways): admission then writes the bounds it reserved into it (`req.body`).
   */
  rewritesBody: boolean;
  /** The route's own max_tokens limit; undefined: each model's published maximum. */
  maxTokensLimit: number | undefined;
  maxInputTokens: number;
  pricing: Pricing;
  tokenCounter: TokenCounter;
  /**
   * An exact prompt count that is free where the route calls a provider itself (a gateway
   * to Anthropic: count_tokens), used where the bound cannot decide: before a request is
   * refused or given less than it asked, and for content no rule bounds.
   */
  countExactly:
    | ((req: R, input: Record<string, unknown>, model: string) => Promise<number>)
    | undefined;
  serverTools: Readonly<Record<string, ServerToolLimit>>;
  /** How much is reserved, and the cost cap. */
  reservation: ReservationPolicy;
  /** Lease steps (`'lease'` only; 0 otherwise). */
  leaseStepTokens: number;
  leaseInitialTokens: number;
  maxCostNanos: number | undefined;
  storeFailure: 'closed' | 'open';
  storeTimeoutMs: number;
  idleTimeoutMs: number;
  stallTimeoutMs: number;
  totalTimeoutMs: number;
  handoverTimeoutMs: number;
  keepAliveMs: number;
  usageIntervalMs: number;
  encoder: SseEncoder;
  budgetExceededStatus: number;
  upstream: ((req: R, meter: MeteredStream) => unknown) | undefined;
  onSettle: (info: SettleInfo) => void | Promise<void>;
  onSettleFailure: (info: SettleInfo, error: unknown) => void | Promise<void>;
  logger: Logger;
  /** Runs a user hook; a hook that throws or rejects is logged and ignored. */
  /** Runs a hook, logging what it throws or rejects with; a promise only if the hook returned one. */
  guard: (hook: () => unknown) => Promise<void> | undefined;
  /** Delays before each settlement attempt (first is 0). */
  settleRetryDelaysMs: readonly number[];
  /** Reservation TTL: the stream cannot outlive its total timeout, plus a grace. */
  reservationTtlMs: number;
  /** Spans and metrics (no-ops without an OTel SDK). */
  telemetry: Telemetry;
  /** How answers look on the wire: tokenmeter's SSE protocol, or a provider's (gateways). */
  wire: WireProtocol;
}

/**
 * What differs between tokenmeter's own SSE protocol and a gateway speaking a provider's
 * API; everything else (admission, the stream, its end) is shared.
 * @internal
 */
export interface WireProtocol {
  /** A plain error answer before any byte of a stream (admission, bad input). */
  reject(
    transport: Transport,
    status: number,
    code: string,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): void;
  /**
   * For a gateway: how the admitted request is answered — `'sse'` (a stream relayed event
   * by event) or `'json'` (one provider body) — read from the request. Undefined: the
   * SSE headers and `meta` go out at admission (tokenmeter's protocol).
   */
  relay?: (body: unknown) => 'sse' | 'json';
  /** The answer when a stream ends before any header went out. */
  endBeforeHeaders(
    transport: Transport,
    outcome: StreamOutcome,
    failure: UpstreamFailure | undefined,
  ): void;
}

/** tokenmeter's own protocol: JSON errors, SSE with `meta` at admission. */
export const TOKENMETER_WIRE: WireProtocol = {
  reject: (transport, status, code, message, details, headers) =>
    sendJsonError(transport, status, code, message, details, headers),
  endBeforeHeaders: (transport) =>
    sendJsonError(transport, 500, 'internal_error', 'Internal error.'),
};

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

const consoleLogger: Logger = {
  warn: (message, fields) => console.warn(message, fields ?? ''),
  error: (message, fields) => console.error(message, fields ?? ''),
};

/** What differs between `costTrackedSSE()` and a gateway when an option is left out. */
export interface ParseDefaults {
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
}

/** What `costTrackedSSE()` assumes when an option is left out. */
export const SSE_DEFAULTS: ParseDefaults = {
  reservation: 'fit',
  maxBodyBytes: 1024 * 1024,
  readAnyBody: false,
  entry: 'costTrackedSSE',
};

export function parseOptions<R>(
  options: MeteredOptions<R>,
  defaults: ParseDefaults = SSE_DEFAULTS,
): Config<R> {
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
  const rawStore = assertStore(options.store);
  const logger = options.logger ?? consoleLogger;
  // One store timeout: the store's own when it has one (the Redis store's timeoutMs), else
  // storeTimeoutMs (default 1,000 ms). Two different figures would leave one of them a lie.
  const ownTimeoutMs = (rawStore as { timeoutMs?: unknown }).timeoutMs;
  const declared =
    typeof ownTimeoutMs === 'number' && Number.isFinite(ownTimeoutMs) && ownTimeoutMs > 0
      ? ownTimeoutMs
      : undefined;
  if (
    declared !== undefined &&
    options.storeTimeoutMs !== undefined &&
    options.storeTimeoutMs !== declared
  ) {
    throw new TokenmeterError(
      'invalid_config',
      `storeTimeoutMs (${options.storeTimeoutMs} ms) differs from the store's own timeoutMs (${declared} ms): set the store timeout once, on the store (createRedisStore({ timeoutMs })), and leave storeTimeoutMs out.`,
    );
  }
  const storeTimeoutMs = positiveInt(
    options.storeTimeoutMs ?? declared ?? DEFAULTS.storeTimeoutMs,
    'storeTimeoutMs',
  );
  const totalTimeoutMs = positiveInt(
    options.totalTimeoutMs ?? DEFAULTS.totalTimeoutMs,
    'totalTimeoutMs',
  );
  const idleTimeoutMs = positiveInt(
    options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    'idleTimeoutMs',
  );
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
  const storeFailure = options.storeFailure ?? DEFAULTS.storeFailure;
  if (storeFailure !== 'closed' && storeFailure !== 'open') {
    throw new TokenmeterError(
      'invalid_config',
      "storeFailure must be 'closed' (default: answer 503) or 'open' (let requests through unmetered).",
    );
  }
  const pricing = options.pricing ?? new Pricing();
  if (!(pricing instanceof Pricing) && typeof (pricing as Pricing).costOf !== 'function') {
    throw new TokenmeterError(
      'invalid_config',
      'pricing must be a Pricing instance: new Pricing({ catalog, unknownModel }).',
    );
  }
  const budgets: Config<R>['budgets'] = {};
  for (const [kind, input] of Object.entries(options.budgets ?? {})) {
    if (typeof input === 'function') {
      const convert = (value: Awaited<ReturnType<typeof input>>, id: string) =>
        value === undefined
          ? undefined
          : toBudgetRule(value, `budgets.${kind}(${JSON.stringify(id).slice(0, 40)})`);
      budgets[kind] = (id, req) => {
        const value = input(id, req);
        return isThenable(value)
          ? Promise.resolve(value).then((v) => convert(v, id))
          : convert(value, id);
      };
    } else {
      const rule = toBudgetRule(input, `budgets.${kind}`);
      budgets[kind] = () => rule;
    }
  }
  const rateLimits: Config<R>['rateLimits'] = {};
  for (const [kind, rules] of Object.entries(options.rateLimits ?? {})) {
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
  const strategy = parseReservation(options.reservation ?? defaults.reservation);
  const maxCostNanos =
    options.maxCostPerRequestUsd === undefined
      ? undefined
      : usdToNanos(options.maxCostPerRequestUsd);
  if (maxCostNanos !== undefined && maxCostNanos <= 0) {
    throw new TokenmeterError(
      'invalid_config',
      'maxCostPerRequestUsd must be above 0 (leave it out for no cap).',
    );
  }
  const hookFailed = (error: unknown) => {
    logger.error('tokenmeter: a hook threw; the stream carried on', {
      error: error instanceof Error ? error.message : String(error),
    });
  };
  const guard = (hook: () => unknown): Promise<void> | undefined => {
    try {
      const result = hook();
      if (isThenable(result)) return Promise.resolve(result).then(() => undefined, hookFailed);
    } catch (error) {
      hookFailed(error);
    }
    return undefined;
  };
  // Model names on metrics are this catalog's ids: what pricing accepts, bounded.
  const telemetry = new Telemetry(options.telemetry ?? {}, pricing.catalog);
  const reservation: ReservationPolicy = {
    mode: strategy.mode,
    minOutputTokens: strategy.minOutputTokens,
    leaseInitialTokens: strategy.initialOutputTokens,
    capNanos: maxCostNanos ?? null,
  };
  return {
    // Timed outside the guard: a timeout counts as a failure at the guard's limit.
    store: telemetry.instrumentStore(guardStore(rawStore, { timeoutMs: storeTimeoutMs })),
    identify: options.identify,
    budgets,
    rateLimits,
    callerConcurrency: null,
    request: options.request ?? defaultRequest,
    body: {
      maxBytes: positiveInt(options.maxBodyBytes ?? defaults.maxBodyBytes, 'maxBodyBytes'),
      uploadsPerAddress:
        options.uploadsPerAddress === false
          ? null
          : positiveInt(
              options.uploadsPerAddress ?? DEFAULTS.uploadsPerAddress,
              'uploadsPerAddress',
            ),
      always: defaults.readAnyBody,
    },
    rewritesBody: options.request === undefined,
    maxTokensLimit:
      options.maxTokensLimit === undefined
        ? undefined
        : positiveInt(options.maxTokensLimit, 'maxTokensLimit'),
    maxInputTokens: positiveInt(
      options.maxInputTokens ?? DEFAULTS.maxInputTokens,
      'maxInputTokens',
    ),
    pricing,
    tokenCounter: checkTokenCounter(options.tokenCounter ?? heuristicTokenCounter),
    countExactly: undefined,
    serverTools: parseServerTools(options.serverTools),
    reservation,
    leaseStepTokens: strategy.mode === 'lease' ? strategy.stepOutputTokens : 0,
    leaseInitialTokens: strategy.initialOutputTokens,
    maxCostNanos,
    storeFailure,
    storeTimeoutMs,
    idleTimeoutMs,
    stallTimeoutMs: positiveInt(
      options.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs,
      'stallTimeoutMs',
    ),
    totalTimeoutMs,
    handoverTimeoutMs: positiveInt(
      options.handoverTimeoutMs ?? DEFAULTS.handoverTimeoutMs,
      'handoverTimeoutMs',
    ),
    keepAliveMs: positiveInt(options.keepAliveMs ?? DEFAULTS.keepAliveMs, 'keepAliveMs'),
    usageIntervalMs: nonNegativeInt(
      options.usageIntervalMs ?? DEFAULTS.usageIntervalMs,
      'usageIntervalMs',
    ),
    encoder: options.encoder ?? jsonSseEncoder,
    budgetExceededStatus: httpStatus(options.budgetExceededStatus ?? DEFAULTS.budgetExceededStatus),
    upstream: options.upstream,
    onSettle: options.onSettle ?? (() => {}),
    onBudgetAlert: options.onBudgetAlert,
    onSettleFailure:
      options.onSettleFailure ??
      ((info, error) =>
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
        )),
    logger,
    guard,
    settleRetryDelaysMs: [0, 50, 250, 1_000],
    reservationTtlMs,
    telemetry,
    wire: TOKENMETER_WIRE,
  };
}

/** Reads an Anthropic Messages or OpenAI Chat Completions request body (parsed JSON). */
export function defaultRequest(_req: unknown, parsed: unknown): RequestParams {
  const body = parsed as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new TokenmeterError(
      'invalid_argument',
      'The request body must be a JSON object (sent as application/json).',
    );
  }
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    throw new TokenmeterError('invalid_argument', '"model" is required: a model id string.');
  }
  const messages = body.messages ?? body.input;
  if (!Array.isArray(messages) && typeof messages !== 'string') {
    throw new TokenmeterError(
      'invalid_argument',
      '"messages" is required: a non-empty array of messages.',
    );
  }
  if (messages.length === 0) {
    throw new TokenmeterError('invalid_argument', '"messages" must not be empty.');
  }
  const temperature = body.temperature;
  const maxTemperature = model.startsWith('claude') ? 1 : 2;
  if (
    temperature !== undefined &&
    (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= maxTemperature))
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      `"temperature" must be a number from 0 to ${maxTemperature} for ${model}.`,
    );
  }
  const maxTokens = body.max_tokens ?? body.max_completion_tokens;
  return { model, maxTokens: maxTokens as number, input: body };
}

/** A reservation strategy, as given, with its defaults. */
function parseReservation(input: ReservationStrategy): {
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

function checkTokenCounter(counter: TokenCounter): TokenCounter {
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

function parseServerTools(
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

/** A budget rule and the alert thresholds of its scope (kept apart from what the store sees). */
export interface BudgetWithAlerts {
  rule: BudgetRule;
  alerts: readonly number[];
}

function toBudgetRule(input: BudgetInput, what: string): BudgetWithAlerts {
  if (typeof input !== 'object' || input === null) {
    throw new TokenmeterError(
      'invalid_config',
      `${what} must be { limitUsd, period } (e.g. { limitUsd: '5.00', period: 'day' }).`,
    );
  }
  const limitNanos =
    input.limitNanos ?? (input.limitUsd === undefined ? undefined : usdToNanos(input.limitUsd));
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
  const own = config.rateLimits[kind];
  const caller = config.callerConcurrency;
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
