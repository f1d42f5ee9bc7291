/**
 * What an error means for a stream's end: from the source (the route's bug, or the
 * provider's failure), or from our own read loop (an unmeterable stream, our bug).
 */
import { TokenmeterError } from '@tokenmeter/core';
import { CODE_MESSAGES } from './settlement.js';
import type { Logger } from './types.js';
import { classifyUpstreamError, describe, type UpstreamFailure } from './upstream-errors.js';

/** An error from the source: the handler's bug, or the provider's failure. */
export function failureOfSource(
  error: unknown,
  facts: { eventCount: number; signalTouched: boolean; logger: Logger; requestId: string },
): UpstreamFailure {
  if (TokenmeterError.isInstance(error) && error.code === 'invalid_argument') {
    return { outcome: 'handler_error', refused: true, message: error.message };
  }
  if (facts.eventCount === 0 && isProgrammingError(error)) {
    // A bug in the route's upstream function (an async one, so fail() never saw it):
    // the developer needs the error; the client gets the fixed handler_error message.
    facts.logger.error('tokenmeter: the upstream function failed before streaming', {
      requestId: facts.requestId,
      error: describe(error),
      stack: (error as Error).stack,
    });
    // If it never read the signal it never started the upstream call: nothing billed.
    return {
      outcome: 'handler_error',
      refused: !facts.signalTouched,
      message: CODE_MESSAGES.handler_error,
    };
  }
  return classifyUpstreamError(error, facts.eventCount);
}

/** A failure of our own read loop (or a custom encoder). */
export function failureOfLoop(error: unknown, logger: Logger, requestId: string): UpstreamFailure {
  if (TokenmeterError.isInstance(error) && error.code === 'unrecognized_stream') {
    // The route handed over a stream of no format we meter: the developer's to fix, and
    // the provider may have billed an answer we cannot see, so its reservation is charged.
    logger.error(`tokenmeter: ${error.message}`, { requestId });
    return {
      outcome: 'handler_error',
      refused: false,
      message: CODE_MESSAGES.handler_error,
      chargeReservation: true,
    };
  }
  logger.error('tokenmeter: streaming failed', { requestId, error: describe(error) });
  return { outcome: 'internal_error', refused: false, message: CODE_MESSAGES.internal_error };
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
