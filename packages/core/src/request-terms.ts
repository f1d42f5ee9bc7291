/**
 * What a provider request body says about its bill, read before the call: the fields that
 * raise it (prompt caching, fast mode, data residency, server tools and how often they may
 * run), the fields no bound can be put on, and content the provider would refuse. One walk
 * over the body checks what every API shares (`readCommonTerms`); each provider adapter
 * reads its own fields and writes its bounds into the body it forwards (`providers/`).
 * `boundRequest` turns what was read into a `RequestBound` for `worstCaseCost`.
 *
 * Read, Anthropic Messages: `cache_control` anywhere (and top level), `speed`,
 * `inference_geo`, `tools[]` (server tools by type, with `max_uses` and, for web fetch,
 * `max_content_tokens`), `mcp_servers`. OpenAI Chat Completions: `n`, `modalities` /
 * `audio`, `prediction`, `web_search_options`; every OpenAI prompt may be written to the
 * prompt cache (it caches automatically). Not read: `service_tier` (a discount is never
 * assumed; priority tiers have no published price and settle at standard rates, with a
 * warning).
 */
import type { RequestBound } from './pricing/worst-case.js';

/** What a reservation assumes for one server tool. */
export interface ServerToolLimit {
  /** Uses assumed when the request sets no `max_uses`. */
  defaultMaxUses: number;
  /**
   * Billed input tokens one use may add (its results are read back into the context).
   * For web fetch, the request's `max_content_tokens` replaces it when set.
   */
  inputTokensPerUse: number;
}

/**
 * The defaults: web search (fee from the catalog, $0.01 a search on Anthropic) and web
 * fetch (no fee). Results come back as input tokens: typically thousands to tens of
 * thousands per search, a whole page or document per fetch.
 */
export const DEFAULT_SERVER_TOOL_LIMITS: Readonly<Record<string, ServerToolLimit>> = Object.freeze({
  web_search: Object.freeze({ defaultMaxUses: 5, inputTokensPerUse: 25_000 }),
  web_fetch: Object.freeze({ defaultMaxUses: 5, inputTokensPerUse: 100_000 }),
});

/** A server tool a request enables. */
export interface ServerToolRequest {
  /** The tool's name without its date (`web_search` for `web_search_20250305`). */
  name: string;
  /** The type as sent. */
  type: string;
  maxUses?: number;
  /** Web fetch: the most content tokens one fetch returns. */
  maxContentTokens?: number;
}

export interface RequestTerms {
  /** The longest prompt-cache lifetime a `cache_control` asks for (or automatic caching). */
  cacheWrite?: '5m' | '1h';
  speed?: string;
  inferenceGeo?: string;
  /**
   * OpenAI `service_tier` as asked (`'priority'`, `'flex'`, …): a tier the catalog has no
   * price for cannot be reserved; a cheaper one is never assumed.
   */
  serviceTier?: string;
  /** Anthropic extended thinking with a budget (`thinking.budget_tokens`). */
  thinkingBudget?: number;
  serverTools: ServerToolRequest[];
  /**
   * Content the provider cannot take: nesting deeper than any real request, lone UTF-16
   * surrogates, NUL, more than 100,000 values (answer 400 `invalid_request`).
   */
  problem?: string;
  /** A field that can raise the bill past any bound tokenmeter can put on it (answer 400). */
  unbounded?: string;
}

/**
 * The most a request body may hold: nesting levels and values. Real requests stay far
 * below both; a body past them is refused (and a reader can refuse it before parsing).
 */
export const REQUEST_SHAPE_LIMITS = { depth: 32, values: 100_000 } as const;
const MAX_DEPTH = REQUEST_SHAPE_LIMITS.depth;
const MAX_NODES = REQUEST_SHAPE_LIMITS.values;
/** Anthropic-defined tool types that the client runs (no fee; their tokens are input). */
export const CLIENT_TOOLS =
  /^(bash|text_editor|str_replace_editor|str_replace_based_edit_tool|computer|memory)(_|$)/;
/** A provider-defined tool type's date suffix (`web_search_20250305`). */
export const DATED_TYPE = /_\d{8}$/;

/**
 * The checks every API's body passes before its own fields are read: its shape (depth,
 * values, valid text), `cache_control` anywhere, and the types of the fields that decide
 * what is billed. Returns the terms so far, and the body as an object (undefined when it
 * is not one, or has a problem).
 */
export function readCommonTerms(body: unknown): {
  terms: RequestTerms;
  object: Record<string, unknown> | undefined;
} {
  const terms: RequestTerms = { serverTools: [] };
  const problem = walk(body, terms);
  if (problem) return { terms: { serverTools: [], problem }, object: undefined };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { terms, object: undefined };
  }
  const b = body as Record<string, unknown>;
  const shape = checkTypes(b);
  if (shape) return { terms: { serverTools: [], problem: shape }, object: undefined };
  return { terms, object: b };
}

/**
 * Fields whose type decides what is billed, checked before they are read: a `stream` of
 * `"true"` must not be read as a whole-body call and forwarded as a stream.
 */
function checkTypes(b: Record<string, unknown>): string | undefined {
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    return `"stream" must be true or false, got ${describeValue(b.stream)}.`;
  }
  if (b.tools !== undefined && b.tools !== null) {
    if (!Array.isArray(b.tools)) return `"tools" must be an array, got ${describeValue(b.tools)}.`;
    if (b.tools.some((t) => typeof t !== 'object' || t === null || Array.isArray(t))) {
      return '"tools" must hold objects only.';
    }
  }
  if (
    b.service_tier !== undefined &&
    b.service_tier !== null &&
    typeof b.service_tier !== 'string'
  ) {
    return `"service_tier" must be a string, got ${describeValue(b.service_tier)}.`;
  }
  for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
    const value = b[field];
    if (value !== undefined && value !== null && !Number.isSafeInteger(value)) {
      return `"${field}" must be a whole number, got ${describeValue(value)}.`;
    }
  }
  if (
    b.max_tokens !== undefined &&
    b.max_tokens !== null &&
    b.max_completion_tokens !== undefined &&
    b.max_completion_tokens !== null &&
    b.max_tokens !== b.max_completion_tokens
  ) {
    return 'Send one of "max_tokens" and "max_completion_tokens" (they differ here, and the provider may honour either).';
  }
  return undefined;
}

/** A value as a short quote, for an error message. */
export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** The terms of a request refused as unbounded (answer 400 `unbounded_request`). */
export function unbounded(terms: RequestTerms, message: string): RequestTerms {
  return { ...terms, unbounded: message };
}

/**
 * The body's problems and its `cache_control` blocks, in one bounded walk. A cached prompt
 * is billed at the cache-write rate, so the worst case prices every prompt token at it.
 */
function walk(input: unknown, terms: RequestTerms): string | undefined {
  let nodes = 0;
  const stack: Array<[unknown, number]> = [[input, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++nodes > MAX_NODES) return `The request has more than ${MAX_NODES} values.`;
    if (typeof value === 'string') {
      if (!value.isWellFormed())
        return 'The request text contains a lone UTF-16 surrogate; send valid Unicode.';
      if (value.includes('\u0000')) return 'The request text contains a NUL character.';
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= MAX_DEPTH) return `The request is nested more than ${MAX_DEPTH} levels deep.`;
    if (Array.isArray(value)) {
      for (const child of value) stack.push([child, depth + 1]);
      continue;
    }
    const cache = (value as { cache_control?: unknown }).cache_control;
    if (typeof cache === 'object' && cache !== null && terms.cacheWrite !== '1h') {
      terms.cacheWrite = (cache as { ttl?: unknown }).ttl === '1h' ? '1h' : '5m';
    }
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** What `boundRequest` needs besides the terms. */
export interface BoundRequestOptions {
  /** Upper bound on the prompt's tokens as sent (the counter's `upperBound`). */
  promptTokens: number;
  /** The request's `max_tokens`. */
  maxTokens: number;
  /** Limits per server tool name; defaults to {@link DEFAULT_SERVER_TOOL_LIMITS}. */
  serverTools?: Readonly<Record<string, ServerToolLimit>>;
}

/**
 * Turns what was read into a `RequestBound`: each server tool used `max_uses` times (or its
 * limit's `defaultMaxUses`), each use adding its input tokens to the prompt. A server tool
 * with no limit cannot be bounded: the result says so instead.
 */
export function boundRequest(
  terms: RequestTerms,
  options: BoundRequestOptions,
): { bound: RequestBound; unbounded?: undefined } | { unbounded: string; bound?: undefined } {
  const limits = options.serverTools ?? DEFAULT_SERVER_TOOL_LIMITS;
  let promptTokens = options.promptTokens;
  const uses: Record<string, number> = {};
  const perUse: Record<string, number> = {};
  for (const tool of terms.serverTools) {
    const limit = limits[tool.name];
    if (!limit) {
      return {
        unbounded:
          `The ${tool.type} tool's cost cannot be bounded before the call. Remove it, or tell ` +
          `tokenmeter what to reserve: serverTools: { ${tool.name}: { defaultMaxUses, inputTokensPerUse } }.`,
      };
    }
    const n = tool.maxUses ?? limit.defaultMaxUses;
    const tokens = tool.maxContentTokens ?? limit.inputTokensPerUse;
    uses[tool.name] = (uses[tool.name] ?? 0) + n;
    perUse[tool.name] = Math.max(perUse[tool.name] ?? 0, tokens);
    promptTokens += n * tokens;
  }
  if (!Number.isSafeInteger(promptTokens)) {
    return {
      unbounded:
        "The server tools' results could add more input than tokenmeter can count: lower their max_uses (max_tool_calls on the Responses API).",
    };
  }
  const bound: RequestBound = { promptTokens, outputTokens: options.maxTokens };
  if (terms.cacheWrite) bound.cacheWrite = terms.cacheWrite;
  if (terms.speed) bound.speed = terms.speed;
  if (terms.inferenceGeo) bound.inferenceGeo = terms.inferenceGeo;
  if (Object.keys(uses).length > 0) {
    bound.serverToolUses = uses;
    bound.serverToolInputTokens = perUse;
  }
  return { bound };
}

/** What a forwarded request must carry: the bounds its reservation priced. */
export interface ForwardTerms {
  /** The `max_tokens` reserved for (lowered where the budget or a cap allows less). */
  maxTokens: number;
  /** What was reserved per server tool; written into tools that set no limit. */
  serverTools?: Readonly<Record<string, ServerToolLimit>>;
}

/**
 * `body` with `patch` written over it, or `body` itself when the patch changes nothing:
 * a forwarded body is never changed in place.
 */
export function patched(
  body: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  for (const key in patch) if (body[key] !== patch[key]) return { ...body, ...patch };
  return body;
}
