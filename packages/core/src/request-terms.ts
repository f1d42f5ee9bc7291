/**
 * What a provider request body says about its bill, read before the call: the fields that
 * raise it (prompt caching, fast mode, data residency, server tools and how often they may
 * run), the fields no bound can be put on, and content the provider would refuse. One walk
 * over the body. `boundRequest` turns what was read into a `RequestBound` for
 * `worstCaseCost`.
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
const CLIENT_TOOLS =
  /^(bash|text_editor|str_replace_editor|str_replace_based_edit_tool|computer|memory)(_|$)/;
const DATED_TYPE = /_\d{8}$/;

/**
 * Reads a provider request body (see the module doc for the fields).
 *
 * @example
 * readRequestTerms({ model, max_tokens: 1024, speed: 'fast',
 *   tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }], messages }, 'anthropic');
 * // { speed: 'fast', serverTools: [{ name: 'web_search', type: 'web_search_20250305', maxUses: 3 }] }
 */
export function readRequestTerms(body: unknown, provider: 'anthropic' | 'openai'): RequestTerms {
  const terms: RequestTerms = { serverTools: [] };
  const problem = walk(body, terms);
  if (problem) return { serverTools: [], problem };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return terms;
  const b = body as Record<string, unknown>;
  const shape = checkTypes(b);
  if (shape) return { serverTools: [], problem: shape };
  return provider === 'openai' ? readOpenAI(b, terms) : readAnthropic(b, terms);
}

/**
 * Fields whose type decides what is billed, checked before they are read: a `stream` of
 * `"true"` must not be read as a whole-body call and forwarded as a stream.
 */
function checkTypes(b: Record<string, unknown>): string | undefined {
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    return `"stream" must be true or false, got ${describe(b.stream)}.`;
  }
  if (b.tools !== undefined && b.tools !== null) {
    if (!Array.isArray(b.tools)) return `"tools" must be an array, got ${describe(b.tools)}.`;
    if (b.tools.some((t) => typeof t !== 'object' || t === null || Array.isArray(t))) {
      return '"tools" must hold objects only.';
    }
  }
  if (
    b.service_tier !== undefined &&
    b.service_tier !== null &&
    typeof b.service_tier !== 'string'
  ) {
    return `"service_tier" must be a string, got ${describe(b.service_tier)}.`;
  }
  for (const field of ['max_tokens', 'max_completion_tokens'] as const) {
    const value = b[field];
    if (value !== undefined && value !== null && !Number.isSafeInteger(value)) {
      return `"${field}" must be a whole number, got ${describe(value)}.`;
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

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function readAnthropic(b: Record<string, unknown>, terms: RequestTerms): RequestTerms {
  if (b.speed !== undefined && b.speed !== null) {
    if (b.speed !== 'standard' && b.speed !== 'fast') {
      return unbounded(
        terms,
        `"speed": ${JSON.stringify(b.speed)} has no price tokenmeter knows; use "standard" or "fast".`,
      );
    }
    if (b.speed === 'fast') terms.speed = 'fast';
  }
  if (b.inference_geo !== undefined && b.inference_geo !== null) {
    if (typeof b.inference_geo !== 'string') {
      return { ...terms, problem: '"inference_geo" must be a string ("global", "us").' };
    }
    terms.inferenceGeo = b.inference_geo;
  }
  // 'auto' (the default) may run on Priority Tier capacity an organisation committed to;
  // that is a contract price, not a published one (see the README).
  if (typeof b.service_tier === 'string' && !ANTHROPIC_TIERS.has(b.service_tier)) {
    return {
      ...terms,
      problem: `"service_tier" must be "auto" or "standard_only", got ${describe(b.service_tier)}.`,
    };
  }
  if (b.thinking !== undefined && b.thinking !== null) {
    const thinking = b.thinking as { type?: unknown; budget_tokens?: unknown };
    if (
      typeof thinking !== 'object' ||
      Array.isArray(thinking) ||
      typeof thinking.type !== 'string'
    ) {
      return { ...terms, problem: '"thinking" must be an object with a "type".' };
    }
    if (thinking.type === 'enabled') {
      const budget = thinking.budget_tokens;
      if (!Number.isSafeInteger(budget) || (budget as number) < 1) {
        return {
          ...terms,
          problem: '"thinking.budget_tokens" must be a whole number ≥ 1 when thinking is enabled.',
        };
      }
      terms.thinkingBudget = budget as number;
    }
  }
  if (Array.isArray(b.mcp_servers) && b.mcp_servers.length > 0) {
    return unbounded(
      terms,
      '"mcp_servers": results of remote MCP tools are billed as input with no limit tokenmeter can reserve; call the tools from your server instead.',
    );
  }
  if (Array.isArray(b.tools)) {
    for (const tool of b.tools) {
      if (typeof tool !== 'object' || tool === null) continue;
      const t = tool as Record<string, unknown>;
      const type = t.type;
      if (typeof type !== 'string' || type === 'custom' || t.input_schema !== undefined) continue;
      if (!DATED_TYPE.test(type) || CLIENT_TOOLS.test(type)) continue;
      const server: ServerToolRequest = { name: type.replace(DATED_TYPE, ''), type };
      for (const [field, key] of [
        ['max_uses', 'maxUses'],
        ['max_content_tokens', 'maxContentTokens'],
      ] as const) {
        const value = t[field];
        if (value === undefined || value === null) continue;
        if (!Number.isSafeInteger(value) || (value as number) < 1) {
          return { ...terms, problem: `tools: "${field}" of ${type} must be a whole number ≥ 1.` };
        }
        server[key] = value as number;
      }
      terms.serverTools.push(server);
    }
  }
  return terms;
}

function readOpenAI(b: Record<string, unknown>, terms: RequestTerms): RequestTerms {
  // OpenAI caches prompts by itself: any prompt may be billed at a cache-write rate where a
  // model has one (where it has none, the rate is the input rate and nothing changes).
  terms.cacheWrite ??= '5m';
  if (b.n !== undefined && b.n !== null && b.n !== 1) {
    return unbounded(
      terms,
      '"n" above 1 multiplies the output and is not supported on a metered stream; send one request per answer.',
    );
  }
  const modalities = b.modalities;
  if ((Array.isArray(modalities) && modalities.includes('audio')) || b.audio != null) {
    return unbounded(terms, 'audio output has no price in the catalog; request text only.');
  }
  if (b.prediction !== undefined && b.prediction !== null) {
    return unbounded(
      terms,
      '"prediction": rejected prediction tokens are billed beyond max_completion_tokens; send the request without it.',
    );
  }
  if (b.web_search_options !== undefined && b.web_search_options !== null) {
    terms.serverTools.push({ name: 'web_search', type: 'web_search_options' });
  }
  if (typeof b.service_tier === 'string') terms.serviceTier = b.service_tier;
  return terms;
}

const ANTHROPIC_TIERS = new Set(['auto', 'standard_only']);

function unbounded(terms: RequestTerms, message: string): RequestTerms {
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

/** Anthropic server tools that take `max_uses` (and, for web fetch, `max_content_tokens`). */
const LIMITED_TOOLS = /^(web_search|web_fetch)_\d{8}$/;

/**
 * The request body to send, carrying what its reservation priced — forward what you
 * reserved, reserve what you forward: `max_tokens` (or `max_completion_tokens`) as
 * reserved, an Anthropic thinking budget lowered to fit under it (keeping the answer's
 * share, at least 1,024), and `max_uses` / `max_content_tokens` written into Anthropic web
 * search and web fetch tools that set none, at what was reserved for them. Returns `body`
 * itself when nothing changes; never changes it in place.
 *
 * @example
 * forwardedBody({ model, max_tokens: 64_000, messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
 *   'anthropic', { maxTokens: 20_000 });
 * // { …, max_tokens: 20_000, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] }
 */
export function forwardedBody(
  body: Record<string, unknown>,
  provider: 'anthropic' | 'openai',
  terms: ForwardTerms,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...body };
  let changed = false;
  const set = (key: string, value: unknown) => {
    if (out[key] !== value) {
      out[key] = value;
      changed = true;
    }
  };
  if (provider === 'openai') {
    // The field the caller sent (both when both were sent; they were checked equal).
    const completion =
      body.max_completion_tokens !== undefined && body.max_completion_tokens !== null;
    if (completion) set('max_completion_tokens', terms.maxTokens);
    if (!completion || (body.max_tokens !== undefined && body.max_tokens !== null))
      set('max_tokens', terms.maxTokens);
    return changed ? out : body;
  }
  const asked = body.max_tokens;
  set('max_tokens', terms.maxTokens);
  const thinking = body.thinking as { type?: unknown; budget_tokens?: unknown } | undefined;
  if (
    thinking?.type === 'enabled' &&
    typeof thinking.budget_tokens === 'number' &&
    thinking.budget_tokens >= terms.maxTokens
  ) {
    const answer = typeof asked === 'number' ? Math.max(0, asked - thinking.budget_tokens) : 0;
    const budget = Math.max(1_024, Math.min(terms.maxTokens - 1, terms.maxTokens - answer));
    set('thinking', { ...thinking, budget_tokens: budget });
  }
  const limits = terms.serverTools ?? DEFAULT_SERVER_TOOL_LIMITS;
  if (Array.isArray(body.tools)) {
    let toolsChanged = false;
    const tools = body.tools.map((tool: unknown) => {
      const t = tool as Record<string, unknown>;
      if (typeof t?.type !== 'string' || !LIMITED_TOOLS.test(t.type)) return tool;
      const limit = limits[t.type.replace(DATED_TYPE, '')];
      if (!limit) return tool;
      const bounded: Record<string, unknown> = { ...t };
      if (t.max_uses === undefined || t.max_uses === null) bounded.max_uses = limit.defaultMaxUses;
      if (
        t.type.startsWith('web_fetch_') &&
        (t.max_content_tokens === undefined || t.max_content_tokens === null)
      ) {
        bounded.max_content_tokens = limit.inputTokensPerUse;
      }
      if (Object.keys(bounded).length === Object.keys(t).length) return tool;
      toolsChanged = true;
      return bounded;
    });
    if (toolsChanged) set('tools', tools);
  }
  return changed ? out : body;
}
