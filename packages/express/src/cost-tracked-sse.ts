/**
 * `costTrackedSSE()`: the front door. Turns an Express route into a metered stream:
 * validates the request, identifies who pays, admits it against rate limits and a
 * worst-case budget reservation (plain JSON errors before any SSE byte), then opens the
 * SSE stream and hands the route handler a `MeteredStream` to stream the provider into.
 */
import { randomUUID } from 'node:crypto';
import {
  type AdmitAllResult,
  type AdmitRequest,
  admitAll,
  type BudgetState,
  boundRequest,
  guessProvider,
  heuristicTokenCounter,
  type InputTokenCount,
  isThenable,
  measureInputTokens,
  measureInputTokensNow,
  type RejectionInfo,
  type RequestFacts,
  readRequestTerms,
  releaseAll,
  releaseLostAdmission,
  type ScopeRef,
  type TelemetryStart,
  TokenmeterError,
  worstCaseCost,
} from '@tokenmeter/core';
import {
  type Admission,
  budgetJson,
  describe,
  MeteredStreamImpl,
  maxOutputWithin,
  StreamRegistry,
  scopeKeyOf,
} from './metered-stream.js';
import { type Config, parseOptions } from './options.js';
import { rateLimitHeaders, retryAfterSeconds, type ScopedRateLimit } from './rate-limit-headers.js';
import type {
  CostTrackedSSEOptions,
  MeteredRequest,
  MeteredResponse,
  MeteredStream,
  RequestParams,
  Subject,
} from './types.js';

type Next = (error?: unknown) => void;

/** What a stream without budget alerts holds: one shared empty map, not one per stream. */
const NO_ALERTS: ReadonlyMap<string, readonly number[]> = new Map();

/**
 * Creates the middleware. Mount it after your auth and `express.json()`.
 *
 * @example
 * app.post('/api/chat', express.json(), auth, costTrackedSSE({
 *   store: createMemoryStore(),
 *   identify: (req) => req.user && { user: req.user.id },
 *   budgets: { user: { limitUsd: '5.00', period: 'day' } },
 *   rateLimits: { user: [{ kind: 'requests', limit: 20, windowMs: 60_000 }] },
 *   upstream: (req, meter) =>
 *     anthropic.messages.create({ ...req.body, ...meter.params, stream: true }, { signal: meter.signal }),
 * }));
 */
export function costTrackedSSE(options: CostTrackedSSEOptions) {
  return meteredHandler(parseOptions(options));
}

/**
 * The request handler behind `costTrackedSSE()` and the gateways: admission, the stream,
 * its one end — the same machinery whatever the wire protocol (`config.wire`).
 * @internal
 */
export function meteredHandler(config: Config) {
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
  const registry = new StreamRegistry(Math.floor(tickMs));

  const middleware = async function costTrackedSSE(
    req: MeteredRequest,
    res: MeteredResponse,
    next: Next,
  ): Promise<void> {
    // The active context now is the HTTP server span's, if the app has one: our parent.
    const begun = config.telemetry.begin();
    let stream: MeteredStreamImpl | undefined;
    try {
      stream = await admit(config, registry, req, res, begun);
      if (!stream) return;
      const admitted = stream;
      if (config.upstream) {
        const upstream = config.upstream;
        let source: unknown;
        try {
          // Inside the stream's span: the SDK's HTTP client spans nest under `chat {model}`.
          source = admitted.trace.run(() => upstream(req, admitted));
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
      // Handler style: errors after the SSE headers are ours to end the stream with.
      ownErrorsAfterHeaders(req);
      admitted.trace.run(() => next());
    } catch (error) {
      // A bug of ours or a hook's: never leave the request hanging, never leak details.
      config.logger.error('tokenmeter: unexpected error in costTrackedSSE', {
        error: describe(error),
      });
      if (stream) await stream.fail(error);
      else if (!res.headersSent) {
        config.wire.reject(res, 500, 'internal_error', 'Internal error.');
        config.telemetry.rejected(begun, { reason: 'internal_error', status: 500 });
      }
    }
  };
  // Streams open right now (0 when idle): for a graceful shutdown, and for tests that
  // check nothing was left running.
  Object.defineProperty(middleware, 'activeStreams', { get: () => registry.size });
  return middleware as typeof middleware & { readonly activeStreams: number };
}

/** Everything before the stream. Answers and returns undefined when the request is not admitted. */
async function admit(
  config: Config,
  registry: StreamRegistry,
  req: MeteredRequest,
  res: MeteredResponse,
  begun: TelemetryStart,
): Promise<MeteredStreamImpl | undefined> {
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
    config.wire.reject(res, status, code, message, details, headers);
    config.telemetry.rejected(begun, { ...facts, ...extra, reason: code, status });
  };
  // Who pays comes first: an unidentified caller learns nothing about the request format.
  const identified = config.identify(req);
  const subject = isThenable(identified) ? await identified : identified;
  const scopes = toScopes(subject);
  if (!scopes) {
    reject(
      401,
      'unauthenticated',
      'Who is paying for this request is unknown: sign in or send a valid API key.',
    );
    return undefined;
  }
  facts.scopes = scopes;

  let params: RequestParams;
  try {
    const requested = config.request(req);
    params = isThenable(requested) ? await requested : requested;
  } catch (error) {
    const message = TokenmeterError.isInstance(error)
      ? error.message
      : 'The request body is not a valid model request.';
    reject(400, 'invalid_request', message);
    return undefined;
  }
  const { model, maxTokens } = params;
  facts.model = model;
  facts.maxTokens = maxTokens;
  if (typeof model !== 'string' || model === '' || model.length > 256) {
    reject(400, 'invalid_request', '"model" must be a model id string.');
    return undefined;
  }
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 1 || maxTokens > config.maxTokensLimit) {
    reject(
      400,
      'invalid_request',
      `max_tokens must be a whole number from 1 to ${config.maxTokensLimit}, got ${JSON.stringify(maxTokens) ?? 'nothing'}.`,
      { maxTokensLimit: config.maxTokensLimit },
    );
    return undefined;
  }
  try {
    facts.modelPriced = !config.pricing.priceFor(model).fallback;
    facts.provider = params.provider ?? guessProvider(model);
  } catch (error) {
    if (TokenmeterError.isInstance(error) && error.code === 'unknown_model') {
      reject(400, 'unknown_model', error.message, { model });
      return undefined;
    }
    throw error;
  }

  const provider = params.provider ?? guessProvider(model);
  const tokenProvider = provider === 'openai' ? ('openai' as const) : ('anthropic' as const);
  const terms = readRequestTerms(params.input ?? {}, tokenProvider);
  if (terms.problem) {
    reject(400, 'invalid_request', terms.problem);
    return undefined;
  }
  if (terms.unbounded) {
    reject(400, 'unbounded_request', terms.unbounded);
    return undefined;
  }
  let count: InputTokenCount;
  if (params.inputTokens !== undefined) {
    count = { tokens: params.inputTokens, upperBound: params.inputTokens, exact: true };
  } else {
    const request = (params.input ?? {}) as object;
    const context = { model, provider: tokenProvider };
    try {
      const measured = measureInputTokensNow(config.tokenCounter, request, context);
      count = isThenable(measured) ? await measured : measured;
    } catch (error) {
      // An exact counter (a provider call) failed: reserve on the heuristic's bound rather than fail.
      config.logger.warn('tokenmeter: the token counter failed; using the heuristic bound', {
        error: describe(error),
      });
      count = await measureInputTokens(heuristicTokenCounter, request, context);
    }
  }
  const inputTokens = count.tokens;
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
  const bounded = boundRequest(terms, {
    promptTokens: count.upperBound,
    maxTokens,
    serverTools: config.serverTools,
  });
  if (bounded.unbounded !== undefined) {
    reject(400, 'unbounded_request', bounded.unbounded);
    return undefined;
  }
  const bound = bounded.bound;

  // The worst case of the request with `output` output tokens, priced like settlement.
  const costFor = (output: number) =>
    worstCaseCost({ ...bound, outputTokens: output }, model, config.pricing).nanos;
  let capOutputTokens = Number.POSITIVE_INFINITY;
  if (config.maxCostNanos !== undefined) {
    if (costFor(0) > config.maxCostNanos) {
      reject(
        config.budgetExceededStatus,
        'budget_exceeded',
        'The prompt alone costs more than the per-request cost cap.',
        {
          limit: 'max_cost_per_request',
        },
        {},
        { reservedNanos: costFor(0) },
      );
      return undefined;
    }
    // A cap the worst case stays under never stops the stream.
    if (costFor(maxTokens) > config.maxCostNanos) {
      capOutputTokens = maxOutputWithin(costFor, config.maxCostNanos, maxTokens);
    }
  }
  const incremental = config.leaseStepTokens > 0;
  const reservedOutput = Math.min(
    maxTokens,
    capOutputTokens,
    incremental ? config.leaseInitialTokens : maxTokens,
  );
  const reserveNanos = costFor(reservedOutput);
  // Output the reservation covers before the stream must grow it (incremental) or stop
  // (the cost cap). A worst-case reservation without a lower cap covers max_tokens, which
  // the provider never passes: nothing to watch.
  const leasedOutputTokens = reservedOutput < maxTokens ? reservedOutput : Number.POSITIVE_INFINITY;

  // Made before admission: it is also each scope's admission key, so an admission whose
  // reply is lost (a dropped store connection) can still be released by it.
  const requestId = randomUUID();
  const requests: AdmitRequest[] = [];
  let alerts: Map<string, readonly number[]> | undefined;
  for (const scope of scopes) {
    const budgetOf = config.budgets[scope.kind];
    const budgetFor = budgetOf?.(scope.id, req);
    const withAlerts = isThenable(budgetFor) ? await budgetFor : budgetFor;
    const budget = withAlerts?.rule;
    if (withAlerts?.alerts.length) {
      alerts ??= new Map();
      alerts.set(scopeKeyOf(scope), withAlerts.alerts);
    }
    const rateLimits = config.rateLimits[scope.kind];
    if (!budget && !rateLimits?.length) continue;
    // Built field by field: no intermediate objects for the optional parts.
    const request: { -readonly [K in keyof AdmitRequest]: AdmitRequest[K] } = {
      scope,
      reserveNanos,
      estimatedTokens: inputTokens + reservedOutput,
      ttlMs: config.reservationTtlMs,
      requestKey: requestId,
    };
    if (budget) request.budget = budget;
    if (rateLimits?.length) request.rateLimits = rateLimits;
    requests.push(request);
  }

  let result: AdmitAllResult | undefined;
  if (requests.length > 0) {
    try {
      result = await admitAll(config.store, requests);
    } catch (error) {
      if (!(TokenmeterError.isInstance(error) && error.code === 'store_unavailable')) throw error;
      // An admission may have run with its reply lost: release it by key in the background
      // (the store may be down right now), never delaying the answer. Past the last try,
      // the reservation's TTL still bounds it.
      for (const request of requests) {
        void releaseLostAdmission(config.store, request.scope, requestId, {
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
    }
  }

  if (result && !result.admitted) {
    const rejection = result.rejection;
    const limits: ScopedRateLimit[] = rejection.rateLimits.map((state) => ({
      scope: rejection.scope,
      state,
    }));
    const headers = rateLimitHeaders(limits);
    if (rejection.retryAfterMs !== null)
      headers['Retry-After'] = retryAfterSeconds(rejection.retryAfterMs);
    if (rejection.reason === 'rate_limit') {
      reject(
        429,
        'rate_limited',
        `Too many ${rejection.rateLimit.kind} for this ${rejection.scope.kind}: the limit is ${rejection.rateLimit.limit} per ${Math.round(rejection.rateLimit.windowMs / 1000)} s.`,
        {
          scope: rejection.scope.kind,
          limit: rejection.rateLimit.kind,
          retryAfterSeconds:
            rejection.retryAfterMs === null ? null : Math.ceil(rejection.retryAfterMs / 1000),
        },
        headers,
        { scope: rejection.scope.kind, retryAfterMs: rejection.retryAfterMs },
      );
    } else {
      reject(
        config.budgetExceededStatus,
        'budget_exceeded',
        `The ${rejection.scope.kind} budget cannot cover this request (up to ${formatUsd(reserveNanos)} reserved for max_tokens ${maxTokens}).`,
        {
          scope: rejection.scope.kind,
          requiredUsd: reserveNanos / 1e9,
          budget: budgetJson(rejection.budget),
        },
        headers,
        {
          scope: rejection.scope.kind,
          reservedNanos: reserveNanos,
          budgetRemainingNanos: rejection.budget.remainingNanos,
          retryAfterMs: rejection.retryAfterMs,
        },
      );
    }
    return undefined;
  }

  const reservationIds = result?.admitted ? result.reservationIds : [];
  if (res.destroyed || res.closed) {
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
  const headers = { ...rateLimitHeaders(limits), 'X-Request-Id': requestId };
  const admission: Admission = {
    requestId,
    scopes,
    reservationIds,
    metered: requests.length > 0,
    reservedNanos: reserveNanos,
    model,
    maxTokens,
    inputTokens,
    inputTokensBound: count.upperBound,
    budget: tightest,
    leasedOutputTokens,
    capOutputTokens,
    bound,
    reservedOutputTokens: reservedOutput,
    provider,
    alerts: alerts ?? NO_ALERTS,
    modelPriced: facts.modelPriced !== false,
    input: params.input,
    telemetry: begun,
    headers,
  };
  const relay = config.wire.relay?.(req);
  if (relay) admission.relay = relay;
  let stream: MeteredStreamImpl;
  try {
    stream = new MeteredStreamImpl(config, registry, req, res, admission);
  } catch (error) {
    // Our bug (or a tracer that threw): the request never started, its admission is undone.
    config.logger.error('tokenmeter: the stream could not be created', { error: describe(error) });
    if (reservationIds.length > 0) await releaseAll(config.store, reservationIds).catch(() => {});
    config.wire.reject(res, 500, 'internal_error', 'Internal error.');
    return undefined;
  }
  if (res.locals) res.locals.tokenmeter = stream satisfies MeteredStream;
  // A stream that could not open has ended (reservations released, JSON 500 sent).
  if (!stream.open(headers)) {
    return undefined;
  }
  return stream;
}

/** Apps whose error chain ends in our handler (added once, after everything the app has). */
const APPS_WITH_OUR_ERRORS = new WeakSet<object>();

/**
 * An error that reaches Express's error chain after a metered stream opened (a handler
 * that threw, or rejected under Express 5) would end in Express's final handler, which
 * destroys the socket once headers are sent. Our error handler, added at the end of the
 * app's chain, ends the stream with an `error` event (`handler_error`) instead. The app's
 * own error handlers run first and see the error with `res.headersSent` true and
 * `res.locals.tokenmeter` set; one that passes it on with `next(err)` (as Express advises
 * for errors after headers) hands it to us.
 */
function ownErrorsAfterHeaders(req: MeteredRequest): void {
  const app = (req as { app?: { use?: (fn: unknown) => unknown } }).app;
  if (!app || typeof app.use !== 'function' || APPS_WITH_OUR_ERRORS.has(app)) return;
  APPS_WITH_OUR_ERRORS.add(app);
  app.use(function tokenmeterStreamErrors(
    error: unknown,
    _req: unknown,
    res: MeteredResponse,
    next: Next,
  ) {
    const stream = res.locals?.tokenmeter;
    if (stream instanceof MeteredStreamImpl) {
      // Ours: end it with an error event (or, if it already ended, nothing more to do).
      if (!stream.ended) void stream.fail(error);
      return;
    }
    next(error);
  });
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
