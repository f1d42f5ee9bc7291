/**
 * What the engine tells its subscriber at each point of a request's life: a request
 * arrives, is refused, or opens a stream (whose own subscriber then hears its first text,
 * its abort and its end); and the store it calls, to observe. Telemetry (OpenTelemetry
 * spans and metrics, `telemetry/`) is the subscriber the adapters install; the engine knows
 * only this interface.
 */
import type { Context } from '@opentelemetry/api';
import type { FinalUsage, ScopeRef, Store, StreamOutcome } from '@tokenmeter/core';

/** The engine's events, as a subscriber receives them. */
export interface EngineEvents {
  /** A request arrived (before `identify`). */
  begin(): RequestStart;
  /** It was refused before any stream. */
  rejected(start: RequestStart, info: RejectionInfo): void;
  /** It was admitted and its stream opens: the stream's own subscriber. */
  startStream(start: RequestStart, info: StreamStartInfo): StreamTrace;
  /** The route's store, returned observed (or as it is). */
  instrumentStore(store: Store): Store;
}

/** Captured when a request arrives: the parent context and the start time. */
export interface RequestStart {
  readonly context: Context;
  /**
   * A `performance.now()` reading. The OTel SDK maps performance timestamps onto the same
   * clock its own spans use (anchored on `Date.now()` when a span starts), so our spans
   * line up with the HTTP server span around them. Epoch milliseconds work too.
   */
  readonly startTime: number;
}

/** What is known about a request (fields are absent when admission stopped before learning them). */
export interface RequestFacts {
  model?: string;
  provider?: string;
  maxTokens?: number;
  /** False when the unknown-model fallback priced it: the requested name stays off metrics. */
  modelPriced?: boolean;
  scopes?: readonly ScopeRef[];
}

/** A request refused before any SSE byte. */
export interface RejectionInfo extends RequestFacts {
  /** The response's JSON error code: `rate_limited`, `budget_exceeded`, `store_unavailable`, … */
  reason: string;
  /** The HTTP status answered (none when the client left during admission). */
  status?: number;
  /** The scope kind whose limit refused it. */
  scope?: string;
  reservedNanos?: number;
  budgetRemainingNanos?: number | null;
  retryAfterMs?: number | null;
  /** Reservations that were made and released again (the client left during admission). */
  reservationsReleased?: number;
}

/** An admitted stream, as it starts. */
export interface StreamStartInfo extends RequestFacts {
  requestId: string;
  model: string;
  provider: string;
  maxTokens: number;
  /** Nano-dollars reserved at admission (per scope). */
  reservedNanos: number;
  /** The tightest remaining budget after admission, if any. */
  budgetRemainingNanos?: number | null;
  /** Reservations opened (one per metered scope; 0 when the store failed open). */
  reservations: number;
  /** The provider request body, read only when `recordContent` is on. */
  input?: unknown;
}

/** How a middleware-side reservation ended. */
export type ReservationEnd =
  | 'settled'
  | 'released'
  /** The store could not record the settlement: the reservation will expire. */
  | 'unrecorded'
  /** It had expired in the store before the stream settled (a leak made visible). */
  | 'expired_before_settle'
  | 'already_ended';

/** A stream at settlement. Field names match the middleware's `SettleInfo`. */
export interface StreamEndInfo {
  outcome: StreamOutcome;
  final: FinalUsage;
  /** Milliseconds from admission to settlement. */
  durationMs: number;
  timeToFirstTokenMs?: number;
  backpressureWaits: number;
  backpressureMs: number;
  recorded: boolean;
  budgetRemainingNanos: number | null;
  reservationEnds: Partial<Record<ReservationEnd, number>>;
  /** The upstream failure, for `error.type` (provider error type, else HTTP status) and the status message. */
  failure?: { type?: string; status?: number; message?: string };
}

/** What one admitted stream tells its subscriber (the telemetry of one stream). */
export interface StreamTrace {
  /** The parent context with this stream's span set: run the upstream call inside it. */
  readonly context: Context;
  /** True when the answer's text should be passed to `output()` (`recordContent`). */
  readonly recordsContent: boolean;
  /** True when each output chunk should be told to `chunk()` (`timePerOutputChunk`). */
  readonly recordsChunks: boolean;
  /** False when nothing records (telemetry off, or no SDK): `end()` would do nothing. */
  readonly active: boolean;
  /** Runs `fn` with the stream's span active (SDK HTTP spans of the upstream call nest under it). */
  run<T>(fn: () => T): T;
  /** Appends answer text (only called when `recordsContent`). */
  output(text: string): void;
  /** An output chunk (text or thinking) arrived now (only called when `recordsChunks`). */
  chunk(): void;
  /** The upstream call was aborted, and why. */
  abort(reason: StreamOutcome): void;
  /** Ends the span and records the metrics. Runs once. */
  end(info: StreamEndInfo): void;
}
