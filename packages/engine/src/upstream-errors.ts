/**
 * Turns whatever an upstream call threw (official SDK errors, fetch errors, resets, a
 * provider `error` event) into one outcome and a client-safe description. Messages sent
 * to the client never include request headers, keys or stacks.
 */
import { type StreamOutcome, TokenmeterError } from '@tokenmeter/core';
import { aiSdkParts, isAiSdkResult } from '@tokenmeter/core/providers';

/** A provider's HTTP error answer, kept whole so a gateway can pass it on as it came. */
export interface ProviderResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Thrown by a gateway's provider call when the provider answered with an HTTP error. */
export class ProviderHttpError extends Error {
  readonly status: number;
  readonly response: ProviderResponse;
  /** The provider's error type (`invalid_request_error`, …), if its body says. */
  readonly type: string | undefined;

  constructor(response: ProviderResponse) {
    super(`The model provider answered HTTP ${response.status}.`);
    this.name = 'ProviderHttpError';
    this.status = response.status;
    this.response = response;
    let type: string | undefined;
    try {
      const body = JSON.parse(response.body) as { error?: { type?: unknown } };
      if (typeof body.error?.type === 'string') type = body.error.type;
    } catch {
      // Not JSON: no type.
    }
    this.type = type;
  }
}

export interface UpstreamFailure {
  outcome: StreamOutcome;
  /** The provider refused the request before producing anything (an HTTP error status). */
  refused: boolean;
  message: string;
  /** HTTP status the provider answered, if any. */
  status?: number;
  /** The provider's error type (`overloaded_error`, `rate_limit_error`, …), if any. */
  type?: string;
  /** The provider's whole HTTP error answer (gateways pass it on). */
  response?: ProviderResponse;
  /** The provider's own error event already reached the client (a relayed stream). */
  relayed?: boolean;
  /** What the provider billed cannot be known (its stream could not be metered): charge the reservation. */
  chargeReservation?: boolean;
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  status?: unknown;
  /** The AI SDK's `APICallError`: the provider's status and body. */
  statusCode?: unknown;
  responseBody?: unknown;
  code?: unknown;
  error?: unknown;
  type?: unknown;
}

/** Classifies an error thrown by the upstream call or while reading its stream. */
export function classifyUpstreamError(error: unknown, eventsSeen: number): UpstreamFailure {
  if (error instanceof ProviderHttpError) {
    return {
      outcome: 'upstream_error',
      refused: eventsSeen === 0,
      message: `The model provider answered HTTP ${error.status}${error.type ? ` (${error.type})` : ''}.`,
      status: error.status,
      ...(error.type ? { type: error.type } : {}),
      response: error.response,
    };
  }
  if (TokenmeterError.isInstance(error)) {
    const outcome = error.code === 'timeout' ? 'timeout' : 'upstream_error';
    return { outcome, refused: false, message: error.message };
  }
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike;
  const status =
    typeof e.status === 'number'
      ? e.status
      : typeof e.statusCode === 'number'
        ? e.statusCode
        : undefined;
  const type = providerErrorType(e);
  if (status !== undefined) {
    return {
      outcome: 'upstream_error',
      // An HTTP error status before any event: the provider did not run the request.
      refused: eventsSeen === 0,
      message: `The model provider answered HTTP ${status}${type ? ` (${type})` : ''}.`,
      status,
      ...(type ? { type } : {}),
    };
  }
  if (type) {
    return {
      outcome: 'upstream_error',
      refused: false,
      message: `The model provider reported ${type} mid-stream.`,
      type,
    };
  }
  const name = typeof e.name === 'string' ? e.name : '';
  if (/timeout/i.test(name)) {
    return { outcome: 'timeout', refused: false, message: 'The model provider timed out.' };
  }
  return {
    outcome: 'upstream_error',
    refused: false,
    message: 'The connection to the model provider failed.',
  };
}

function providerErrorType(e: ErrorLike): string | undefined {
  // Anthropic SDK: APIError.error is the body { type: 'error', error: { type, message } }.
  // OpenAI SDK: APIError.error is { message, type, code }; `type` is also on the error.
  const body = e.error as { type?: unknown; error?: { type?: unknown } } | undefined;
  if (body && typeof body === 'object') {
    if (typeof body.error?.type === 'string') return body.error.type;
    if (typeof body.type === 'string' && body.type !== 'error') return body.type;
  }
  if (typeof e.type === 'string') return e.type;
  // The AI SDK keeps the provider's answer as text: `{"type":"error","error":{"type":…}}`.
  if (typeof e.responseBody === 'string' && e.responseBody.length < 65_536) {
    try {
      const parsed = JSON.parse(e.responseBody) as { error?: { type?: unknown; code?: unknown } };
      if (typeof parsed.error?.type === 'string') return parsed.error.type;
      if (typeof parsed.error?.code === 'string') return parsed.error.code;
    } catch {
      // Not JSON: no type.
    }
  }
  return undefined;
}

/**
 * The async iterable inside whatever a handler handed over: the stream itself, or the
 * `fullStream` of an AI SDK `streamText()` result (its error parts thrown, as the raw SDKs
 * throw theirs).
 */
export function toAsyncIterable(source: unknown): AsyncIterable<unknown> {
  if (isAiSdkResult(source)) return aiSdkParts(source);
  if (
    source !== null &&
    (typeof source === 'object' || typeof source === 'function') &&
    typeof (source as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  ) {
    return source as AsyncIterable<unknown>;
  }
  throw new TokenmeterError(
    'invalid_argument',
    'stream() needs the provider stream: the result of client.messages.create({ ..., stream: true }), ' +
      'client.messages.stream(...), client.chat.completions.create({ ..., stream: true }), an AI SDK streamText() result, ' +
      'a LangChain model.stream(...) or any async iterable of events.',
  );
}

/** An error as one line for logs: its name and message, never its stack or fields. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
