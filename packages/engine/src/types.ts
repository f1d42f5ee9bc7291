/**
 * The public types every adapter shares: the options of a metered route (generic in the
 * framework's request) and the handle a route receives to hand its provider stream over.
 */
import type {
  BudgetPeriod,
  FinalUsage,
  Nanos,
  Pricing,
  RateLimitRule,
  ScopeRef,
  ServerToolLimit,
  SseEncoder,
  Store,
  StreamOutcome,
} from '@tokenmeter/core';
import type { ReservationMode } from '@tokenmeter/core/meter';
import type { TokenCounter } from '@tokenmeter/core/tokens';
import type { TelemetryOptions } from './telemetry/index.js';

/**
 * Who pays: a map of scope kind → id (`{ user: req.user.id, team: req.user.teamId }`), or
 * scope refs in the order they should be checked. `undefined` / `null` means the caller is
 * not identified: the middleware answers 401.
 */
export type Subject = Readonly<Record<string, string | undefined>> | readonly ScopeRef[];

/** A budget in dollars, as a decimal string (exact) or number. */
export interface BudgetInput {
  /** Spending cap per period in USD: `'5.00'` or `5`. Give this or `limitNanos`. */
  limitUsd?: string | number;
  /** Spending cap per period in nano-dollars. */
  limitNanos?: Nanos;
  /** When spend resets. Defaults to `'day'` (00:00 UTC). */
  period?: BudgetPeriod;
  /**
   * Percentages of the limit that fire `onBudgetAlert` once per scope and period, across
   * every instance sharing the store (`[50, 80, 100]`). Defaults to none.
   */
  alerts?: readonly number[];
}

/** One budget threshold crossed, told once per scope, period and threshold to `onBudgetAlert`. */
export interface BudgetAlert {
  scope: ScopeRef;
  /** The threshold crossed, in percent of the limit. */
  percent: number;
  limitNanos: Nanos;
  /** Spent in the period when the threshold was seen crossed. */
  spentNanos: Nanos;
  period: BudgetPeriod;
  /** The period's start and end (epoch ms; `null` end for 'lifetime'). */
  periodStart: number;
  periodEnd: number | null;
  /** The stream whose settlement crossed it. */
  requestId: string;
}

/** What the middleware needs to know about the upstream call before it is made. */
export interface RequestParams {
  /** The model the handler will call: decides the price. */
  model: string;
  /**
   * The `max_tokens` the handler will send: decides the worst-case reservation. May be
   * left out for an API where the limit is optional (the Responses API's
   * `max_output_tokens`): the request is then admitted at the most the route allows
   * (`maxTokensLimit`, else the model's published maximum, else 128,000), and a body the
   * route forwards carries it.
   */
  maxTokens?: number;
  /** `'anthropic'` or `'openai'`; guessed from the model when absent. */
  provider?: string;
  /**
   * The provider API the request is for, when the provider has several: `'openai'` (Chat
   * Completions, the default for OpenAI) or `'openai-responses'`. Decides how the body is
   * read and the output limit forwarded.
   */
  api?: string;
  /** The provider request (messages, system, tools) for the input-token estimate. */
  input?: unknown;
  /** Exact input tokens if the app already counted them (skips the estimate). */
  inputTokens?: number;
}

/**
 * How much is reserved at admission, by name (see the README's "What a budget promises"):
 * - `'strict'`: the request's worst case — the prompt's upper bound plus `max_tokens` of
 *   output, on the request's own terms — or a refusal (402) when the budget cannot cover
 *   it all. Never overspends (within the prompt's bound).
 * - `'fit'`: the worst case when it fits; otherwise the request is sent with the largest
 *   `max_tokens` the budget covers (at least `minOutputTokens`, default 1,024), and that is
 *   reserved. Never overspends either; an answer is shorter only when the money is short.
 *   The default of `costTrackedSSE()`.
 * - `'lease'`: the prompt's bound and `initialOutputTokens` of output (default 256), grown
 *   by `stepOutputTokens` (default 256) as the answer streams; the request is sent with the
 *   most output the budget had left. Many requests fit one budget at once (agents'
 *   parallel calls); output the provider bills without streaming it (hidden reasoning) can
 *   pass the budget when several run at once. The default of the gateways.
 *
 * `'worst-case'` and `{ incremental: { … } }` are the earlier names of `'strict'` and
 * `{ mode: 'lease', … }`.
 */
export type ReservationStrategy =
  | ReservationMode
  | 'worst-case'
  | {
      mode: ReservationMode;
      /** `'fit'`: the least output a request is admitted for. Defaults to 1,024. */
      minOutputTokens?: number;
      /** `'lease'`: output reserved at admission. Defaults to 256. */
      initialOutputTokens?: number;
      /** `'lease'`: output added at each step. Defaults to 256. */
      stepOutputTokens?: number;
    }
  | { incremental: { initialOutputTokens?: number; stepOutputTokens?: number } };

/**
 * Which limit stopped a stream before the provider finished, said in the final `error`
 * event (`limit`) and in `SettleInfo`: the per-request cost cap, a refused lease
 * extension (the budget ran out), a store that could not extend the lease, or the output
 * a `'fit'` reservation covered (when the route's own `request()` sends the body, which
 * may not carry the lowered `max_tokens`).
 */
export type StreamLimit =
  | 'max_cost_per_request'
  | 'lease_denied'
  | 'lease_unavailable'
  | 'budget_fit';

/** One settled stream, for `onSettle`. */
export interface SettleInfo {
  requestId: string;
  scopes: readonly ScopeRef[];
  model: string;
  /** `'anthropic'`, `'openai'`, … as admitted (given, or guessed from the model). */
  provider: string;
  outcome: StreamOutcome;
  final: FinalUsage;
  /** Nano-dollars reserved per scope at the end (admission, plus any lease growth). */
  reservedNanos: Nanos;
  /** When the stream was admitted (ms since the epoch). */
  startedAt: number;
  /**
   * The store's time of admission (ms since the epoch): the instant whose budget period
   * the store charged. Set when a reservation was made; a ledger dates the stream by it.
   */
  admittedAt?: number;
  /** Milliseconds from admission to settlement. */
  durationMs: number;
  /** Time to the first text chunk, if any arrived. */
  timeToFirstTokenMs?: number;
  /**
   * Whether the store recorded the settlement. False with `onSettleFailure` called when it
   * could not; false without it when no budget or rate limit applied (nothing to record).
   */
  recorded: boolean;
  /** The limit that stopped the stream early, if one did. */
  limit?: StreamLimit;
  /**
   * True when the stream ran without a reservation although a budget or rate limit applied
   * (the store failed at admission and `storeFailure: 'open'` let it through).
   */
  unmetered?: boolean;
  /** Times the stream paused because the client's socket was full, and for how long in total. */
  backpressureWaits: number;
  backpressureMs: number;
}

export interface Logger {
  info?(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The options of a metered route, whatever the framework: `R` is the request its callbacks
 * receive (Express's request, a Web `Request`).
 */
export interface MeteredOptions<R> {
  /**
   * Where budgets, rate-limit windows and reservations live: `createMemoryStore()` for
   * one process, `createRedisStore()` for many. Required.
   */
  store: Store;
  /**
   * Names who pays, from something the app trusts (`req.user`, a verified API key) —
   * never from the request body. Required: there is no default that could be trusted.
   *
   * @example
   * identify: (req) => req.user && { user: req.user.id, team: req.user.teamId }
   */
  identify: (req: R) => Subject | undefined | null | Promise<Subject | undefined | null>;
  /**
   * Budgets per scope kind, or a function of the scope id for per-user plans.
   * Defaults to none (spend is tracked only through `onSettle`).
   *
   * @example
   * budgets: { user: { limitUsd: '5.00', period: 'day' }, team: (id) => plans.get(id) }
   */
  budgets?: Record<
    string,
    | BudgetInput
    | ((id: string, req: R) => BudgetInput | undefined | Promise<BudgetInput | undefined>)
  >;
  /**
   * Rate limits per scope kind: sliding windows of requests, and of tokens (estimate at
   * admission, corrected to the actual at settlement); and at most one concurrency limit,
   * the streams a scope may have open at once (a slot is held by the stream's reservation
   * and given back when it ends, or when it expires after `reservationTtlMs`). Defaults to
   * none (the gateways add 16 open streams per caller: see `callerConcurrency`).
   *
   * @example
   * rateLimits: { user: [{ kind: 'requests', limit: 20, windowMs: 60_000 }, { kind: 'tokens', limit: 200_000, windowMs: 60_000 }, { kind: 'concurrency', limit: 4 }] }
   */
  rateLimits?: Record<string, readonly RateLimitRule[]>;
  /**
   * Reads the model, `max_tokens` and input from the request. Defaults to reading an
   * Anthropic (or OpenAI) request body: `{ model, max_tokens | max_completion_tokens, messages, system, tools }`.
   * Throw a `TokenmeterError('invalid_argument', …)` (or any error) to answer 400. `body`
   * is the parsed request body (`req.body` in Express).
   */
  request?: (req: R, body: unknown) => RequestParams | Promise<RequestParams>;
  /**
   * Upper bound on `max_tokens` for this route (OWASP API4). Defaults to each model's
   * published maximum output (`maxOutputTokens` in the catalog: 64,000 for
   * claude-haiku-4-5, 128,000 for claude-opus-4-6), or 128,000 where none is published.
   */
  maxTokensLimit?: number;
  /**
   * Upper bound on the prompt's (estimated or counted) input tokens for this route; larger
   * requests get 413 `input_too_large` before anything is reserved or sent. Defaults to 200,000.
   */
  maxInputTokens?: number;
  /**
   * Largest request body read, in bytes; a larger one gets 413 `body_too_large`, checked
   * while reading. Applies where the body is read here: always in a gateway, and in
   * `costTrackedSSE()` when no body parser ran before it (it then reads a JSON body itself,
   * after `identify`, so an unknown caller is refused before a byte of it is read).
   * Defaults to 1 MiB (`costTrackedSSE()`) and 20 MB (the gateways).
   */
  maxBodyBytes?: number;
  /**
   * Request bodies read at once from one client address (Express's `req.ip`, which honours
   * `trust proxy`); more get 429 with `Retry-After: 1`. `false` turns it off. Defaults to 16.
   */
  uploadsPerAddress?: number | false;
  /**
   * How long a reservation lives before the store expires it (and charges it, by default)
   * if this process dies mid-stream. Must be longer than `totalTimeoutMs`.
   * Defaults to `totalTimeoutMs` + 60,000 ms.
   */
  reservationTtlMs?: number;
  /** Pricing and the unknown-model policy. Defaults to the bundled catalog, rejecting unknown models. */
  pricing?: Pricing;
  /**
   * Counts input tokens before the call. The reservation prices its upper bound
   * (`measureInputTokens`), or its count when it is exact. Defaults to the heuristic, whose
   * bound allows for each script's margin (see `TEXT_BOUND_MARGINS` in @tokenmeter/core/tokens);
   * `anthropicTokenCounter(client)` counts exactly (one cached round trip).
   */
  tokenCounter?: TokenCounter;
  /**
   * What to reserve for server tools (Anthropic `web_search_*`, `web_fetch_*`, …; OpenAI
   * `web_search_options`), by name: uses when the request sets no `max_uses`, and billed
   * input tokens per use (results read back into the context). Merged over the defaults
   * (`DEFAULT_SERVER_TOOL_LIMITS`: web search 5 uses × 25,000 tokens, web fetch 5 × 100,000);
   * a server tool with no limit here is refused with 400 `unbounded_request`.
   *
   * @example
   * serverTools: { web_search: { defaultMaxUses: 3, inputTokensPerUse: 15_000 } }
   */
  serverTools?: Readonly<Record<string, ServerToolLimit>>;
  /** How much is reserved at admission. Defaults to `'fit'` (`'lease'` for the gateways). */
  reservation?: ReservationStrategy;
  /**
   * The most one request may cost (USD): its `max_tokens` is lowered to what the cap
   * covers after the prompt's bound (a request whose prompt alone passes it gets 402).
   * Defaults to none.
   */
  maxCostPerRequestUsd?: string | number;
  /**
   * When the store fails or times out: `'closed'` answers 503 (default); `'open'` lets the
   * request through unmetered, with a logged warning. Never a hang, never a silent pass.
   */
  storeFailure?: 'closed' | 'open';
  /**
   * The one bound on every store call, in ms: a fail-closed 503 is answered within it. A
   * store with a timeout of its own (the Redis store's `timeoutMs`, 500 ms by default) sets
   * it, and a different `storeTimeoutMs` is refused at creation; for other stores it
   * defaults to 1,000.
   */
  storeTimeoutMs?: number;
  /**
   * End the stream with `upstream_idle` when the provider sends nothing for this long
   * (time spent waiting for a slow client to read does not count). Defaults to 60,000 ms.
   */
  idleTimeoutMs?: number;
  /**
   * Let go of a client that reads nothing for this long while the stream waits on it (its
   * socket full): the connection is closed, the upstream call aborted, the answer so far
   * charged, outcome `client_stalled`. A slow reader that keeps reading is never cut.
   * Also bounds how long a finished response may wait for the client to read its end.
   * Defaults to 30,000 ms.
   */
  stallTimeoutMs?: number;
  /** End the stream after this long in total. Defaults to 600,000 ms (10 min). */
  totalTimeoutMs?: number;
  /** How long a handler may take to hand its stream over. Defaults to 30,000 ms. */
  handoverTimeoutMs?: number;
  /** Keep-alive comment interval. Defaults to 15,000 ms. */
  keepAliveMs?: number;
  /** Minimum ms between `usage` events. Defaults to 250. */
  usageIntervalMs?: number;
  /** The SSE event format. Defaults to the JSON protocol (`jsonSseEncoder`). */
  encoder?: SseEncoder;
  /** HTTP status for a budget rejection. Defaults to 402. */
  budgetExceededStatus?: number;
  /**
   * The upstream call, for a terminal middleware: return the provider stream (or a promise
   * of it), started with `meter.signal` — an official SDK stream, an AI SDK `streamText()`
   * result or a LangChain.js `model.stream()` (see `MeteredStream.stream`). Without it, the middleware calls `next()` and the
   * route handler calls `res.locals.tokenmeter.stream(...)`.
   *
   * @example
   * upstream: (req, meter) => anthropic.messages.create({ ...meter.params, stream: true }, { signal: meter.signal })
   */
  upstream?: (req: R, meter: MeteredStream) => unknown;
  /**
   * Told once when a scope's spend reaches one of its budget's `alerts` thresholds in a
   * period — exactly once across instances with a store that has `claimOnce()` (both
   * bundled stores do). Runs after the stream has ended and never delays one; a hook that
   * throws is logged.
   */
  onBudgetAlert?: (alert: BudgetAlert) => void | Promise<void>;
  /** Told once per settled stream. A hook that throws is logged; the stream carries on. */
  onSettle?: (info: SettleInfo) => void | Promise<void>;
  /**
   * Told when a settlement could not be recorded after retries (the reservation will
   * expire; record the charge for reconciliation). Defaults to logging an error.
   */
  onSettleFailure?: (info: SettleInfo, error: unknown) => void | Promise<void>;
  /** Where warnings and errors go. Defaults to `console`. */
  logger?: Logger;
  /**
   * OpenTelemetry: one `chat {model}` span per stream (a child of the active HTTP server
   * span), an `admit` span per refused request, and the GenAI and `tokenmeter.*` metrics.
   * Uses `@opentelemetry/api` only: without an SDK it costs nothing. Subject ids and
   * prompt/completion text are recorded only when you opt in. Defaults to the global
   * tracer and meter providers, nothing opted in.
   *
   * @example
   * telemetry: { recordSubjects: ['team'], server: { address: 'api.anthropic.com', port: 443 } }
   */
  telemetry?: TelemetryOptions;
}

/**
 * The handle of one admitted stream: `res.locals.tokenmeter`. Start the upstream call
 * with `signal`, then hand the stream over with `stream()`.
 */
export interface MeteredStream {
  readonly requestId: string;
  /** Aborts when the client leaves, a cap is reached or a timeout fires. Pass it to the SDK. */
  readonly signal: AbortSignal;
  readonly model: string;
  /**
   * The `max_tokens` to send: as asked, or lowered to what the reservation covers (the
   * budget's remainder under `'fit'` and `'lease'`, the cost cap). Send this, never more.
   */
  readonly maxTokens: number;
  /**
   * The request's parameters as admitted, to spread over the body you send: `model`,
   * `max_tokens` and any field admission bounded — Anthropic server tools given the
   * `max_uses` that was reserved for them, a thinking budget lowered under `max_tokens`.
   * With the default `request()`, `req.body` already carries them.
   *
   * @example
   * anthropic.messages.create({ ...req.body, ...meter.params, stream: true }, { signal: meter.signal })
   */
  readonly params: { model: string; max_tokens: number } & Record<string, unknown>;
  /**
   * The parsed request body, with the bounds admission reserved written in where the
   * default `request()` read it (as `req.body` in Express): spread it into the provider call
   * where the framework keeps no parsed body (a Web `Request`). Undefined without a body.
   * Typed as Express types `req.body`: its shape is the client's, checked by admission.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a parsed JSON body, spread into provider calls as Express's req.body is
  readonly body: any;
  /** Input tokens estimated (or counted) at admission. */
  readonly inputTokens: number;
  /** The scopes that pay. */
  readonly scopes: readonly ScopeRef[];
  /** Nano-dollars reserved (per scope): at admission, grown by incremental leases. */
  readonly reservedNanos: Nanos;
  /**
   * Streams the provider's output to the client and settles. Accepts the official SDK
   * streams as they are (`client.messages.create({ stream: true })`, `client.messages.stream()`,
   * `client.chat.completions.create({ stream: true })`), an AI SDK `streamText()` result
   * (started with `abortSignal: meter.signal`), a LangChain.js `model.stream(messages, { signal })`,
   * any async iterable of provider events or normalised `MeterEvent`s, or a promise of one.
   * Resolves when settled; never rejects.
   */
  stream(source: unknown): Promise<FinalUsage>;
  /** Ends the stream with an error event (e.g. the handler failed before calling the provider). */
  fail(error: unknown): Promise<FinalUsage>;
}
