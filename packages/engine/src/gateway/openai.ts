/**
 * OpenAI Chat Completions as a gateway serves it (`POST /v1/chat/completions`, streaming or
 * not) behind budgets and rate limits. A streaming call always asks the provider for its
 * usage (`stream_options.include_usage`), so the cost is exact, and passes the usage
 * chunk on only when the caller asked for it.
 */
import type { RequestParams } from '../types.js';
import { CODE_STATUS, type GatewayProvider } from './provider.js';
import { callProvider, providerEncoder, type RelayFilter } from './relay.js';

/** OpenAI's error type and code for each of our codes. */
const SHAPE: Record<string, { type: string; code: string | null }> = {
  unauthenticated: { type: 'invalid_request_error', code: 'invalid_api_key' },
  budget_exceeded: { type: 'insufficient_quota', code: 'budget_exceeded' },
  rate_limited: { type: 'requests', code: 'rate_limit_exceeded' },
  body_too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  input_too_large: { type: 'invalid_request_error', code: 'context_length_exceeded' },
  not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  method_not_allowed: { type: 'invalid_request_error', code: 'method_not_allowed' },
  store_unavailable: { type: 'server_error', code: 'store_unavailable' },
  upstream_error: { type: 'server_error', code: 'upstream_error' },
  upstream_idle: { type: 'server_error', code: 'timeout' },
  timeout: { type: 'server_error', code: 'timeout' },
  internal_error: { type: 'server_error', code: null },
  handler_error: { type: 'server_error', code: null },
};

function errorJson(code: string, message: string): string {
  const shape = SHAPE[code] ?? { type: 'invalid_request_error', code };
  return JSON.stringify({ error: { message, type: shape.type, param: null, code: shape.code } });
}

/** In-stream: an error chunk in OpenAI's shape (its SDK raises it). */
const OPENAI_ENCODER = providerEncoder((code, message) => `data: ${errorJson(code, message)}\n\n`);

/**
 * The caller did not ask for usage: the usage chunk (empty `choices`) is metered but not
 * relayed, and the `"usage": null` every other chunk then carries is left out, as the
 * provider would have sent them.
 */
const withoutUsage: RelayFilter = (block, json) => {
  if (typeof json !== 'object' || json === null || !('usage' in json)) {
    return { wire: block.wire, event: json };
  }
  const { usage, ...rest } = json as { usage: unknown; choices?: unknown[] };
  if (usage !== null && Array.isArray(rest.choices) && rest.choices.length === 0) {
    return { wire: '', event: json };
  }
  return { wire: `data: ${JSON.stringify(rest)}\n\n`, event: json };
};

export const OPENAI_GATEWAY: GatewayProvider = {
  name: 'openai',
  defaultBaseURL: 'https://api.openai.com/v1',
  routes: { messages: '/v1/chat/completions' },
  allowHeaders: ['openai-beta'],
  isStream: (body) => body.stream === true,
  params(body): RequestParams {
    return {
      model: body.model as string,
      maxTokens: (body.max_completion_tokens ?? body.max_tokens) as number,
      provider: 'openai',
      input: body,
    };
  },
  call(_route, body, headers, { apiKey, baseURL, fetch }, signal) {
    const stream = body.stream === true;
    const options = (body.stream_options ?? {}) as Record<string, unknown>;
    const askedForUsage = options.include_usage === true;
    return callProvider({
      fetch,
      url: `${baseURL}/chat/completions`,
      headers: { ...headers, authorization: `Bearer ${apiKey}` },
      body: stream ? { ...body, stream_options: { ...options, include_usage: true } } : body,
      stream,
      signal,
      passHeaders: ['x-request-id'],
      ...(stream && !askedForUsage ? { filter: withoutUsage } : {}),
    });
  },
  errorBody(status, code, message) {
    return { status: status || CODE_STATUS[code] || 500, body: errorJson(code, message) };
  },
  encoder: OPENAI_ENCODER,
};
