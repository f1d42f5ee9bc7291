/**
 * The Anthropic Messages API as a gateway serves it (`POST /v1/messages`, streaming or
 * not, and `POST /v1/messages/count_tokens`) behind budgets and rate limits, for the
 * official SDK, coding agents (`ANTHROPIC_BASE_URL`) and anything else that speaks it.
 */
import type { RequestParams } from '../types.js';
import { CODE_STATUS, type GatewayProvider, type MeteredRoute } from './provider.js';
import { callProvider, providerCount, providerEncoder } from './relay.js';

/** Anthropic's error type for each status (as its API answers). */
const TYPE_OF_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** The error type of one of our codes inside a stream (the status has gone out already). */
const TYPE_OF_CODE: Record<string, string> = {
  budget_exceeded: 'billing_error',
  store_unavailable: 'api_error',
  upstream_idle: 'timeout_error',
  timeout: 'timeout_error',
  upstream_error: 'api_error',
  handler_error: 'api_error',
  internal_error: 'api_error',
};

/** What count_tokens reads of a Messages request: everything that makes up the prompt. */
const COUNTED_FIELDS = [
  'model',
  'system',
  'messages',
  'tools',
  'tool_choice',
  'thinking',
  'output_format',
  'output_config',
  'context_management',
] as const;

function errorJson(type: string, message: string): string {
  return JSON.stringify({ type: 'error', error: { type, message } });
}

/** In-stream: nothing of tokenmeter's own protocol; an `error` event in Anthropic's shape. */
const ANTHROPIC_ENCODER = providerEncoder(
  (code, message) =>
    `event: error\ndata: ${errorJson(TYPE_OF_CODE[code] ?? 'api_error', message)}\n\n`,
);

/** The provider's call of `path` below `/v1/messages` (`''` or `'/count_tokens'`). */
function messagesCall(path: '' | '/count_tokens'): MeteredRoute['call'] {
  return (body, headers, { apiKey, baseURL, fetch }, signal) =>
    callProvider({
      fetch,
      url: `${baseURL}/v1/messages${path}`,
      headers: { 'anthropic-version': '2023-06-01', ...headers, 'x-api-key': apiKey },
      body,
      stream: body.stream === true,
      signal,
      passHeaders: ['request-id'],
    });
}

const MESSAGES: MeteredRoute = {
  path: '/v1/messages',
  isStream: (body) => body.stream === true,
  params(body): RequestParams {
    return {
      model: body.model as string,
      maxTokens: body.max_tokens as number,
      provider: 'anthropic',
      input: body,
    };
  },
  call: messagesCall(''),
  countTokens: (body, headers, { apiKey, baseURL, fetch }, signal) =>
    providerCount({
      fetch,
      url: `${baseURL}/v1/messages/count_tokens`,
      headers: { 'anthropic-version': '2023-06-01', ...headers, 'x-api-key': apiKey },
      body,
      fields: COUNTED_FIELDS,
      signal,
    }),
  encoder: ANTHROPIC_ENCODER,
};

export const ANTHROPIC_GATEWAY: GatewayProvider = {
  name: 'anthropic',
  defaultBaseURL: 'https://api.anthropic.com',
  metered: [MESSAGES],
  free: [{ path: '/v1/messages/count_tokens', call: messagesCall('/count_tokens') }],
  allowHeaders: ['anthropic-version', 'anthropic-beta'],
  errorBody(status, code, message) {
    const finalStatus = status || CODE_STATUS[code] || 500;
    return {
      status: finalStatus,
      body: errorJson(TYPE_OF_STATUS[finalStatus] ?? 'api_error', message),
    };
  },
};
