// The OpenAI Chat Completions wire format: request validation, `chat.completion.chunk`
// streams ending in `data: [DONE]` (with the empty-choices usage chunk when
// `stream_options.include_usage` is set), the complete `chat.completion`, and the
// `{error: {message, type, param, code}}` error shape.

import { openaiCompletionId, openaiToolCallId } from './ids.js';
import type { OutputPlan } from './plan.js';
import type {
  ApiError,
  ProviderProtocol,
  ResponseContext,
  Route,
  StreamEncoder,
} from './protocol.js';
import { sseComment, sseData } from './sse.js';
import type { ReportedUsage } from './types.js';

const SYSTEM_FINGERPRINT = 'fp_fakellm0';
const DONE = sseData('[DONE]');

function invalid(
  message: string,
  param: string | null = null,
  code: string | null = null,
): ApiError {
  return { status: 400, type: 'invalid_request_error', message, param, code };
}

function finishReason(plan: OutputPlan): string {
  if (plan.truncated) return 'length';
  return plan.toolCall ? 'tool_calls' : 'stop';
}

function completionTokens(ctx: ResponseContext, tokensSent: number): number {
  return tokensSent + ctx.plan.reasoningTokens;
}

function usageObject(ctx: ResponseContext, tokensSent: number): Record<string, unknown> {
  // cached_tokens is a subset of prompt_tokens, unlike Anthropic's separate cache counters.
  const prompt = ctx.inputTokens + ctx.cacheReadTokens;
  const completion = completionTokens(ctx, tokensSent);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: ctx.cacheReadTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: ctx.plan.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

class OpenAIStreamEncoder implements StreamEncoder {
  readonly #ctx: ResponseContext;
  /** Every chunk starts and ends the same way; built once per stream. */
  readonly #head: string;
  readonly #tail: string;
  readonly #textPrefix: string;
  readonly #toolPrefix: string;
  readonly #deltaSuffix: string;

  constructor(ctx: ResponseContext) {
    this.#ctx = ctx;
    this.#head =
      `data: {"id":${JSON.stringify(openaiCompletionId(ctx.stem))},"object":"chat.completion.chunk",` +
      `"created":${ctx.createdSec},"model":${JSON.stringify(ctx.model)},"service_tier":"default",` +
      `"system_fingerprint":"${SYSTEM_FINGERPRINT}","choices":[`;
    this.#tail = ctx.includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
    this.#textPrefix = `${this.#head}{"index":0,"delta":{"content":`;
    this.#toolPrefix = `${this.#head}{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":`;
    this.#deltaSuffix = `},"logprobs":null,"finish_reason":null}${this.#tail}`;
  }

  #chunk(choice: string): string {
    return this.#head + choice + this.#tail;
  }

  #toolStart(index: number): string {
    const block = this.#ctx.plan.blocks[index];
    const call = JSON.stringify({
      index: 0,
      id: openaiToolCallId(this.#ctx.stem),
      type: 'function',
      function: { name: block?.toolName, arguments: '' },
    });
    return this.#chunk(
      `{"index":0,"delta":{"tool_calls":[${call}]},"logprobs":null,"finish_reason":null}`,
    );
  }

  open(): string {
    const role = this.#chunk(
      '{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}',
    );
    return this.#ctx.plan.blocks[0]?.kind === 'tool_use' ? role + this.#toolStart(0) : role;
  }

  blockStart(index: number): string {
    return this.#ctx.plan.blocks[index]?.kind === 'tool_use' ? this.#toolStart(index) : '';
  }

  delta(index: number, text: string): string {
    if (this.#ctx.plan.blocks[index]?.kind === 'tool_use') {
      return `${this.#toolPrefix}${JSON.stringify(text)}}}]${this.#deltaSuffix}`;
    }
    return this.#textPrefix + JSON.stringify(text) + this.#deltaSuffix;
  }

  blockStop(): string {
    return '';
  }

  finish(tokensSent: number): string {
    const ctx = this.#ctx;
    const reason = finishReason(ctx.plan);
    let out = this.#chunk(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"${reason}"}`);
    if (ctx.includeUsage) {
      out += `${this.#head}],"usage":${JSON.stringify(usageObject(ctx, tokensSent))}}\n\n`;
    }
    return out + DONE;
  }

  error(): string {
    return sseData(
      JSON.stringify({
        error: {
          message: 'The server had an error while processing your request. Sorry about that!',
          type: 'server_error',
          param: null,
          code: null,
        },
      }),
    );
  }

  malformed(): string {
    // The data line stops inside a JSON string; the blank line then dispatches it as is.
    return `${this.#textPrefix}"cut off here\n\n`;
  }

  unknown(seq: number): string {
    // OpenAI-compatible gateways interleave SSE comments and empty-choices chunks (Azure's
    // prompt_filter_results); clients must skip both.
    if (seq % 2 === 0) return sseComment('OPENROUTER PROCESSING');
    return sseData(
      '{"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}',
    );
  }
}

function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

export const openaiProtocol: ProviderProtocol = {
  provider: 'openai',
  dialect: 'openai',
  requestIdHeader: 'x-request-id',
  midStreamErrorStatus: 500,

  maxTokens(body: Readonly<Record<string, unknown>>): number | undefined {
    const max = body.max_completion_tokens ?? body.max_tokens;
    return typeof max === 'number' ? max : undefined;
  },

  validate(_route: Route, body: unknown): ApiError | undefined {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return invalid('We could not parse the JSON body of your request.');
    }
    const b = body as Record<string, unknown>;
    if (typeof b.model !== 'string' || b.model === '') {
      return invalid('you must provide a model parameter');
    }
    if (b.messages === undefined) {
      return invalid(
        "Missing required parameter: 'messages'.",
        'messages',
        'missing_required_parameter',
      );
    }
    if (!Array.isArray(b.messages)) {
      return invalid("Invalid type for 'messages': expected an array.", 'messages', 'invalid_type');
    }
    if (b.messages.length === 0) {
      return invalid(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        'messages',
        'empty_array',
      );
    }
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const value = b[field];
      if (value !== undefined && value !== null && !isPositiveInteger(value)) {
        return invalid(
          `Invalid '${field}': integer below minimum value. Expected a value >= 1.`,
          field,
          'integer_below_min_value',
        );
      }
    }
    if (b.stream_options != null && b.stream !== true) {
      return invalid(
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        'stream_options',
      );
    }
    return undefined;
  },

  statusError(status: number, model: string | undefined): ApiError {
    switch (status) {
      case 401:
        return {
          status,
          type: 'invalid_request_error',
          message:
            'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
          code: 'invalid_api_key',
          param: null,
        };
      case 403:
        return {
          status,
          type: 'invalid_request_error',
          message: 'You are not allowed to sample from this model',
          code: 'model_not_allowed',
          param: null,
        };
      case 404:
        return {
          status,
          type: 'invalid_request_error',
          message: `The model \`${model ?? 'unknown'}\` does not exist or you do not have access to it.`,
          code: 'model_not_found',
          param: null,
        };
      case 429:
        return {
          status,
          type: 'requests',
          message: `Rate limit reached for ${model ?? 'the model'} in organization org-fakellm on requests per min (RPM): Limit 500, Used 500, Requested 1.`,
          code: 'rate_limit_exceeded',
          param: null,
        };
    }
    if (status >= 500) {
      return {
        status,
        type: 'server_error',
        message: 'The server had an error while processing your request. Sorry about that!',
        code: null,
        param: null,
      };
    }
    return {
      status,
      type: 'invalid_request_error',
      message: 'Invalid request.',
      code: null,
      param: null,
    };
  },

  errorBody(error: ApiError): string {
    return JSON.stringify({
      error: {
        message: error.message,
        type: error.type,
        param: error.param ?? null,
        code: error.code ?? null,
      },
    });
  },

  errorHeaders(error: ApiError, retryAfterSec: number): Record<string, string> {
    if (error.status !== 429) return {};
    const reset = `${Math.ceil(retryAfterSec)}s`;
    return {
      'retry-after': String(Math.ceil(retryAfterSec)),
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': reset,
      'x-ratelimit-limit-tokens': '200000',
      'x-ratelimit-remaining-tokens': '0',
      'x-ratelimit-reset-tokens': reset,
    };
  },

  baseHeaders(requestId: string): Record<string, string> {
    return {
      'x-request-id': requestId,
      'openai-version': '2020-10-01',
      'openai-processing-ms': '1',
      'openai-organization': 'org-fakellm',
    };
  },

  streamEncoder(ctx: ResponseContext): StreamEncoder {
    return new OpenAIStreamEncoder(ctx);
  },

  completeBody(ctx: ResponseContext, texts: readonly string[], tokensSent: number): string {
    let content: string | null = null;
    let toolCalls: unknown[] | undefined;
    ctx.plan.blocks.forEach((block, index) => {
      const text = texts[index] ?? '';
      if (block.kind === 'tool_use') {
        toolCalls = [
          {
            id: openaiToolCallId(ctx.stem),
            type: 'function',
            function: { name: block.toolName, arguments: text },
          },
        ];
      } else if (block.kind === 'text') {
        content = text;
      }
    });
    const message: Record<string, unknown> = {
      role: 'assistant',
      content,
      refusal: null,
      annotations: [],
    };
    if (toolCalls) message.tool_calls = toolCalls;
    return JSON.stringify({
      id: openaiCompletionId(ctx.stem),
      object: 'chat.completion',
      created: ctx.createdSec,
      model: ctx.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(ctx.plan) }],
      usage: usageObject(ctx, tokensSent),
      service_tier: 'default',
      system_fingerprint: SYSTEM_FINGERPRINT,
    });
  },

  stopReason: finishReason,

  usage(ctx: ResponseContext, tokensSent: number): ReportedUsage {
    return {
      inputTokens: ctx.inputTokens + ctx.cacheReadTokens,
      outputTokens: completionTokens(ctx, tokensSent),
      cacheReadTokens: ctx.cacheReadTokens,
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 0,
      reasoningTokens: ctx.plan.reasoningTokens,
      webSearchRequests: 0,
    };
  },
};
