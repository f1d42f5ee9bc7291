// Public types of the fake LLM server: its options, the per-request knobs, and the
// records it keeps of every request so tests can assert what it generated and sent.

/** Which real API a request spoke. */
export type Provider = 'anthropic' | 'openai';

/**
 * How the seeded text looks.
 * - `mixed`: words plus newlines, CRLF, lone CR, unicode, emoji (a ZWJ sequence split across
 *   tokens) and adversarial sequences such as `\n\ndata: [DONE]\n\n` and `event: done`.
 * - `plain`: words, punctuation and newlines only (nicer in a demo).
 * - `emoji`: one emoji (a single code point outside the BMP) per token, now and then with a
 *   leading space, and newline tokens.
 * - `vietnamese`: one Vietnamese syllable with diacritics per token (with its leading
 *   space), and `,` / `.` tokens.
 * - `cjk`: one Chinese character per token, and `，` / `。` tokens.
 * - `base64`: tokens of exactly three base64 characters, no spaces: one long base64 run.
 * - `repeat`: `aaaa` tokens, every 20th token a newline (the seed does not matter).
 */
export type TextMode = 'mixed' | 'plain' | 'emoji' | 'vietnamese' | 'cjk' | 'base64' | 'repeat';

/**
 * A fault injected into a response.
 * - `hang`: headers, then silence until the client or the server closes.
 * - `hang-mid-stream`: stream normally for `faultAfter` tokens, then silence.
 * - `error-mid-stream`: after `faultAfter` tokens, an in-stream error (Anthropic `event: error`
 *   with `overloaded_error`; OpenAI a `data: {"error": …}` chunk; Responses an `event: error`
 *   with `server_error`), then the response ends.
 * - `reset-mid-stream`: after `faultAfter` tokens (flushed), the socket is destroyed.
 * - `malformed-sse`: after `faultAfter` tokens, an event whose JSON is cut off, then the end.
 * - `no-message-delta`: all content, then the response ends without the final usage
 *   (Anthropic: no `message_delta` / `message_stop`; OpenAI: no finish chunk, usage chunk or
 *   `[DONE]`; Responses: no `response.completed`).
 * - `unknown-events`: a normal stream with unknown event types and SSE comments interleaved
 *   (Responses: `keepalive` events, which the SDK's stream helper skips).
 * - a number: that HTTP status (400–599) with the provider's error body, before any stream.
 */
export type StreamFault =
  | 'hang'
  | 'hang-mid-stream'
  | 'error-mid-stream'
  | 'reset-mid-stream'
  | 'malformed-sse'
  | 'no-message-delta'
  | 'unknown-events';

/** A stream fault, or an HTTP status (400–599) to answer with before any stream. */
export type Fault = StreamFault | number;

/** The behaviour of one response. Server options set defaults; request headers override. */
export interface Knobs {
  /** Tokens of text in the answer (before `max_tokens` caps it). Defaults to 64. */
  tokens: number;
  /** Tokens per second; 0 or Infinity = as fast as the socket accepts. Defaults to 0. */
  tps: number;
  /** Delay before the first content token, in ms. Defaults to 0. */
  ttftMs: number;
  /** Tokens per delta event. Defaults to 1. */
  chunk: number;
  /** Seed of the generated text (same seed, same text). Defaults to 1. */
  seed: number;
  /** Shape of the generated text. Defaults to `'mixed'`. */
  text: TextMode;
  /** Overrides the input token count computed from the request body. Defaults to computed. */
  inputTokens: number | undefined;
  /**
   * How input tokens are computed from the request's text: `'quarter'`, a token per four
   * UTF-8 bytes (about what real prose costs), or `'bytes'`, a token per byte (the most a
   * byte-level tokenizer can make of any text: a hostile caller's worst case). Defaults to
   * `'quarter'`.
   */
  inputCounting: InputCounting;
  /** Reported cache-read input tokens. Defaults to 0. */
  cacheReadTokens: number;
  /** Reported 5-minute cache-write input tokens (Anthropic only). Defaults to 0. */
  cacheWrite5mTokens: number;
  /** Reported 1-hour cache-write input tokens (Anthropic only). Defaults to 0. */
  cacheWrite1hTokens: number;
  /**
   * Tokens of an Anthropic thinking block streamed before the text. Defaults to 16 when the
   * request enables `thinking`, else 0.
   */
  thinkingTokens: number | undefined;
  /**
   * Tokens of a tool call (the input JSON, piece by piece) streamed after the text. Defaults
   * to 12 when the request forces a tool (`tool_choice` any/tool/required/function), else 0.
   * A tool with an input schema gets a valid instance of it: at least its smallest instance
   * (the call grows to fit), exactly that when no string can carry more words.
   */
  toolTokens: number | undefined;
  /**
   * Tool turns of an agent loop: while the conversation carries fewer tool results than this
   * (Anthropic `tool_result` blocks, Chat `role: "tool"` messages, Responses
   * `function_call_output` items), the answer ends in a call of `toolName` with arguments
   * valid for its schema (`toolTokens` tokens, default 12); once it carries that many, the
   * answer is text. Defaults to undefined: no loop (tool calls as `toolTokens` says).
   */
  toolTurns: number | undefined;
  /**
   * The tool called when the answer calls one (unless `tool_choice` names another); the first
   * function tool offered when undefined or not offered. Defaults to undefined.
   */
  toolName: string | undefined;
  /**
   * OpenAI reasoning tokens, reported in `completion_tokens_details` / `output_tokens_details`:
   * hidden, or with a Responses `reasoning.summary` streamed as the summary. Defaults to 0.
   */
  reasoningTokens: number;
  /**
   * Anthropic web searches performed before the text, each a `server_tool_use` block (its
   * query JSON streamed as output tokens) and a `web_search_tool_result` block. Defaults to 1
   * when the request has a `web_search_*` tool, else 0; never more than the tool's
   * `max_uses`, never any without the tool. Ignored by OpenAI.
   */
  searches: number | undefined;
  /** Billed input tokens each search's results add to `input_tokens`. Defaults to 1000. */
  searchResultTokens: number;
  /** A fault to inject. Defaults to none. */
  fault: Fault | undefined;
  /** Tokens sent before a mid-stream fault fires. Defaults to half the planned tokens. */
  faultAfter: number | undefined;
  /** Seconds in `retry-after` (and the rate-limit reset headers) of 429 answers. Defaults to 1. */
  retryAfterSec: number;
}

/** How the fake turns request text into input tokens (see `Knobs.inputCounting`). */
export type InputCounting = 'quarter' | 'bytes';

/** Knobs as given by a user: any subset; `fault: 'none'` clears a fault. */
export type KnobOptions = Partial<Omit<Knobs, 'fault'>> & { fault?: Fault | 'none' | undefined };

/** Options of `startFakeLLM()`. */
export interface FakeLLMOptions extends KnobOptions {
  /** Port to listen on; 0 picks a free one. Defaults to 0. */
  port?: number;
  /** Interface to listen on. Defaults to `'127.0.0.1'`. */
  host?: string;
  /**
   * When set, requests must carry this key (`x-api-key` or `Authorization: Bearer`), else 401.
   * Defaults to accepting any key, or none.
   */
  apiKey?: string | undefined;
  /** Records kept in `requests`; the oldest are dropped beyond it. Defaults to 10,000. */
  maxRecords?: number;
  /** Whether `x-fake-llm-*` request headers may override the knobs. Defaults to true. */
  headerKnobs?: boolean;
}

/** Why generation stopped. */
export type StopCause =
  /** The whole answer was generated and the final usage sent. */
  | 'completed'
  /** Like completed, but `max_tokens` cut the answer. */
  | 'max_tokens'
  /** The client closed the connection before the response finished. */
  | 'client-closed'
  /** `close()` was called on the fake while the response was open. */
  | 'server-closed'
  /** An injected fault ended generation. */
  | 'fault'
  /** The request was answered with an error before generating (validation, auth, fault status). */
  | 'rejected';

/** The usage the fake reported in its final event or body, normalised across providers. */
export interface ReportedUsage {
  /**
   * Anthropic `input_tokens` (excludes cache); OpenAI `prompt_tokens` / Responses
   * `input_tokens` (include cached).
   */
  inputTokens: number;
  /**
   * Anthropic `output_tokens`; OpenAI `completion_tokens` / Responses `output_tokens`
   * (include reasoning).
   */
  outputTokens: number;
  cacheReadTokens: number;
  cacheWrite5mTokens: number;
  cacheWrite1hTokens: number;
  /** OpenAI `reasoning_tokens`; Anthropic thinking tokens. */
  reasoningTokens: number;
  /** Anthropic `server_tool_use.web_search_requests` (searches performed); OpenAI 0. */
  webSearchRequests: number;
  /** Anthropic `speed`: `"fast"` when the request asked for it, else `"standard"`. */
  speed?: string;
  /** Anthropic `inference_geo`: the request's `inference_geo`, else `"global"`. */
  inferenceGeo?: string;
}

/** One generated content block and how much of it went out. */
export interface BlockRecord {
  /** `web_search`: the query of one Anthropic web search (a `server_tool_use` block). */
  kind: 'thinking' | 'web_search' | 'text' | 'tool_use';
  /** Tokens planned for this block (after `max_tokens`). */
  tokens: number;
  /** Tokens of this block written to the socket. */
  tokensSent: number;
  /** Tool name, for `tool_use` blocks. */
  toolName?: string;
}

/**
 * What the fake saw and did for one request. Times are `performance.now()` milliseconds.
 * The record is live: fields change until the request ends (`endedAt` set).
 */
export interface RequestRecord {
  /** The request id sent in `request-id` (Anthropic) or `x-request-id` (OpenAI). */
  readonly id: string;
  /** 1-based arrival order on this server. */
  readonly seq: number;
  readonly provider: Provider;
  readonly method: string;
  /** URL path without the query string. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body, or undefined if it was not JSON. */
  readonly body: unknown;
  readonly model: string | undefined;
  readonly stream: boolean;
  /** `max_tokens` (OpenAI: `max_completion_tokens` ?? `max_tokens`). */
  readonly maxTokens: number | undefined;
  readonly receivedAt: number;
  /** The knobs in effect (server defaults merged with request headers), once resolved. */
  readonly knobs: Readonly<Knobs> | undefined;
  /** HTTP status answered (0 until the headers went out). */
  readonly status: number;
  /** Error answered before or during the stream (type as the provider names it). */
  readonly error: { status: number; type: string; message: string } | undefined;
  /**
   * Input tokens counted for the body (or the `inputTokens` knob): Anthropic `input_tokens`;
   * OpenAI `prompt_tokens` is this plus `cacheReadTokens`.
   */
  readonly inputTokens: number;
  /** Content blocks in order; text of each via `text` / `thinking` / `toolInput`. */
  readonly blocks: readonly BlockRecord[];
  /** Output tokens the answer would have had if nothing interrupted it. */
  readonly tokensPlanned: number;
  /** Output tokens produced by the generator (what a real provider bills). */
  readonly tokensGenerated: number;
  /** Output tokens written to the socket. */
  readonly tokensSent: number;
  /**
   * OpenAI hidden reasoning tokens (never streamed) included in `completion_tokens` /
   * `output_tokens`. A Responses reasoning summary is the `thinking` block instead.
   */
  readonly reasoningTokens: number;
  /**
   * Anthropic web searches performed: complete search queries whose results block was
   * produced (a query cut by `max_tokens` or by the end of the stream is not performed).
   */
  readonly searches: number;
  /** Usage reported in the final event or body; undefined if none was sent. */
  readonly usage: ReportedUsage | undefined;
  /** The `stop_reason` / `finish_reason` (Responses: final `status`) sent, if any. */
  readonly stopReason: string | undefined;
  readonly firstTokenAt: number | undefined;
  /** When the client closed the connection before the response finished. */
  readonly clientClosedAt: number | undefined;
  /** `tokensSent` at the moment the client closed. */
  readonly tokensSentAtClientClose: number | undefined;
  /** When generation stopped, and why. */
  readonly generationStoppedAt: number | undefined;
  readonly stopCause: StopCause | undefined;
  /** When the response closed (normally or not). */
  readonly endedAt: number | undefined;
  /** True when the complete response (with its final usage) was written and flushed. */
  readonly finishedNormally: boolean;
  /** `res.write()` calls. */
  readonly writes: number;
  /** `res.write()` calls that returned false (the socket was not draining). */
  readonly writesBlocked: number;
  /** Total time spent waiting for `'drain'`, in ms. */
  readonly blockedMs: number;
  /** Largest `res.writableLength` seen after a write, in bytes. */
  readonly maxBufferedBytes: number;
  /** Text of the text block that was sent (recomputed from the seed). */
  readonly text: string;
  /** Text of the thinking block (Responses: the reasoning summary) that was sent. */
  readonly thinking: string;
  /** The tool input JSON that was sent (possibly truncated). */
  readonly toolInput: string;
}

/** Running totals over the server's life (not cleared by dropping old records). */
export interface FakeLLMTotals {
  requests: number;
  tokensGenerated: number;
  tokensSent: number;
  clientCloses: number;
  writesBlocked: number;
}

/** Events emitted by the fake. */
export interface FakeLLMEvents {
  /** A request's body was read and its record created. */
  'request-start': [record: RequestRecord];
  /** The client closed the connection before the response finished. */
  'client-close': [record: RequestRecord];
  /** A response closed (normally or not); the record is final. */
  'request-end': [record: RequestRecord];
}
