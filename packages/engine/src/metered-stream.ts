/**
 * One admitted stream, from the moment its headers go out to its single settlement. It
 * holds the parts — the pump that reads the provider (`pump.ts`), the lease and cap
 * (`lease.ts`), the clock (`watchdog.ts`), the end (`stream-end.ts`) — and the one
 * AbortController every stop goes through (disconnect, stall, timeout, a limit), and it
 * ends exactly once, through `end()`, whatever way it ends.
 */
import {
  type FinalUsage,
  type ScopeRef,
  type SseEncoder,
  type StreamOutcome,
  TokenmeterError,
} from '@tokenmeter/core';
import { StreamMeter } from '@tokenmeter/core/meter';
import { requestRules } from '@tokenmeter/core/providers';
import type { Admission } from './admission-result.js';
import type { StreamTrace } from './events.js';
import { Lease } from './lease.js';
import type { Config } from './options.js';
import { Pump } from './pump.js';
import type { StreamRegistry } from './registry.js';
import { CODE_MESSAGES, type EndOptions } from './settlement.js';
import { type EndingStream, endStream } from './stream-end.js';
import type { Transport } from './transport.js';
import type { MeteredStream, StreamLimit } from './types.js';
import { describe, toAsyncIterable, type UpstreamFailure } from './upstream-errors.js';
import { Watchdog, type WatchdogVerdict } from './watchdog.js';

export type { Admission } from './admission-result.js';

/**
 * What the route has done with its stream: not handed a source over yet, handed one over
 * (`stream()`), or failed (`fail()`). Whether the stream has ended is `ended`: any phase
 * can end (the client leaves before the handover, a timeout mid-read).
 */
type Phase = 'awaiting_source' | 'streaming' | 'handler_failed';

export class MeteredStreamImpl implements MeteredStream {
  readonly requestId: string;
  readonly model: string;
  readonly inputTokens: number;
  readonly scopes: readonly ScopeRef[];
  readonly meter: StreamMeter;
  /** This stream's span and metrics. */
  readonly trace: StreamTrace;
  /** What the reservation covers, and how it grows. */
  private readonly lease: Lease;
  private readonly watchdog: Watchdog;
  private readonly pump: Pump;
  private readonly controller = new AbortController();
  /** The wire protocol's encoder for this stream (its own instance when it keeps state). */
  private readonly encoder: SseEncoder;
  private readonly offClose: () => void;
  private phase: Phase = 'awaiting_source';
  /** The one end of this stream, once it began: every caller gets the same promise. */
  private ending: Promise<FinalUsage> | undefined;
  /** A caller that asked for the end before it began (`stream()`), resolved when it does. */
  private resolveEnd: ((ending: Promise<FinalUsage>) => void) | undefined;
  /** Why the upstream call was aborted, when it was. */
  abortReason: StreamOutcome | undefined;
  /** Which limit stopped the stream, when one did (said in the final event). */
  private limit: StreamLimit | undefined;
  /** The route read `meter.signal`: it may have started the provider call. */
  signalTouched = false;
  /**
   * The route read `maxTokens` or `params`: the body it sends is taken to carry the planned
   * max_tokens, so the provider stops there and the stream need not stop itself.
   */
  private termsRead = false;

  constructor(
    private readonly config: Config,
    private readonly registry: StreamRegistry,
    readonly transport: Transport,
    private readonly admission: Admission,
  ) {
    this.watchdog = new Watchdog(config.timing, performance.now());
    this.requestId = admission.requestId;
    this.model = admission.model;
    this.inputTokens = admission.inputTokens;
    this.scopes = admission.scopes;
    this.trace = config.services.events.startStream(admission.telemetry, {
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
    this.encoder = config.protocol.encoder.forStream?.() ?? config.protocol.encoder;
    this.meter = new StreamMeter({
      model: admission.model,
      inputTokensEstimate: admission.inputTokens,
      pricing: config.services.pricing,
      maxOutputTokens: admission.maxTokens,
      provider: requestRules(admission.api).tokens,
      // A stream that ends without the provider's usage is charged an upper estimate, so
      // what the provider billed beyond a guess cannot overrun the budget later.
      estimates: 'bound',
      inputTokensBound: admission.inputTokensBound,
      requestBound: admission.bound,
    });
    this.lease = new Lease(config, admission, this.meter, () => this.termsRead);
    const parts = {
      meter: this.meter,
      transport,
      trace: this.trace,
      encoder: this.encoder,
      lease: this.lease,
      watchdog: this.watchdog,
      everyChunk: config.timing.usageIntervalMs === 0,
    };
    this.pump = new Pump(this, config, admission, parts, this.controller.signal);
    this.offClose = transport.onClose(() => this.closed());
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
    try {
      this.config.protocol.wire.open(
        this.transport,
        this.encoder,
        this.admission,
        headers,
        this.reservedNanos,
      );
      return true;
    } catch (error) {
      this.config.services.logger.error('tokenmeter: the stream could not be opened', {
        requestId: this.requestId,
        error: describe(error),
      });
      void this.end('internal_error', { refused: true });
      return false;
    }
  }

  stream(source: unknown): Promise<FinalUsage> {
    if (this.phase !== 'awaiting_source') {
      // Misuse: the caller learns at once; the running stream is left alone.
      throw new TokenmeterError(
        'invalid_argument',
        this.phase === 'streaming'
          ? 'stream() was called twice for this request; a metered stream takes one source. The first one goes on.'
          : 'stream() was called after fail() ended this metered stream.',
        { details: { requestId: this.requestId } },
      );
    }
    this.phase = 'streaming';
    if (this.ending) {
      // Ended before the handler got here (the client left, a timeout): not the handler's
      // fault. Its source is closed unread; the end it gets is the one that happened.
      void Promise.resolve(source)
        .then((s) => toAsyncIterable(s)[Symbol.asyncIterator]().return?.())
        .catch(() => {});
      return this.ending;
    }
    void this.pump.run(source);
    // The stream's end, not the read loop's: a source that ignores the abort signal can
    // hold its loop, never the caller.
    return (
      this.ending ??
      new Promise<FinalUsage>((resolve) => {
        this.resolveEnd = resolve;
      })
    );
  }

  fail(error: unknown): Promise<FinalUsage> {
    if (this.ending) return this.ending;
    const handedOver = this.phase === 'streaming';
    this.phase = 'handler_failed';
    this.config.services.logger.error('tokenmeter: route handler failed', {
      requestId: this.requestId,
      error: describe(error),
    });
    // A handler that never read the signal never started the upstream call: nothing billed.
    return this.end('handler_error', { refused: !this.signalTouched && !handedOver });
  }

  /**
   * The one way a stream ends. Idempotent: the first outcome wins, and every caller gets
   * the same promise, which never rejects.
   */
  end(outcome: StreamOutcome, options: EndOptions = {}): Promise<FinalUsage> {
    if (!this.ending) {
      this.ending = endStream(this.endingParts(), outcome, options);
      this.resolveEnd?.(this.ending);
    }
    return this.ending;
  }

  /** The pump read its source to the end (or it failed): completed, or why not. */
  readDone(failure: UpstreamFailure | undefined): Promise<FinalUsage> {
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

  /** A limit stopped the stream mid-read (the lease could not grow, the cap was reached). */
  stopFor(limit: StreamLimit, outcome: StreamOutcome): void {
    this.limit = limit;
    this.abort(outcome);
  }

  /** Called by the registry's timer: timeouts, stalls, keep-alives, handover deadline. */
  tick(now: number): void {
    if (this.ending) return;
    const transport = this.transport;
    const waiting = transport.waitingForClient;
    const verdict = this.watchdog.check(now, {
      handedOver: this.phase !== 'awaiting_source',
      chunks: this.pump.chunks,
      writes: transport.writes,
      reading: this.pump.reading,
      waitingForClient: waiting,
      stalledForMs: waiting ? transport.stalledFor(now) : 0,
      wholeBody: this.admission.relay === 'json',
      headersSent: transport.headersSent,
      full: transport.full,
    });
    if (verdict === 'ping') transport.write(this.encoder.comment('ping'));
    else if (verdict !== undefined) void this.endFor(verdict);
  }

  /** Ends the stream as the watchdog decided. */
  private endFor(verdict: Exclude<WatchdogVerdict, 'ping' | undefined>): Promise<FinalUsage> {
    const c = this.config;
    switch (verdict) {
      case 'timeout':
        return this.end('timeout');
      case 'handover':
        c.services.logger.error('tokenmeter: the route handler never handed a stream over', {
          requestId: this.requestId,
          handoverTimeoutMs: c.timing.handoverTimeoutMs,
        });
        // If it never read the signal it never started the upstream call: nothing billed.
        return this.end('handler_error', { refused: !this.signalTouched });
      case 'stalled': {
        const message = `The client read nothing for ${c.timing.stallTimeoutMs} ms.`;
        return this.end('client_stalled', {
          destroy: true,
          failure: { outcome: 'client_stalled', refused: false, message },
        });
      }
      case 'idle': {
        // End now: a source that ignores the signal may never yield again.
        const message = `The model provider sent nothing for ${c.timing.idleTimeoutMs} ms.`;
        return this.end('upstream_idle', {
          failure: { outcome: 'upstream_idle', refused: false, message },
        });
      }
    }
  }

  /** The transport closed before we ended it. */
  private closed(): void {
    if (this.ending) return;
    // Our response was ended by someone else (the app's error handler): the handler failed.
    if (this.transport.endedElsewhere) {
      void this.end('handler_error', {
        refused: !this.signalTouched && this.phase === 'awaiting_source',
      });
      return;
    }
    // 'close' before the response finished: the client left. Abort the upstream at once.
    void this.end('client_disconnected');
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

  /** What the end reads of this stream, when it begins. */
  private endingParts(): EndingStream {
    const stream = this;
    return {
      config: this.config,
      registry: this.registry,
      transport: this.transport,
      admission: this.admission,
      meter: this.meter,
      trace: this.trace,
      encoder: this.encoder,
      // Read as the end goes: a lease step in flight may still land.
      get reservedNanos() {
        return stream.reservedNanos;
      },
      get limit() {
        return stream.limit;
      },
      startedAt: this.watchdog.started,
      offClose: this.offClose,
      halt: (outcome) => {
        this.registry.delete(this);
        if (outcome !== 'completed') this.abort(outcome);
        this.transport.release();
        if (outcome !== 'completed') this.pump.close();
      },
    };
  }
}
