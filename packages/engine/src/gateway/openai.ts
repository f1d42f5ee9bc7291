/**
 * OpenAI's APIs as a gateway serves them, behind budgets and rate limits: Chat Completions
 * (`POST /v1/chat/completions`) and the Responses API (`POST /v1/responses`, and its free
 * `/v1/responses/input_tokens`), streaming or not. A streaming Chat Completions call always
 * asks the provider for its usage (`stream_options.include_usage`), so the cost is exact,
 * and passes the usage chunk on only when the caller asked for it.
 */
import type { SseEncoder } from '@tokenmeter/core';
import type { RequestParams } from '../types.js';
import { CODE_STATUS, type GatewayProvider, type MeteredRoute } from './provider.js';
import { callProvider, providerCount, providerEncoder, type RelayFilter } from './relay.js';

/** OpenAI's error type and code for each of our codes. */
const SHAPE: Record<string, { type: string; code: string | null }> = {
  unauthenticated: { type: 'invalid_request_error', code: 'invalid_api_key' },
  budget_exceeded: { type: 'insufficient_quota', code: 'budget_exceeded' },
  rate_limited: { type: 'requests', code: 'rate_limit_exceeded' },
  body_too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  input_too_large: { type: 'invalid_request_error', code: 'context_length_exceeded' },
  not_found: { type: 'invalid_request_error', code: 'unknown_url' },
  method_not_allowed: { type: 'invalid_request_error', code: 'method_not_allowed' },
  websocket_not_supported: { type: 'invalid_request_error', code: 'websocket_not_supported' },
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
 * In-stream, Responses: the API's `error` event, then the response ended as
 * `response.failed` (what the SDK's `finalResponse()` and agents read). A spent budget is
 * `insufficient_quota` there, which agents (Codex) take as final rather than retrying.
 */
const RESPONSES_ENCODER: SseEncoder = {
  ...providerEncoder(() => ''),
  forStream() {
    const id = `resp_tm_${crypto.randomUUID().replaceAll('-', '')}`;
    return {
      ...this,
      error: (data) => {
        const d = data as { code?: string; message?: string };
        const code = d.code ?? 'internal_error';
        const message = d.message ?? 'The stream ended early.';
        const error = { type: 'error', code: SHAPE[code]?.code ?? code, message, param: null };
        const failed = {
          type: 'response.failed',
          response: {
            id,
            object: 'response',
            created_at: Math.floor(Date.now() / 1000),
            status: 'failed',
            error: {
              code: code === 'budget_exceeded' ? 'insufficient_quota' : 'server_error',
              message,
            },
            incomplete_details: null,
            output: [],
            usage: null,
          },
        };
        return (
          `event: error\ndata: ${JSON.stringify(error)}\n\n` +
          `event: response.failed\ndata: ${JSON.stringify(failed)}\n\n`
        );
      },
    };
  },
};

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

const CHAT_COMPLETIONS: MeteredRoute = {
  path: '/v1/chat/completions',
  isStream: (body) => body.stream === true,
  params(body): RequestParams {
    return {
      model: body.model as string,
      maxTokens: (body.max_completion_tokens ?? body.max_tokens) as number,
      provider: 'openai',
      input: body,
    };
  },
  call(body, headers, { apiKey, baseURL, fetch }, signal) {
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
  encoder: OPENAI_ENCODER,
};

/** What the Responses API's input_tokens count reads of a request: all of its prompt. */
const COUNTED_FIELDS = [
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning',
  'text',
  'truncation',
  'previous_response_id',
  'conversation',
] as const;

/** The provider's call of `path` below the base URL, with the server's key. */
function openaiCall(path: string): MeteredRoute['call'] {
  return (body, headers, { apiKey, baseURL, fetch }, signal) =>
    callProvider({
      fetch,
      url: `${baseURL}${path}`,
      headers: { ...headers, authorization: `Bearer ${apiKey}` },
      body,
      stream: body.stream === true,
      signal,
      passHeaders: ['x-request-id'],
    });
}

/**
 * The Responses API: usage comes in every stream's last event, so the stream is relayed
 * as it came. A request may leave `max_output_tokens` out: it is sent with what was
 * reserved. Context stored with the provider (`previous_response_id`, `conversation`) is
 * counted exactly by the free input_tokens endpoint, or the request is refused.
 */
const RESPONSES: MeteredRoute = {
  path: '/v1/responses',
  isStream: (body) => body.stream === true,
  params(body): RequestParams {
    return {
      model: body.model as string,
      maxTokens: body.max_output_tokens as number | undefined,
      provider: 'openai',
      api: 'openai-responses',
      input: body,
    };
  },
  call: openaiCall('/responses'),
  countTokens: (body, headers, { apiKey, baseURL, fetch }, signal) =>
    providerCount({
      fetch,
      url: `${baseURL}/responses/input_tokens`,
      headers: { ...headers, authorization: `Bearer ${apiKey}` },
      body,
      fields: COUNTED_FIELDS,
      signal,
    }),
  encoder: RESPONSES_ENCODER,
};

export const OPENAI_GATEWAY: GatewayProvider = {
  name: 'openai',
  defaultBaseURL: 'https://api.openai.com/v1',
  metered: [CHAT_COMPLETIONS, RESPONSES],
  free: [{ path: '/v1/responses/input_tokens', call: openaiCall('/responses/input_tokens') }],
  allowHeaders: ['openai-beta'],
  errorBody(status, code, message) {
    return { status: status || CODE_STATUS[code] || 500, body: errorJson(code, message) };
  },
};
