/**
 * One admitted stream, from the moment SSE headers go out to its single settlement:
 * reads the provider stream (pausing while the client's socket is full), writes SSE
 * events, enforces the reservation and the cost cap, aborts the upstream call on
 * disconnect, stall or timeout through one AbortController, and ends exactly once through
 * `end()` whatever way it ends. `end()` cannot throw: each of its steps is guarded, in the
 * order the express README writes down.
 */
import {
  type BudgetState,
  type FinalUsage,
  type RequestBound,
  type ScopeRef,
  type SseEncoder,
  StreamMeter,
  type StreamOutcome,
  type StreamTrace,
  type TelemetryStart,
  TokenmeterError,
} from '@tokenmeter/core';
import { scopeKeyOf } from './alerts.js';
import { failureOfLoop, failureOfSource } from './failures.js';
import { Lease } from './lease.js';
import type { Config } from './options.js';
import { metaEvent, relayHeaders, relayWriter, sseWriter } from './protocols.js';
import type { StreamRegistry } from './registry.js';
import {
  CODE_MESSAGES,
  type EndOptions,
  endMessage,
  finalEvent,
  finalUsage,
  type Recorded,
  recordSettlement,
} from './settlement.js';
import type { Transport } from './transport.js';
import type { MeteredStream, SettleInfo, StreamLimit } from './types.js';
import { describe, toAsyncIterable, type UpstreamFailure } from './upstream-errors.js';
import { Watchdog } from './watchdog.js';

export interface Admission {
  requestId: string;
  scopes: readonly ScopeRef[];
  /**
   * Empty when no budget or rate limit applies to the request (`metered: false`), or when
   * the store failed and the policy let it through unmetered.
   */
  reservationIds: readonly string[];
  /** The store's time of admission (the first reservation's), when one was made. */
  admittedAt?: number;
  /** True when some budget or rate limit applies: a settlement is owed to the store. */
  metered: boolean;
  reservedNanos: number;
  model: string;
  /** The max_tokens to send (lowered where the reservation covers less than asked). */
  maxTokens: number;
  /** The max_tokens the request asked for. */
  requestedMaxTokens: number;
  /** What lowered max_tokens, if anything. */
  fittedTo: 'budget' | 'max_cost_per_request' | null;
  /** The fields admission wrote into the body sent (max_tokens, bounded tools…). */
  forwarded: Record<string, unknown>;
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
  /**
   * Output tokens after which the stream is stopped, where the body sent is not known to
   * carry the lowered max_tokens (Infinity: the provider stops itself).
   */
  capOutputTokens: number;
  /** The limit named when the stream stops there. */
  stopLimit: StreamLimit;
  /** What the reservation priced: the worst case of the request, for pricing lease steps. */
  bound: RequestBound;
  /** Output tokens the reservation covers at admission. */
  reservedOutputTokens: number;
  /** `gen_ai.provider.name`. */
  provider: string;
  /** Budget alert thresholds (percent, ascending) by scope (`scopeKeyOf`). */
  alerts: ReadonlyMap<string, readonly number[]>;
  /** False when the unknown-model fallback priced the model. */
  modelPriced: boolean;
  /** The provider request body (for opt-in content recording). */
  input?: unknown;
  /** The parsed request body as admitted, when it is a JSON object (`meter.body`). */
  body: Record<string, unknown> | undefined;
  /**
   * Gateways: the provider's answer is relayed (`'sse'` event by event, `'json'` as one
   * body), and headers go out with its first byte. Undefined: tokenmeter's SSE protocol.
   */
  relay?: 'sse' | 'json';
  /** Headers for the response, beside the protocol's own (rate-limit headers, request id). */
  headers?: Record<string, string>;
  /** Parent context and start time, from the middleware's entry. */
  telemetry: TelemetryStart;
}

export class MeteredStreamImpl implements MeteredStream {
  readonly requestId: string;
  readonly model: string;
  readonly inputTokens: number;
  readonly scopes: readonly ScopeRef[];
  /** What the reservation covers, and how it grows. */
  private readonly lease: Lease;
  /** Where the answer goes. */
  private readonly offClose: () => void;
  readonly meter: StreamMeter;
  /** This stream's span and metrics. */
  readonly trace: StreamTrace;
  private readonly controller = new AbortController();
  /** The wire protocol's encoder for this stream (its own instance when it keeps state). */
  private readonly encoder: SseEncoder;
  // Activity is counted on the hot path and timed by the shared tick: no clock read per chunk.
  private chunks = 0;
  private readonly watchdog: Watchdog;
  private abortReason: StreamOutcome | undefined;
  /** Which limit stopped the stream, when one did (said in the final event). */
  private limit: StreamLimit | undefined;
  private handedOver = false;
  private failedByHandler = false;
  private signalTouched = false;
  /**
   * The route read `maxTokens` or `params`: the body it sends is taken to carry the planned
   * max_tokens, so the provider stops there and the stream need not stop itself.
   */
  private termsRead = false;
  private reading = false;
  /** The one end of this stream, once it began: every caller gets the same promise. */
  private ending: Promise<FinalUsage> | undefined;
  /** The provider stream being read, to close when the stream ends from elsewhere. */
  private iterator: AsyncIterator<unknown> | undefined;
  private readonly reservationIds: readonly string[];
  private readonly onClose = () => {
    if (this.ending) return;
    // Our response was ended by someone else (the app's error handler): the handler failed.
    if (this.transport.endedElsewhere) {
      void this.end('handler_error', { refused: !this.signalTouched && !this.handedOver });
      return;
    }
    // 'close' before the response finished: the client left. Abort the upstream at once.
    void this.end('client_disconnected');
  };

  constructor(
    private readonly config: Config,
    private readonly registry: StreamRegistry,
    readonly transport: Transport,
    private readonly admission: Admission,
  ) {
    this.watchdog = new Watchdog(config, performance.now());
    this.requestId = admission.requestId;
    this.model = admission.model;
    this.inputTokens = admission.inputTokens;
    this.scopes = admission.scopes;
    this.reservationIds = admission.reservationIds;
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
    this.encoder = config.encoder.forStream?.() ?? config.encoder;
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
      requestBound: admission.bound,
    });
    this.lease = new Lease(config, admission, this.meter, () => this.termsRead);
    this.offClose = transport.onClose(this.onClose);
    registry.add(this);
  }

  /** Nano-dollars reserved so far (incremental leases grow it). */
  get reservedNanos(): number {
    return this.lease.reservedNanos;
  }

  /** True once the stream began to end. */
  get ended(): boolean {
    return this.ending !== undefined;
  }

  /** The stream's end (settled usage); resolves once, never rejects. */
  get settled(): Promise<FinalUsage> | undefined {
    return this.ending;
  }

  get signal(): AbortSignal {
    this.signalTouched = true;
    return this.controller.signal;
  }

  /** The parsed request body as admitted (bounds written in where the default request() read it). */
  get body(): Record<string, unknown> | undefined {
    return this.admission.body;
  }

  /** The max_tokens to send, as planned. */
  get maxTokens(): number {
    this.termsRead = true;
    return this.admission.maxTokens;
  }

  /** Parameters for the upstream call as admitted: model, max_tokens, bounded fields. */
  get params(): { model: string; max_tokens: number } & Record<string, unknown> {
    this.termsRead = true;
    const { max_completion_tokens: _c, ...bounded } = this.admission.forwarded;
    return { ...bounded, model: this.model, max_tokens: this.admission.maxTokens };
  }

  /**
   * Sends headers and the `meta` event. Returns false when that failed (a custom encoder
   * that threw): the stream has then ended with `internal_error`, its reservations released,
   * and a JSON 500 sent if no header went out.
   */
  open(headers: Record<string, string>): boolean {
    // A relayed answer opens with the provider's first byte (its HTTP errors pass through).
    if (this.admission.relay) return true;
    try {
      this.openStream(headers);
      return true;
    } catch (error) {
      this.config.logger.error('tokenmeter: the stream could not be opened', {
        requestId: this.requestId,
        error: describe(error),
      });
      void this.end('internal_error', { refused: true });
      return false;
    }
  }

  private openStream(headers: Record<string, string>): void {
    const encoder = this.encoder;
    this.transport.open(
      encoder.headers ? { ...encoder.headers, ...headers } : headers,
      metaEvent(encoder, this.admission, this.reservedNanos),
    );
  }

  stream(source: unknown): Promise<FinalUsage> {
    if (this.handedOver || this.failedByHandler) {
      // Misuse: the caller learns at once; the running stream is left alone.
      throw new TokenmeterError(
        'invalid_argument',
        this.handedOver
          ? 'stream() was called twice for this request; a metered stream takes one source. The first one goes on.'
          : 'stream() was called after fail() ended this metered stream.',
        { details: { requestId: this.requestId } },
      );
    }
    this.handedOver = true;
    if (this.ending) {
      // Ended before the handler got here (the client left, a timeout): not the handler's
      // fault. Its source is closed unread; the end it gets is the one that happened.
      void Promise.resolve(source)
        .then((s) => {
          const iterator = toAsyncIterable(s)[Symbol.asyncIterator]();
          return iterator.return?.();
        })
        .catch(() => {});
      return this.ending;
    }
    void this.run(source);
    // The stream's end, not the read loop's: a source that ignores the abort signal can
    // hold its loop, never the caller.
    return this.ending ?? this.endPromise();
  }

  fail(error: unknown): Promise<FinalUsage> {
    if (this.ending) return this.ending;
    this.failedByHandler = true;
    this.config.logger.error('tokenmeter: route handler failed', {
      requestId: this.requestId,
      error: describe(error),
    });
    // A handler that never read the signal never started the upstream call: nothing billed.
    return this.end('handler_error', { refused: !this.signalTouched && !this.handedOver });
  }

  /** Called by the registry's timer: timeouts, stalls, keep-alives, handover deadline. */
  tick(now: number): void {
    if (this.ending) return;
    const transport = this.transport;
    const waiting = transport.waitingForClient;
    const verdict = this.watchdog.check(now, {
      handedOver: this.handedOver,
      chunks: this.chunks,
      writes: transport.writes,
      reading: this.reading,
      waitingForClient: waiting,
      stalledForMs: waiting ? transport.stalledFor(now) : 0,
      wholeBody: this.admission.relay === 'json',
      headersSent: transport.headersSent,
      full: transport.full,
    });
    if (verdict === undefined) return;
    const c = this.config;
    switch (verdict) {
      case 'timeout':
        void this.end('timeout');
        return;
      case 'handover':
        c.logger.error('tokenmeter: the route handler never handed a stream over', {
          requestId: this.requestId,
          handoverTimeoutMs: c.handoverTimeoutMs,
        });
        // If it never read the signal it never started the upstream call: nothing billed.
        void this.end('handler_error', { refused: !this.signalTouched });
        return;
      case 'stalled':
        void this.end('client_stalled', {
          destroy: true,
          failure: {
            outcome: 'client_stalled',
            refused: false,
            message: `The client read nothing for ${c.stallTimeoutMs} ms.`,
          },
        });
        return;
      case 'idle':
        // End now: a source that ignores the signal may never yield again.
        void this.end('upstream_idle', {
          failure: {
            outcome: 'upstream_idle',
            refused: false,
            message: `The model provider sent nothing for ${c.idleTimeoutMs} ms.`,
          },
        });
        return;
      case 'ping':
        transport.write(this.encoder.comment('ping'));
    }
  }

  private abort(reason: StreamOutcome): void {
    if (this.controller.signal.aborted) return;
    this.abortReason = reason;
    this.trace.abort(reason);
    this.controller.abort(
      new TokenmeterError(
        reason === 'timeout' || reason === 'upstream_idle' ? 'timeout' : 'internal_error',
        CODE_MESSAGES[reason],
      ),
    );
  }

  /** Reads the provider stream to its end, then ends the stream. Never rejects. */
  private async run(source: unknown): Promise<void> {
    this.reading = true;
    this.watchdog.readingFrom(performance.now());
    let iterator: AsyncIterator<unknown>;
    try {
      const resolved = await source;
      // The SDK's request promise holds the HTTP response's headers: not needed any more.
      source = undefined;
      iterator = toAsyncIterable(resolved)[Symbol.asyncIterator]();
      this.iterator = iterator;
      if (this.admission.relay && !this.ending) {
        this.transport.open(relayHeaders(resolved, this.admission));
      }
    } catch (error) {
      this.reading = false;
      await this.end(...this.failedWith(error));
      return;
    }
    await this.readLoop(iterator);
  }

  /**
   * Reads the provider stream to its end, then ends the stream: each chunk through the
   * protocol's writer (false: the client must read first), then the stops, caps and leases
   * every stream shares, then a usage event when one is due.
   */
  private async readLoop(iterator: AsyncIterator<unknown>): Promise<void> {
    const parts = {
      meter: this.meter,
      transport: this.transport,
      trace: this.trace,
      encoder: this.encoder,
      lease: this.lease,
      watchdog: this.watchdog,
      everyChunk: this.config.usageIntervalMs === 0,
    };
    const writer = this.admission.relay ? relayWriter(parts) : sseWriter(parts);
    let failure: UpstreamFailure | undefined;
    try {
      while (!this.ending) {
        // The provider's failures come from next(); anything thrown below is ours.
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (error) {
          if (!this.abortReason && !this.ending) failure = this.classify(error);
          break;
        }
        if (next.done) {
          // Read to its end: nothing to close (return() would only do the source's work twice).
          this.iterator = undefined;
          break;
        }
        if (this.ending) break;
        this.chunks++;
        if (!writer.write(next.value)) await this.transport.ready();
        if (this.controller.signal.aborted || this.ending) break;
        // Provider calls the admission did not see, and a lease the output outgrew.
        if (this.lease.due) {
          const stop = await this.lease.afterChunk();
          if (stop) {
            this.limit = stop.limit;
            this.abort(stop.outcome);
            break;
          }
        }
        // A due usage event: after the chunk's checks (tokenmeter's own protocol only).
        writer.usage?.();
      }
    } catch (error) {
      // Our own code (or a custom encoder) failed mid-stream: not the provider's doing.
      if (!this.abortReason && !this.ending) {
        failure = failureOfLoop(error, this.config.logger, this.requestId);
      }
    } finally {
      this.reading = false;
      this.closeIterator();
    }
    await this.endRead(failure);
  }

  /** Ends the stream once its source is read: completed, or why not. */
  private endRead(failure: UpstreamFailure | undefined): Promise<FinalUsage> {
    const upstreamEvent = this.meter.upstreamError;
    if (!failure && !this.abortReason && upstreamEvent) {
      failure = {
        outcome: 'upstream_error',
        refused: false,
        message: `The model provider reported ${upstreamEvent.type} mid-stream.`,
        type: upstreamEvent.type,
        // A relayed stream passed the provider's error event on already: it ends there.
        ...(this.admission.relay === 'sse' ? { relayed: true } : {}),
      };
    }
    const outcome = this.abortReason ?? failure?.outcome ?? 'completed';
    return this.end(outcome, {
      refused: failure?.refused === true,
      ...(failure ? { failure } : {}),
    });
  }

  /** The end for a source that failed before it could be read. */
  private failedWith(error: unknown): [StreamOutcome, EndOptions] {
    const failure = this.classify(error);
    return [failure.outcome, { refused: failure.refused, failure }];
  }

  /** What an error from the source means: the handler's bug, or the provider's failure. */
  private classify(error: unknown): UpstreamFailure {
    return failureOfSource(error, {
      eventCount: this.meter.eventCount,
      signalTouched: this.signalTouched,
      logger: this.config.logger,
      requestId: this.requestId,
    });
  }

  /** Closes the provider stream (once; a failure to close changes nothing). */
  private closeIterator(): void {
    const iterator = this.iterator;
    this.iterator = undefined;
    if (!iterator?.return) return;
    try {
      Promise.resolve(iterator.return()).catch(() => {});
    } catch {
      // A source whose return() throws is closed as far as we are concerned.
    }
  }

  /**
   * The one way a stream ends. Idempotent: the first outcome wins, and every caller gets
   * the same promise, which never rejects.
   */
  end(outcome: StreamOutcome, options: EndOptions = {}): Promise<FinalUsage> {
    if (!this.ending) {
      const ending = this.finish(outcome, options);
      this.ending = ending;
      this.resolveEnd?.(ending);
    }
    return this.ending;
  }

  private resolveEnd: ((ending: Promise<FinalUsage>) => void) | undefined;

  /** A promise of the end for a caller that arrives before it began (`stream()`). */
  private endPromise(): Promise<FinalUsage> {
    return new Promise<FinalUsage>((resolve) => {
      this.resolveEnd = (ending) => resolve(ending);
    });
  }

  /**
   * The end, in the order the README gives: stop the upstream and any wait; the final
   * usage; the store's settlement; the final event (or a JSON 500 before any header, or a
   * closed connection for a stalled client); telemetry; onSettleFailure; onSettle. Each
   * step is guarded, so a failure in one (our bug, a custom encoder, a hook, a usage too
   * large to price) leaves the others to happen.
   */
  private async finish(outcome: StreamOutcome, options: EndOptions): Promise<FinalUsage> {
    const step = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (error) {
        this.config.logger.error(`tokenmeter: ${what} failed while ending a stream`, {
          requestId: this.requestId,
          error: describe(error),
        });
      }
    };
    // 1. Whatever ended the stream, the upstream call must not go on generating.
    step('stopping the stream', () => {
      this.registry.delete(this);
      if (outcome !== 'completed') this.abort(outcome);
      this.transport.release();
      if (outcome !== 'completed') this.closeIterator();
    });
    // 2. The final usage.
    const final = finalUsage(this.config, this.meter, outcome, options, {
      requestId: this.requestId,
      model: this.model,
      reservedNanos: this.reservedNanos,
      wholeBody: this.admission.relay === 'json',
    });
    // 3. The store.
    let recorded: Recorded;
    try {
      recorded = await recordSettlement(this.config, this.reservationIds, final, {
        requestId: this.requestId,
        metered: this.admission.metered,
        keepBudgets: this.admission.alerts.size > 0,
      });
    } catch (error) {
      recorded = { recorded: false, budget: null, error, ends: {} };
    }
    const { budget, error } = recorded;
    const info = this.settleInfo(outcome, final, recorded.recorded);
    // 4. What the client sees.
    step('ending the response', () => this.deliverEnd(outcome, final, budget, options));
    step('removing listeners', this.offClose);
    // 5. Telemetry.
    // Built only for a trace that records: without telemetry, nothing to assemble.
    if (this.trace.active) {
      step('ending the span', () =>
        this.trace.end({
          ...info,
          budgetRemainingNanos: budget?.remainingNanos ?? null,
          reservationEnds: recorded.ends,
          failure: {
            ...options.failure,
            message: options.failure?.message ?? endMessage(outcome, this.limit),
          },
        }),
      );
    }
    // 6. Hooks (guarded: a hook that throws or rejects is logged).
    if (!recorded.recorded && this.admission.metered) {
      await this.config.guard(() => this.config.onSettleFailure(info, error));
    }
    // Budget alerts: after the stream ended, never awaited by it.
    this.fireAlerts(recorded);
    const settled = this.config.guard(() => this.config.onSettle(info));
    if (settled) await settled;
    return final;
  }

  /** What `onSettle` (and the span) hears of the stream's end. */
  private settleInfo(outcome: StreamOutcome, final: FinalUsage, recorded: boolean): SettleInfo {
    const admission = this.admission;
    const info: SettleInfo = {
      requestId: this.requestId,
      scopes: this.scopes,
      model: this.model,
      provider: admission.provider,
      outcome,
      final,
      reservedNanos: this.reservedNanos,
      startedAt: Math.round(performance.timeOrigin + this.watchdog.started),
      ...(admission.admittedAt !== undefined ? { admittedAt: admission.admittedAt } : {}),
      durationMs: performance.now() - this.watchdog.started,
      recorded,
      ...(this.limit !== undefined ? { limit: this.limit } : {}),
      ...(admission.metered && this.reservationIds.length === 0 ? { unmetered: true } : {}),
      backpressureWaits: this.transport.backpressureWaits,
      backpressureMs: this.transport.backpressureMs,
    };
    if (this.meter.timeToFirstTokenMs !== undefined)
      info.timeToFirstTokenMs = this.meter.timeToFirstTokenMs;
    return info;
  }

  /** Tells the route's budget alerts of each scope's budget after the settlement. */
  private fireAlerts(recorded: Recorded): void {
    const alerts = this.registry.alerts;
    if (!alerts || !recorded.budgets || this.admission.alerts.size === 0) return;
    const settled = recorded.budgets.flatMap(({ scope, budget }) => {
      const thresholds = this.admission.alerts.get(scopeKeyOf(scope));
      return thresholds ? [{ scope, budget, thresholds }] : [];
    });
    void alerts.fire(settled, this.requestId);
  }

  /** The final event, or a JSON 500 before any header, or a closed connection. */
  private deliverEnd(
    outcome: StreamOutcome,
    final: FinalUsage,
    budget: BudgetState | null,
    options: EndOptions,
  ): void {
    if (!this.transport.headersSent) {
      this.config.wire.endBeforeHeaders(this.transport, outcome, options.failure);
      return;
    }
    if (options.destroy) {
      this.transport.destroy();
      return;
    }
    if (this.transport.closed) return;
    if (options.failure?.relayed) {
      this.endWith('');
      return;
    }
    this.endWith(
      finalEvent(
        this.config,
        this.encoder,
        { outcome, final, budget },
        options.failure,
        this.limit,
        this.requestId,
      ),
    );
  }

  /** Writes the last chunk and ends the response. */
  private endWith(chunk: string): void {
    this.transport.end(chunk);
    // A client that reads nothing more would hold the finished response open forever.
    if (!this.transport.finished) {
      this.registry.destroyUnlessFinished(
        this.transport,
        performance.now() + this.config.stallTimeoutMs,
      );
    }
  }
}
