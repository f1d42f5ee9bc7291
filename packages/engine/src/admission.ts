/**
 * Admission: everything between a request's arrival and its stream, as named steps read top
 * to bottom in `admit()`. Each step returns what it learned or a `Rejection` — a refusal
 * as data (status, code, message, headers), answered by the entry in its wire protocol and
 * recorded in telemetry in one place. Nothing is reserved before the last step; a step
 * after it that fails gives the reservations back.
 */
import {
  type BudgetRule,
  type BudgetState,
  MAX_NANOS,
  type RateLimitRule,
  type ScopeRef,
  TokenmeterError,
} from '@tokenmeter/core';
import {
  guessProvider,
  isThenable,
  planReservation,
  type RequestBound,
  type ReservationPlan,
  worstCaseCost,
} from '@tokenmeter/core/meter';
import {
  boundRequest,
  providerOfApi,
  type RequestRules,
  type RequestTerms,
  readRequestTerms,
  requestRules,
} from '@tokenmeter/core/providers';
import {
  type AdmitAllResult,
  type AdmitRejected,
  type AdmitRequest,
  admitAll,
  type BudgetRejection,
  extendAll,
  releaseLostAdmission,
} from '@tokenmeter/core/store';
import {
  heuristicTokenCounter,
  type InputTokenCount,
  measureInputTokens,
  measureInputTokensNow,
} from '@tokenmeter/core/tokens';
import type { Admission } from './admission-result.js';
import { scopeKeyOf } from './alerts.js';
import { asObject, type Incoming, readJsonBody, type UploadGate } from './body.js';
import type { RejectionInfo, RequestFacts } from './events.js';
import { type Config, rulesFor } from './options.js';
import {
  rateLimitHeaders,
  rateLimitMessage,
  retryAfterMsOf,
  retryAfterSeconds,
  type ScopedRateLimit,
} from './rate-limit-headers.js';
import { budgetJson } from './settlement.js';
import type { RequestParams, Subject } from './types.js';
import { describe } from './upstream-errors.js';

/** A refusal before any stream: what to answer, and what telemetry records of it. */
export interface Rejection {
  readonly rejected: true;
  /** The HTTP status; null when nobody is left to answer (the client left). */
  readonly status: number | null;
  readonly code: string;
  readonly message: string;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;
  /** What the rejection's span and metric record beyond the request's facts. */
  readonly info: Partial<RejectionInfo>;
}

export function rejection(
  status: number | null,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
  info: Partial<RejectionInfo> = {},
): Rejection {
  return { rejected: true, status, code, message, details, headers, info };
}

export function isRejection(value: unknown): value is Rejection {
  return (value as Rejection | undefined)?.rejected === true;
}

/** The 401 of every entry: who pays is unknown. */
export const UNAUTHENTICATED_MESSAGE =
  'Who is paying for this request is unknown: sign in or send a valid API key.';

/** What admission decided: everything the stream needs but the telemetry it starts under. */
export type Admitted = Omit<Admission, 'telemetry'>;

/** What admission works with: the route's settings, the request, and where facts go. */
export interface AdmissionContext<R> {
  config: Config<R>;
  incoming: Incoming<R>;
  uploads: UploadGate;
  /** What is known so far, for a rejection's span and metric (filled step by step). */
  facts: RequestFacts;
  /** Told the reservation ids as soon as they exist (to give back if a later step throws). */
  acquired(ids: readonly string[]): void;
  /** True once the client has gone. */
  clientGone(): boolean;
}

/** What a stream without budget alerts holds: one shared empty map, not one per stream. */
const NO_ALERTS: ReadonlyMap<string, readonly number[]> = new Map();

/** Admission tries at most this many times: a budget refusal tells what remains, to fit it. */
const ADMISSION_TRIES = 4;

/** max_tokens allowed for a model whose largest output the catalog does not publish. */
const DEFAULT_MAX_TOKENS_LIMIT = 128_000;

/** When to try releasing a possibly lost admission by key: the store may be recovering. */
const LOST_ADMISSION_RETRY_MS = [1_000, 5_000, 15_000, 30_000] as const;

/** The life of a request up to its stream: each step in order, the first refusal ends it. */
export async function admit<R>(ctx: AdmissionContext<R>): Promise<Admitted | Rejection> {
  const { config, incoming, facts } = ctx;
  // 1–2. Who pays, then the body (an unknown caller sends none of it).
  const scopes = await identifyThenRead(ctx);
  if (isRejection(scopes)) return scopes;
  // 3. What is asked: the model, max_tokens, and the terms the bill depends on.
  const ask = await readAsk(config, incoming, facts);
  if (isRejection(ask)) return ask;
  // 4. The prompt, counted or bounded, and the request's worst case.
  const prompt = await measurePrompt(config, incoming.req, ask);
  if (isRejection(prompt)) return prompt;
  // 5. Each scope's budget and rate limits, and the plan of what to reserve.
  const policies = await policiesOf(config, scopes, incoming.req);
  const planner = new Planner(config, ask, prompt, config.protocol.wire.relay?.(incoming.body));
  // 6. Rate limits and the reservation: one atomic store call per try.
  const reserved = await reserve(ctx, planner, policies);
  if (isRejection(reserved)) return reserved;
  ctx.acquired(reserved.reservationIds);
  if (ctx.clientGone()) {
    return rejection(
      null,
      'client_disconnected',
      'The client left.',
      {},
      {},
      {
        reservationsReleased: reserved.reservationIds.length,
      },
    );
  }
  // 7. A lease is sent with the most output the budget has left.
  const { tightest, limits } = tightestOf(reserved.result);
  const plan = await fitLease(ctx, planner, reserved, tightest);
  // 8. Forward what was reserved: the body sent carries the bounds the plan priced.
  return admitted(ctx, planner, { ...reserved, plan, tightest, limits, alerts: policies.alerts });
}

/**
 * Steps 1 and 2, the start of every entry (the gateway's count_tokens too): who pays comes
 * first — an unidentified caller learns nothing about the request format — then the body,
 * read here when no parser did.
 */
export async function identifyThenRead<R>(
  ctx: AdmissionContext<R>,
): Promise<ScopeRef[] | Rejection> {
  const scopes = await identifyCaller(ctx.config, ctx.incoming.req);
  if (!scopes) return rejection(401, 'unauthenticated', UNAUTHENTICATED_MESSAGE);
  ctx.facts.scopes = scopes;
  return (await readBody(ctx)) ?? scopes;
}

/** Step 1: the scopes that pay, from `identify()`; undefined when nobody does. */
async function identifyCaller<R>(config: Config<R>, req: R): Promise<ScopeRef[] | undefined> {
  const identified = config.hooks.identify(req);
  return toScopes(isThenable(identified) ? await identified : identified);
}

/** Step 2: the JSON body, read within the limits when no parser read it. */
async function readBody<R>(ctx: AdmissionContext<R>): Promise<Rejection | undefined> {
  const { config, incoming } = ctx;
  if (!incoming.hasBodyToRead(config.protocol.body.always)) return undefined;
  const read = await readJsonBody(incoming, config.protocol.body, ctx.uploads);
  if (!read.ok) return rejection(read.status, read.code, read.message, {}, read.headers);
  incoming.body = read.body;
  return undefined;
}

/** What the request asks for, checked: the model, its output, the terms that price it. */
interface Ask {
  params: RequestParams;
  model: string;
  provider: string;
  /** The provider API (its adapter's name): Chat Completions and Responses are both OpenAI's. */
  api: string;
  /** How the API's requests are read and forwarded. */
  rules: RequestRules;
  modelPriced: boolean;
  maxTokens: number;
  input: Record<string, unknown>;
  terms: RequestTerms;
  serviceTier: string | undefined;
}

/** Step 3: the route's `request()`, the model and max_tokens checked, the request terms read. */
async function readAsk<R>(
  config: Config<R>,
  incoming: Incoming<R>,
  facts: RequestFacts,
): Promise<Ask | Rejection> {
  let params: RequestParams;
  try {
    const requested = config.hooks.request(incoming.req, incoming.body);
    params = isThenable(requested) ? await requested : requested;
  } catch (error) {
    const message = TokenmeterError.isInstance(error)
      ? error.message
      : 'The request body is not a valid model request.';
    return rejection(400, 'invalid_request', message);
  }
  const { model } = params;
  facts.model = model;
  if (typeof model !== 'string' || model === '' || model.length > 256) {
    return rejection(400, 'invalid_request', '"model" must be a model id string.');
  }
  let published: number | undefined;
  let modelPriced: boolean;
  const api = params.api ?? params.provider ?? guessProvider(model);
  const provider = params.provider ?? providerOfApi(api) ?? guessProvider(model);
  const rules = requestRules(api);
  try {
    const priced = config.services.pricing.priceFor(model);
    modelPriced = !priced.fallback;
    facts.modelPriced = modelPriced;
    published = priced.price.maxOutputTokens;
    facts.provider = provider;
  } catch (error) {
    if (TokenmeterError.isInstance(error) && error.code === 'unknown_model') {
      return rejection(400, 'unknown_model', error.message, { model });
    }
    throw error;
  }
  const limit = config.policy.maxTokensLimit ?? published ?? DEFAULT_MAX_TOKENS_LIMIT;
  // An API whose output limit may be left out is sent with the most this route allows.
  const maxTokens =
    params.maxTokens === undefined && rules.outputLimit === 'optional' ? limit : params.maxTokens;
  facts.maxTokens = maxTokens;
  const checked = checkMaxTokens(config, model, maxTokens, limit, published);
  if (isRejection(checked)) return checked;
  const input = (params.input ?? {}) as Record<string, unknown>;
  const terms = readRequestTerms(input, api);
  if (terms.problem) return rejection(400, 'invalid_request', terms.problem);
  if (terms.unbounded) return rejection(400, 'unbounded_request', terms.unbounded);
  const serviceTier = serviceTierOf(config, provider, terms.serviceTier);
  if (isRejection(serviceTier)) return serviceTier;
  return {
    params,
    model,
    provider,
    api,
    rules,
    modelPriced,
    maxTokens: checked,
    input,
    terms,
    serviceTier,
  };
}

/** max_tokens, checked within the route's limit (or the model's published maximum), or why not. */
function checkMaxTokens(
  config: Config<never>,
  model: string,
  asked: number | undefined,
  limit: number,
  published: number | undefined,
): number | Rejection {
  if (asked !== undefined && Number.isSafeInteger(asked) && asked >= 1 && asked <= limit)
    return asked;
  const whose =
    config.policy.maxTokensLimit !== undefined
      ? "this route's limit"
      : published !== undefined
        ? `the most ${model} writes`
        : 'the default limit for a model with no published maximum';
  return rejection(
    400,
    'invalid_request',
    `max_tokens must be a whole number from 1 to ${limit} (${whose}), got ${JSON.stringify(asked) ?? 'nothing'}.`,
    { maxTokensLimit: limit },
  );
}

/** A service tier is priced as the catalog says, or refused: never assumed cheaper. */
function serviceTierOf(
  config: Config<never>,
  provider: string,
  asked: string | undefined,
): string | undefined | Rejection {
  if (asked === undefined) return undefined;
  const tier = config.services.pricing.catalog.provider(provider).serviceTiers[asked];
  if (!tier) {
    return rejection(
      400,
      'unbounded_request',
      `"service_tier": ${JSON.stringify(asked)} has no price in the pricing catalog: send "auto" or "default", or give its multiplier with PricingCatalog.extend().`,
    );
  }
  // Only a tier dearer than the default changes the bound.
  return tier.num > tier.den ? asked : undefined;
}

/** The prompt's count (exact, or an upper bound) and the request's worst case on it. */
class Prompt {
  constructor(
    private readonly config: Config<never>,
    private readonly ask: Ask,
    public count: InputTokenCount,
    public bound: RequestBound,
  ) {}

  /** The worst case with the prompt at `count` (undefined bound: the request is unboundable). */
  static boundFor(config: Config<never>, ask: Ask, count: InputTokenCount) {
    const bounded = boundRequest(ask.terms, {
      promptTokens: count.upperBound,
      maxTokens: ask.maxTokens,
      serverTools: config.policy.serverTools,
    });
    if (!bounded.bound) return bounded;
    if (ask.serviceTier) bounded.bound.serviceTier = ask.serviceTier;
    // A worst case past what money can hold (server tools allowed millions of uses) is no
    // bound: refused as one, never a 500.
    try {
      worstCaseCost(bounded.bound, ask.model, config.services.pricing);
    } catch (error) {
      if (!TokenmeterError.isInstance(error) || error.code !== 'money_out_of_range') throw error;
      return {
        unbounded: `The request's worst case is more than tokenmeter can count (${formatUsd(MAX_NANOS)}): lower the server tools' max_uses (max_tool_calls on the Responses API) or max_tokens.`,
      };
    }
    return bounded;
  }

  /** Takes an exact count: the bound shrinks to it. */
  recount(exact: InputTokenCount): void {
    this.count = exact;
    const bounded = Prompt.boundFor(this.config, this.ask, exact);
    if (bounded.bound) this.bound = bounded.bound;
  }
}

/** Step 4: the prompt counted (or bounded), within the route's limit, and the worst case. */
async function measurePrompt<R>(config: Config<R>, req: R, ask: Ask): Promise<Prompt | Rejection> {
  const count = await countPrompt(config, req, ask);
  if (count.unbounded !== undefined && !count.exact) {
    return rejection(
      400,
      'unbounded_request',
      `The request holds ${count.unbounded}: its cost cannot be bounded before the call. Send the content inline${config.services.countExactly ? '' : ', or count prompts exactly (tokenCounter: anthropicTokenCounter(client))'}.`,
    );
  }
  const tokens = count.tokens;
  if (!Number.isSafeInteger(tokens) || tokens < 0) {
    return rejection(400, 'invalid_request', 'inputTokens must be a whole number ≥ 0.');
  }
  if (tokens > config.policy.maxInputTokens) {
    return rejection(
      413,
      'input_too_large',
      `The prompt is about ${tokens} tokens; this route accepts at most ${config.policy.maxInputTokens}.`,
      { inputTokens: tokens, maxInputTokens: config.policy.maxInputTokens },
    );
  }
  const bounded = Prompt.boundFor(config, ask, count);
  if (bounded.unbounded !== undefined) {
    return rejection(400, 'unbounded_request', bounded.unbounded);
  }
  return new Prompt(config, ask, count, bounded.bound);
}

/** The app's count, the token counter's, or — where no rule bounds a part — an exact one. */
async function countPrompt<R>(config: Config<R>, req: R, ask: Ask): Promise<InputTokenCount> {
  const given = ask.params.inputTokens;
  if (given !== undefined) return { tokens: given, upperBound: given, exact: true };
  const context = { model: ask.model, provider: ask.rules.tokens };
  let count: InputTokenCount;
  try {
    const measured = measureInputTokensNow(config.services.tokenCounter, ask.input, context);
    count = isThenable(measured) ? await measured : measured;
  } catch (error) {
    // An exact counter (a provider call) failed: reserve on the heuristic's bound rather than fail.
    config.services.logger.warn('tokenmeter: the token counter failed; using the heuristic bound', {
      error: describe(error),
    });
    count = await measureInputTokens(heuristicTokenCounter, ask.input, context);
  }
  // A part no rule bounds (a document by URL), or one an allowance bounds (images, PDF
  // pages): counted exactly where that is free.
  if (!count.exact && (count.unbounded !== undefined || count.approximate)) {
    count = (await countExactly(config, req, ask.input, ask.model)) ?? count;
  }
  return count;
}

/** The exact prompt count, where the route can get one for free; undefined when it cannot. */
async function countExactly<R>(
  config: Config<R>,
  req: R,
  input: Record<string, unknown>,
  model: string,
): Promise<InputTokenCount | undefined> {
  if (!config.services.countExactly) return undefined;
  try {
    const tokens = await config.services.countExactly(req, input, model);
    if (!Number.isSafeInteger(tokens) || tokens < 0) return undefined;
    return { tokens, upperBound: tokens, exact: true };
  } catch (error) {
    config.services.logger.warn('tokenmeter: the exact token count failed; using the bound', {
      error: describe(error),
    });
    return undefined;
  }
}

/** Each scope's budget and rate limits (scopes with neither are not sent to the store). */
interface Policies {
  list: Array<{ scope: ScopeRef; budget?: BudgetRule; rateLimits?: readonly RateLimitRule[] }>;
  alerts: Map<string, readonly number[]> | undefined;
}

/** Step 5: the policies of every scope that pays. */
async function policiesOf<R>(config: Config<R>, scopes: ScopeRef[], req: R): Promise<Policies> {
  const policies: Policies = { list: [], alerts: undefined };
  for (const [index, scope] of scopes.entries()) {
    const budgetFor = config.policy.budgets[scope.kind]?.(scope.id, req);
    const withAlerts = isThenable(budgetFor) ? await budgetFor : budgetFor;
    const budget = withAlerts?.rule;
    if (withAlerts?.alerts.length) {
      policies.alerts ??= new Map();
      policies.alerts.set(scopeKeyOf(scope), withAlerts.alerts);
    }
    const rateLimits = rulesFor(config, scope.kind, index === 0);
    if (!budget && !rateLimits?.length) continue;
    policies.list.push({
      scope,
      ...(budget ? { budget } : {}),
      ...(rateLimits?.length ? { rateLimits } : {}),
    });
  }
  return policies;
}

/** The one reservation planner of a request: what to reserve within what is available. */
class Planner<R> {
  constructor(
    private readonly config: Config<R>,
    readonly ask: Ask,
    readonly prompt: Prompt,
    readonly relay: 'sse' | 'json' | undefined,
  ) {}

  /** The plan within `available` nano-dollars (null: as if the budget covers it). */
  plan(available: number | null, bound = this.prompt.bound): ReservationPlan {
    return planReservation({
      bound,
      model: this.ask.model,
      pricing: this.config.services.pricing,
      policy: this.config.policy.reservation,
      availableNanos: available,
      // A whole-body answer cannot be watched as it comes: no lease for it.
      watchable: this.relay !== 'json',
      // Anthropic's least thinking budget is 1,024 tokens, and max_tokens must exceed it;
      // the Responses API takes no max_output_tokens below 16.
      minMaxTokens: Math.max(
        this.ask.terms.thinkingBudget !== undefined ? 1_025 : 1,
        this.ask.rules.minOutputTokens ?? 1,
      ),
    });
  }

  /** Whether an exact count could change the plan: not when a prompt of nothing is refused. */
  countCouldHelp(within: number): boolean {
    const { count, bound } = this.prompt;
    if (count.exact) return false;
    return this.plan(within, { ...bound, promptTokens: bound.promptTokens - count.upperBound }).ok;
  }

  /** Counts the prompt exactly where that is free; true when the count changed. */
  async recount(req: R): Promise<boolean> {
    if (this.prompt.count.exact) return false;
    const exact = await countExactly(this.config, req, this.ask.input, this.ask.model);
    if (!exact) return false;
    this.prompt.recount(exact);
    return true;
  }

  /** The 402 for a plan that does not fit, naming what refused it and what it needed. */
  refusal(
    plan: Extract<ReservationPlan, { ok: false }>,
    refused: BudgetRejection | undefined,
  ): Rejection {
    const { config, ask, prompt } = this;
    const needed = `${formatUsd(plan.needNanos)} (${needs(prompt.bound.promptTokens, plan.outputTokens, ask.model, config.policy.reservation.mode)})`;
    if (plan.limit === 'max_cost_per_request') {
      return rejection(
        config.policy.budgetExceededStatus,
        'budget_exceeded',
        `This route's cost cap per request cannot cover this request: it needs ${needed}.`,
        { limit: 'max_cost_per_request', requiredUsd: plan.needNanos / 1e9 },
        refused ? rejectionHeaders(refused) : {},
        { reservedNanos: plan.needNanos },
      );
    }
    const budget = refused?.budget;
    return rejection(
      config.policy.budgetExceededStatus,
      'budget_exceeded',
      `The ${refused?.scope.kind ?? 'budget'} budget cannot cover this request: ${budget ? `${formatUsd(budget.remainingNanos)} is left of ${formatUsd(budget.limitNanos)}, and it` : 'it'} needs ${needed}.`,
      {
        ...(refused ? { scope: refused.scope.kind } : {}),
        requiredUsd: plan.needNanos / 1e9,
        ...(budget ? { budget: budgetJson(budget) } : {}),
      },
      refused ? rejectionHeaders(refused) : {},
      {
        ...(refused ? { scope: refused.scope.kind, retryAfterMs: refused.retryAfterMs } : {}),
        reservedNanos: plan.needNanos,
        ...(budget ? { budgetRemainingNanos: budget.remainingNanos } : {}),
      },
    );
  }
}

/** What the store admitted (undefined result: it failed open, nothing reserved). */
interface Reserved {
  requestId: string;
  plan: Extract<ReservationPlan, { ok: true }>;
  requests: AdmitRequest[];
  result: Extract<AdmitAllResult, { admitted: true }> | undefined;
  reservationIds: readonly string[];
}

/**
 * Step 6: planned as if the budget covers it; a budget's refusal says what is left, and the
 * request is planned again within it (fit, lease) or refused (strict). Before it is given
 * less than it asked, its prompt is counted exactly where that is free.
 */
async function reserve<R>(
  ctx: AdmissionContext<R>,
  planner: Planner<R>,
  policies: Policies,
): Promise<Reserved | Rejection> {
  const { config } = ctx;
  // Made before admission: it is also each scope's admission key, so an admission whose
  // reply is lost (a dropped store connection) can still be released by it.
  const requestId = crypto.randomUUID();
  let available: number | null = null;
  let lastRefusal: BudgetRejection | undefined;
  for (let attempt = 0; ; attempt++) {
    const plan = planner.plan(available);
    if (!plan.ok) return planner.refusal(plan, lastRefusal);
    const requestKey = attempt === 0 ? requestId : `${requestId}.${attempt}`;
    const requests = admitRequests(config, policies, plan, planner.prompt.count.tokens, requestKey);
    const none = { requestId, plan, requests, result: undefined, reservationIds: [] };
    if (requests.length === 0) return none;
    let result: AdmitAllResult;
    try {
      result = await admitAll(config.services.store, requests);
    } catch (error) {
      if (!(TokenmeterError.isInstance(error) && error.code === 'store_unavailable')) throw error;
      return storeFailed(config, requests, requestKey, error) ?? none;
    }
    if (result.admitted) return { ...none, result, reservationIds: result.reservationIds };
    const refused = result.rejection;
    if (refused.reason === 'rate_limit') {
      const limited = rateLimitRefusal(refused);
      return rejection(429, 'rate_limited', limited.message, limited.details, limited.headers, {
        scope: refused.scope.kind,
        retryAfterMs: limited.retryAfterMs,
      });
    }
    lastRefusal = refused;
    available = Math.min(available ?? Number.POSITIVE_INFINITY, refused.budget.remainingNanos);
    if (planner.countCouldHelp(available)) await planner.recount(ctx.incoming.req);
    if (attempt + 1 >= ADMISSION_TRIES) {
      const needed = { needNanos: plan.reserveNanos, outputTokens: plan.coveredOutputTokens };
      return planner.refusal({ ok: false, limit: 'budget', ...needed }, refused);
    }
  }
}

/** One admission request per scope with a policy, for one try. */
function admitRequests(
  config: Config<never>,
  policies: Policies,
  plan: Extract<ReservationPlan, { ok: true }>,
  inputTokens: number,
  requestKey: string,
): AdmitRequest[] {
  return policies.list.map((policy) => {
    // Built field by field: no intermediate objects for the optional parts.
    const request: { -readonly [K in keyof AdmitRequest]: AdmitRequest[K] } = {
      scope: policy.scope,
      reserveNanos: plan.reserveNanos,
      estimatedTokens: inputTokens + plan.coveredOutputTokens,
      ttlMs: config.timing.reservationTtlMs,
      requestKey,
    };
    if (policy.budget) request.budget = policy.budget;
    if (policy.rateLimits) request.rateLimits = policy.rateLimits;
    return request;
  });
}

/**
 * The store failed at admission. An admission may have run with its reply lost: it is
 * released by key in the background (the store may be down right now), never delaying
 * the answer; past the last try, the reservation's TTL still bounds it. Fail closed: 503;
 * open: undefined (let through, unmetered, with a warning).
 */
function storeFailed(
  config: Config<never>,
  requests: readonly AdmitRequest[],
  requestKey: string,
  error: unknown,
): Rejection | undefined {
  for (const request of requests) {
    void releaseLostAdmission(config.services.store, request.scope, requestKey, {
      delaysMs: LOST_ADMISSION_RETRY_MS,
    });
  }
  return storeFailurePolicy(config, error, 'request', '; nothing is reserved for it');
}

/**
 * What a store failure means for a request, by the route's `storeFailure`: closed, a 503
 * refusal; open, undefined (let through, unmetered). Logged either way.
 */
export function storeFailurePolicy(
  config: Config<never>,
  error: unknown,
  what: string,
  openNote = '',
): Rejection | undefined {
  const { logger } = config.services;
  if (config.policy.storeFailure === 'closed') {
    logger.warn(`tokenmeter: store unavailable, ${what} refused (fail closed)`, {
      error: describe(error),
    });
    return rejection(
      503,
      'store_unavailable',
      'Budgets cannot be checked right now; try again shortly.',
      {},
      { 'Retry-After': '1' },
    );
  }
  logger.warn(
    `tokenmeter: store unavailable, ${what} let through unmetered (fail open)${openNote}`,
    {
      error: describe(error),
    },
  );
  return undefined;
}

/** The tightest budget left after admission, and every rate limit's state (for headers). */
function tightestOf(result: Reserved['result']) {
  let tightest: BudgetState | null = null;
  const limits: ScopedRateLimit[] = [];
  for (const accepted of result?.results ?? []) {
    if (accepted.budget && (!tightest || accepted.budget.remainingNanos < tightest.remainingNanos))
      tightest = accepted.budget;
    for (const state of accepted.rateLimits) limits.push({ scope: accepted.scope, state });
  }
  return { tightest, limits };
}

/**
 * Step 7: a lease is sent with the most output the budget has left, so that no one call can
 * be billed past it (its answer is watched and the lease grown below that). Trimmed on the
 * prompt's bound, the prompt is counted exactly and what that frees given back.
 */
async function fitLease<R>(
  ctx: AdmissionContext<R>,
  planner: Planner<R>,
  reserved: Reserved,
  tightest: BudgetState | null,
): Promise<Reserved['plan'] & { reserveNanos: number }> {
  const { config } = ctx;
  const plan = reserved.plan;
  if (config.policy.reservation.mode !== 'lease' || planner.relay === 'json' || !tightest)
    return plan;
  const total = plan.reserveNanos + tightest.remainingNanos;
  let fitted = planner.plan(total);
  let reserveNanos = plan.reserveNanos;
  if (
    fitted.ok &&
    fitted.maxTokens < planner.ask.maxTokens &&
    (await planner.recount(ctx.incoming.req))
  ) {
    const recounted = planner.plan(total);
    const freed = recounted.ok ? plan.reserveNanos - recounted.reserveNanos : 0;
    if (recounted.ok && freed > 0 && (await shrink(config, reserved.reservationIds, freed))) {
      fitted = recounted;
      reserveNanos = recounted.reserveNanos;
    }
  }
  return fitted.ok ? { ...fitted, reserveNanos } : plan;
}

/** Gives back part of every reservation (an exact count freed it); false if the store failed. */
async function shrink(
  config: Config<never>,
  ids: readonly string[],
  nanos: number,
): Promise<boolean> {
  if (ids.length === 0) return true;
  try {
    return (await extendAll(config.services.store, ids, { addNanos: -nanos })).extended;
  } catch {
    return false;
  }
}

/** Step 8: the body sent carries the bounds the plan priced; what the stream is told. */
function admitted<R>(
  ctx: AdmissionContext<R>,
  planner: Planner<R>,
  reserved: Reserved & {
    tightest: BudgetState | null;
    limits: ScopedRateLimit[];
    alerts: Policies['alerts'];
  },
): Admitted {
  const { config, incoming } = ctx;
  const { ask, prompt } = planner;
  const plan = reserved.plan;
  const forwarded = ask.rules.forward(ask.input, {
    maxTokens: plan.maxTokens,
    serverTools: config.policy.serverTools,
  });
  if (config.protocol.rewritesBody && ask.params.input !== undefined) incoming.body = forwarded;
  // Where the body sent is not known to carry max_tokens as planned (a route's own
  // request()), the stream itself stops at it.
  const stopAt =
    !config.protocol.rewritesBody && plan.maxTokens < ask.maxTokens ? plan.maxTokens : null;
  const covered = plan.coveredOutputTokens;
  const result = reserved.result;
  const admission: Admitted = {
    requestId: reserved.requestId,
    scopes: ctx.facts.scopes ?? [],
    reservationIds: reserved.reservationIds,
    ...(result?.results[0] ? { admittedAt: result.results[0].reservation.createdAt } : {}),
    metered: reserved.requests.length > 0,
    reservedNanos: plan.reserveNanos,
    model: ask.model,
    maxTokens: plan.maxTokens,
    requestedMaxTokens: ask.maxTokens,
    fittedTo: plan.fittedTo,
    forwarded: forwarded === ask.input ? {} : changedFields(ask.input, forwarded),
    inputTokens: prompt.count.tokens,
    inputTokensBound: prompt.count.upperBound,
    budget: reserved.tightest,
    leasedOutputTokens: covered < plan.maxTokens ? covered : (stopAt ?? Number.POSITIVE_INFINITY),
    capOutputTokens: stopAt ?? Number.POSITIVE_INFINITY,
    stopLimit: plan.fittedTo === 'budget' ? 'budget_fit' : 'max_cost_per_request',
    bound: prompt.bound,
    reservedOutputTokens: covered,
    provider: ask.provider,
    api: ask.api,
    alerts: reserved.alerts ?? NO_ALERTS,
    modelPriced: ask.modelPriced,
    input: forwarded,
    body: objectOrUndefined(incoming.body),
    headers: { ...rateLimitHeaders(reserved.limits), 'X-Request-Id': reserved.requestId },
  };
  if (planner.relay) admission.relay = planner.relay;
  return admission;
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

/**
 * The 429 for a rate-limit refusal, as every entry answers it (the gateway's count_tokens
 * too): the message, the details, `RateLimit` / `RateLimit-Policy` and `Retry-After`.
 */
export function rateLimitRefusal(refused: Extract<AdmitRejected, { reason: 'rate_limit' }>) {
  const retryAfterMs = retryAfterMsOf(refused);
  return {
    message: rateLimitMessage(refused),
    details: {
      scope: refused.scope.kind,
      limit: refused.rateLimit.kind,
      retryAfterSeconds: retryAfterMs === null ? null : Math.ceil(retryAfterMs / 1000),
    },
    headers: rejectionHeaders(refused),
    retryAfterMs,
  };
}

/** RateLimit headers (and Retry-After) of a refused admission. */
function rejectionHeaders(refused: AdmitRejected): Record<string, string> {
  const limits: ScopedRateLimit[] = refused.rateLimits.map((state) => ({
    scope: refused.scope,
    state,
  }));
  const headers = rateLimitHeaders(limits);
  const retryAfterMs = retryAfterMsOf(refused);
  if (retryAfterMs !== null) headers['Retry-After'] = retryAfterSeconds(retryAfterMs);
  return headers;
}

function formatUsd(nanos: number): string {
  return `$${(nanos / 1e9).toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}`;
}

/** The scopes a subject names (`{ user, team }` or refs); undefined when none. */
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

/** The body, when it is a JSON object. */
function objectOrUndefined(body: unknown): Record<string, unknown> | undefined {
  const read = asObject(body);
  return read.ok ? read.body : undefined;
}
