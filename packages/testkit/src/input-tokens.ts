// The fake's input token count: a deterministic function of the request's text, so that
// `count_tokens` and the usage of a message agree and tests can predict both.
//
// Definition: sum the UTF-8 byte length of every string value found (recursively) under the
// prompt fields — Anthropic `system`, `messages`, `tools`; OpenAI `messages`, `tools` — and
// divide by four, rounding up; at least 1. Object keys, numbers and booleans do not count.

import type { Provider } from './types.js';

const PROMPT_FIELDS: Readonly<Record<Provider, readonly string[]>> = {
  anthropic: ['system', 'messages', 'tools'],
  openai: ['messages', 'tools'],
};

function stringBytes(value: unknown, depth: number): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  // A depth cap keeps a hostile, deeply nested body from overflowing the stack.
  if (value === null || typeof value !== 'object' || depth > 64) return 0;
  let total = 0;
  if (Array.isArray(value)) {
    for (const item of value) total += stringBytes(item, depth + 1);
  } else {
    for (const item of Object.values(value)) total += stringBytes(item, depth + 1);
  }
  return total;
}

/**
 * Input tokens of a request body as the fake counts them (before any cache knobs).
 *
 * @example
 * countInputTokens({ messages: [{ role: 'user', content: 'Hello there' }] }, 'anthropic');
 * // 'user' (4 bytes) + 'Hello there' (11 bytes) = 15 bytes → 4 tokens
 */
export function countInputTokens(body: unknown, provider: Provider): number {
  if (body === null || typeof body !== 'object') return 1;
  const record = body as Record<string, unknown>;
  let bytes = 0;
  for (const field of PROMPT_FIELDS[provider]) bytes += stringBytes(record[field], 0);
  return Math.max(1, Math.ceil(bytes / 4));
}
