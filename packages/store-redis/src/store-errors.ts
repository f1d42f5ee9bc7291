/**
 * How the Redis store fails: every backend problem (connection down, timeout, a script
 * error, a reply it cannot read) becomes one `TokenmeterError` with code
 * `store_unavailable`, so the middleware's fail-closed / fail-open policy has exactly one
 * thing to catch. Caller bugs (`invalid_argument`, `invalid_config`) pass through.
 */
import { TokenmeterError } from '@tokenmeter/core';

export type Operation =
  | 'admit'
  | 'settle'
  | 'extend'
  | 'release'
  | 'releaseByKey'
  | 'claimOnce'
  | 'getState'
  | 'now';

const PASS_THROUGH = new Set(['invalid_argument', 'invalid_config', 'store_unavailable']);

export function toStoreError(operation: Operation, error: unknown): TokenmeterError {
  if (TokenmeterError.isInstance(error) && PASS_THROUGH.has(error.code)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TokenmeterError(
    'store_unavailable',
    `The Redis store failed during ${operation}(): ${reason}. Check that Redis is reachable and healthy; ` +
      'the request is handled by the store failure policy (fail closed unless configured to fail open).',
    { cause: error, details: { operation, store: 'redis' } },
  );
}

export function timedOut(operation: Operation, timeoutMs: number): TokenmeterError {
  return new TokenmeterError(
    'store_unavailable',
    `The Redis store did not answer ${operation}() within ${timeoutMs} ms. ` +
      'Check that Redis is reachable and not overloaded, or raise timeoutMs.',
    { details: { operation, store: 'redis', timeoutMs } },
  );
}

export function shutDown(operation: Operation): TokenmeterError {
  return new TokenmeterError(
    'store_unavailable',
    `The Redis store was shut down; ${operation}() cannot run. Create a new store with createRedisStore().`,
    { details: { operation, store: 'redis' } },
  );
}

/** A reply that does not have the shape the script returns: a bug or a foreign server. */
export class MalformedReplyError extends Error {
  constructor(operation: Operation, reply: unknown) {
    super(
      `unexpected reply to ${operation}: ${JSON.stringify(reply)?.slice(0, 200)} (is this a Redis-compatible server running the store's scripts?)`,
    );
    this.name = 'MalformedReplyError';
  }
}
