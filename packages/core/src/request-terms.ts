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
  serverTools: ServerToolRequest[];
  /**
   * Content the provider cannot take: nesting deeper than any real request, lone UTF-16
   * surrogates, NUL, more than 100,000 values (answer 400 `invalid_request`).
   */
  problem?: string;
  /** A field that can raise the bill past any bound tokenmeter can put on it (answer 400). */
  unbounded?: string;
}

const MAX_DEPTH = 32;
const MAX_NODES = 100_000;
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
  return provider === 'openai' ? readOpenAI(b, terms) : readAnthropic(b, terms);
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
  return terms;
}

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
    uses[tool.name] = (uses[tool.name] ?? 0) + n;
    promptTokens += n * (tool.maxContentTokens ?? limit.inputTokensPerUse);
  }
  const bound: RequestBound = { promptTokens, outputTokens: options.maxTokens };
  if (terms.cacheWrite) bound.cacheWrite = terms.cacheWrite;
  if (terms.speed) bound.speed = terms.speed;
  if (terms.inferenceGeo) bound.inferenceGeo = terms.inferenceGeo;
  if (Object.keys(uses).length > 0) bound.serverToolUses = uses;
  return { bound };
}
