/**
 * A request body's terms and the body forwarded, for any provider API: the checks every
 * API shares, then the rules of the provider's adapter (`requestRules`).
 */
import { type ForwardTerms, type RequestTerms, readCommonTerms } from '../request-terms.js';
import { requestRules } from './registry.js';

/**
 * Reads a provider request body: its shape and the types that decide the bill, then the
 * provider's own fields that raise it (Anthropic: caching, fast mode, data residency,
 * thinking, server tools; OpenAI Chat Completions: `n`, audio, predictions, web search).
 *
 * @example
 * readRequestTerms({ model, max_tokens: 1024, speed: 'fast',
 *   tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }], messages }, 'anthropic');
 * // { speed: 'fast', serverTools: [{ name: 'web_search', type: 'web_search_20250305', maxUses: 3 }] }
 */
export function readRequestTerms(body: unknown, provider: string): RequestTerms {
  const { terms, object } = readCommonTerms(body);
  return object ? requestRules(provider).terms(object, terms) : terms;
}

/**
 * The request body to send, carrying what its reservation priced — forward what you
 * reserved, reserve what you forward (`max_tokens` as reserved, and for Anthropic a
 * thinking budget that fits under it and limits written into server tools that set none).
 * Returns `body` itself when nothing changes; never changes it in place.
 *
 * @example
 * forwardedBody({ model, max_tokens: 64_000, messages, tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
 *   'anthropic', { maxTokens: 20_000 });
 * // { …, max_tokens: 20_000, tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] }
 */
export function forwardedBody(
  body: Record<string, unknown>,
  provider: string,
  terms: ForwardTerms,
): Record<string, unknown> {
  return requestRules(provider).forward(body, terms);
}
