// The contract between the provider-neutral generator (generation.ts) and each provider's
// wire format (anthropic.ts, openai.ts, responses.ts): the generator decides when and how
// much; the protocol decides how it looks on the wire.

import type { OutputPlan } from './plan.js';
import type { Dialect } from './request-tools.js';
import type { Provider, ReportedUsage } from './types.js';

/** Everything a protocol needs to write one response. */
export interface ResponseContext {
  /** Shared stem of this request's ids. */
  stem: string;
  requestId: string;
  model: string;
  plan: OutputPlan;
  /** Input tokens without cache (Anthropic `input_tokens`). */
  inputTokens: number;
  cacheReadTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  /** Billed input tokens each performed web search adds (Anthropic). */
  searchResultTokens: number;
  /** Anthropic usage `speed`: `fast` when the request asked for it, else `standard`. */
  speed: string;
  /** Anthropic usage `inference_geo`: the request's, else `global`. */
  inferenceGeo: string;
  /** OpenAI `stream_options.include_usage`. */
  includeUsage: boolean;
  /** Unix seconds, for OpenAI `created`. */
  createdSec: number;
  /** The request body (the Responses API echoes its settings in the Response). */
  request: Readonly<Record<string, unknown>>;
}

/** A provider's error, as its API names it. */
export interface ApiError {
  status: number;
  type: string;
  message: string;
  /** OpenAI `code`. */
  code?: string | null;
  /** OpenAI `param`. */
  param?: string | null;
}

/** Writes one stream: each method returns the exact bytes (as a string) to send. */
export interface StreamEncoder {
  /** Everything before the first content token (Anthropic `message_start`, first block, ping). */
  open(): string;
  /**
   * Opening of block `index` (> 0; the first block is part of `open()`). Indices are the
   * plan's; the encoder maps them to its own wire indices.
   */
  blockStart(index: number): string;
  /** A delta of `text` (one chunk of tokens) in block `index`. */
  delta(index: number, text: string): string;
  /** End of block `index` (with what follows it on the wire, e.g. a web search's result). */
  blockStop(index: number): string;
  /** The final usage and stop reason, and the stream's end marker. */
  finish(tokensSent: number): string;
  /** An in-stream error event. */
  error(): string;
  /** An event cut off inside its JSON, in block `index`. */
  malformed(index: number): string;
  /** An event the client must tolerate (unknown type, comment…); `seq` varies it. */
  unknown(seq: number): string;
}

export type Route = 'messages' | 'count_tokens' | 'chat_completions' | 'responses' | 'input_tokens';

/** One provider's wire format. */
export interface ProviderProtocol {
  readonly provider: Provider;
  /** How its request bodies are read (tools, tool results, reasoning). */
  readonly dialect: Dialect;
  /** Header carrying the request id. */
  readonly requestIdHeader: string;
  /** Status of a non-streaming answer for the `error-mid-stream` fault. */
  readonly midStreamErrorStatus: number;
  /** The output token cap the body asks for (`max_tokens`, `max_output_tokens`…), if any. */
  maxTokens(body: Readonly<Record<string, unknown>>): number | undefined;
  /** Returns the provider's 400 for an invalid body, or undefined when the body is valid. */
  validate(route: Route, body: unknown): ApiError | undefined;
  /** The error this provider answers with for `status`. */
  statusError(status: number, model: string | undefined): ApiError;
  errorBody(error: ApiError, requestId: string): string;
  /** Extra headers for an error answer (rate-limit headers on 429). */
  errorHeaders(error: ApiError, retryAfterSec: number): Record<string, string>;
  /** Headers of every answer besides content type (request id, versions). */
  baseHeaders(requestId: string): Record<string, string>;
  streamEncoder(ctx: ResponseContext): StreamEncoder;
  /** A complete, non-streaming answer with `texts[i]` as the content of block i. */
  completeBody(ctx: ResponseContext, texts: readonly string[], tokensSent: number): string;
  /** The stop / finish reason reported for the plan. */
  stopReason(plan: OutputPlan): string;
  /** The usage as reported once `tokensSent` output tokens went out. */
  usage(ctx: ResponseContext, tokensSent: number): ReportedUsage;
}
