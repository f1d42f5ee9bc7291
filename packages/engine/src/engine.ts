/**
 * The engine: everything between a request and its settled stream, whatever the web
 * framework — identify, read the body, admit (rate limits, the reservation), open the
 * stream, pump the provider into it, end it once. An adapter gives it the request
 * (`Incoming`) and the response (`Transport`); the wire protocol (`config.wire`) decides
 * how answers look.
 */
import {
  type AdmitAllResult,
  type AdmitRejected,
  type AdmitRequest,
  admitAll,
  type BudgetRejection,
  type BudgetRule,
  type BudgetState,
  boundRequest,
  extendAll,
  forwardedBody,
  guessProvider,
  heuristicTokenCounter,
  type InputTokenCount,
  isThenable,
  measureInputTokens,
  measureInputTokensNow,
  planReservation,
  type RateLimitRule,
  type RejectionInfo,
  type RequestBound,
  type RequestFacts,
  type ReservationPlan,
  readRequestTerms,
  releaseAll,
  releaseLostAdmission,
  type ScopeRef,
  type TelemetryStart,
  TokenmeterError,
} from '@tokenmeter/core';
import { BudgetAlerts } from './alerts.js';
import { asObject, closeIfUnread, type Incoming, readJsonBody, UploadGate } from './body.js';
import {
  type Admission,
  budgetJson,
  MeteredStreamImpl,
  StreamRegistry,
  scopeKeyOf,
} from './metered-stream.js';
import { type Config, rulesFor } from './options.js';
import {
  rateLimitHeaders,
  rateLimitMessage,
  retryAfterMsOf,
  retryAfterSeconds,
  type ScopedRateLimit,
} from './rate-limit-headers.js';
import type { Transport } from './transport.js';
import type { RequestParams, Subject } from './types.js';
import { describe } from './upstream-errors.js';

/** The body, when it is a JSON object. */
function objectOrUndefined(body: unknown): Record<string, unknown> | undefined {
  const read = asObject(body);
  return read.ok ? read.body : undefined;
}

/** What a stream without budget alerts holds: one shared empty map, not one per stream. */
const NO_ALERTS: ReadonlyMap<string, readonly number[]> = new Map();

/** What an adapter does with an admitted stream. */
export interface ServeHooks {
  /** Called once the stream is open (`res.locals.tokenmeter` in Express). */
  admitted?(stream: MeteredStreamImpl): void;
  /**
   * Hands the stream to the app's own handler when the route has no `upstream()` (Express's
   * `next()`), inside the stream's span. Without it, such a route answers 500.
   */
  handOver?(stream: MeteredStreamImpl): void;
}

/**
 * The machinery of one metered route: `costTrackedSSE()`, a gateway, or a Web handler
 * each make one and give it every request.
 */
export class Engine<R> {
  readonly registry: StreamRegistry;

  constructor(
    readonly config: Config<R>,
    private readonly uploads = new UploadGate(config.body.uploadsPerAddress),
  ) {
    const tickMs = Math.max(
      5,
      Math.min(
        1_000,
        config.keepAliveMs / 2,
        config.idleTimeoutMs / 4,
        config.handoverTimeoutMs / 4,
        config.totalTimeoutMs / 4,
        // The tick also paces the throttled `usage` events.
        config.usageIntervalMs || 1_000,
      ),
    );
    this.registry = new StreamRegistry(
      Math.floor(tickMs),
      config.onBudgetAlert ? new BudgetAlerts(config) : undefined,
    );
  }

  /** Streams open right now (0 when idle): for a graceful shutdown, and for tests. */
  get activeStreams(): number {
    return this.registry.size;
  }

  /** Serves one request: answered (refused, or streamed and settled) when this resolves. */
  async serve(incoming: Incoming<R>, transport: Transport, hooks: ServeHooks = {}): Promise<void> {
    const config = this.config;
    // The active context now is the HTTP server span's, if the app has one: our parent.
    const begun = config.telemetry.begin();
    let stream: MeteredStreamImpl | undefined;
    try {
      stream = await admit(config, this.registry, this.uploads, incoming, transport, begun);
      if (!stream) return;
      hooks.admitted?.(stream);
      const admitted = stream;
      if (config.upstream) {
        const upstream = config.upstream;
        let source: unknown;
        try {
          // Inside the stream's span: the SDK's HTTP client spans nest under `chat {model}`.
          source = admitted.trace.run(() => upstream(incoming.req, admitted));
        } catch (error) {
          await stream.fail(error);
          return;
        }
        const ended = stream.stream(source);
        // Held by the stream while it needs it; this frame waits for the end without it.
        source = undefined;
        await ended;
        return;
      }
      const handOver = hooks.handOver;
      if (!handOver) throw new Error('a route without upstream() needs a handler to hand over to');
      admitted.trace.run(() => handOver(admitted));
    } catch (error) {
      // A bug of ours or a hook's: never leave the request hanging, never leak details.
      config.logger.error('tokenmeter: unexpected error in a metered route', {
        error: describe(error),
      });
      if (stream) await stream.fail(error);
      else {
        // Admitted, then failed before a stream took the reservations over: give them
        // (and their concurrency slots) back now rather than at their expiry.
        const held = ACQUIRED.get(transport);
        if (held) await releaseAll(config.store, held).catch(() => {});
        if (!transport.headersSent) {
          config.wire.reject(transport, 500, 'internal_error', 'Internal error.');
          config.telemetry.rejected(begun, { reason: 'internal_error', status: 500 });
        }
      }
    }
  }
}

/** The 401 of every entry: who pays is unknown. @internal */
export const UNAUTHENTICATED_MESSAGE =
  'Who is paying for this request is unknown: sign in or send a valid API key.';

/** Reservations a request was admitted with, until a stream owns them (released if admit() throws). */
const ACQUIRED = new WeakMap<object, readonly string[]>();

/** Admission tries at most this many times: a budget refusal tells what remains, to fit it. */
const ADMISSION_TRIES = 4;

/** max_tokens allowed for a model whose largest output the catalog does not publish. */
const DEFAULT_MAX_TOKENS_LIMIT = 128_000;

/** Everything before the stream. Answers and returns undefined when the request is not admitted. */
async function admit<R>(
  config: Config<R>,
  registry: StreamRegistry,
  uploads: UploadGate,
  incoming: Incoming<R>,
  transport: Transport,
  begun: TelemetryStart,
): Promise<MeteredStreamImpl | undefined> {
  const req = incoming.req;
  // What is known so far, for the rejection span and metric.
  const facts: RequestFacts = {};
  const reject = (
    status: number,
    code: string,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
    extra: Partial<RejectionInfo> = {},
  ) => {
    closeIfUnread(incoming, transport);
    config.wire.reject(transport, status, code, message, details, headers);
    config.telemetry.rejected(begun, { ...facts, ...extra, reason: code, status });
  };
  // Who pays comes first: an unidentified caller learns nothing about the request format.
  const identified = config.identify(req);
  const subject = isThenable(identified) ? await identified : identified;
  const scopes = toScopes(subject);
  if (!scopes) {
    reject(401, 'unauthenticated', UNAUTHENTICATED_MESSAGE);
    return undefined;
  }
  facts.scopes = scopes;
  // The body comes second, read here when no parser did: an unknown caller sent none of it.
  if (incoming.hasBodyToRead(config.body.always)) {
    const read = await readJsonBody(incoming, config.body, uploads);
    if (!read.ok) {
      reject(read.status, read.code, read.message, {}, read.headers);
      return undefined;
    }
    incoming.body = read.body;
  }

  let params: RequestParams;
  try {
    const requested = config.request(req, incoming.body);
    params = isThenable(requested) ? await requested : requested;
  } catch (error) {
    const message = TokenmeterError.isInstance(error)
      ? error.message
      : 'The request body is not a valid model request.';
    reject(400, 'invalid_request', message);
    return undefined;
  }
  const { model, maxTokens: askedMaxTokens } = params;
  facts.model = model;
  facts.maxTokens = askedMaxTokens;
  if (typeof model !== 'string' || model === '' || model.length > 256) {
    reject(400, 'invalid_request', '"model" must be a model id string.');
    return undefined;
  }
  let published: number | undefined;
  try {
    const priced = config.pricing.priceFor(model);
    facts.modelPriced = !priced.fallback;
    published = priced.price.maxOutputTokens;
    facts.provider = params.provider ?? guessProvider(model);
  } catch (error) {
    if (TokenmeterError.isInstance(error) && error.code === 'unknown_model') {
      reject(400, 'unknown_model', error.message, { model });
      return undefined;
    }
    throw error;
  }
  const maxTokensLimit = config.maxTokensLimit ?? published ?? DEFAULT_MAX_TOKENS_LIMIT;
  if (
    !Number.isSafeInteger(askedMaxTokens) ||
    askedMaxTokens < 1 ||
    askedMaxTokens > maxTokensLimit
  ) {
    const whose =
      config.maxTokensLimit !== undefined
        ? "this route's limit"
        : published !== undefined
          ? `the most ${model} writes`
          : 'the default limit for a model with no published maximum';
    reject(
      400,
      'invalid_request',
      `max_tokens must be a whole number from 1 to ${maxTokensLimit} (${whose}), got ${JSON.stringify(askedMaxTokens) ?? 'nothing'}.`,
      { maxTokensLimit },
    );
    return undefined;
  }

  const provider = params.provider ?? guessProvider(model);
  const tokenProvider = provider === 'openai' ? ('openai' as const) : ('anthropic' as const);
  const input = (params.input ?? {}) as Record<string, unknown>;
  const terms = readRequestTerms(input, tokenProvider);
  if (terms.problem) {
    reject(400, 'invalid_request', terms.problem);
    return undefined;
  }
  if (terms.unbounded) {
    reject(400, 'unbounded_request', terms.unbounded);
    return undefined;
  }
  // A service tier is priced as the catalog says, or refused: never assumed cheaper.
  let serviceTier: string | undefined;
  if (terms.serviceTier !== undefined) {
    const tier = config.pricing.catalog.provider(provider).serviceTiers[terms.serviceTier];
    if (!tier) {
      reject(
        400,
        'unbounded_request',
        `"service_tier": ${JSON.stringify(terms.serviceTier)} has no price in the pricing catalog: send "auto" or "default", or give its multiplier with PricingCatalog.extend().`,
      );
      return undefined;
    }
    if (tier.num > tier.den) serviceTier = terms.serviceTier;
  }

  const context = { model, provider: tokenProvider };
  let count: InputTokenCount;
  if (params.inputTokens !== undefined) {
    count = { tokens: params.inputTokens, upperBound: params.inputTokens, exact: true };
  } else {
    try {
      const measured = measureInputTokensNow(config.tokenCounter, input, context);
      count = isThenable(measured) ? await measured : measured;
    } catch (error) {
      // An exact counter (a provider call) failed: reserve on the heuristic's bound rather than fail.
      config.logger.warn('tokenmeter: the token counter failed; using the heuristic bound', {
        error: describe(error),
      });
      count = await measureInputTokens(heuristicTokenCounter, input, context);
    }
    // A part no rule bounds (a document by URL), or one an allowance bounds (images, PDF
    // pages): counted exactly where that is free.
    if (!count.exact && (count.unbounded !== undefined || count.approximate)) {
      count = (await countExactly(config, req, input, model)) ?? count;
    }
  }
  if (count.unbounded !== undefined && !count.exact) {
    reject(
      400,
      'unbounded_request',
      `The request holds ${count.unbounded}: its cost cannot be bounded before the call. Send the content inline${config.countExactly ? '' : ', or count prompts exactly (tokenCounter: anthropicTokenCounter(client))'}.`,
    );
    return undefined;
  }
  let inputTokens = count.tokens;
  if (!Number.isSafeInteger(inputTokens) || inputTokens < 0) {
    reject(400, 'invalid_request', 'inputTokens must be a whole number ≥ 0.');
    return undefined;
  }
  if (inputTokens > config.maxInputTokens) {
    reject(
      413,
      'input_too_large',
      `The prompt is about ${inputTokens} tokens; this route accepts at most ${config.maxInputTokens}.`,
      { inputTokens, maxInputTokens: config.maxInputTokens },
    );
    return undefined;
  }
  const boundFor = (c: InputTokenCount) => {
    const bounded = boundRequest(terms, {
      promptTokens: c.upperBound,
      maxTokens: askedMaxTokens,
      serverTools: config.serverTools,
    });
    if (bounded.bound && serviceTier) bounded.bound.serviceTier = serviceTier;
    return bounded;
  };
  let bounded = boundFor(count);
  if (bounded.unbounded !== undefined) {
    reject(400, 'unbounded_request', bounded.unbounded);
    return undefined;
  }
  let bound = bounded.bound;

  const relay = config.wire.relay?.(incoming.body);
  const planWith = (b: RequestBound, available: number | null) =>
    planReservation({
      bound: b,
      model,
      pricing: config.pricing,
      policy: config.reservation,
      availableNanos: available,
      // A whole-body answer cannot be watched as it comes: no lease for it.
      watchable: relay !== 'json',
      // Anthropic's least thinking budget is 1,024 tokens, and max_tokens must exceed it.
      minMaxTokens: terms.thinkingBudget !== undefined ? 1_025 : 1,
    });
  const planFor = (available: number | null) => planWith(bound, available);
  /** Whether a smaller prompt could change the plan: not when a prompt of nothing is refused. */
  const countCouldHelp = (b: RequestBound, c: InputTokenCount, within: number) =>
    planWith({ ...b, promptTokens: b.promptTokens - c.upperBound }, within).ok;
  const refuse = (
    plan: Extract<ReservationPlan, { ok: false }>,
    rejection: BudgetRejection | undefined,
    headers: Record<string, string> = {},
  ) => {
    if (plan.limit === 'max_cost_per_request') {
      reject(
        config.budgetExceededStatus,
        'budget_exceeded',
        `This route's cost cap per request cannot cover this request: it needs ${formatUsd(plan.needNanos)} (${needs(bound.promptTokens, plan.outputTokens, model, config.reservation.mode)}).`,
        { limit: 'max_cost_per_request', requiredUsd: plan.needNanos / 1e9 },
        headers,
        { reservedNanos: plan.needNanos },
      );
      return;
    }
    const budget = rejection?.budget;
    reject(
      config.budgetExceededStatus,
      'budget_exceeded',
      `The ${rejection?.scope.kind ?? 'budget'} budget cannot cover this request: ${budget ? `${formatUsd(budget.remainingNanos)} is left of ${formatUsd(budget.limitNanos)}, and it` : 'it'} needs ${formatUsd(plan.needNanos)} (${needs(bound.promptTokens, plan.outputTokens, model, config.reservation.mode)}).`,
      {
        ...(rejection ? { scope: rejection.scope.kind } : {}),
        requiredUsd: plan.needNanos / 1e9,
        ...(budget ? { budget: budgetJson(budget) } : {}),
      },
      headers,
      {
        ...(rejection ? { scope: rejection.scope.kind, retryAfterMs: rejection.retryAfterMs } : {}),
        reservedNanos: plan.needNanos,
        ...(budget ? { budgetRemainingNanos: budget.remainingNanos } : {}),
      },
    );
  };

  // Made before admission: it is also each scope's admission key, so an admission whose
  // reply is lost (a dropped store connection) can still be released by it.
  const requestId = crypto.randomUUID();
  let alerts: Map<string, readonly number[]> | undefined;
  const policies: Array<{
    scope: ScopeRef;
    budget?: BudgetRule;
    rateLimits?: readonly RateLimitRule[];
  }> = [];
  for (const [index, scope] of scopes.entries()) {
    const budgetOf = config.budgets[scope.kind];
    const budgetFor = budgetOf?.(scope.id, req);
    const withAlerts = isThenable(budgetFor) ? await budgetFor : budgetFor;
    const budget = withAlerts?.rule;
    if (withAlerts?.alerts.length) {
      alerts ??= new Map();
      alerts.set(scopeKeyOf(scope), withAlerts.alerts);
    }
    const rateLimits = rulesFor(config, scope.kind, index === 0);
    if (!budget && !rateLimits?.length) continue;
    policies.push({
      scope,
      ...(budget ? { budget } : {}),
      ...(rateLimits?.length ? { rateLimits } : {}),
    });
  }

  // Planned as if the budget covers it; a budget's refusal says what is left, and the
  // request is planned again within it (fit, lease) or refused (strict). Before it is given
  // less than it asked, its prompt is counted exactly where that is free.
  let available: number | null = null;
  let lastRejection: BudgetRejection | undefined;
  let plan: Extract<ReservationPlan, { ok: true }> | undefined;
  let result: AdmitAllResult | undefined;
  let requests: AdmitRequest[] = [];
  for (let attempt = 0; ; attempt++) {
    const planned = planFor(available);
    if (!planned.ok) {
      refuse(planned, lastRejection, lastRejection ? rejectionHeaders(lastRejection) : {});
      return undefined;
    }
    plan = planned;
    const requestKey = attempt === 0 ? requestId : `${requestId}.${attempt}`;
    requests = policies.map((policy) => {
      // Built field by field: no intermediate objects for the optional parts.
      const request: { -readonly [K in keyof AdmitRequest]: AdmitRequest[K] } = {
        scope: policy.scope,
        reserveNanos: planned.reserveNanos,
        estimatedTokens: inputTokens + planned.coveredOutputTokens,
        ttlMs: config.reservationTtlMs,
        requestKey,
      };
      if (policy.budget) request.budget = policy.budget;
      if (policy.rateLimits) request.rateLimits = policy.rateLimits;
      return request;
    });
    if (requests.length === 0) break;
    try {
      result = await admitAll(config.store, requests);
    } catch (error) {
      if (!(TokenmeterError.isInstance(error) && error.code === 'store_unavailable')) throw error;
      // An admission may have run with its reply lost: release it by key in the background
      // (the store may be down right now), never delaying the answer. Past the last try,
      // the reservation's TTL still bounds it.
      for (const request of requests) {
        void releaseLostAdmission(config.store, request.scope, requestKey, {
          delaysMs: LOST_ADMISSION_RETRY_MS,
        });
      }
      if (config.storeFailure === 'closed') {
        config.logger.warn('tokenmeter: store unavailable, request refused (fail closed)', {
          error: describe(error),
        });
        reject(
          503,
          'store_unavailable',
          'Budgets cannot be checked right now; try again shortly.',
          {},
          { 'Retry-After': '1' },
        );
        return undefined;
      }
      config.logger.warn(
        'tokenmeter: store unavailable, request let through unmetered (fail open); nothing is reserved for it',
        { error: describe(error) },
      );
      result = undefined;
      break;
    }
    if (result.admitted) break;
    const rejection = result.rejection;
    if (rejection.reason === 'rate_limit') {
      const refused = rateLimitRefusal(rejection);
      reject(429, 'rate_limited', refused.message, refused.details, refused.headers, {
        scope: rejection.scope.kind,
        retryAfterMs: refused.retryAfterMs,
      });
      return undefined;
    }
    lastRejection = rejection;
    available = Math.min(available ?? Number.POSITIVE_INFINITY, rejection.budget.remainingNanos);
    if (!count.exact && countCouldHelp(bound, count, available)) {
      const exact = await countExactly(config, req, input, model);
      if (exact) {
        count = exact;
        inputTokens = exact.tokens;
        bounded = boundFor(count);
        if (bounded.bound) bound = bounded.bound;
      }
    }
    if (attempt + 1 >= ADMISSION_TRIES) {
      refuse(
        {
          ok: false,
          limit: 'budget',
          needNanos: plan.reserveNanos,
          outputTokens: plan.coveredOutputTokens,
        },
        rejection,
        rejectionHeaders(rejection),
      );
      return undefined;
    }
  }

  const reservationIds = result?.admitted ? result.reservationIds : [];
  if (reservationIds.length > 0) ACQUIRED.set(transport, reservationIds);
  if (transport.closed) {
    // The client left while we were admitting: nothing reached the provider.
    if (reservationIds.length > 0) await releaseAll(config.store, reservationIds).catch(() => {});
    config.telemetry.rejected(begun, {
      ...facts,
      reason: 'client_disconnected',
      reservationsReleased: reservationIds.length,
    });
    return undefined;
  }

  let tightest: BudgetState | null = null;
  const limits: ScopedRateLimit[] = [];
  for (const accepted of result?.admitted ? result.results : []) {
    if (
      accepted.budget &&
      (!tightest || accepted.budget.remainingNanos < tightest.remainingNanos)
    ) {
      tightest = accepted.budget;
    }
    for (const state of accepted.rateLimits) limits.push({ scope: accepted.scope, state });
  }
  // A lease is sent with the most output the budget has left, so that no one call can be
  // billed past it (its answer is watched and the lease grown below that).
  let reservedNanos = plan.reserveNanos;
  if (config.reservation.mode === 'lease' && relay !== 'json' && tightest) {
    const total = plan.reserveNanos + tightest.remainingNanos;
    let fitted = planFor(total);
    if (fitted.ok && fitted.maxTokens < askedMaxTokens && !count.exact) {
      // Trimmed on the prompt's bound: count exactly, and give back what that frees.
      const exact = await countExactly(config, req, input, model);
      if (exact) {
        count = exact;
        inputTokens = exact.tokens;
        bounded = boundFor(count);
        if (bounded.bound) bound = bounded.bound;
        const recounted = planFor(total);
        const freed = recounted.ok ? plan.reserveNanos - recounted.reserveNanos : 0;
        if (recounted.ok && freed > 0 && (await shrink(config, reservationIds, freed))) {
          fitted = recounted;
          reservedNanos = recounted.reserveNanos;
        }
      }
    }
    if (fitted.ok) plan = { ...fitted, reserveNanos: reservedNanos };
  }

  // Forward what was reserved: the body sent carries the bounds the reservation priced.
  const forwarded = forwardedBody(input, tokenProvider, {
    maxTokens: plan.maxTokens,
    serverTools: config.serverTools,
  });
  if (config.rewritesBody && params.input !== undefined) incoming.body = forwarded;
  // Where the body sent is not known to carry max_tokens as planned (a route's own
  // request()), the stream itself stops at it.
  const stopAt = !config.rewritesBody && plan.maxTokens < askedMaxTokens ? plan.maxTokens : null;
  const covered = plan.coveredOutputTokens;
  const headers = { ...rateLimitHeaders(limits), 'X-Request-Id': requestId };
  const admission: Admission = {
    requestId,
    scopes,
    reservationIds,
    ...(result?.admitted && result.results[0]
      ? { admittedAt: result.results[0].reservation.createdAt }
      : {}),
    metered: requests.length > 0,
    reservedNanos,
    model,
    maxTokens: plan.maxTokens,
    requestedMaxTokens: askedMaxTokens,
    fittedTo: plan.fittedTo,
    forwarded: forwarded === input ? {} : changedFields(input, forwarded),
    inputTokens,
    inputTokensBound: count.upperBound,
    budget: tightest,
    leasedOutputTokens: covered < plan.maxTokens ? covered : (stopAt ?? Number.POSITIVE_INFINITY),
    capOutputTokens: stopAt ?? Number.POSITIVE_INFINITY,
    stopLimit: plan.fittedTo === 'budget' ? 'budget_fit' : 'max_cost_per_request',
    bound,
    reservedOutputTokens: covered,
    provider,
    alerts: alerts ?? NO_ALERTS,
    modelPriced: facts.modelPriced !== false,
    input: forwarded,
    body: objectOrUndefined(incoming.body),
    telemetry: begun,
    headers,
  };
  if (relay) admission.relay = relay;
  let stream: MeteredStreamImpl;
  try {
    stream = new MeteredStreamImpl(config, registry, transport, admission);
  } catch (error) {
    // Our bug (or a tracer that threw): the request never started, its admission is undone.
    config.logger.error('tokenmeter: the stream could not be created', { error: describe(error) });
    if (reservationIds.length > 0) await releaseAll(config.store, reservationIds).catch(() => {});
    config.wire.reject(transport, 500, 'internal_error', 'Internal error.');
    return undefined;
  }
  // A stream that could not open has ended (reservations released, JSON 500 sent).
  if (!stream.open(headers)) {
    return undefined;
  }
  return stream;
}

/** The exact prompt count, where the route can get one for free; undefined when it cannot. */
async function countExactly<R>(
  config: Config<R>,
  req: R,
  input: Record<string, unknown>,
  model: string,
): Promise<InputTokenCount | undefined> {
  if (!config.countExactly) return undefined;
  try {
    const tokens = await config.countExactly(req, input, model);
    if (!Number.isSafeInteger(tokens) || tokens < 0) return undefined;
    return { tokens, upperBound: tokens, exact: true };
  } catch (error) {
    config.logger.warn('tokenmeter: the exact token count failed; using the bound', {
      error: describe(error),
    });
    return undefined;
  }
}

/** Gives back part of every reservation (an exact count freed it); false if the store failed. */
async function shrink(config: Config, ids: readonly string[], nanos: number): Promise<boolean> {
  if (ids.length === 0) return true;
  try {
    return (await extendAll(config.store, ids, { addNanos: -nanos })).extended;
  } catch {
    return false;
  }
}

/** The top-level fields `forwarded` changed or added, for `meter.params`. */
function changedFields(
  input: Record<string, unknown>,
  forwarded: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(forwarded)) if (input[key] !== value) out[key] = value;
  return out;
}

/** What a refused reservation would have covered, in words. */
function needs(promptTokens: number, output: number, model: string, mode: string): string {
  const outputText =
    mode === 'strict' ? `max_tokens ${output}` : `at least ${output} output tokens`;
  return `the prompt up to ${promptTokens} tokens and ${outputText} on ${model}`;
}

/** RateLimit headers (and Retry-After) of a refused admission. */
/**
 * The 429 for a rate-limit refusal, as every entry answers it (the gateway's count_tokens
 * too): the message, the details, `RateLimit` / `RateLimit-Policy` and `Retry-After`.
 * @internal
 */
export function rateLimitRefusal(rejection: Extract<AdmitRejected, { reason: 'rate_limit' }>) {
  const retryAfterMs = retryAfterMsOf(rejection);
  return {
    message: rateLimitMessage(rejection),
    details: {
      scope: rejection.scope.kind,
      limit: rejection.rateLimit.kind,
      retryAfterSeconds: retryAfterMs === null ? null : Math.ceil(retryAfterMs / 1000),
    },
    headers: rejectionHeaders(rejection),
    retryAfterMs,
  };
}

function rejectionHeaders(rejection: AdmitRejected): Record<string, string> {
  const limits: ScopedRateLimit[] = rejection.rateLimits.map((state) => ({
    scope: rejection.scope,
    state,
  }));
  const headers = rateLimitHeaders(limits);
  const retryAfterMs = retryAfterMsOf(rejection);
  if (retryAfterMs !== null) headers['Retry-After'] = retryAfterSeconds(retryAfterMs);
  return headers;
}

/** When to try releasing a possibly lost admission by key: the store may be recovering. */
const LOST_ADMISSION_RETRY_MS = [1_000, 5_000, 15_000, 30_000] as const;

function formatUsd(nanos: number): string {
  return `$${(nanos / 1e9).toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}`;
}

/** The scopes a subject names (`{ user, team }` or refs); undefined when none. @internal */
export function toScopes(subject: Subject | undefined | null): ScopeRef[] | undefined {
  if (!subject) return undefined;
  const scopes: ScopeRef[] = Array.isArray(subject)
    ? subject.filter(
        (s): s is ScopeRef => !!s && typeof s.kind === 'string' && typeof s.id === 'string',
      )
    : Object.entries(subject as Record<string, string | undefined>)
        .filter(
          (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '',
        )
        .map(([kind, id]) => ({ kind, id }));
  return scopes.length > 0 ? scopes : undefined;
}
