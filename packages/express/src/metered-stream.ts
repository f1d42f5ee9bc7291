/**
 * One admitted stream, from the moment SSE headers go out to its single settlement:
 * reads the provider stream (pausing while the client's socket is full), writes SSE
 * events, enforces the reservation and the cost cap, aborts the upstream call on
 * disconnect or timeout through one AbortController, and settles exactly once through
 * `settle()` whatever way it ends.
 */
import {
  type BudgetState,
  createEventTranslator,
  type EndResult,
  extendAll,
  type FinalUsage,
  nanosToUsd,
  promptTokens,
  type RequestBound,
  type ReservationEnd,
  type ScopeRef,
  StreamMeter,
  type StreamOutcome,
  type StreamTrace,
  settleAll,
  type TelemetryStart,
  TokenmeterError,
  type Usage,
  worstCaseCost,
} from '@tokenmeter/core';
import type { Config } from './options.js';
import { SseWriter } from './sse-writer.js';
import type {
  MeteredRequest,
  MeteredResponse,
  MeteredStream,
  SettleInfo,
  StreamLimit,
} from './types.js';
import { classifyUpstreamError, toAsyncIterable, type UpstreamFailure } from './upstream-errors.js';

/** The shape of an Anthropic `content_block_delta` with text, read without translation. */
interface AnthropicTextDelta {
  type?: unknown;
  delta?: { type?: unknown; text?: unknown };
}

export interface Admission {
  requestId: string;
  scopes: readonly ScopeRef[];
  /**
   * Empty when no budget or rate limit applies to the request (`metered: false`), or when
   * the store failed and the policy let it through unmetered.
   */
  reservationIds: readonly string[];
  /** True when some budget or rate limit applies: a settlement is owed to the store. */
  metered: boolean;
  reservedNanos: number;
  model: string;
  maxTokens: number;
  inputTokens: number;
  /** The prompt's upper bound (equal to `inputTokens` when counted exactly). */
  inputTokensBound: number;
  /** The tightest budget at admission, if any. */
  budget: BudgetState | null;
  /**
   * Output tokens the reservation covers before it must grow (incremental leases) or the
   * stream must stop (the cost cap). Infinity when it covers `max_tokens`.
   */
  leasedOutputTokens: number;
  /** Output tokens after which the cost cap stops the stream (Infinity: no cap). */
  capOutputTokens: number;
  /** What the reservation priced: the worst case of the request, for pricing lease steps. */
  bound: RequestBound;
  /** Output tokens the reservation covers at admission. */
  reservedOutputTokens: number;
  /** `gen_ai.provider.name`. */
  provider: string;
  /** False when the unknown-model fallback priced the model. */
  modelPriced: boolean;
  /** The provider request body (for opt-in content recording). */
  input?: unknown;
  /** Parent context and start time, from the middleware's entry. */
  telemetry: TelemetryStart;
}

/** The smallest lease extension tried before a lease is refused, in output tokens. */
const MIN_LEASE_STEP = 16;

const LIMIT_MESSAGES: Record<StreamLimit, string> = {
  max_cost_per_request: "The answer reached this route's cost cap per request; it was cut short.",
  lease_denied: 'The budget cannot cover more of this answer; it was cut short.',
  lease_unavailable: 'The budget store could not extend this answer; it was cut short.',
};

const CODE_MESSAGES: Record<StreamOutcome, string> = {
  completed: 'The answer is complete.',
  client_disconnected: 'The client disconnected.',
  budget_exceeded: 'The budget for this request ran out; the answer was cut short.',
  rate_limited: 'Rate limit reached.',
  upstream_error: 'The model provider failed.',
  timeout: 'The model provider stopped responding in time.',
  store_unavailable: 'The budget store is unavailable.',
  handler_error: 'The server failed before the answer could start.',
};

/** Shared by every stream of one middleware: one timer for timeouts and keep-alives. */
export class StreamRegistry {
  private readonly active = new Set<MeteredStreamImpl>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly tickMs: number) {}

  add(stream: MeteredStreamImpl): void {
    this.active.add(stream);
    if (!this.timer) {
      this.timer = setInterval(() => {
        const now = performance.now();
        for (const s of this.active) s.tick(now);
      }, this.tickMs);
      this.timer.unref();
    }
  }

  delete(stream: MeteredStreamImpl): void {
    this.active.delete(stream);
    if (this.active.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get size(): number {
    return this.active.size;
  }
}

export class MeteredStreamImpl implements MeteredStream {
  readonly requestId: string;
  readonly model: string;
  readonly maxTokens: number;
  readonly inputTokens: number;
  readonly scopes: readonly ScopeRef[];
  /** Nano-dollars reserved so far (incremental leases grow it). */
  reservedNanos: number;
  readonly writer: SseWriter;
  readonly meter: StreamMeter;
  /** This stream's span and metrics. */
  readonly trace: StreamTrace;
  private readonly controller = new AbortController();
  private readonly translate = createEventTranslator();
  private readonly startedAt = performance.now();
  // Activity is counted on the hot path and timed by the shared tick: no clock read per chunk.
  private chunks = 0;
  private chunksAtTick = -1;
  private lastChunkAt = performance.now();
  private writesAtTick = -1;
  private lastWriteAt = performance.now();
  private lastUsageAt = 0;
  private usageDue = false;
  private lastUsageOutput = -1;
  private abortReason: StreamOutcome | undefined;
  /** Which limit stopped the stream, when one did (said in the final event). */
  private limit: StreamLimit | undefined;
  private handedOver = false;
  private signalTouched = false;
  private reading = false;
  private settlement: Promise<FinalUsage> | undefined;
  private leasedOutputTokens: number;
  private reservationIds: readonly string[];
  private readonly onClose = () => {
    // 'close' before the response finished: the client left. Abort the upstream at once.
    if (this.res.writableFinished) return;
    this.abort('client_disconnected');
    void this.settle('client_disconnected');
  };

  constructor(
    private readonly config: Config,
    private readonly registry: StreamRegistry,
    private readonly req: MeteredRequest,
    private readonly res: MeteredResponse,
    private readonly admission: Admission,
  ) {
    this.requestId = admission.requestId;
    this.model = admission.model;
    this.maxTokens = admission.maxTokens;
    this.inputTokens = admission.inputTokens;
    this.scopes = admission.scopes;
    this.reservedNanos = admission.reservedNanos;
    this.reservationIds = admission.reservationIds;
    this.leasedOutputTokens = admission.leasedOutputTokens;
    this.trace = config.telemetry.startStream(admission.telemetry, {
      requestId: admission.requestId,
      model: admission.model,
      provider: admission.provider,
      maxTokens: admission.maxTokens,
      modelPriced: admission.modelPriced,
      scopes: admission.scopes,
      reservedNanos: admission.reservedNanos,
      budgetRemainingNanos: admission.budget?.remainingNanos ?? null,
      reservations: admission.reservationIds.length,
      input: admission.input,
    });
    this.writer = new SseWriter(res);
    this.meter = new StreamMeter({
      model: admission.model,
      inputTokensEstimate: admission.inputTokens,
      pricing: config.pricing,
      maxOutputTokens: admission.maxTokens,
      provider: admission.provider === 'openai' ? 'openai' : 'anthropic',
      // A stream that ends without the provider's usage is charged an upper estimate, so
      // what the provider billed beyond a guess cannot overrun the budget later.
      estimates: 'bound',
      inputTokensBound: admission.inputTokensBound,
    });
    res.on('close', this.onClose);
    registry.add(this);
  }

  get signal(): AbortSignal {
    this.signalTouched = true;
    return this.controller.signal;
  }

  /** The request this stream serves. */
  get request(): MeteredRequest {
    return this.req;
  }

  /** Parameters for the upstream call: model and max_tokens as admitted. */
  get params(): { model: string; max_tokens: number } {
    return { model: this.model, max_tokens: this.maxTokens };
  }

  /** Sends headers and the `meta` event. */
  open(headers: Record<string, string>): void {
    const budget = this.admission.budget;
    this.writer.open(
      headers,
      this.config.encoder.meta({
        requestId: this.requestId,
        model: this.model,
        maxTokens: this.maxTokens,
        inputTokens: this.inputTokens,
        reservedUsd: nanosToUsd(this.reservedNanos),
        // What the reservation priced: the prompt's upper bound (with server-tool results)
        // and the output it covers, so a client can check reservedUsd by hand.
        reservedInputTokens: this.admission.bound.promptTokens,
        reservedOutputTokens: this.admission.reservedOutputTokens,
        budget: budget ? budgetJson(budget) : null,
      }),
    );
  }

  stream(source: unknown): Promise<FinalUsage> {
    if (this.handedOver || this.settlement) {
      this.config.logger.warn(
        'tokenmeter: stream() called after the stream was handed over or ended; ignored',
        {
          requestId: this.requestId,
        },
      );
      return this.settlement ?? this.settle('handler_error');
    }
    this.handedOver = true;
    return this.run(source);
  }

  fail(error: unknown): Promise<FinalUsage> {
    if (this.settlement) return this.settlement;
    this.config.logger.error('tokenmeter: route handler failed', {
      requestId: this.requestId,
      error: describe(error),
    });
    // A handler that never read the signal never started the upstream call: nothing billed.
    return this.settle('handler_error', { refused: !this.signalTouched && !this.handedOver });
  }

  /** Called by the registry's timer: timeouts, keep-alives, handover deadline. */
  tick(now: number): void {
    if (this.settlement) return;
    const c = this.config;
    if (now - this.startedAt >= c.totalTimeoutMs) {
      this.abort('timeout');
      void this.settle('timeout');
      return;
    }
    if (!this.handedOver && now - this.startedAt >= c.handoverTimeoutMs) {
      this.config.logger.error('tokenmeter: the route handler never handed a stream over', {
        requestId: this.requestId,
        handoverTimeoutMs: c.handoverTimeoutMs,
      });
      this.abort('handler_error');
      // If it never read the signal it never started the upstream call: nothing billed.
      void this.settle('handler_error', { refused: !this.signalTouched });
      return;
    }
    if (this.chunks !== this.chunksAtTick) {
      this.chunksAtTick = this.chunks;
      this.lastChunkAt = now;
    }
    if (this.writer.writes !== this.writesAtTick) {
      this.writesAtTick = this.writer.writes;
      this.lastWriteAt = now;
    }
    if (now - this.lastUsageAt >= c.usageIntervalMs) {
      this.usageDue = true;
      this.lastUsageAt = now;
    }
    if (this.reading && now - this.lastChunkAt >= c.idleTimeoutMs) {
      // Settle now: a source that ignores the signal may never yield again.
      this.abort('timeout');
      void this.settle('timeout', {
        failure: {
          outcome: 'timeout',
          refused: false,
          message: `The model provider sent nothing for ${c.idleTimeoutMs} ms.`,
        },
      });
      return;
    }
    if (now - this.lastWriteAt >= c.keepAliveMs && !this.res.writableNeedDrain) {
      this.writer.write(c.encoder.comment('ping'));
    }
  }

  private abort(reason: StreamOutcome): void {
    if (this.controller.signal.aborted) return;
    this.abortReason = reason;
    this.trace.abort(reason);
    this.controller.abort(
      new TokenmeterError(
        reason === 'timeout' ? 'timeout' : 'internal_error',
        CODE_MESSAGES[reason],
      ),
    );
  }

  private async run(source: unknown): Promise<FinalUsage> {
    let failure: UpstreamFailure | undefined;
    this.reading = true;
    this.lastChunkAt = performance.now();
    try {
      const iterable = toAsyncIterable(await source);
      const encoder = this.config.encoder;
      const writer = this.writer;
      const meter = this.meter;
      const content = this.trace.recordsContent ? this.trace : undefined;
      const everyChunk = this.config.usageIntervalMs === 0;
      for await (const raw of iterable) {
        this.chunks++;
        // Fast path for the common case, an Anthropic text delta: no event objects.
        const delta =
          (raw as AnthropicTextDelta).type === 'content_block_delta'
            ? (raw as AnthropicTextDelta).delta
            : undefined;
        if (delta?.type === 'text_delta' && typeof delta.text === 'string') {
          if (delta.text !== '') {
            meter.observeText(delta.text);
            content?.output(delta.text);
            // A due usage event rides in the same write as the delta: one syscall, not two.
            let chunk = encoder.delta({ text: delta.text });
            if (this.usageDue || everyChunk) chunk += this.usageEvent();
            if (!writer.write(chunk)) await writer.ready();
          }
        } else {
          for (const event of this.translate(raw)) {
            meter.observe(event);
            if (event.type === 'text') {
              content?.output(event.text);
              if (!writer.write(encoder.delta({ text: event.text }))) await writer.ready();
            }
          }
        }
        if (this.controller.signal.aborted) break;
        // Only a lease or a cost cap below max_tokens is watched, on the conservative bound.
        if (this.leasedOutputTokens !== Number.POSITIVE_INFINITY) {
          if (meter.outputTokensBound >= this.leasedOutputTokens && !(await this.growLease())) {
            break;
          }
        }
        if (this.usageDue || everyChunk) writer.write(this.usageEvent());
      }
    } catch (error) {
      if (!this.abortReason) {
        if (TokenmeterError.isInstance(error) && error.code === 'invalid_argument') {
          failure = { outcome: 'handler_error', refused: true, message: error.message };
        } else if (this.meter.eventCount === 0 && isProgrammingError(error)) {
          // A bug in the route's upstream function (an async one, so fail() never saw it):
          // the developer needs the error; the client gets the fixed handler_error message.
          this.config.logger.error('tokenmeter: the upstream function failed before streaming', {
            requestId: this.requestId,
            error: describe(error),
            stack: (error as Error).stack,
          });
          // If it never read the signal it never started the upstream call: nothing billed.
          failure = {
            outcome: 'handler_error',
            refused: !this.signalTouched,
            message: CODE_MESSAGES.handler_error,
          };
        } else {
          failure = classifyUpstreamError(error, this.meter.eventCount);
        }
      }
    } finally {
      this.reading = false;
    }
    const upstreamEvent = this.meter.upstreamError;
    if (!failure && !this.abortReason && upstreamEvent) {
      failure = {
        outcome: 'upstream_error',
        refused: false,
        message: `The model provider reported ${upstreamEvent.type} mid-stream.`,
        type: upstreamEvent.type,
      };
    }
    const outcome = this.abortReason ?? failure?.outcome ?? 'completed';
    return this.settle(outcome, { refused: failure?.refused === true, failure });
  }

  /**
   * The conservative output bound reached what the reservation covers: extend it
   * (incremental leases), or stop at the cost cap. Never called for a reservation that
   * covers max_tokens.
   */
  private async growLease(): Promise<boolean> {
    const { admission, config } = this;
    if (this.meter.outputTokensBound >= admission.capOutputTokens) {
      this.limit = 'max_cost_per_request';
      this.abort('budget_exceeded');
      return false;
    }
    const step = config.leaseStepTokens;
    if (step === 0) return true; // the cap is further on: nothing to grow
    const from = this.leasedOutputTokens;
    let to = Math.min(from + step, admission.maxTokens, admission.capOutputTokens);
    // The step's price on the request's own terms (tier, fast mode, residency): the worst
    // case with more output, less the worst case already reserved.
    const worst = (output: number) =>
      worstCaseCost({ ...admission.bound, outputTokens: output }, this.model, config.pricing).nanos;
    let addNanos = worst(to) - worst(from);
    if (this.reservationIds.length > 0 && addNanos > 0) {
      try {
        // Near the end of a budget a whole step may not fit: halve it (down to
        // MIN_LEASE_STEP tokens) before refusing, so the answer uses what is left.
        for (;;) {
          const result = await extendAll(config.store, this.reservationIds, { addNanos });
          if (result.extended) break;
          if (to - from <= MIN_LEASE_STEP) {
            this.limit = 'lease_denied';
            this.abort('budget_exceeded');
            return false;
          }
          to = from + Math.max(MIN_LEASE_STEP, Math.floor((to - from) / 2));
          addNanos = worst(to) - worst(from);
        }
      } catch (error) {
        config.logger.warn('tokenmeter: extending a lease failed; stopping the stream', {
          requestId: this.requestId,
          error: describe(error),
        });
        this.limit = 'lease_unavailable';
        this.abort(config.storeFailure === 'open' ? 'budget_exceeded' : 'store_unavailable');
        return false;
      }
    }
    this.reservedNanos += addNanos;
    // Covering max_tokens (and no cap below it) ends the watch: the provider stops there.
    this.leasedOutputTokens =
      to >= admission.maxTokens && admission.capOutputTokens >= admission.maxTokens
        ? Number.POSITIVE_INFINITY
        : to;
    return true;
  }

  /** The running estimate as a `usage` event; empty when nothing changed since the last one. */
  private usageEvent(): string {
    this.usageDue = false;
    const output = this.meter.outputTokensEstimate;
    if (output === this.lastUsageOutput) return '';
    this.lastUsageOutput = output;
    const { usage, costNanos } = this.meter.estimate();
    return this.config.encoder.usage({
      inputTokens: promptTokens(usage),
      outputTokens: usage.outputTokens,
      costUsd: nanosToUsd(costNanos),
      estimated: true,
    });
  }

  /** The one way a stream ends. Idempotent: the first outcome wins. */
  settle(
    outcome: StreamOutcome,
    options: { refused?: boolean; failure?: UpstreamFailure } = {},
  ): Promise<FinalUsage> {
    this.settlement ??= this.doSettle(outcome, options);
    return this.settlement;
  }

  private async doSettle(
    outcome: StreamOutcome,
    options: { refused?: boolean; failure?: UpstreamFailure },
  ): Promise<FinalUsage> {
    this.registry.delete(this);
    // Whatever ended the stream, the upstream call must not go on generating.
    if (outcome !== 'completed') this.abort(outcome);
    const final = this.meter.finish(outcome, { refused: options.refused === true });
    const { recorded, budget, error, ends } = await this.record(final);
    const info: SettleInfo = {
      requestId: this.requestId,
      scopes: this.scopes,
      model: this.model,
      outcome,
      final,
      durationMs: performance.now() - this.startedAt,
      recorded,
      ...(this.limit !== undefined ? { limit: this.limit } : {}),
      backpressureWaits: this.writer.backpressureWaits,
      backpressureMs: this.writer.backpressureMs,
    };
    if (this.meter.timeToFirstTokenMs !== undefined)
      info.timeToFirstTokenMs = this.meter.timeToFirstTokenMs;
    if (!this.writer.closed) {
      const body = {
        usage: usageJson(final.usage),
        costUsd: final.cost.usd,
        costNanos: final.costNanos,
        estimated: final.estimated,
        budget: budget ? budgetJson(budget) : null,
      };
      const chunk =
        outcome === 'completed'
          ? this.config.encoder.done({ stopReason: final.stopReason ?? null, ...body })
          : this.config.encoder.error({
              code: outcome,
              message: options.failure?.message ?? this.endMessage(outcome),
              ...(options.failure?.status !== undefined
                ? { upstreamStatus: options.failure.status }
                : {}),
              ...(options.failure?.type !== undefined
                ? { upstreamType: options.failure.type }
                : {}),
              ...(this.limit !== undefined ? { limit: this.limit } : {}),
              ...body,
            });
      this.writer.end(chunk);
    }
    this.res.off('close', this.onClose);
    this.trace.end({
      ...info,
      budgetRemainingNanos: budget?.remainingNanos ?? null,
      reservationEnds: ends,
      failure: {
        ...options.failure,
        message: options.failure?.message ?? this.endMessage(outcome),
      },
    });
    if (!recorded && this.admission.metered) {
      await this.config.guard(() => this.config.onSettleFailure(info, error));
    }
    await this.config.guard(() => this.config.onSettle(info));
    return final;
  }

  private endMessage(outcome: StreamOutcome): string {
    return this.limit !== undefined ? LIMIT_MESSAGES[this.limit] : CODE_MESSAGES[outcome];
  }

  /** Settles (or releases) every reservation, retrying a failing store a few times. */
  private async record(final: FinalUsage): Promise<{
    recorded: boolean;
    budget: BudgetState | null;
    error?: unknown;
    ends: Partial<Record<ReservationEnd, number>>;
  }> {
    if (this.reservationIds.length === 0) {
      // Nothing applied, nothing to record; or the store failed open: a charge to reconcile.
      return this.admission.metered
        ? { recorded: false, budget: null, error: 'unmetered (store failed open)', ends: {} }
        : { recorded: false, budget: null, ends: {} };
    }
    const actual = {
      costNanos: final.costNanos,
      tokens: promptTokens(final.usage) + final.usage.outputTokens,
    };
    let lastError: unknown;
    for (const delay of this.config.settleRetryDelaysMs) {
      if (delay > 0) await sleep(delay);
      try {
        const results: EndResult[] = await settleAll(
          this.config.store,
          this.reservationIds,
          actual,
        );
        let tightest: BudgetState | null = null;
        const ends: Partial<Record<ReservationEnd, number>> = {};
        for (const r of results) {
          const end: ReservationEnd = r.ended
            ? 'settled'
            : r.previously === 'expired'
              ? 'expired_before_settle'
              : 'already_ended';
          ends[end] = (ends[end] ?? 0) + 1;
          if (!r.ended) {
            this.config.logger.warn(
              'tokenmeter: a reservation had already ended before settlement',
              {
                requestId: this.requestId,
                previously: r.previously,
              },
            );
            continue;
          }
          if (r.budget && (!tightest || r.budget.remainingNanos < tightest.remainingNanos))
            tightest = r.budget;
        }
        return { recorded: true, budget: tightest, ends };
      } catch (error) {
        lastError = error;
      }
    }
    return {
      recorded: false,
      budget: null,
      error: lastError,
      ends: { unrecorded: this.reservationIds.length },
    };
  }
}

function usageJson(usage: Usage) {
  return {
    inputTokens: promptTokens(usage),
    outputTokens: usage.outputTokens,
    uncachedInputTokens: usage.inputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    cacheWriteTokens: usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
    ...(usage.reasoningTokens ? { reasoningTokens: usage.reasoningTokens } : {}),
  };
}

export function budgetJson(budget: BudgetState) {
  return {
    limitUsd: nanosToUsd(budget.limitNanos),
    spentUsd: nanosToUsd(budget.spentNanos),
    reservedUsd: nanosToUsd(budget.reservedNanos),
    remainingUsd: nanosToUsd(budget.remainingNanos),
    periodEnd: budget.periodEnd === null ? null : isoTime(budget.periodEnd),
  };
}

// Every request of a period shares its end: format it once, not per meta and done event.
let lastIsoMs = Number.NaN;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString();
    lastIsoMs = ms;
  }
  return lastIso;
}

/**
 * A JavaScript error of the route's own code (TypeError, ReferenceError, …), as opposed to
 * a provider or network failure: SDK errors carry a status or type, and fetch's network
 * failure is a TypeError with a `cause` (`fetch failed`).
 */
function isProgrammingError(error: unknown): boolean {
  if (
    !(
      error instanceof TypeError ||
      error instanceof ReferenceError ||
      error instanceof SyntaxError ||
      error instanceof RangeError
    )
  ) {
    return false;
  }
  const e = error as Error & { cause?: unknown; status?: unknown };
  return e.cause === undefined && e.status === undefined;
}

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
