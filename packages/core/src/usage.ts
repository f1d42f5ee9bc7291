/**
 * One normalised `Usage` shape for every provider, and the adapters into it.
 *
 * Provider rules that make naive sums wrong:
 * - Anthropic `input_tokens` excludes cache tokens; the prompt is input + cache write +
 *   cache read. `cache_creation` splits writes into 5-minute and 1-hour TTLs (priced
 *   differently). `message_delta.usage` is cumulative: overwrite, never add.
 * - OpenAI `prompt_tokens` includes `cached_tokens` (and `cache_write_tokens`), so the
 *   uncached input is what is left; reasoning tokens are part of `completion_tokens`.
 */
import { TokenmeterError } from './errors.js';

/** Token counts of one request, disjoint by price kind. All non-negative integers. */
export interface Usage {
  /** Input tokens billed at the plain input rate (no cache read, no cache write). */
  inputTokens: number;
  /** Output tokens, including reasoning / thinking tokens. */
  outputTokens: number;
  /** Input tokens read from the prompt cache. */
  cacheReadTokens: number;
  /** Input tokens written to the cache with the 5-minute TTL (the default TTL). */
  cacheWrite5mTokens: number;
  /** Input tokens written to the cache with the 1-hour TTL. */
  cacheWrite1hTokens: number;
  /** Reasoning / thinking tokens: informational, already inside `outputTokens`. */
  reasoningTokens: number;
  /** Server-side web searches (priced per request). */
  webSearchRequests: number;
  /** Server-side web fetches (no per-request fee in the 2026-11 catalog; counted). */
  webFetchRequests: number;
  /** Service tier the provider reports (`batch`, `flex`, `standard`, …), if any. */
  serviceTier?: string;
  /** Where inference ran (`us`, `global`), if reported. */
  inferenceGeo?: string;
  /** Inference speed mode (`fast` or `standard`), if reported. */
  speed?: string;
}

/** A usage with every count zero. */
export function emptyUsage(): Usage {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWrite5mTokens: 0,
    cacheWrite1hTokens: 0,
    reasoningTokens: 0,
    webSearchRequests: 0,
    webFetchRequests: 0,
  };
}

const COUNT_FIELDS = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWrite5mTokens',
  'cacheWrite1hTokens',
  'reasoningTokens',
  'webSearchRequests',
  'webFetchRequests',
] as const;

/** Fills missing counts with zero and checks every count is a non-negative integer. */
export function normaliseUsage(partial: Partial<Usage>): Usage {
  return checkCounts({ ...emptyUsage(), ...stripUndefined(partial) });
}

/** Checks every count of a complete `Usage` is a non-negative integer; returns it. */
function checkCounts(usage: Usage): Usage {
  for (const field of COUNT_FIELDS) {
    const value = usage[field];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new TokenmeterError(
        'invalid_usage',
        `Usage.${field} must be a non-negative integer, got ${String(value)}.`,
      );
    }
  }
  return usage;
}

/**
 * The counts of two usages added (two provider calls of one stream); the later one's tier,
 * region and speed are kept.
 */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    ...b,
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWrite5mTokens: a.cacheWrite5mTokens + b.cacheWrite5mTokens,
    cacheWrite1hTokens: a.cacheWrite1hTokens + b.cacheWrite1hTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    webSearchRequests: a.webSearchRequests + b.webSearchRequests,
    webFetchRequests: a.webFetchRequests + b.webFetchRequests,
  };
}

/** All prompt-side tokens: what decides a prompt-size pricing tier. */
export function promptTokens(usage: Usage): number {
  return (
    usage.inputTokens + usage.cacheReadTokens + usage.cacheWrite5mTokens + usage.cacheWrite1hTokens
  );
}

/** The usage object of Anthropic's Message, `message_start` and `message_delta` (all nullable). */
export interface AnthropicUsageLike {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation?: {
    ephemeral_5m_input_tokens?: number | null;
    ephemeral_1h_input_tokens?: number | null;
  } | null;
  server_tool_use?: {
    web_search_requests?: number | null;
    web_fetch_requests?: number | null;
  } | null;
  output_tokens_details?: {
    thinking_tokens?: number | null;
    reasoning_tokens?: number | null;
  } | null;
  service_tier?: string | null;
  inference_geo?: string | null;
  speed?: string | null;
}

/**
 * Anthropic usage → `Usage`. Pass the previous value to merge a cumulative
 * `message_delta` usage: each field present overwrites (never adds to) the previous one,
 * and fields the delta omits (the cache TTL split, tier, geo) are kept.
 */
export function fromAnthropicUsage(raw: AnthropicUsageLike, previous?: Usage): Usage {
  const usage: Usage = previous ? { ...previous } : emptyUsage();
  if (isCount(raw.input_tokens)) usage.inputTokens = raw.input_tokens;
  if (isCount(raw.output_tokens)) usage.outputTokens = raw.output_tokens;
  if (isCount(raw.cache_read_input_tokens)) usage.cacheReadTokens = raw.cache_read_input_tokens;
  const split = raw.cache_creation;
  const total = raw.cache_creation_input_tokens;
  if (
    split &&
    (isCount(split.ephemeral_5m_input_tokens) || isCount(split.ephemeral_1h_input_tokens))
  ) {
    const oneHour = isCount(split.ephemeral_1h_input_tokens) ? split.ephemeral_1h_input_tokens : 0;
    const fiveMin = isCount(split.ephemeral_5m_input_tokens) ? split.ephemeral_5m_input_tokens : 0;
    usage.cacheWrite1hTokens = oneHour;
    // The total is authoritative; whatever the split does not explain is the default TTL.
    usage.cacheWrite5mTokens = isCount(total) ? Math.max(fiveMin, total - oneHour) : fiveMin;
  } else if (isCount(total)) {
    // Only a total: keep an earlier split if it still adds up, else the default 5 min TTL.
    if (usage.cacheWrite5mTokens + usage.cacheWrite1hTokens !== total) {
      usage.cacheWrite1hTokens = Math.min(usage.cacheWrite1hTokens, total);
      usage.cacheWrite5mTokens = total - usage.cacheWrite1hTokens;
    }
  }
  const tools = raw.server_tool_use;
  if (tools) {
    if (isCount(tools.web_search_requests)) usage.webSearchRequests = tools.web_search_requests;
    if (isCount(tools.web_fetch_requests)) usage.webFetchRequests = tools.web_fetch_requests;
  }
  const details = raw.output_tokens_details;
  const thinking = details?.thinking_tokens ?? details?.reasoning_tokens;
  if (isCount(thinking)) usage.reasoningTokens = thinking;
  if (raw.service_tier) usage.serviceTier = raw.service_tier;
  if (raw.inference_geo) usage.inferenceGeo = raw.inference_geo;
  if (raw.speed) usage.speed = raw.speed;
  return checkCounts(usage);
}

/** The usage object of OpenAI Chat Completions (and the final streamed usage chunk). */
export interface OpenAIUsageLike {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  prompt_tokens_details?: {
    cached_tokens?: number | null;
    cache_write_tokens?: number | null;
    audio_tokens?: number | null;
  } | null;
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

/**
 * OpenAI usage → `Usage`. `cached_tokens` and `cache_write_tokens` are subsets of
 * `prompt_tokens`, so the plain input is the remainder. `serviceTier` comes from the
 * chunk or response (`service_tier`), passed separately.
 */
export function fromOpenAIUsage(raw: OpenAIUsageLike, serviceTier?: string | null): Usage {
  const prompt = isCount(raw.prompt_tokens) ? raw.prompt_tokens : 0;
  const cached = count(raw.prompt_tokens_details?.cached_tokens);
  const written = count(raw.prompt_tokens_details?.cache_write_tokens);
  if (cached + written > prompt) {
    throw new TokenmeterError(
      'invalid_usage',
      `OpenAI usage has cached (${cached}) + cache-write (${written}) tokens above prompt_tokens (${prompt}); ` +
        'these are subsets of prompt_tokens. Pass the provider usage object unchanged.',
    );
  }
  const usage: Usage = {
    ...emptyUsage(),
    inputTokens: prompt - cached - written,
    cacheReadTokens: cached,
    cacheWrite5mTokens: written,
    outputTokens: count(raw.completion_tokens),
    reasoningTokens: count(raw.completion_tokens_details?.reasoning_tokens),
  };
  if (serviceTier) usage.serviceTier = serviceTier;
  return checkCounts(usage);
}

function isCount(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function count(value: number | null | undefined): number {
  return isCount(value) ? value : 0;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) (out as Record<string, unknown>)[key] = field;
  }
  return out;
}
