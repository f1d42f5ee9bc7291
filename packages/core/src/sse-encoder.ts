/**
 * Server-Sent Events encoding: turns events and comments into the exact text of the
 * `text/event-stream` format (WHATWG HTML, "Server-sent events"), and the two wire
 * protocols the middleware can speak: tokenmeter's JSON events and the plain
 * `data: token` / `data: [DONE]` style.
 *
 * Model text can contain anything (`\n\ndata: [DONE]\n\n`, lone `\r`, NUL, emoji), so
 * the one promise of this module is that no text can forge, end or break an event:
 * - data and comment text is cut at every line end the parser knows (CRLF, lone CR,
 *   lone LF) and each piece gets its own `data:` / `:` line;
 * - event names and ids are chosen by the app, never by the model, so a CR or LF in
 *   them (or NUL in an id) is a bug and throws instead of being silently rewritten —
 *   rewriting an id would change the `Last-Event-ID` a client resumes from;
 * - every call returns whole events ending in a blank line. No state is kept between
 *   calls, so nothing (a CRLF, a surrogate pair, an event) can be split across two
 *   writes by the encoder; the byte stream may still be cut anywhere by the network,
 *   which every SSE parser handles.
 *
 * Pure functions on strings, no socket: the writer in @tokenmeter/express owns
 * transport and backpressure. This runs per token for every open stream, so the common
 * case (no line end in the text) is one concatenation.
 */
import { TokenmeterError } from './errors.js';

/** The fields of one SSE event block. */
export interface SseEvent {
  /**
   * Event type. Omit it for the default `message` type (what `onmessage` receives).
   * Must be non-empty and contain no CR or LF.
   */
  event?: string;
  /**
   * Event data. Line ends in it (CRLF, CR, LF) become separate `data:` lines, which
   * parsers join back with LF: the text arrives with every line end normalised to `\n`.
   *
   * `''` is an event with empty data (clients receive it). `undefined` writes no data
   * line, so the block dispatches no event: use it to send only `id` (sets the client's
   * last event id) or `retry`. An `event` name without data is refused, because no
   * client would ever see it.
   */
  data?: string;
  /**
   * Event id, echoed by reconnecting clients as `Last-Event-ID`. `''` resets it.
   * Must contain no CR, LF or NUL (parsers ignore ids with NUL).
   */
  id?: string;
  /** Reconnection delay in milliseconds for the client: a non-negative integer. */
  retry?: number;
}

/** Payload of a `delta` event: a piece of model text. */
export interface SseDeltaData {
  readonly text: string;
}

/**
 * A budget as the stream's events show it: the tightest of the budgets that paid. USD as
 * numbers; `periodEnd` an ISO time, or `null` for a budget without a period.
 */
export interface SseBudget {
  readonly limitUsd: number;
  readonly spentUsd: number;
  readonly reservedUsd: number;
  readonly remainingUsd: number;
  readonly periodEnd: string | null;
}

/** Payload of the `meta` event: what was reserved, for what, and the budget left. */
export interface SseMetaData {
  readonly requestId: string;
  readonly model: string;
  /** The output limit sent to the provider. */
  readonly maxTokens: number;
  /** The prompt's estimated (or counted) tokens. */
  readonly inputTokens: number;
  readonly reservedUsd: number;
  /** What the reservation priced: the prompt's upper bound (with server-tool results)… */
  readonly reservedInputTokens: number;
  /** …and the output it covers. */
  readonly reservedOutputTokens: number;
  /** When the budget or a cost cap lowered max_tokens: what was asked, and what lowered it. */
  readonly requestedMaxTokens?: number;
  readonly fittedTo?: 'budget' | 'max_cost_per_request';
  readonly budget: SseBudget | null;
}

/** Payload of a `usage` event: the running estimate while the answer grows. */
export interface SseUsageData {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
  readonly estimated: true;
}

/** The usage in `done` and `error`: token counts by price kind. */
export interface SseFinalUsage {
  /** The whole prompt (uncached, cache reads and cache writes). */
  readonly inputTokens: number;
  /** Reasoning included. */
  readonly outputTokens: number;
  readonly uncachedInputTokens: number;
  readonly cacheReadTokens: number;
  readonly cacheWriteTokens: number;
  /** Present when there were any. */
  readonly reasoningTokens?: number;
}

/** What `done` and `error` both carry: the charge, exact to the nano-dollar. */
export interface SseCharge {
  readonly usage: SseFinalUsage;
  readonly costUsd: number;
  /** The same charge as integer nano-dollars (1 USD = 1e9). */
  readonly costNanos: number;
  /** True when the provider's final usage never arrived and this is tokenmeter's upper estimate. */
  readonly estimated: boolean;
  readonly budget: SseBudget | null;
}

/** Payload of the `done` event: the answer completed. */
export interface SseDoneData extends SseCharge {
  /** The provider's stop reason (`end_turn`, `stop`, `max_tokens`, …), or `null`. */
  readonly stopReason: string | null;
}

/** Payload of the `error` event: the stream ended any other way. */
export interface SseErrorData extends SseCharge {
  /** How it ended (`budget_exceeded`, `client_disconnected`, `upstream_error`, …). */
  readonly code: string;
  readonly message: string;
  /** The provider's HTTP status and error type, when it failed. */
  readonly upstreamStatus?: number;
  readonly upstreamType?: string;
  /** The limit that cut it (`lease_denied`, `max_cost_per_request`, …). */
  readonly limit?: string;
}

/**
 * The JSON body of every refusal before a stream starts (401, 400, 402, 413, 429, 503…):
 * a stable `code`, a message that says what to do, and details by code.
 */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly [detail: string]: unknown;
  };
}

/** Payload of a tool call: what the model asked the app's tool to do. */
export interface SseToolCallData {
  readonly id: string;
  readonly name: string;
  readonly input: unknown;
}

/**
 * The wire protocol of a metered stream. The middleware calls one method per thing to
 * send and writes the returned string as is; `''` means "this protocol sends nothing
 * for that". Every non-empty result is one or more whole events.
 *
 * Payloads other than `delta` are shaped by the middleware (see "The SSE protocol" in
 * the `@tokenmeter/express` README); the encoder only needs them to be JSON-serialisable.
 */
export interface SseEncoder {
  /** Once, before the first delta: request id, model, reservation. */
  meta(data: SseMetaData): string;
  /** A piece of model text. */
  delta(data: SseDeltaData): string;
  /** Running usage and cost (throttled by the caller). */
  usage(data: SseUsageData): string;
  /** Last event of a complete answer: stop reason, final usage and cost. */
  done(data: SseDoneData): string;
  /** Last event of a failed or cut-short answer: code, message, usage and cost so far. */
  error(data: SseErrorData): string;
  /** A comment line (keep-alive). Clients never see it as an event. */
  comment(text?: string): string;
  /**
   * A piece of the model's reasoning (thinking) text. Optional: a protocol without it sends
   * none (tokenmeter's own and the plain style send only the answer).
   */
  reasoning?(data: SseDeltaData): string;
  /**
   * A complete call of a tool the app runs (id, name, parsed input). Optional: a protocol
   * without it sends none.
   */
  toolCall?(data: SseToolCallData): string;
  /** Response headers the protocol adds to the SSE ones (`x-vercel-ai-ui-message-stream: v1`). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * A fresh encoder for one stream, for a protocol that keeps state between events (the
   * parts the AI SDK protocol has open). Without it the encoder is shared by every stream.
   */
  forStream?(): SseEncoder;
}

/** The data of the plain style's terminating event: `data: [DONE]`. */
export const PLAIN_DONE = '[DONE]';

// Every line end of the SSE grammar. CRLF first so it counts as one line end, not two.
const LINE_END = /\r\n|\r|\n/g;
const NAME_FORBIDDEN = /[\r\n]/;
const ID_FORBIDDEN = /[\r\n\0]/;

/**
 * `data:` lines for `data`, each `data: ` + line. The one space matters: parsers strip
 * one leading space, so a line that itself starts with a space keeps it.
 */
function dataLines(data: string): string {
  if (data.indexOf('\n') === -1 && data.indexOf('\r') === -1) {
    return `data: ${data}\n`;
  }
  return `data: ${data.replace(LINE_END, '\ndata: ')}\n`;
}

/** A value for an error message: strings quoted with escapes visible, anything else as is. */
function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function checkEventName(name: string): string {
  if (typeof name !== 'string' || name === '' || NAME_FORBIDDEN.test(name)) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE event name must be a non-empty string without CR or LF, got ${show(name)}. ` +
        'Omit it for the default "message" type; never put model text in an event name.',
    );
  }
  return name;
}

function checkId(id: string): string {
  if (typeof id !== 'string' || ID_FORBIDDEN.test(id)) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE event id must be a string without CR, LF or NUL, got ${show(id)}. ` +
        'Use an opaque token such as a counter or a UUID.',
    );
  }
  return id;
}

function checkRetry(retry: number): number {
  if (!Number.isSafeInteger(retry) || retry < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE retry must be a non-negative integer number of milliseconds, got ${String(retry)}.`,
    );
  }
  return retry;
}

function toJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE event data could not be serialised as JSON (${cause instanceof Error ? cause.message : String(cause)}). ` +
        'Pass plain data: no BigInt, no cycles.',
      { cause },
    );
  }
  if (json === undefined) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE event data must be JSON-serialisable, got ${typeof value}.`,
    );
  }
  return json;
}

/**
 * A delta's JSON. The common case, `{ text }` and nothing else, is the text's JSON inside
 * the object's: the same bytes as `JSON.stringify(data)`, at half its cost (no object to
 * walk) — it runs once per chunk of every answer. Anything else goes through `toJson`.
 */
function deltaJson(data: SseDeltaData): string {
  const text = data.text;
  if (typeof text === 'string' && onlyText(data)) return `{"text":${JSON.stringify(text)}}`;
  return toJson(data);
}

/** True when `text` is the one key JSON.stringify would see, and nothing customises it. */
function onlyText(data: object): boolean {
  if (typeof (data as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const key in data) if (key !== 'text') return false;
  return true;
}

/**
 * Encodes one SSE event block: `event`, `id`, `retry`, then the `data:` lines, then
 * the blank line that dispatches it. Throws `TokenmeterError('invalid_argument')` for
 * an event name with CR/LF (or empty), an id with CR/LF/NUL, a retry that is not a
 * non-negative integer, or a block that would dispatch nothing useful (an event name
 * without data, or no field at all).
 *
 * Data line ends (CRLF, CR, LF) arrive as `\n`; lone surrogates become U+FFFD once the
 * string is written as UTF-8. Use {@link encodeJsonEvent} when text must arrive exactly.
 *
 * @example
 * encodeEvent({ event: 'delta', data: 'Hello\nworld' });
 * // 'event: delta\ndata: Hello\ndata: world\n\n'
 * encodeEvent({ data: '' });          // 'data: \n\n'  (an event with data '')
 * encodeEvent({ retry: 5000 });       // 'retry: 5000\n\n'  (no event dispatched)
 */
export function encodeEvent(fields: SseEvent): string {
  const { event, data, id, retry } = fields;
  let out = '';
  if (event !== undefined) out += `event: ${checkEventName(event)}\n`;
  if (id !== undefined) out += `id: ${checkId(id)}\n`;
  if (retry !== undefined) out += `retry: ${checkRetry(retry)}\n`;
  if (data !== undefined) {
    if (typeof data !== 'string') {
      throw new TokenmeterError(
        'invalid_argument',
        `SSE event data must be a string, got ${typeof data}. Use encodeJsonEvent() for objects.`,
      );
    }
    out += dataLines(data);
  } else if (event !== undefined) {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE event "${event}" has no data, so no client would receive it. Pass data: '' for an empty event.`,
    );
  } else if (out === '') {
    throw new TokenmeterError(
      'invalid_argument',
      'SSE event has no field to send: give at least one of data, id or retry.',
    );
  }
  return `${out}\n`;
}

/**
 * Encodes a comment block, which parsers skip: the keep-alive that stops proxies from
 * closing an idle stream. Each line of `text` becomes its own `:` line, so text can
 * never escape the comment.
 *
 * @param text Defaults to `'ping'`.
 * @example
 * encodeComment();               // ': ping\n\n'
 * encodeComment('a\nb');         // ': a\n: b\n\n'
 */
export function encodeComment(text = 'ping'): string {
  if (typeof text !== 'string') {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE comment must be a string, got ${typeof text}.`,
    );
  }
  if (text.indexOf('\n') === -1 && text.indexOf('\r') === -1) return `: ${text}\n\n`;
  return `: ${text.replace(LINE_END, '\n: ')}\n\n`;
}

/**
 * Encodes `value` as JSON in one `data:` line under event type `event`. The text
 * arrives exactly: JSON.stringify escapes CR, LF, every control character and lone
 * surrogates, so its output never holds a line end and needs no splitting.
 * Throws `TokenmeterError('invalid_argument')` for a bad event name or a value
 * JSON cannot represent (undefined, a function, BigInt, a cycle).
 *
 * @example
 * encodeJsonEvent('delta', { text: 'a\n\ndata: [DONE]' });
 * // 'event: delta\ndata: {"text":"a\\n\\ndata: [DONE]"}\n\n'
 */
export function encodeJsonEvent(event: string, value: unknown): string {
  return `event: ${checkEventName(event)}\ndata: ${toJson(value)}\n\n`;
}

/**
 * tokenmeter's default protocol ("The SSE protocol" in the `@tokenmeter/express` README):
 * named events `meta`, `delta`, `usage`,
 * `done`, `error`, each with one JSON `data:` line, and `: ping` keep-alives. Text
 * round-trips exactly, line ends and lone surrogates included.
 *
 * @example
 * jsonSseEncoder.delta({ text: 'Hi\n' }); // 'event: delta\ndata: {"text":"Hi\\n"}\n\n'
 * // browser:
 * // es.addEventListener('delta', (e) => append(JSON.parse(e.data).text));
 */
export const jsonSseEncoder: SseEncoder = Object.freeze({
  meta: (data: object) => `event: meta\ndata: ${toJson(data)}\n\n`,
  delta: (data: SseDeltaData) => `event: delta\ndata: ${deltaJson(data)}\n\n`,
  usage: (data: object) => `event: usage\ndata: ${toJson(data)}\n\n`,
  done: (data: object) => `event: done\ndata: ${toJson(data)}\n\n`,
  error: (data: object) => `event: error\ndata: ${toJson(data)}\n\n`,
  comment: encodeComment,
});

/**
 * Plain `data:` events for a delta. A client of this style ends on the data `[DONE]`
 * (some compare exactly, some with startsWith or includes), so no delta may produce an
 * event whose data contains `[DONE]`: each occurrence is cut between `[DONE` and `]`
 * into two events. Clients append deltas, so the text they show is unchanged.
 */
function plainDelta(data: SseDeltaData): string {
  const text = data.text;
  if (typeof text !== 'string') {
    throw new TokenmeterError(
      'invalid_argument',
      `SSE delta text must be a string, got ${typeof text}.`,
    );
  }
  let at = text.indexOf(PLAIN_DONE);
  if (at === -1) return `${dataLines(text)}\n`;
  let out = '';
  let start = 0;
  while (at !== -1) {
    // The cut sits after 'E', so it never falls inside a CRLF.
    const cut = at + PLAIN_DONE.length - 1;
    out += `${dataLines(text.slice(start, cut))}\n`;
    start = cut;
    at = text.indexOf(PLAIN_DONE, cut);
  }
  return `${out}${dataLines(text.slice(start))}\n`;
}

/**
 * The plain style many chat front ends expect: each delta is `data: <text>` (default
 * `message` type), the end of a complete answer is `data: [DONE]`.
 *
 * - Text line ends become several `data:` lines, which clients join with `\n`: text
 *   arrives with CRLF and CR normalised to LF. A CRLF split across two deltas arrives as
 *   two line ends. Lone surrogates become U+FFFD. Use {@link jsonSseEncoder} for exact text.
 * - A delta can never be mistaken for the terminator: see the `[DONE]` cut above.
 * - `meta` and `usage` send nothing (`''`); `done` ignores its payload.
 * - `error` sends a named `event: error` with a JSON body and no `[DONE]`: a message
 *   event would be indistinguishable from model text, and a missing `[DONE]` is how
 *   this style's clients already tell a cut-short answer from a complete one. Browser
 *   `EventSource` delivers it to `addEventListener('error')` as a MessageEvent with `data`.
 *
 * @example
 * plainSseEncoder.delta({ text: 'a\nb' }); // 'data: a\ndata: b\n\n'
 * plainSseEncoder.done({});               // 'data: [DONE]\n\n'
 * // browser:
 * // es.onmessage = (e) => (e.data === '[DONE]' ? es.close() : append(e.data));
 */
export const plainSseEncoder: SseEncoder = Object.freeze({
  meta: () => '',
  delta: plainDelta,
  usage: () => '',
  done: () => `data: ${PLAIN_DONE}\n\n`,
  error: (data: object) => `event: error\ndata: ${toJson(data)}\n\n`,
  comment: encodeComment,
});
