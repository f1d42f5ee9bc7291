/**
 * Every way a metered stream can end, by one name used everywhere: the SSE `error`
 * event's code, the span's `tokenmeter.outcome`, metric attributes and log lines.
 */

export const OUTCOMES = [
  /** The provider finished the answer (any stop reason, including max_tokens). */
  'completed',
  /** The client left before the end; the upstream call was aborted. */
  'client_disconnected',
  /**
   * The client stopped reading (its socket full, nothing drained) for longer than the
   * stall timeout: the response was closed and the upstream call aborted.
   */
  'client_stalled',
  /** A budget or per-request cost cap stopped the stream (or rejected it at admission). */
  'budget_exceeded',
  /** A rate limit rejected the request at admission. */
  'rate_limited',
  /** The provider failed: HTTP error, `error` event, reset, malformed stream. */
  'upstream_error',
  /** The provider sent nothing for longer than the idle timeout. */
  'upstream_idle',
  /** The stream's total time ran out (or the provider's own request timed out). */
  'timeout',
  /** The store failed under the fail-closed policy. */
  'store_unavailable',
  /** The app's route handler threw, misused the stream or never handed one over. */
  'handler_error',
  /** tokenmeter itself failed (a bug, or a custom encoder that threw). */
  'internal_error',
] as const;

export type StreamOutcome = (typeof OUTCOMES)[number];
