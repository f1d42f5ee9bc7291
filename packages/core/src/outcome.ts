/**
 * Every way a metered stream can end, by one name used everywhere: the SSE `error`
 * event's code, the span's `tokenmeter.outcome`, metric attributes and log lines.
 */

export const OUTCOMES = [
  /** The provider finished the answer (any stop reason, including max_tokens). */
  'completed',
  /** The client left before the end; the upstream call was aborted. */
  'client_disconnected',
  /** A budget or per-request cost cap stopped the stream (or rejected it at admission). */
  'budget_exceeded',
  /** A rate limit rejected the request at admission. */
  'rate_limited',
  /** The provider failed: HTTP error, `error` event, reset, malformed stream. */
  'upstream_error',
  /** The upstream went idle for too long, or the total time ran out. */
  'timeout',
  /** The store failed under the fail-closed policy. */
  'store_unavailable',
  /** The app's route handler threw or never handed over a stream. */
  'handler_error',
] as const;

export type StreamOutcome = (typeof OUTCOMES)[number];
