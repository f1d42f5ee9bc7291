/**
 * OpenTelemetry for metered streams, on `@opentelemetry/api` only: one `chat {model}`
 * span per stream, an `admit` span per refused request, and the GenAI and tokenmeter
 * metrics (see semconv.ts for every name).
 *
 * Cost model: nothing here runs per token. A stream costs one span start, and at
 * settlement one batch of attributes and metric records; the first-token and backpressure
 * events are written at settlement with their real timestamps, from figures the meter and
 * the SSE writer already keep. Without an SDK the tracer hands out non-recording spans
 * (attributes are skipped) and metric work is skipped entirely.
 *
 * The global tracer and meter are resolved lazily: the OTel metrics API has no proxy, so a
 * meter taken before the SDK registers stays a no-op forever, and a proxy tracer taken
 * early may be bound to the other (CJS/ESM) build of the API than the one the SDK
 * registers through. Until a real meter is available, each stream checks again (one
 * function call).
 */
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  createNoopMeter,
  type Histogram,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
  type UpDownCounter,
} from '@opentelemetry/api';
import {
  type CallUsage,
  nanosToUsd,
  OUTCOMES,
  PricingCatalog,
  type ScopeRef,
  type Store,
  type StreamOutcome,
  TokenmeterError,
} from '@tokenmeter/core';
import { finishReason, promptTokens } from '@tokenmeter/core/providers';
import type {
  EngineEvents,
  RejectionInfo,
  RequestStart,
  ReservationEnd,
  StreamEndInfo,
  StreamStartInfo,
  StreamTrace,
} from '../events.js';
import { inputContent, outputContent } from './content.js';
import { guarded } from './guarded.js';
import type { GenAiConventions } from './semconv.js';
import * as sc from './semconv.js';
import { observeReservations, timedStore } from './store-metrics.js';

/** Telemetry settings of `costTrackedSSE({ telemetry })`. Every field is optional. */
export interface TelemetryOptions {
  /**
   * Where spans go. Defaults to the global tracer provider's tracer `@tokenmeter/core`
   * (a no-op until an SDK registers one; registering later works).
   *
   * @example
   * telemetry: { tracer: provider.getTracer('chat-api') }
   */
  tracer?: Tracer;
  /**
   * Where metrics go. Defaults to the global meter provider's meter `@tokenmeter/core`,
   * resolved at the first request (start the SDK before serving requests).
   */
  meter?: Meter;
  /**
   * Put subject ids on spans (`tokenmeter.subject.user = "alice"`) and on the cost, stream
   * and rejection metrics. `true` records every scope kind; a list records only those
   * kinds (teams are fewer than users). Every id becomes a metric series: mind the
   * cardinality. Defaults to false: no ids leave the process.
   *
   * @example
   * telemetry: { recordSubjects: ['team'] }
   */
  recordSubjects?: boolean | readonly string[];
  /**
   * Record prompt and completion text on the span (`gen_ai.input.messages`,
   * `gen_ai.system_instructions`, `gen_ai.output.messages`). Defaults to false: text is
   * never recorded. When on, the answer's text is kept in memory until settlement.
   */
  recordContent?: boolean;
  /**
   * The provider endpoint, for `server.address` / `server.port` on spans and metrics.
   * Defaults to none (the middleware cannot see where the handler sends its call).
   *
   * @example
   * telemetry: { server: { address: 'api.anthropic.com', port: 443 } }
   */
  server?: { address: string; port?: number };
  /**
   * Scopes whose store-side reservation counts are exported as the gauges
   * `tokenmeter.store.reservations.open` and `.expired` (read with `store.getState()` at
   * each metric collection). Expiry happens inside the store, so this is the only way to
   * see leaked reservations. Defaults to none.
   *
   * @example
   * telemetry: { observeScopes: [{ kind: 'global', id: 'all' }] }
   */
  observeScopes?: readonly ScopeRef[];
  /**
   * Which names of the OpenTelemetry GenAI conventions to emit: `'previous'` (semantic-
   * conventions v1.41.1: `gen_ai.client.token.usage`, `gen_ai.client.operation.*`,
   * `gen_ai.usage.cache_creation.input_tokens`) or `'latest'` (semantic-conventions-genai
   * v0.1.0: the `gen_ai.client.inference.*` metrics, per-kind token counters,
   * `gen_ai.usage.cache_write.input_tokens`, and the cost histogram
   * `tokenmeter.client.operation.cost`), never both. Defaults to `'latest'` when
   * `OTEL_SEMCONV_STABILITY_OPT_IN` lists `gen_ai_latest_experimental`, else `'previous'`.
   *
   * @example
   * telemetry: { conventions: 'latest' }
   */
  conventions?: GenAiConventions;
  /**
   * Record `gen_ai.client.operation.time_per_output_chunk` (or, with the latest names,
   * `gen_ai.client.inference.time_per_output_chunk`): the time from one output chunk (text
   * or thinking) to the next, one histogram point per chunk after the first, as the
   * conventions define it. Off by default: it records a point for every chunk of every
   * stream, where the other metrics record a few per stream.
   *
   * @example
   * telemetry: { timePerOutputChunk: true }
   */
  timePerOutputChunk?: boolean;
  /** `false` turns telemetry off entirely (no spans, no metrics, no store wrapper). Defaults to true. */
  enabled?: boolean;
}

interface Instruments {
  noop: boolean;
  /** Previous conventions: one histogram, by `gen_ai.token.type`. */
  tokenUsage: Histogram | undefined;
  /** Latest conventions: a counter per kind and a histogram per direction. */
  usage: TokenCounters | undefined;
  duration: Histogram;
  timeToFirstChunk: Histogram;
  /** With `timePerOutputChunk`: the time between output chunks. */
  timePerOutputChunk: Histogram | undefined;
  cost: Counter;
  /** Latest conventions: each call's cost, in the proposed shape. */
  operationCost: Histogram | undefined;
  streams: Counter;
  active: UpDownCounter;
  rejections: Counter;
  opened: Counter;
  ended: Counter;
  backpressure: Histogram;
  storeLatency: Histogram;
}

/** What the metrics of one provider call need: the stream's final figures, or one of its calls. */
type CallFigures = Pick<CallUsage, 'usage' | 'inputSource' | 'outputSource' | 'costNanos'>;

interface TokenCounters {
  input: Counter;
  output: Counter;
  cacheRead: Counter;
  cacheWrite: Counter;
  reasoning: Counter;
  operationInput: Histogram;
  operationOutput: Histogram;
}

const NOOP_METER = createNoopMeter();
/**
 * `gen_ai.request.model` / `gen_ai.response.model` on metrics for a model the pricing
 * catalog does not list (the OTel conventions' catch-all value). Spans keep the real name.
 */
const OTHER_MODEL = '_OTHER';
/**
 * Provider error types that may be `error.type` on metrics: those Anthropic and OpenAI
 * publish. Any other string the upstream sends stays on the span only.
 */
const PROVIDER_ERROR_TYPES: ReadonlySet<string> = new Set([
  'invalid_request_error',
  'authentication_error',
  'billing_error',
  'permission_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'timeout_error',
  'api_error',
  'overloaded_error',
  'server_error',
  'insufficient_quota',
  'rate_limit_exceeded',
  'tokens',
  'requests',
]);
/** Outcomes that are a failure of the service (span status ERROR); the others are policy or the client's choice. */
const ERROR_OUTCOMES: ReadonlySet<string> = new Set([
  'upstream_error',
  'upstream_idle',
  'timeout',
  'store_unavailable',
  'handler_error',
  'internal_error',
]);

/**
 * The telemetry of one middleware. Created by `costTrackedSSE()` from its `telemetry`
 * option; usable on its own by other integrations.
 *
 * No metric attribute carries a string the caller chose, since each distinct value is a
 * series: model names are catalog ids or `_OTHER`, `error.type` a published provider type,
 * an HTTP status or an outcome. Spans keep the exact strings.
 *
 * @example
 * const telemetry = new Telemetry({ recordSubjects: ['team'] });
 * const start = telemetry.begin();
 * const stream = telemetry.startStream(start, { requestId, model, provider: 'anthropic', maxTokens, reservedNanos, reservations: 1 });
 * // ... stream, then:
 * stream.end({ outcome: 'completed', final, durationMs, backpressureWaits: 0, backpressureMs: 0, recorded: true, budgetRemainingNanos: null, reservationEnds: { settled: 1 } });
 */
export class Telemetry implements EngineEvents {
  readonly enabled: boolean;
  readonly recordContent: boolean;
  /** The GenAI names this instance emits. */
  readonly conventions: GenAiConventions;
  /** Records the time between output chunks (`timePerOutputChunk`). */
  readonly timePerOutputChunk: boolean;
  private readonly explicitTracer: Tracer | undefined;
  private readonly explicitMeter: Meter | undefined;
  private readonly subjectKinds: ReadonlySet<string> | 'all' | undefined;
  private readonly serverAttrs: Attributes;
  private readonly observeScopes: readonly ScopeRef[];
  private real: Instruments | undefined;
  private noopInstruments: Instruments | undefined;
  private observedStore: Store | undefined;
  /**
   * Metric attribute sets, built once per combination (model, provider, outcome…) and
   * reused by every stream that records with them, never mutated. Bounded: cleared when
   * full (models come from the pricing catalog; anything unpriced is `_OTHER`).
   */
  private readonly attrSets = new Map<string, Attributes>();
  private readonly catalog: PricingCatalog;

  /**
   * @param catalog The catalog pricing uses (the middleware passes its `pricing.catalog`):
   * model names on metrics are its ids, so callers cannot mint new series with made-up
   * names. Defaults to the bundled catalog.
   */
  constructor(options: TelemetryOptions = {}, catalog: PricingCatalog = PricingCatalog.bundled()) {
    if (typeof options !== 'object' || options === null) {
      throw new TokenmeterError(
        'invalid_config',
        'telemetry must be an object: { tracer?, meter?, recordSubjects?, recordContent?, server?, observeScopes?, conventions?, timePerOutputChunk?, enabled? }.',
      );
    }
    this.enabled = options.enabled !== false;
    const conventions = options.conventions ?? sc.conventionsFromEnv();
    if (conventions !== 'previous' && conventions !== 'latest') {
      throw new TokenmeterError(
        'invalid_config',
        "telemetry.conventions must be 'previous' or 'latest' (the GenAI names to emit).",
      );
    }
    this.conventions = conventions;
    const chunkTimes = options.timePerOutputChunk;
    if (chunkTimes !== undefined && typeof chunkTimes !== 'boolean') {
      throw new TokenmeterError(
        'invalid_config',
        'telemetry.timePerOutputChunk must be true or false (record the time between output chunks).',
      );
    }
    this.timePerOutputChunk = chunkTimes === true;
    this.recordContent = options.recordContent === true;
    this.explicitTracer = options.tracer;
    this.explicitMeter = options.meter;
    const subjects = options.recordSubjects;
    if (subjects === true) this.subjectKinds = 'all';
    else if (Array.isArray(subjects)) this.subjectKinds = new Set(subjects);
    else if (subjects === undefined || subjects === false) this.subjectKinds = undefined;
    else {
      throw new TokenmeterError(
        'invalid_config',
        "telemetry.recordSubjects must be true, false or a list of scope kinds (e.g. ['team']).",
      );
    }
    const server = options.server;
    if (
      server !== undefined &&
      (typeof server !== 'object' || typeof server.address !== 'string')
    ) {
      throw new TokenmeterError(
        'invalid_config',
        "telemetry.server must be { address: 'api.anthropic.com', port?: 443 }.",
      );
    }
    this.serverAttrs = server
      ? {
          [sc.ATTR_SERVER_ADDRESS]: server.address,
          ...(server.port !== undefined ? { [sc.ATTR_SERVER_PORT]: server.port } : {}),
        }
      : {};
    this.observeScopes = options.observeScopes ?? [];
    this.catalog = catalog;
    // With an explicit meter, or an SDK already registered, create the instruments now so
    // observable gauges report before the first request.
    if (this.enabled) this.instruments();
  }

  /** Call when the middleware starts on a request: keeps the active context (the HTTP server span). */
  begin(): RequestStart {
    return { context: context.active(), startTime: performance.now() };
  }

  /** A request refused before streaming: an `admit` span (child of the request's context) and the rejection metric. */
  rejected(start: RequestStart, info: RejectionInfo): void {
    if (!this.enabled) return;
    guarded(() => {
      if (!this.idle()) this.recordRejection(start, info);
    });
  }

  private recordRejection(start: RequestStart, info: RejectionInfo): void {
    const model = saneModel(info.model);
    const span = this.tracer().startSpan(
      model ? `${sc.SPAN_ADMISSION} ${model}` : sc.SPAN_ADMISSION,
      { kind: SpanKind.INTERNAL, startTime: start.startTime },
      start.context,
    );
    if (span.isRecording()) {
      const attrs: Attributes = {
        [sc.ATTR_GEN_AI_OPERATION_NAME]: sc.GEN_AI_OPERATION_CHAT,
        [sc.ATTR_TOKENMETER_REJECTION_REASON]: info.reason,
        [sc.ATTR_ERROR_TYPE]: info.reason,
        ...this.subjectAttrs(info.scopes),
      };
      if (model) attrs[sc.ATTR_GEN_AI_REQUEST_MODEL] = model;
      if (info.provider && model) attrs[sc.ATTR_GEN_AI_PROVIDER_NAME] = info.provider;
      if (isCount(info.maxTokens)) attrs[sc.ATTR_GEN_AI_REQUEST_MAX_TOKENS] = info.maxTokens;
      if (isOutcome(info.reason)) attrs[sc.ATTR_TOKENMETER_OUTCOME] = info.reason;
      if (info.status !== undefined) attrs[sc.ATTR_HTTP_RESPONSE_STATUS_CODE] = info.status;
      if (info.scope) attrs[sc.ATTR_TOKENMETER_REJECTION_SCOPE] = info.scope;
      if (isCount(info.reservedNanos))
        attrs[sc.ATTR_TOKENMETER_RESERVED_USD] = nanosToUsd(info.reservedNanos);
      if (isCount(info.budgetRemainingNanos))
        attrs[sc.ATTR_TOKENMETER_BUDGET_REMAINING_USD] = nanosToUsd(info.budgetRemainingNanos);
      if (isCount(info.retryAfterMs)) attrs[sc.ATTR_TOKENMETER_RETRY_AFTER_MS] = info.retryAfterMs;
      span.setAttributes(attrs);
      if (ERROR_OUTCOMES.has(info.reason)) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end(performance.now());

    const inst = this.instruments();
    if (inst.noop) return;
    const attrs: Attributes = {
      [sc.ATTR_TOKENMETER_REJECTION_REASON]: info.reason,
      [sc.ATTR_GEN_AI_OPERATION_NAME]: sc.GEN_AI_OPERATION_CHAT,
      ...this.subjectAttrs(info.scopes),
    };
    // Before pricing accepted it, the model name is whatever the client sent: keep it off metrics.
    if (model && info.modelPriced === true) {
      attrs[sc.ATTR_GEN_AI_REQUEST_MODEL] = this.metricModel(model);
      if (info.provider) attrs[sc.ATTR_GEN_AI_PROVIDER_NAME] = info.provider;
    }
    inst.rejections.add(1, attrs);
    const released = info.reservationsReleased ?? 0;
    if (released > 0) {
      inst.opened.add(released);
      inst.ended.add(released, this.reservationEnd('released'));
    }
  }

  /** An admitted stream: starts its `chat {model}` span (CLIENT, child of the request's context). */
  startStream(start: RequestStart, info: StreamStartInfo): StreamTrace {
    if (!this.enabled) return DISABLED_TRACE;
    return (
      guarded(() => (this.idle() ? idleTrace(start.context) : this.openStream(start, info))) ??
      DISABLED_TRACE
    );
  }

  /**
   * True while nothing would record: no tracer given and no SDK registered behind the
   * global API, and no-op metric instruments. A stream then skips its span and trace
   * objects entirely. Checked per request, so an SDK registered later is picked up.
   */
  private idle(): boolean {
    if (this.explicitTracer) return false;
    const provider = trace.getTracerProvider() as {
      getDelegateTracer?: (name: string, version?: string) => Tracer | undefined;
    };
    if (typeof provider.getDelegateTracer !== 'function') return false;
    if (
      provider.getDelegateTracer(
        sc.INSTRUMENTATION_SCOPE.name,
        sc.INSTRUMENTATION_SCOPE.version,
      ) !== undefined
    ) {
      return false;
    }
    return this.instruments().noop;
  }

  private openStream(start: RequestStart, info: StreamStartInfo): StreamTrace {
    const attributes: Attributes = {
      [sc.ATTR_GEN_AI_OPERATION_NAME]: sc.GEN_AI_OPERATION_CHAT,
      [sc.ATTR_GEN_AI_PROVIDER_NAME]: info.provider,
      [sc.ATTR_GEN_AI_REQUEST_MODEL]: info.model,
      [sc.ATTR_GEN_AI_REQUEST_MAX_TOKENS]: info.maxTokens,
      [sc.ATTR_GEN_AI_REQUEST_STREAM]: true,
      [sc.ATTR_TOKENMETER_REQUEST_ID]: info.requestId,
      [sc.ATTR_TOKENMETER_RESERVED_USD]: nanosToUsd(info.reservedNanos),
      ...this.serverAttrs,
    };
    const span = this.tracer().startSpan(
      `${sc.GEN_AI_OPERATION_CHAT} ${info.model}`,
      { kind: SpanKind.CLIENT, startTime: start.startTime, attributes },
      start.context,
    );
    if (span.isRecording()) {
      // Every time on our spans is explicit and a performance timestamp, like the start:
      // given a start time, the SDK would stamp the rest with Date.now() (whole ms), which
      // can put an event before the start or after the end.
      span.addEvent(
        sc.EVENT_TOKENMETER_ADMITTED,
        {
          [sc.ATTR_TOKENMETER_RESERVED_USD]: nanosToUsd(info.reservedNanos),
          ...(isCount(info.budgetRemainingNanos)
            ? { [sc.ATTR_TOKENMETER_BUDGET_REMAINING_USD]: nanosToUsd(info.budgetRemainingNanos) }
            : {}),
        },
        performance.now(),
      );
      const subjects = this.subjectAttrs(info.scopes);
      if (subjects !== EMPTY) span.setAttributes(subjects);
      if (this.recordContent && info.input !== undefined) {
        const content = inputContent(info.input);
        if (content.messages) span.setAttribute(sc.ATTR_GEN_AI_INPUT_MESSAGES, content.messages);
        if (content.system) span.setAttribute(sc.ATTR_GEN_AI_SYSTEM_INSTRUCTIONS, content.system);
      }
    }
    const inst = this.instruments();
    // Active streams go up and down with the same attributes and the same instruments.
    const model = info.modelPriced === false ? OTHER_MODEL : this.metricModel(info.model);
    const activeAttrs = this.attributeSet(`a\u0000${info.provider}\u0000${model}`, () => ({
      [sc.ATTR_GEN_AI_OPERATION_NAME]: sc.GEN_AI_OPERATION_CHAT,
      [sc.ATTR_GEN_AI_PROVIDER_NAME]: info.provider,
      [sc.ATTR_GEN_AI_REQUEST_MODEL]: model,
    }));
    if (!inst.noop) {
      inst.active.add(1, activeAttrs);
      if (info.reservations > 0) inst.opened.add(info.reservations);
    }
    return new ActiveStreamTrace(this, span, start.context, inst, activeAttrs, info);
  }

  /**
   * Wraps a store so every call's latency and failures are recorded in
   * `tokenmeter.store.operation.duration`. Wrap the guarded store, so timeouts count as
   * failures at the guard's limit. Also the store the reservation gauges read.
   */
  instrumentStore(store: Store): Store {
    if (!this.enabled) return store;
    this.observedStore = store;
    return timedStore(store, () => this.instruments());
  }

  /**
   * The global tracer is looked up per span, not once: a ProxyTracer taken before the SDK
   * registers only learns of it through its own copy of the API, and with the API's
   * separate CJS and ESM builds the SDK may register through the other one.
   */
  /** @internal The tracer spans go to (see `tracer()`). */
  tracerOf(): Tracer {
    return this.tracer();
  }

  private tracer(): Tracer {
    return (
      this.explicitTracer ??
      trace.getTracer(sc.INSTRUMENTATION_SCOPE.name, sc.INSTRUMENTATION_SCOPE.version)
    );
  }

  /**
   * @internal The attribute set named `key`, made by `make` the first time. Callers must
   * not change what they get: it is shared by every stream with the same key.
   */
  attributeSet(key: string, make: () => Attributes): Attributes {
    let set = this.attrSets.get(key);
    if (set === undefined) {
      if (this.attrSets.size >= 1_024) this.attrSets.clear();
      set = make();
      this.attrSets.set(key, set);
    }
    return set;
  }

  /**
   * @internal A model name as a metric attribute: the catalog id it resolves to, else
   * `_OTHER`. Never the caller's spelling (a dated alias, a made-up name): every distinct
   * value is a metric series, so they are bounded by the catalog's size + 1.
   */
  metricModel(model: string): string {
    return this.catalog.canonicalId(model) ?? OTHER_MODEL;
  }

  /** @internal The attribute set of a reservation's end (built once per kind). */
  reservationEnd(kind: string): Attributes {
    return this.attributeSet(`r\u0000${kind}`, () => ({
      [sc.ATTR_TOKENMETER_RESERVATION_END]: kind,
    }));
  }

  /** @internal Subject attributes allowed by `recordSubjects`. */
  subjectAttrs(scopes: readonly ScopeRef[] | undefined): Attributes {
    const kinds = this.subjectKinds;
    if (!kinds || !scopes || scopes.length === 0) return EMPTY;
    const attrs: Attributes = {};
    let any = false;
    for (const scope of scopes) {
      if (kinds !== 'all' && !kinds.has(scope.kind)) continue;
      attrs[sc.ATTR_TOKENMETER_SUBJECT_PREFIX + scope.kind] = scope.id;
      any = true;
    }
    return any ? attrs : EMPTY;
  }

  /** @internal */
  get serverAttributes(): Attributes {
    return this.serverAttrs;
  }

  /** @internal The instruments of the real meter, or no-ops until one is registered. */
  instruments(): Instruments {
    if (this.real) return this.real;
    const meter =
      this.explicitMeter ??
      metrics.getMeter(sc.INSTRUMENTATION_SCOPE.name, sc.INSTRUMENTATION_SCOPE.version);
    if (meter === NOOP_METER) {
      this.noopInstruments ??= {
        ...createInstruments(meter, this.conventions, false),
        noop: true,
      };
      return this.noopInstruments;
    }
    const real = guarded(() => createInstruments(meter, this.conventions, this.timePerOutputChunk));
    // A meter that cannot make instruments gets no second chance: no-ops from now on.
    this.real = real ?? { ...createInstruments(NOOP_METER, this.conventions, false), noop: true };
    if (real && this.observeScopes.length > 0) {
      guarded(() => observeReservations(meter, this.observeScopes, () => this.observedStore));
    }
    return this.real;
  }
}

const EMPTY: Attributes = Object.freeze({}) as Attributes;

class ActiveStreamTrace implements StreamTrace {
  readonly context: Context;
  readonly recordsContent: boolean;
  readonly recordsChunks: boolean;
  readonly active = true;
  private readonly startedAt = performance.now();
  private text: string[] | undefined;
  private ended = false;
  /** When the last output chunk came (`performance.now()`), once one has. */
  private lastChunkAt: number | undefined;
  private chunkAttrs: Attributes | undefined;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly span: Span,
    parent: Context,
    private readonly inst: Instruments,
    private readonly activeAttrs: Attributes,
    private readonly info: StreamStartInfo,
  ) {
    this.context = trace.setSpan(parent, span);
    this.recordsContent = telemetry.recordContent && span.isRecording();
    if (this.recordsContent) this.text = [];
    this.recordsChunks = inst.timePerOutputChunk !== undefined && !inst.noop;
  }

  run<T>(fn: () => T): T {
    return context.with(this.context, fn);
  }

  output(text: string): void {
    this.text?.push(text);
  }

  chunk(): void {
    const histogram = this.inst.timePerOutputChunk;
    if (histogram === undefined || this.ended) return;
    const now = performance.now();
    const last = this.lastChunkAt;
    this.lastChunkAt = now;
    if (last === undefined) return;
    // The attributes known while streaming: the ones time_to_first_chunk has, bar the
    // response model (which the conventions recommend, not require).
    this.chunkAttrs ??= this.telemetry.attributeSet(
      `c\u0000${this.info.provider}\u0000${String(this.activeAttrs[sc.ATTR_GEN_AI_REQUEST_MODEL])}`,
      () => ({ ...this.activeAttrs, ...this.telemetry.serverAttributes }),
    );
    guarded(() => histogram.record((now - last) / 1000, this.chunkAttrs));
  }

  abort(reason: StreamOutcome): void {
    if (this.ended || !this.span.isRecording()) return;
    this.span.addEvent(
      sc.EVENT_TOKENMETER_ABORT,
      { [sc.ATTR_TOKENMETER_ABORT_REASON]: reason },
      performance.now(),
    );
  }

  end(end: StreamEndInfo): void {
    if (this.ended) return;
    this.ended = true;
    guarded(() => this.finish(end));
  }

  private finish(end: StreamEndInfo): void {
    const { outcome, failure } = end;
    // Input as the GenAI conventions count it: input + cache read + cache creation.
    const inputTokens = promptTokens(end.final.usage);
    const errorType =
      outcome === 'completed'
        ? undefined
        : (failure?.type ?? (failure?.status !== undefined ? String(failure.status) : outcome));
    if (this.span.isRecording()) {
      this.describeSpan(end, inputTokens, errorType);
      const calls = end.final.calls;
      if (calls && calls.length > 1) this.callSpans(calls, end, errorType);
    }
    this.span.end(performance.now());
    if (!this.inst.noop) this.recordMetrics(end, errorType);
  }

  /**
   * The span's attributes, events and status at the end. A stream of several provider
   * calls (an agent's tool loop through the AI SDK) becomes an `invoke_agent` span, as the
   * GenAI conventions describe an agent invocation: it keeps the totals and the settled
   * charge, and each call is a `chat {model}` child (`callSpans`) with its own usage,
   * cache breakdown and cost.
   */
  private describeSpan(end: StreamEndInfo, inputTokens: number, errorType: string | undefined) {
    const { final, outcome, failure } = end;
    const usage = final.usage;
    const span = this.span;
    const latest = this.telemetry.conventions === 'latest';
    const costUsd = nanosToUsd(final.costNanos);
    const agent = final.calls !== undefined && final.calls.length > 1;
    const attrs: Attributes = {
      [sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: inputTokens,
      [sc.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage.outputTokens,
      [sc.ATTR_TOKENMETER_OUTCOME]: outcome,
      [sc.ATTR_TOKENMETER_COST_NANOS]: final.costNanos,
      [sc.ATTR_TOKENMETER_COST_ESTIMATED]: final.estimated,
      [sc.ATTR_TOKENMETER_BACKPRESSURE_WAITS]: end.backpressureWaits,
      [sc.ATTR_TOKENMETER_BACKPRESSURE_WAIT_MS]: end.backpressureMs,
      [sc.ATTR_TOKENMETER_SETTLEMENT_RECORDED]: end.recorded,
    };
    if (!latest) attrs[sc.ATTR_TOKENMETER_COST_USD] = costUsd;
    if (agent) {
      span.updateName(sc.GEN_AI_OPERATION_INVOKE_AGENT);
      attrs[sc.ATTR_GEN_AI_OPERATION_NAME] = sc.GEN_AI_OPERATION_INVOKE_AGENT;
    } else {
      // One call: this span is the inference span, with the breakdown and the call's cost.
      Object.assign(attrs, usageBreakdown(usage, latest), costShape(final.costNanos));
      if (final.responseId) attrs[sc.ATTR_GEN_AI_RESPONSE_ID] = final.responseId;
    }
    if (final.responseModel) attrs[sc.ATTR_GEN_AI_RESPONSE_MODEL] = final.responseModel;
    if (final.stopReason) attrs[sc.ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = [final.stopReason];
    if (errorType !== undefined) attrs[sc.ATTR_ERROR_TYPE] = errorType;
    if (isCount(end.budgetRemainingNanos))
      attrs[sc.ATTR_TOKENMETER_BUDGET_REMAINING_USD] = nanosToUsd(end.budgetRemainingNanos);
    if (end.timeToFirstTokenMs !== undefined) {
      attrs[sc.ATTR_TOKENMETER_TIME_TO_FIRST_TOKEN_MS] = end.timeToFirstTokenMs;
      attrs[sc.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = end.timeToFirstTokenMs / 1000;
      // Written now with its real time: no work on the hot path.
      span.addEvent(
        sc.EVENT_TOKENMETER_FIRST_TOKEN,
        { [sc.ATTR_TOKENMETER_TIME_TO_FIRST_TOKEN_MS]: end.timeToFirstTokenMs },
        this.startedAt + end.timeToFirstTokenMs,
      );
    }
    if (end.backpressureWaits > 0) {
      span.addEvent(
        sc.EVENT_TOKENMETER_BACKPRESSURE,
        {
          [sc.ATTR_TOKENMETER_BACKPRESSURE_WAITS]: end.backpressureWaits,
          [sc.ATTR_TOKENMETER_BACKPRESSURE_WAIT_MS]: end.backpressureMs,
        },
        performance.now(),
      );
    }
    if (this.text) {
      attrs[sc.ATTR_GEN_AI_OUTPUT_MESSAGES] = outputContent(
        this.text.join(''),
        finishReason(final.stopReason ?? (outcome === 'completed' ? 'stop' : undefined)),
      );
      this.text = undefined;
    }
    span.setAttributes(attrs);
    if (ERROR_OUTCOMES.has(outcome)) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        ...(failure?.message ? { message: failure.message } : {}),
      });
    }
  }

  /** One `chat {model}` child per provider call, at the times the call began and ended. */
  private callSpans(
    calls: readonly CallUsage[],
    end: StreamEndInfo,
    errorType: string | undefined,
  ) {
    const latest = this.telemetry.conventions === 'latest';
    const tracer = this.telemetry.tracerOf();
    calls.forEach((call, i) => {
      const last = i === calls.length - 1;
      const attributes: Attributes = {
        [sc.ATTR_GEN_AI_OPERATION_NAME]: sc.GEN_AI_OPERATION_CHAT,
        [sc.ATTR_GEN_AI_PROVIDER_NAME]: this.info.provider,
        [sc.ATTR_GEN_AI_REQUEST_MODEL]: this.info.model,
        [sc.ATTR_GEN_AI_REQUEST_STREAM]: true,
        ...this.telemetry.serverAttributes,
        [sc.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: promptTokens(call.usage),
        [sc.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: call.usage.outputTokens,
        ...usageBreakdown(call.usage, latest),
        ...costShape(call.costNanos),
        [sc.ATTR_TOKENMETER_COST_NANOS]: call.costNanos,
        [sc.ATTR_TOKENMETER_COST_ESTIMATED]: call.estimated,
      };
      if (call.responseModel) attributes[sc.ATTR_GEN_AI_RESPONSE_MODEL] = call.responseModel;
      if (call.responseId) attributes[sc.ATTR_GEN_AI_RESPONSE_ID] = call.responseId;
      if (call.stopReason) attributes[sc.ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = [call.stopReason];
      if (last && errorType !== undefined) attributes[sc.ATTR_ERROR_TYPE] = errorType;
      const child = tracer.startSpan(
        `${sc.GEN_AI_OPERATION_CHAT} ${this.info.model}`,
        { kind: SpanKind.CLIENT, startTime: call.startedAt, attributes },
        this.context,
      );
      if (last && ERROR_OUTCOMES.has(end.outcome)) child.setStatus({ code: SpanStatusCode.ERROR });
      child.end(call.endedAt);
    });
  }

  /** The stream's metric records: one per instrument, on attribute sets built once. */
  private recordMetrics(end: StreamEndInfo, errorType: string | undefined) {
    const { final, outcome, failure } = end;
    const inst = this.inst;
    inst.active.add(-1, this.activeAttrs);
    // Every set below is built once per combination and shared (see attributeSet).
    const telemetry = this.telemetry;
    const responseModel =
      final.responseModel && this.info.modelPriced !== false
        ? telemetry.metricModel(final.responseModel)
        : undefined;
    const baseKey = `b\u0000${this.info.provider}\u0000${String(this.activeAttrs[sc.ATTR_GEN_AI_REQUEST_MODEL])}\u0000${responseModel ?? ''}`;
    const base = telemetry.attributeSet(baseKey, () => {
      const attrs: Attributes = { ...this.activeAttrs, ...telemetry.serverAttributes };
      if (responseModel) attrs[sc.ATTR_GEN_AI_RESPONSE_MODEL] = responseModel;
      return attrs;
    });
    const subjects = telemetry.subjectAttrs(this.info.scopes);
    // Subjects are ids (users, teams): sets with them are built per stream, not kept.
    const shared = subjects === EMPTY;
    const outcomeKey = `${baseKey}\u0000o\u0000${outcome}`;
    const makeOutcome = (): Attributes => ({
      ...base,
      ...subjects,
      [sc.ATTR_TOKENMETER_OUTCOME]: outcome,
    });
    const outcomeAttrs = shared ? telemetry.attributeSet(outcomeKey, makeOutcome) : makeOutcome();
    inst.streams.add(1, outcomeAttrs);
    const makeCost = (): Attributes => ({
      ...outcomeAttrs,
      [sc.ATTR_TOKENMETER_COST_ESTIMATED]: final.estimated,
    });
    inst.cost.add(
      nanosToUsd(final.costNanos),
      shared
        ? telemetry.attributeSet(`${outcomeKey}\u0000${final.estimated}`, makeCost)
        : makeCost(),
    );
    const metricError = errorType === undefined ? undefined : metricErrorType(outcome, failure);
    const withError =
      metricError === undefined
        ? base
        : telemetry.attributeSet(`${baseKey}\u0000e\u0000${metricError}`, () => ({
            ...base,
            [sc.ATTR_ERROR_TYPE]: metricError,
          }));
    // The GenAI metrics are per provider call: one for most streams, one per step of a
    // source that made several (the AI SDK's tool loop); the failure is the last call's.
    const calls = end.final.calls;
    if (calls && calls.length > 1) {
      calls.forEach((call, i) => {
        const last = i === calls.length - 1;
        this.recordCall(
          inst,
          call,
          (call.endedAt - call.startedAt) / 1000,
          base,
          last ? withError : base,
          baseKey,
        );
      });
    } else {
      this.recordCall(inst, final, end.durationMs / 1000, base, withError, baseKey);
    }
    if (end.timeToFirstTokenMs !== undefined)
      inst.timeToFirstChunk.record(end.timeToFirstTokenMs / 1000, base);
    inst.backpressure.record(end.backpressureMs / 1000, base);
    for (const kind in end.reservationEnds) {
      const count = end.reservationEnds[kind as ReservationEnd];
      if (count) inst.ended.add(count, telemetry.reservationEnd(kind));
    }
  }

  /** One provider call's GenAI metrics (and, with the latest names, its cost). */
  private recordCall(
    inst: Instruments,
    call: CallFigures,
    durationS: number,
    base: Attributes,
    withError: Attributes,
    baseKey: string,
  ): void {
    const telemetry = this.telemetry;
    const inputTokens = promptTokens(call.usage);
    if (inst.tokenUsage && (call.inputSource !== 'none' || call.outputSource !== 'none')) {
      inst.tokenUsage.record(
        inputTokens,
        telemetry.attributeSet(`${baseKey}\u0000in`, () => ({
          ...base,
          [sc.ATTR_GEN_AI_TOKEN_TYPE]: sc.GEN_AI_TOKEN_TYPE_INPUT,
        })),
      );
      inst.tokenUsage.record(
        call.usage.outputTokens,
        telemetry.attributeSet(`${baseKey}\u0000out`, () => ({
          ...base,
          [sc.ATTR_GEN_AI_TOKEN_TYPE]: sc.GEN_AI_TOKEN_TYPE_OUTPUT,
        })),
      );
    }
    if (inst.usage) {
      recordUsageCounters(inst.usage, telemetry, call, inputTokens, base, withError, baseKey);
    }
    if (inst.operationCost) {
      inst.operationCost.record(
        nanosToUsd(call.costNanos),
        telemetry.attributeSet(`${baseKey}\u0000cost`, () => ({
          ...base,
          [sc.ATTR_TOKENMETER_COST_CURRENCY]: sc.TOKENMETER_COST_CURRENCY_USD,
          [sc.ATTR_TOKENMETER_COST_SOURCE]: sc.TOKENMETER_COST_SOURCE_LOCAL,
        })),
      );
    }
    inst.duration.record(durationS, withError);
  }
}

/** The cache and reasoning attributes of an inference span (cache writes named per version). */
function usageBreakdown(usage: CallUsage['usage'], latest: boolean): Attributes {
  const attrs: Attributes = {
    [sc.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: usage.cacheReadTokens,
    [latest
      ? sc.ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
      : sc.ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS]:
      usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
  };
  if (usage.reasoningTokens > 0)
    attrs[sc.ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoningTokens;
  return attrs;
}

/** An inference call's cost in the proposed `gen_ai.usage.cost.*` shape (under `tokenmeter.*`). */
function costShape(nanos: number): Attributes {
  return {
    [sc.ATTR_TOKENMETER_COST_AMOUNT]: nanosToUsd(nanos),
    [sc.ATTR_TOKENMETER_COST_CURRENCY]: sc.TOKENMETER_COST_CURRENCY_USD,
    [sc.ATTR_TOKENMETER_COST_SOURCE]: sc.TOKENMETER_COST_SOURCE_LOCAL,
  };
}

/**
 * The latest conventions' token metrics: counters of what the provider reported (a count
 * the provider never sent is recorded as 0, as the conventions ask: tokenmeter's estimate of
 * a cut stream is on the span and in the cost, not here), and per-call histograms.
 */
function recordUsageCounters(
  counters: TokenCounters,
  telemetry: Telemetry,
  final: CallFigures,
  inputTokens: number,
  base: Attributes,
  withError: Attributes,
  baseKey: string,
): void {
  const usage = final.usage;
  const modality = telemetry.attributeSet(`${baseKey}\u0000m`, () => ({
    ...base,
    [sc.ATTR_GEN_AI_TOKEN_MODALITY]: sc.GEN_AI_TOKEN_MODALITY_UNKNOWN,
  }));
  const input = final.inputSource === 'provider' ? inputTokens : 0;
  const output = final.outputSource === 'provider' ? usage.outputTokens : 0;
  counters.input.add(input, modality);
  counters.output.add(output, modality);
  if (final.inputSource === 'provider') {
    if (usage.cacheReadTokens > 0) counters.cacheRead.add(usage.cacheReadTokens, modality);
    const written = usage.cacheWrite5mTokens + usage.cacheWrite1hTokens;
    if (written > 0) counters.cacheWrite.add(written, modality);
  }
  if (final.outputSource === 'provider' && usage.reasoningTokens > 0) {
    counters.reasoning.add(usage.reasoningTokens, modality);
  }
  if (final.inputSource === 'provider') counters.operationInput.record(input, withError);
  if (final.outputSource === 'provider') counters.operationOutput.record(output, withError);
}

const DISABLED_TRACE: StreamTrace = Object.freeze({
  context: context.active(),
  recordsContent: false,
  recordsChunks: false,
  active: false,
  run: <T>(fn: () => T): T => fn(),
  output: () => {},
  chunk: () => {},
  abort: () => {},
  end: () => {},
});

/** Nothing would record: no span, no metrics; the upstream call runs in the request's context. */
function idleTrace(parent: Context): StreamTrace {
  return { ...DISABLED_TRACE, context: parent };
}

function createInstruments(
  meter: Meter,
  conventions: GenAiConventions,
  timePerOutputChunk: boolean,
): Instruments {
  const latest = conventions === 'latest';
  const tokens = { unit: '{token}' };
  const tokenHistogram = {
    unit: '{token}',
    advice: { explicitBucketBoundaries: [...sc.GEN_AI_TOKEN_USAGE_BUCKETS] },
  };
  const seconds = {
    unit: 's',
    advice: { explicitBucketBoundaries: [...sc.GEN_AI_DURATION_BUCKETS] },
  };
  return {
    noop: false,
    tokenUsage: latest
      ? undefined
      : meter.createHistogram(sc.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, {
          description: 'Number of input and output tokens used.',
          ...tokenHistogram,
        }),
    usage: latest
      ? {
          input: meter.createCounter(sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, {
            description: 'Input tokens the provider reported, cached ones included.',
            ...tokens,
          }),
          output: meter.createCounter(sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS, {
            description: 'Output tokens the provider reported, reasoning included.',
            ...tokens,
          }),
          cacheRead: meter.createCounter(
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
            { description: 'Input tokens read from the provider cache.', ...tokens },
          ),
          cacheWrite: meter.createCounter(
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
            { description: 'Input tokens written to the provider cache.', ...tokens },
          ),
          reasoning: meter.createCounter(
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
            { description: 'Output tokens spent on reasoning.', ...tokens },
          ),
          operationInput: meter.createHistogram(
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS,
            { description: 'Input tokens per inference call.', ...tokenHistogram },
          ),
          operationOutput: meter.createHistogram(
            sc.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS,
            { description: 'Output tokens per inference call.', ...tokenHistogram },
          ),
        }
      : undefined,
    duration: meter.createHistogram(
      latest
        ? sc.METRIC_GEN_AI_CLIENT_INFERENCE_DURATION
        : sc.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
      { description: 'GenAI operation duration.', ...seconds },
    ),
    timeToFirstChunk: meter.createHistogram(
      latest
        ? sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK
        : sc.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
      { description: 'Time to receive the first chunk of a streamed response.', ...seconds },
    ),
    timePerOutputChunk: timePerOutputChunk
      ? meter.createHistogram(
          latest
            ? sc.METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK
            : sc.METRIC_GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
          {
            description: 'Time from one output chunk of a streamed response to the next.',
            unit: 's',
            advice: { explicitBucketBoundaries: [...sc.TIME_PER_OUTPUT_CHUNK_BUCKETS] },
          },
        )
      : undefined,
    operationCost: latest
      ? meter.createHistogram(sc.METRIC_TOKENMETER_CLIENT_OPERATION_COST, {
          description:
            'Cost of each call in USD, computed from the pricing catalog (a double; the exact nano-dollar figure is on the span and in onSettle).',
          unit: 'USD',
          advice: { explicitBucketBoundaries: [...sc.COST_BUCKETS] },
        })
      : undefined,
    cost: meter.createCounter(sc.METRIC_TOKENMETER_COST, {
      description:
        'Spend in USD (a double, for rates and dashboards; the exact nano-dollar figure is on the span and in onSettle).',
      unit: 'USD',
    }),
    streams: meter.createCounter(sc.METRIC_TOKENMETER_STREAMS, {
      description: 'Metered streams settled, by outcome.',
      unit: '{stream}',
    }),
    active: meter.createUpDownCounter(sc.METRIC_TOKENMETER_STREAMS_ACTIVE, {
      description: 'Metered streams open now.',
      unit: '{stream}',
    }),
    rejections: meter.createCounter(sc.METRIC_TOKENMETER_ADMISSION_REJECTIONS, {
      description: 'Requests refused before streaming, by reason.',
      unit: '{request}',
    }),
    opened: meter.createCounter(sc.METRIC_TOKENMETER_RESERVATIONS_OPENED, {
      description: 'Budget reservations opened by this process.',
      unit: '{reservation}',
    }),
    ended: meter.createCounter(sc.METRIC_TOKENMETER_RESERVATIONS_ENDED, {
      description: 'Budget reservations ended by this process, by how they ended.',
      unit: '{reservation}',
    }),
    backpressure: meter.createHistogram(sc.METRIC_TOKENMETER_BACKPRESSURE_DURATION, {
      description: "Total time one stream waited for the client's socket to drain.",
      unit: 's',
      advice: { explicitBucketBoundaries: [...sc.BACKPRESSURE_BUCKETS] },
    }),
    storeLatency: meter.createHistogram(sc.METRIC_TOKENMETER_STORE_OPERATION_DURATION, {
      description: 'Store call latency; failed calls carry error.type.',
      unit: 's',
      advice: { explicitBucketBoundaries: [...sc.STORE_LATENCY_BUCKETS] },
    }),
  };
}

/**
 * `error.type` on metrics, from a fixed set: a published provider error type, else the
 * HTTP status, else the outcome. The span keeps whatever type the upstream sent.
 */
function metricErrorType(outcome: StreamOutcome, failure: StreamEndInfo['failure']): string {
  if (failure?.type !== undefined && PROVIDER_ERROR_TYPES.has(failure.type)) return failure.type;
  const status = failure?.status;
  if (status !== undefined && Number.isInteger(status) && status >= 100 && status <= 599) {
    return String(status);
  }
  return outcome;
}

function isOutcome(value: string): value is StreamOutcome {
  return (OUTCOMES as readonly string[]).includes(value);
}

function saneModel(model: unknown): string | undefined {
  return typeof model === 'string' && model !== '' && model.length <= 256 ? model : undefined;
}

function isCount(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
