// The fake's input token count: a deterministic function of the request's text, so that
// `count_tokens` and the usage of a message agree and tests can predict both.
//
// Definition: sum the UTF-8 byte length of every string value found (recursively) in every
// field a provider reads into the prompt — every top-level field but the settings (model,
// max_tokens, stream, temperature, …): Anthropic `system`, `messages`, `tools`; Chat
// `messages`, `tools`; Responses `instructions`, `input` items, `tools`, `text.format` — and
// divide by four, rounding up (or, with the `'bytes'` counting, take the bytes as they are);
// at least 1. Object keys, numbers and booleans do not count. Attachments are billed by a
// rule, as the providers do, not by the bytes of their payload: an image is IMAGE_TOKENS, a
// PDF document (Anthropic `document`, Responses `input_file`) PDF_PAGE_TOKENS per
// `/Type /Page` object written plainly in it (at least one page).

import type { InputCounting, Provider } from './types.js';

/** Top-level fields that set how the provider answers, not what it reads. */
const SETTINGS = new Set([
  'model',
  'max_tokens',
  'max_completion_tokens',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'top_k',
  'n',
  'seed',
  'stop',
  'stop_sequences',
  'service_tier',
  'metadata',
  'user',
  'store',
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'frequency_penalty',
  'presence_penalty',
  'parallel_tool_calls',
  'speed',
  'inference_geo',
  'thinking',
  'reasoning_effort',
  'container',
  'context_management',
  'modalities',
  'reasoning',
  'verbosity',
  'include',
  'truncation',
  'prompt_cache_key',
  'safety_identifier',
  'background',
  // Responses API settings.
  'max_output_tokens',
  'max_tool_calls',
  'previous_response_id',
  'conversation',
  'prompt_cache_retention',
  'prompt_cache_options',
  'moderation',
]);

/** Tokens billed for one image, whatever its payload. */
export const IMAGE_TOKENS = 1_600;
/** Tokens billed per page of a PDF document. */
export const PDF_PAGE_TOKENS = 1_500;

interface Count {
  bytes: number;
  /** Tokens of attachments, counted by their rule. */
  ruled: number;
}

function walk(value: unknown, depth: number, out: Count): void {
  if (typeof value === 'string') {
    out.bytes += Buffer.byteLength(value, 'utf8');
    return;
  }
  // A depth cap keeps a hostile, deeply nested body from overflowing the stack.
  if (value === null || typeof value !== 'object' || depth > 64) return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, depth + 1, out);
    return;
  }
  const block = value as Record<string, unknown>;
  const ruled = attachmentTokens(block);
  if (ruled !== undefined) {
    out.ruled += ruled;
    return;
  }
  for (const item of Object.values(block)) walk(item, depth + 1, out);
}

/** The tokens of an image or PDF block, by rule; undefined for anything else. */
function attachmentTokens(block: Record<string, unknown>): number | undefined {
  if (block.type === 'image' || block.type === 'image_url' || block.type === 'input_image') {
    return IMAGE_TOKENS;
  }
  // A Responses `input_file`: a PDF as a data URL, or a file id / URL the fake cannot read.
  if (block.type === 'input_file') {
    const data = typeof block.file_data === 'string' ? block.file_data : '';
    const base64 = data.startsWith('data:') ? data.slice(data.indexOf(',') + 1) : data;
    return pdfTokens(base64);
  }
  const source = block.source as
    | { type?: unknown; media_type?: unknown; data?: unknown }
    | undefined;
  if (
    block.type === 'document' &&
    source?.type === 'base64' &&
    source.media_type === 'application/pdf' &&
    typeof source.data === 'string'
  ) {
    return pdfTokens(source.data);
  }
  return undefined;
}

/** A base64 PDF's tokens: PDF_PAGE_TOKENS per page object written plainly in it, at least one. */
function pdfTokens(base64: string): number {
  const text = Buffer.from(base64, 'base64').toString('latin1');
  const pages = text.match(/\/Type\s*\/Page(?![A-Za-z])/g)?.length ?? 0;
  return Math.max(1, pages) * PDF_PAGE_TOKENS;
}

/**
 * Input tokens of a request body as the fake counts them (before any cache knobs).
 *
 * @example
 * countInputTokens({ messages: [{ role: 'user', content: 'Hello there' }] }, 'anthropic');
 * // 'user' (4 bytes) + 'Hello there' (11 bytes) = 15 bytes → 4 tokens
 * countInputTokens({ messages: [{ role: 'user', content: 'Hello there' }] }, 'anthropic', 'bytes');
 * // 15 tokens
 */
export function countInputTokens(
  body: unknown,
  _provider: Provider,
  counting: InputCounting = 'quarter',
): number {
  if (body === null || typeof body !== 'object') return 1;
  const out: Count = { bytes: 0, ruled: 0 };
  for (const [field, value] of Object.entries(body as Record<string, unknown>)) {
    if (SETTINGS.has(field)) continue;
    // Responses `text` is a setting (verbosity) around an output format the model reads.
    if (field === 'text' && value !== null && typeof value === 'object') {
      walk((value as Record<string, unknown>).format, 0, out);
      continue;
    }
    walk(value, 0, out);
  }
  const text = counting === 'bytes' ? out.bytes : Math.ceil(out.bytes / 4);
  return Math.max(1, text + out.ruled);
}
