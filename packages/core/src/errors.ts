/**
 * One error type for the whole kit. Every error carries a stable `code` (used in HTTP
 * bodies, SSE `error` events, spans, metrics and logs), a message that says what
 * happened and what to do, and an optional `cause`. Recognisable across duplicate
 * copies of the package through a `Symbol.for` marker.
 */

const marker = Symbol.for('tokenmeter.error');

/** Stable error codes. Adding one is a minor change; renaming one is breaking. */
export type TokenmeterErrorCode =
  | 'invalid_argument'
  | 'invalid_config'
  | 'invalid_usage'
  | 'unknown_model'
  | 'invalid_catalog'
  | 'money_out_of_range'
  | 'budget_exceeded'
  | 'rate_limited'
  | 'store_unavailable'
  | 'reservation_not_found'
  | 'upstream_error'
  | 'timeout'
  | 'client_disconnected'
  | 'unrecognized_stream'
  | 'internal_error';

export interface TokenmeterErrorOptions {
  cause?: unknown;
  /** Extra machine-readable fields, copied into HTTP bodies and SSE `error` events. */
  details?: Record<string, unknown>;
}

export class TokenmeterError extends Error {
  readonly code: TokenmeterErrorCode;
  readonly details: Record<string, unknown>;
  readonly [marker] = true;

  constructor(code: TokenmeterErrorCode, message: string, options: TokenmeterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenmeterError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** True for any TokenmeterError, even one thrown by another copy of this package. */
  static isInstance(value: unknown): value is TokenmeterError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[marker] === true
    );
  }
}
