/**
 * `anthropicGateway()`: the Anthropic Messages API (`POST /v1/messages`, streaming or
 * not, and `POST /v1/messages/count_tokens`) behind budgets and rate limits, for the
 * official SDK, coding agents (`ANTHROPIC_BASE_URL`) and anything else that speaks it.
 */
import { uncountedFieldTokens } from '@tokenmeter/core';
import type { RequestParams } from '@tokenmeter/engine';
import {
  CODE_STATUS,
  callProvider,
  createGateway,
  type GatewayOptions,
  type ProviderAdapter,
  providerEncoder,
} from './common.js';

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

const ANTHROPIC: ProviderAdapter = {
  name: 'anthropic',
  defaultBaseURL: 'https://api.anthropic.com',
  allowHeaders: ['anthropic-version', 'anthropic-beta'],
  isStream: (body) => body.stream === true,
  params(body): RequestParams {
    return {
      model: body.model as string,
      maxTokens: body.max_tokens as number,
      provider: 'anthropic',
      input: body,
    };
  },
  call(route, body, headers, apiKey, baseURL, fetchImpl, signal) {
    return callProvider({
      fetch: fetchImpl,
      url: `${baseURL}/v1/messages${route === 'countTokens' ? '/count_tokens' : ''}`,
      headers: { 'anthropic-version': '2023-06-01', ...headers, 'x-api-key': apiKey },
      body,
      stream: body.stream === true,
      signal,
      passHeaders: ['request-id'],
    });
  },
  async countTokens(body, headers, apiKey, baseURL, fetchImpl, signal) {
    const counted: Record<string, unknown> = {};
    for (const field of COUNTED_FIELDS) {
      if (body[field] !== undefined && body[field] !== null) counted[field] = body[field];
    }
    const response = await fetchImpl(`${baseURL}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: {
        'anthropic-version': '2023-06-01',
        ...headers,
        'x-api-key': apiKey,
        'content-type': 'application/json',
      },
      body: JSON.stringify(counted),
      signal,
    });
    const text = await response.text();
    if (!response.ok)
      throw new Error(`count_tokens answered ${response.status}: ${text.slice(0, 200)}`);
    const tokens = (JSON.parse(text) as { input_tokens?: unknown }).input_tokens;
    if (typeof tokens !== 'number' || !Number.isSafeInteger(tokens) || tokens < 0) {
      throw new Error('count_tokens answered without a valid input_tokens');
    }
    // Fields count_tokens does not take may still be read into the prompt: their bytes.
    return tokens + uncountedFieldTokens(body, COUNTED_FIELDS);
  },
  errorBody(status, code, message) {
    const finalStatus = status || CODE_STATUS[code] || 500;
    return {
      status: finalStatus,
      body: errorJson(TYPE_OF_STATUS[finalStatus] ?? 'api_error', message),
    };
  },
  encoder: ANTHROPIC_ENCODER,
};

/**
 * An Express handler that serves the Anthropic Messages API — `POST /v1/messages`
 * (streaming and not) and `POST /v1/messages/count_tokens` — metered exactly like
 * `costTrackedSSE()`: the caller's own key names who pays, the request's worst case is
 * reserved, the provider's events go to the caller as it sent them, the upstream call is
 * aborted when the caller leaves, and the cost is settled once. Mount it under any prefix
 * and point the SDK at it; every other route answers Anthropic's 404.
 *
 * @example
 * app.use('/llm', anthropicGateway({
 *   apiKey: process.env.ANTHROPIC_API_KEY!,
 *   store: createRedisStore({ url: process.env.REDIS_URL }),
 *   identify: (key) => keys.get(key), // your keys → { key, user, team }
 *   budgets: { team: { limitUsd: '200', period: 'month' } },
 * }));
 * const client = new Anthropic({ baseURL: 'http://localhost:3000/llm', apiKey: 'tm_live_…' });
 */
export function anthropicGateway(options: GatewayOptions) {
  return createGateway(ANTHROPIC, options, {
    messages: '/v1/messages',
    countTokens: '/v1/messages/count_tokens',
  });
}
