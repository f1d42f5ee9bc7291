/**
 * Pluggable input-token counters: how the budget reservation learns the size of a prompt
 * before it is sent. {@link heuristicTokenCounter} (the default) is free and gives an
 * estimate with an upper bound; {@link anthropicTokenCounter} asks Anthropic's
 * count-tokens endpoint for the exact figure (cached, so a repeated prompt costs one round
 * trip); any tokenizer library can be wrapped in the same interface.
 */
import { TokenmeterError } from './errors.js';
import { isThenable } from './maybe-async.js';
import {
  type EstimateRequestOptions,
  measureRequestTokens,
  type TokenProvider,
} from './token-estimate.js';

/** What a {@link TokenCounter} is told about the request it counts. */
export interface TokenCountContext {
  model: string;
  provider: TokenProvider;
  /** Aborts an exact count that needs a network call (e.g. the client left). */
  signal?: AbortSignal;
}

/** A prompt's size as {@link TokenCounter.measureInputTokens} reports it. */
export interface InputTokenCount {
  /** The best figure: the exact count, or the estimate. */
  tokens: number;
  /** What a reservation should price: an upper bound on what the provider bills. */
  upperBound: number;
  /** True when `tokens` is the provider's own count (then `upperBound` equals it). */
  exact: boolean;
  /**
   * A counter that cannot bound part of the request (a document by URL, a PDF whose pages
   * it cannot count) says what: the middleware then counts it exactly where it can, or
   * refuses it (400 `unbounded_request`). Never set on an exact count.
   */
  unbounded?: string;
  /**
   * True when part of the bound is an allowance (images, PDF pages) rather than a proof:
   * where an exact count is free (a gateway to Anthropic), the middleware asks for it.
   */
  approximate?: boolean;
}

/**
 * Counts the input tokens of a request before it is sent. The budget reservation uses it;
 * implementations range from the free heuristic ({@link heuristicTokenCounter}) to the
 * provider's own count ({@link anthropicTokenCounter}) or a local tokenizer library.
 * A counter with only `countInputTokens` is taken to be exact: the reservation prices its
 * figure as the provider will bill it. One that estimates should implement
 * `measureInputTokens` with an upper bound.
 *
 * @example
 * ```ts
 * import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
 * // An OpenAI counter on a local tokenizer: exact for plain text chats, the heuristic's
 * // estimate and bound for anything else.
 * const openaiCounter: TokenCounter = {
 *   countInputTokens: (request, ctx) => openaiCounter.measureInputTokens!(request, ctx).tokens,
 *   measureInputTokens(request, ctx) {
 *     const messages = (request as { messages: { content: unknown }[] }).messages;
 *     if (!messages.every((m) => typeof m.content === 'string'))
 *       return heuristicTokenCounter.measureInputTokens!(request, ctx) as InputTokenCount;
 *     const tokens = messages.reduce((n, m) => n + 4 + countTokens(m.content as string), 3);
 *     return { tokens, upperBound: tokens, exact: true };
 *   },
 * };
 * ```
 */
export interface TokenCounter {
  countInputTokens(request: object, ctx: TokenCountContext): number | Promise<number>;
  /** The count with an upper bound, and whether it is exact. Optional (see above). */
  measureInputTokens?(
    request: object,
    ctx: TokenCountContext,
  ): InputTokenCount | Promise<InputTokenCount>;
}

/**
 * Measures a request with `counter`: its `measureInputTokens` when it has one, otherwise its
 * `countInputTokens` taken as exact. Checks the figures are whole numbers ≥ 0.
 */
export async function measureInputTokens(
  counter: TokenCounter,
  request: object,
  ctx: TokenCountContext,
): Promise<InputTokenCount> {
  return measureInputTokensNow(counter, request, ctx);
}

/**
 * {@link measureInputTokens} without a promise when the counter answers synchronously (the
 * heuristic does): the request path then takes no microtask for it. A counter that returns
 * a promise gets one back; a counter that throws synchronously throws here.
 */
export function measureInputTokensNow(
  counter: TokenCounter,
  request: object,
  ctx: TokenCountContext,
): InputTokenCount | Promise<InputTokenCount> {
  if (counter.measureInputTokens) {
    const measured = counter.measureInputTokens(request, ctx);
    return isThenable(measured) ? Promise.resolve(measured).then(checked) : checked(measured);
  }
  const counted = counter.countInputTokens(request, ctx);
  return isThenable(counted)
    ? Promise.resolve(counted).then((tokens) => checked(exactCount(tokens)))
    : checked(exactCount(counted));
}

function checked(count: InputTokenCount): InputTokenCount {
  const { tokens, upperBound } = count ?? {};
  if (
    !Number.isSafeInteger(tokens) ||
    !Number.isSafeInteger(upperBound) ||
    tokens < 0 ||
    upperBound < tokens
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      `A token counter returned ${JSON.stringify(count)}: tokens and upperBound must be whole numbers with 0 ≤ tokens ≤ upperBound.`,
    );
  }
  return count;
}

function exactCount(tokens: number): InputTokenCount {
  return { tokens, upperBound: tokens, exact: true };
}

/**
 * A {@link TokenCounter} backed by {@link measureRequestTokens}, with fixed options (a
 * `margin`, image and PDF defaults). The context's `provider` overrides `options.provider`
 * and chooses the margins of the upper bound.
 *
 * @example
 * ```ts
 * const counter = createHeuristicTokenCounter({ margin: 1.15 });
 * counter.countInputTokens(params, { model: 'gpt-4o', provider: 'openai' });
 * ```
 */
export function createHeuristicTokenCounter(options: EstimateRequestOptions = {}): TokenCounter {
  // Validate once, up front, rather than on the first request.
  measureRequestTokens({}, options);
  const measure = (request: object, ctx: TokenCountContext): InputTokenCount => ({
    ...measureRequestTokens(request, { ...options, provider: ctx.provider }),
    exact: false,
  });
  return {
    countInputTokens: (request, ctx) => measure(request, ctx).tokens,
    measureInputTokens: measure,
  };
}

/**
 * The default {@link TokenCounter}: {@link measureRequestTokens} with no extra margin. Free
 * and synchronous (microseconds for typical prompts). Its estimate is within ±15% of
 * `o200k_base` per document on the test corpus; its upper bound covers every reference
 * tokenizer on the corpora (see `TEXT_BOUND_MARGINS`).
 *
 * @example
 * ```ts
 * heuristicTokenCounter.countInputTokens(params, { model: 'claude-haiku-4-5', provider: 'anthropic' });
 * ```
 */
export const heuristicTokenCounter: TokenCounter = createHeuristicTokenCounter();

/** The parameters {@link anthropicTokenCounter} sends to `messages.countTokens`. */
export interface AnthropicCountTokensParams {
  model: string;
  messages: unknown;
  system?: unknown;
  tools?: unknown;
  tool_choice?: unknown;
  thinking?: unknown;
}

/**
 * The one method of the official Anthropic SDK client that {@link anthropicTokenCounter}
 * needs (`new Anthropic()` satisfies it), typed structurally so core does not depend on
 * the SDK.
 */
export interface AnthropicCountTokensClient {
  messages: {
    countTokens(
      params: AnthropicCountTokensParams,
      options?: { signal?: AbortSignal | undefined | null },
    ): PromiseLike<{ input_tokens: number }>;
  };
}

/** Options of {@link anthropicTokenCounter}. */
export interface AnthropicTokenCounterOptions {
  /**
   * Used when the call fails (network, rate limit, 5xx) and for requests to other
   * providers. Without it, a failure throws `upstream_error` and other providers use
   * {@link heuristicTokenCounter}.
   */
  fallback?: TokenCounter;
  /**
   * Counts remembered, by a SHA-256 of the counted parameters, so a repeated prompt (a
   * system prompt and history re-sent each turn, a retry) costs no round trip. Concurrent
   * requests for the same prompt share one call. `0` turns the cache off.
   * Defaults to 1,000 entries (least recently used dropped first).
   */
  cacheSize?: number;
}

/**
 * A {@link TokenCounter} that asks Anthropic: `client.messages.countTokens({ model,
 * messages, system, tools, tool_choice, thinking })`, returning `input_tokens` — Claude's
 * own tokenizer, images and PDFs included, reported as exact. A round trip per distinct
 * prompt (tens to hundreds of milliseconds before admission, added to time to first
 * token), with its own rate limit, though no token charge; repeated prompts are answered
 * from a cache (`cacheSize`). Anthropic calls the figure an estimate too: it can differ
 * from the billed input by a few tokens (system-added tokens are not billed).
 *
 * @throws TokenmeterError `upstream_error` (from the returned promise) when the call fails
 *   and no `fallback` is configured, or the response has no valid `input_tokens`.
 *
 * @example
 * ```ts
 * import Anthropic from '@anthropic-ai/sdk';
 * const counter = anthropicTokenCounter(new Anthropic(), { fallback: heuristicTokenCounter });
 * const input = await counter.countInputTokens(params, { model: params.model, provider: 'anthropic' });
 * ```
 */
export function anthropicTokenCounter(
  client: AnthropicCountTokensClient,
  options: AnthropicTokenCounterOptions = {},
): TokenCounter {
  const messages = isRecord(client) ? (client as { messages?: unknown }).messages : undefined;
  if (!isRecord(messages) || typeof messages.countTokens !== 'function') {
    throw new TokenmeterError(
      'invalid_argument',
      'anthropicTokenCounter needs an Anthropic client with messages.countTokens()',
    );
  }
  const cacheSize = options.cacheSize ?? 1_000;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `cacheSize must be a whole number ≥ 0, got ${String(options.cacheSize)}`,
    );
  }
  const { fallback } = options;
  const cache = new Map<string, Promise<number>>();

  const ask = async (params: AnthropicCountTokensParams, signal?: AbortSignal) => {
    const response = await client.messages.countTokens(
      params,
      signal === undefined ? undefined : { signal },
    );
    const tokens = (response as { input_tokens?: unknown } | undefined)?.input_tokens;
    if (typeof tokens !== 'number' || !Number.isSafeInteger(tokens) || tokens < 0) {
      throw new TokenmeterError(
        'upstream_error',
        `Anthropic count_tokens returned no valid input_tokens (got ${String(tokens)})`,
      );
    }
    return tokens;
  };

  // One call per distinct prompt: the promise is cached (and shared while in flight), and
  // dropped again if it fails, so a failure is never remembered.
  const cached = async (params: AnthropicCountTokensParams, signal?: AbortSignal) => {
    const key = cacheSize > 0 ? await cacheKey(params) : undefined;
    if (key === undefined) return ask(params, signal);
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      return hit;
    }
    // The shared call is not tied to one caller's signal: another caller may still want it.
    const call = ask(params);
    cache.set(key, call);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    call.catch(() => {
      if (cache.get(key) === call) cache.delete(key);
    });
    return signal ? raceAbort(call, signal) : call;
  };

  const measure = async (request: object, ctx: TokenCountContext): Promise<InputTokenCount> => {
    if (ctx.provider !== 'anthropic') {
      return measureInputTokens(fallback ?? heuristicTokenCounter, request, ctx);
    }
    const r = request as Record<string, unknown>;
    const params: AnthropicCountTokensParams = { model: ctx.model, messages: r.messages };
    if (r.system !== undefined) params.system = r.system;
    if (r.tools !== undefined) params.tools = r.tools;
    if (r.tool_choice !== undefined) params.tool_choice = r.tool_choice;
    if (r.thinking !== undefined) params.thinking = r.thinking;
    try {
      return exactCount(await cached(params, ctx.signal));
    } catch (cause) {
      // A caller's abort is not a counting failure: let it through as it is.
      if (ctx.signal?.aborted === true) throw cause;
      if (TokenmeterError.isInstance(cause) && cause.code === 'upstream_error') throw cause;
      if (fallback !== undefined) return measureInputTokens(fallback, request, ctx);
      throw new TokenmeterError(
        'upstream_error',
        'Anthropic count_tokens failed; configure a fallback counter to admit requests anyway',
        { cause },
      );
    }
  };
  return {
    countInputTokens: async (request, ctx) => (await measure(request, ctx)).tokens,
    measureInputTokens: measure,
  };
}

/** SHA-256 (Web Crypto, available in Node 20+) of the parameters' JSON; undefined without it. */
async function cacheKey(params: AnthropicCountTokensParams): Promise<string | undefined> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return undefined;
  const digest = await subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(params)));
  let hex = '';
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
