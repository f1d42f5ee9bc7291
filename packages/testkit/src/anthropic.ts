// The Anthropic Messages API wire format: request validation, the streaming event sequence
// (message_start → content blocks → message_delta → message_stop, with ping), the complete
// Message, count_tokens, and the `{type: "error", error: {type, message}}` error shape.

import { anthropicMessageId, anthropicToolUseId } from './ids.js';
import type { OutputPlan } from './plan.js';
import type {
  ApiError,
  ProviderProtocol,
  ResponseContext,
  Route,
  StreamEncoder,
} from './protocol.js';
import { sseComment, sseEvent } from './sse.js';
import type { ReportedUsage } from './types.js';

const ERROR_TYPES: Readonly<Record<number, [type: string, message: string]>> = {
  400: ['invalid_request_error', 'Invalid request.'],
  401: ['authentication_error', 'invalid x-api-key'],
  402: ['billing_error', 'Your credit balance is too low to access the Anthropic API.'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found.'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: [
    'rate_limit_error',
    'This request would exceed the rate limit for your organization of 50 requests per minute.',
  ],
  500: ['api_error', 'Internal server error'],
  504: ['timeout_error', 'Request timed out'],
  529: ['overloaded_error', 'Overloaded'],
};

const PING = sseEvent('ping', '{"type": "ping"}');
const MESSAGE_STOP = sseEvent('message_stop', '{"type":"message_stop"}');

function invalid(message: string): ApiError {
  return { status: 400, type: 'invalid_request_error', message };
}

function stopReason(plan: OutputPlan): string {
  if (plan.truncated) return 'max_tokens';
  return plan.toolCall ? 'tool_use' : 'end_turn';
}

function cacheWrite(ctx: ResponseContext): number {
  return ctx.cacheWrite5mTokens + ctx.cacheWrite1hTokens;
}

/** The `usage` object of message_start and of a complete Message. */
function usageObject(ctx: ResponseContext, outputTokens: number): Record<string, unknown> {
  return {
    input_tokens: ctx.inputTokens,
    cache_creation_input_tokens: cacheWrite(ctx),
    cache_read_input_tokens: ctx.cacheReadTokens,
    cache_creation: {
      ephemeral_5m_input_tokens: ctx.cacheWrite5mTokens,
      ephemeral_1h_input_tokens: ctx.cacheWrite1hTokens,
    },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

/** A stable, opaque thinking signature (the SDK only carries it back). */
function signature(stem: string): string {
  return Buffer.from(`fake-llm-signature:${stem}`).toString('base64');
}

function contentBlockStart(ctx: ResponseContext, index: number): string {
  const block = ctx.plan.blocks[index];
  let contentBlock: string;
  switch (block?.kind) {
    case 'thinking':
      contentBlock = '{"type":"thinking","thinking":"","signature":""}';
      break;
    case 'tool_use':
      contentBlock = JSON.stringify({
        type: 'tool_use',
        id: anthropicToolUseId(ctx.stem),
        name: block.toolName,
        input: {},
      });
      break;
    default:
      contentBlock = '{"type":"text","text":""}';
  }
  return sseEvent(
    'content_block_start',
    `{"type":"content_block_start","index":${index},"content_block":${contentBlock}}`,
  );
}

/** Prefix of a delta event's JSON up to the opening of its text value. */
function deltaPrefix(kind: string | undefined, index: number): string {
  const head = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":`;
  if (kind === 'thinking') return `${head}{"type":"thinking_delta","thinking":`;
  if (kind === 'tool_use') return `${head}{"type":"input_json_delta","partial_json":`;
  return `${head}{"type":"text_delta","text":`;
}

class AnthropicStreamEncoder implements StreamEncoder {
  readonly #ctx: ResponseContext;
  /** Delta prefixes are built once per block, so a delta costs one JSON string escape. */
  readonly #prefixes: string[];

  constructor(ctx: ResponseContext) {
    this.#ctx = ctx;
    this.#prefixes = ctx.plan.blocks.map((block, index) => deltaPrefix(block.kind, index));
  }

  open(): string {
    const ctx = this.#ctx;
    // Like the real API, message_start claims one output token before any was produced;
    // only message_delta carries the real count.
    const start =
      `{"type":"message_start","message":{"id":${JSON.stringify(anthropicMessageId(ctx.stem))},` +
      `"type":"message","role":"assistant","model":${JSON.stringify(ctx.model)},"content":[],` +
      `"stop_reason":null,"stop_sequence":null,"usage":${JSON.stringify(usageObject(ctx, 1))}}}`;
    return sseEvent('message_start', start) + contentBlockStart(ctx, 0) + PING;
  }

  blockStart(index: number): string {
    return contentBlockStart(this.#ctx, index);
  }

  delta(index: number, text: string): string {
    return `${this.#prefixes[index]}${JSON.stringify(text)}}}\n\n`;
  }

  blockStop(index: number): string {
    const stop = sseEvent('content_block_stop', `{"type":"content_block_stop","index":${index}}`);
    if (this.#ctx.plan.blocks[index]?.kind !== 'thinking') return stop;
    const sig = JSON.stringify(signature(this.#ctx.stem));
    return (
      sseEvent(
        'content_block_delta',
        `{"type":"content_block_delta","index":${index},"delta":{"type":"signature_delta","signature":${sig}}}`,
      ) + stop
    );
  }

  finish(tokensSent: number): string {
    const ctx = this.#ctx;
    // Real message_delta usage is cumulative: every counter is the whole message's total.
    const delta = JSON.stringify({
      type: 'message_delta',
      delta: { stop_reason: stopReason(ctx.plan), stop_sequence: null },
      usage: {
        input_tokens: ctx.inputTokens,
        cache_creation_input_tokens: cacheWrite(ctx),
        cache_read_input_tokens: ctx.cacheReadTokens,
        output_tokens: tokensSent,
      },
    });
    return sseEvent('message_delta', delta) + MESSAGE_STOP;
  }

  error(): string {
    return sseEvent(
      'error',
      JSON.stringify({
        type: 'error',
        error: { type: 'overloaded_error', message: 'Overloaded' },
        request_id: this.#ctx.requestId,
      }),
    );
  }

  malformed(index: number): string {
    // The data line stops inside a JSON string; the blank line then dispatches it as is.
    return `${this.#prefixes[index] ?? deltaPrefix('text', index)}"cut off here\n\n`;
  }

  unknown(seq: number): string {
    switch (seq % 4) {
      case 0:
        return sseEvent('fake_unknown_event', `{"type":"fake_unknown_event","seq":${seq}}`);
      case 1:
        return sseComment('fake-llm comment');
      case 2:
        return PING;
      default:
        // Fields other than event/data must be ignored; with no data nothing is dispatched.
        return `id: ${seq}\nretry: 3000\n\n`;
    }
  }
}

function contentJson(ctx: ResponseContext, texts: readonly string[]): unknown[] {
  return ctx.plan.blocks.map((block, index) => {
    const text = texts[index] ?? '';
    if (block.kind === 'thinking') {
      return { type: 'thinking', thinking: text, signature: signature(ctx.stem) };
    }
    if (block.kind === 'tool_use') {
      let input: unknown = {};
      try {
        input = JSON.parse(text);
      } catch {
        // A tool input cut by max_tokens is not valid JSON; the API then reports it empty.
      }
      return { type: 'tool_use', id: anthropicToolUseId(ctx.stem), name: block.toolName, input };
    }
    return { type: 'text', text };
  });
}

function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

export const anthropicProtocol: ProviderProtocol = {
  provider: 'anthropic',
  requestIdHeader: 'request-id',
  midStreamErrorStatus: 529,

  validate(route: Route, body: unknown): ApiError | undefined {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return invalid('Request body must be a JSON object.');
    }
    const b = body as Record<string, unknown>;
    if (b.model === undefined) return invalid('model: Field required');
    if (typeof b.model !== 'string' || b.model === '') {
      return invalid('model: Input should be a valid string');
    }
    if (b.messages === undefined) return invalid('messages: Field required');
    if (!Array.isArray(b.messages)) return invalid('messages: Input should be a valid list');
    if (b.messages.length === 0) return invalid('messages: at least one message is required');
    if (route === 'count_tokens') return undefined;
    if (b.max_tokens === undefined) return invalid('max_tokens: Field required');
    if (!isPositiveInteger(b.max_tokens)) {
      return invalid('max_tokens: Input should be an integer greater than or equal to 1');
    }
    if (b.stream !== undefined && typeof b.stream !== 'boolean') {
      return invalid('stream: Input should be a valid boolean');
    }
    return undefined;
  },

  statusError(status: number, model: string | undefined): ApiError {
    const known = ERROR_TYPES[status];
    const [type, message] =
      known ??
      (status >= 500
        ? ['api_error', 'Internal server error']
        : ['invalid_request_error', 'Invalid request.']);
    return { status, type, message: status === 404 && model ? `model: ${model}` : message };
  },

  errorBody(error: ApiError, requestId: string): string {
    return JSON.stringify({
      type: 'error',
      error: { type: error.type, message: error.message },
      request_id: requestId,
    });
  },

  errorHeaders(error: ApiError, retryAfterSec: number): Record<string, string> {
    if (error.status !== 429) return {};
    const reset = new Date(Date.now() + retryAfterSec * 1000).toISOString();
    return {
      'retry-after': String(Math.ceil(retryAfterSec)),
      'anthropic-ratelimit-requests-limit': '50',
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': reset,
      'anthropic-ratelimit-tokens-limit': '100000',
      'anthropic-ratelimit-tokens-remaining': '0',
      'anthropic-ratelimit-tokens-reset': reset,
      'anthropic-ratelimit-input-tokens-limit': '80000',
      'anthropic-ratelimit-input-tokens-remaining': '0',
      'anthropic-ratelimit-input-tokens-reset': reset,
      'anthropic-ratelimit-output-tokens-limit': '20000',
      'anthropic-ratelimit-output-tokens-remaining': '0',
      'anthropic-ratelimit-output-tokens-reset': reset,
    };
  },

  baseHeaders(requestId: string): Record<string, string> {
    return { 'request-id': requestId, 'anthropic-organization-id': 'fake-llm-org' };
  },

  streamEncoder(ctx: ResponseContext): StreamEncoder {
    return new AnthropicStreamEncoder(ctx);
  },

  completeBody(ctx: ResponseContext, texts: readonly string[], tokensSent: number): string {
    return JSON.stringify({
      id: anthropicMessageId(ctx.stem),
      type: 'message',
      role: 'assistant',
      model: ctx.model,
      content: contentJson(ctx, texts),
      stop_reason: stopReason(ctx.plan),
      stop_sequence: null,
      usage: usageObject(ctx, tokensSent),
    });
  },

  stopReason,

  usage(ctx: ResponseContext, tokensSent: number): ReportedUsage {
    let thinking = 0;
    for (const block of ctx.plan.blocks) if (block.kind === 'thinking') thinking += block.tokens;
    return {
      inputTokens: ctx.inputTokens,
      outputTokens: tokensSent,
      cacheReadTokens: ctx.cacheReadTokens,
      cacheWrite5mTokens: ctx.cacheWrite5mTokens,
      cacheWrite1hTokens: ctx.cacheWrite1hTokens,
      reasoningTokens: Math.min(thinking, tokensSent),
    };
  },
};

/** The body of a count_tokens answer. */
export function countTokensBody(inputTokens: number): string {
  return JSON.stringify({ input_tokens: inputTokens });
}
