/**
 * The engine: everything between a request and its settled stream, whatever the web
 * framework — identify, read the body, admit (rate limits, the reservation), open the
 * stream, pump the provider into it, end it once. An adapter gives it the request
 * (`Incoming`) and the response (`Transport`); the wire protocol (`config.protocol.wire`) decides
 * how answers look.
 */

import { releaseAll } from '@tokenmeter/core/store';
import { admit, isRejection, type Rejection } from './admission.js';
import { BudgetAlerts } from './alerts.js';
import { closeIfUnread, type Incoming, UploadGate } from './body.js';
import type { RequestFacts, RequestStart } from './events.js';
import { MeteredStreamImpl } from './metered-stream.js';
import type { Config } from './options.js';
import { StreamRegistry } from './registry.js';
import type { Transport } from './transport.js';
import { describe } from './upstream-errors.js';

/** Reservations a request was admitted with, until a stream owns them (released if serve() throws). */
const ACQUIRED = new WeakMap<Transport, readonly string[]>();

/** What an adapter does with an admitted stream. */
export interface ServeHooks {
  /** Called once the stream is open (`res.locals.tokenmeter` in Express). */
  admitted?(stream: MeteredStreamImpl): void;
  /**
   * Hands the stream to the app's own handler when the route has no `upstream()` (Express's
   * `next()`), inside the stream's span. Without it, such a stream ends with `handler_error`
   * (the Web and Fastify adapters require `upstream()` instead).
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
    private readonly uploads = new UploadGate(config.protocol.body.uploadsPerAddress),
  ) {
    const tickMs = Math.max(
      5,
      Math.min(
        1_000,
        config.timing.keepAliveMs / 2,
        config.timing.idleTimeoutMs / 4,
        config.timing.handoverTimeoutMs / 4,
        config.timing.totalTimeoutMs / 4,
        // The tick also paces the throttled `usage` events.
        config.timing.usageIntervalMs || 1_000,
      ),
    );
    this.registry = new StreamRegistry(
      Math.floor(tickMs),
      config.hooks.onBudgetAlert ? new BudgetAlerts(config) : undefined,
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
    const begun = config.services.events.begin();
    let stream: MeteredStreamImpl | undefined;
    try {
      stream = await this.admit(incoming, transport, begun);
      if (!stream) return;
      hooks.admitted?.(stream);
      const admitted = stream;
      if (config.hooks.upstream) {
        const upstream = config.hooks.upstream;
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
      config.services.logger.error('tokenmeter: unexpected error in a metered route', {
        error: describe(error),
      });
      if (stream) await stream.fail(error);
      else {
        // Admitted, then failed before a stream took the reservations over: give them
        // (and their concurrency slots) back now rather than at their expiry.
        await this.release(transport);
        if (!transport.headersSent) {
          config.protocol.wire.reject(transport, 500, 'internal_error', 'Internal error.');
          config.services.events.rejected(begun, { reason: 'internal_error', status: 500 });
        }
      }
    }
  }

  /** Admission, then the stream opened; undefined when the request was answered otherwise. */
  private async admit(
    incoming: Incoming<R>,
    transport: Transport,
    begun: RequestStart,
  ): Promise<MeteredStreamImpl | undefined> {
    const config = this.config;
    const facts: RequestFacts = {};
    const admitted = await admit({
      config,
      incoming,
      uploads: this.uploads,
      facts,
      acquired: (ids) => {
        if (ids.length > 0) ACQUIRED.set(transport, ids);
      },
      clientGone: () => transport.closed,
    });
    if (isRejection(admitted)) {
      await this.refuse(admitted, incoming, transport, begun, facts);
      return undefined;
    }
    let stream: MeteredStreamImpl;
    try {
      stream = new MeteredStreamImpl(config, this.registry, transport, {
        ...admitted,
        telemetry: begun,
      });
    } catch (error) {
      // Our bug (or a tracer that threw): the request never started, its admission is undone.
      config.services.logger.error('tokenmeter: the stream could not be created', {
        error: describe(error),
      });
      await this.release(transport);
      config.protocol.wire.reject(transport, 500, 'internal_error', 'Internal error.');
      return undefined;
    }
    // A stream that could not open has ended (reservations released, JSON 500 sent).
    return stream.open(admitted.headers ?? {}) ? stream : undefined;
  }

  /** Answers a rejection in the route's wire protocol, and records it. */
  async refuse(
    rejection: Rejection,
    incoming: Incoming<R>,
    transport: Transport,
    begun: RequestStart,
    facts: RequestFacts = {},
  ): Promise<void> {
    const { status, code } = rejection;
    if (status === null) {
      // The client left while we were admitting: nothing reached the provider.
      await this.release(transport);
      this.config.services.events.rejected(begun, { ...facts, ...rejection.info, reason: code });
      return;
    }
    closeIfUnread(incoming, transport);
    this.config.protocol.wire.reject(
      transport,
      status,
      code,
      rejection.message,
      rejection.details,
      rejection.headers,
    );
    this.config.services.events.rejected(begun, {
      ...facts,
      ...rejection.info,
      reason: code,
      status,
    });
  }

  /** Gives back the reservations of a request no stream took over (and their slots). */
  private async release(transport: Transport): Promise<void> {
    const held = ACQUIRED.get(transport);
    ACQUIRED.delete(transport);
    if (held) await releaseAll(this.config.services.store, held).catch(() => {});
  }
}
