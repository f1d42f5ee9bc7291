// The Anthropic Messages API wire format: request validation, the streaming event sequence
// (message_start → content blocks → message_delta → message_stop, with ping), the complete
// Message, count_tokens, and the `{type: "error", error: {type, message}}` error shape.
// Web searches stream as a `server_tool_use` block (query JSON as input_json_delta) followed
// by a `web_search_tool_result` block; the result blocks take wire indices of their own, so a
// plan block's index and its wire index differ once a search was performed.

import { anthropicMessageId, anthropicServerToolUseId, anthropicToolUseId } from './ids.js';
import { isPerformedSearch, type OutputPlan, searchNumbers } from './plan.js';
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
/** The name of the web search server tool, as the real API reports it. */
const WEB_SEARCH_TOOL_NAME = 'web_search';

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

/** Input tokens including the results of `searches` web searches. */
function inputTokens(ctx: ResponseContext, searches: number): number {
  return ctx.inputTokens + searches * ctx.searchResultTokens;
}

function serverToolUse(searches: number): Record<string, number> {
  return { web_search_requests: searches, web_fetch_requests: 0 };
}

/**
 * The `usage` object of message_start (`searches` 0: like the real API, its input excludes
 * search results) and of a complete Message.
 */
function usageObject(
  ctx: ResponseContext,
  outputTokens: number,
  searches: number,
): Record<string, unknown> {
  return {
    input_tokens: inputTokens(ctx, searches),
    cache_creation_input_tokens: cacheWrite(ctx),
    cache_read_input_tokens: ctx.cacheReadTokens,
    cache_creation: {
      ephemeral_5m_input_tokens: ctx.cacheWrite5mTokens,
      ephemeral_1h_input_tokens: ctx.cacheWrite1hTokens,
    },
    output_tokens: outputTokens,
    server_tool_use: serverToolUse(searches),
    service_tier: 'standard',
    speed: ctx.speed,
    inference_geo: ctx.inferenceGeo,
  };
}

/** A stable, opaque thinking signature (the SDK only carries it back). */
function signature(stem: string): string {
  return Buffer.from(`fake-llm-signature:${stem}`).toString('base64');
}

/** The `content_block` of a block's content_block_start (`search`: its web search number). */
function startBlockJson(ctx: ResponseContext, index: number, search: number): string {
  const block = ctx.plan.blocks[index];
  switch (block?.kind) {
    case 'thinking':
      return '{"type":"thinking","thinking":"","signature":""}';
    case 'web_search':
      return JSON.stringify({
        type: 'server_tool_use',
        id: anthropicServerToolUseId(ctx.stem, search),
        name: WEB_SEARCH_TOOL_NAME,
        input: {},
      });
    case 'tool_use':
      return JSON.stringify({
        type: 'tool_use',
        id: anthropicToolUseId(ctx.stem),
        name: block.toolName,
        input: {},
      });
    default:
      return '{"type":"text","text":""}';
  }
}

function contentBlockStart(wireIndex: number, contentBlock: string): string {
  return sseEvent(
    'content_block_start',
    `{"type":"content_block_start","index":${wireIndex},"content_block":${contentBlock}}`,
  );
}

function contentBlockStop(wireIndex: number): string {
  return sseEvent('content_block_stop', `{"type":"content_block_stop","index":${wireIndex}}`);
}

/** The `web_search_tool_result` block of web search `search`: one deterministic result. */
function searchResult(ctx: ResponseContext, search: number): Record<string, unknown> {
  const n = search + 1;
  return {
    type: 'web_search_tool_result',
    tool_use_id: anthropicServerToolUseId(ctx.stem, search),
    content: [
      {
        type: 'web_search_result',
        url: `https://example.com/fake-llm/${ctx.stem}/${n}`,
        title: `Fake search result ${n}`,
        encrypted_content: Buffer.from(`fake-llm-search:${ctx.stem}:${n}`).toString('base64'),
        page_age: null,
      },
    ],
  };
}

/**
 * The wire index of each plan block: consecutive over all blocks sent, the result block of
 * each performed search included.
 */
function wireIndices(plan: OutputPlan): number[] {
  let next = 0;
  return plan.blocks.map((block) => {
    const wire = next;
    next += isPerformedSearch(block) ? 2 : 1;
    return wire;
  });
}

/** Prefix of a delta event's JSON up to the opening of its text value. */
function deltaPrefix(kind: string | undefined, index: number): string {
  const head = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":`;
  if (kind === 'thinking') return `${head}{"type":"thinking_delta","thinking":`;
  if (kind === 'tool_use' || kind === 'web_search') {
    return `${head}{"type":"input_json_delta","partial_json":`;
  }
  return `${head}{"type":"text_delta","text":`;
}

class AnthropicStreamEncoder implements StreamEncoder {
  readonly #ctx: ResponseContext;
  /** Wire index of each plan block (they differ once a search result block went out). */
  readonly #wire: number[];
  /** Web search number of each plan block (-1 for other kinds). */
  readonly #search: number[];
  /** Delta prefixes are built once per block, so a delta costs one JSON string escape. */
  readonly #prefixes: string[];
  /** Blocks whose text is not sent (thinking with `display: "omitted"`). */
  readonly #omitted: boolean[];

  constructor(ctx: ResponseContext) {
    this.#ctx = ctx;
    this.#wire = wireIndices(ctx.plan);
    this.#search = searchNumbers(ctx.plan);
    this.#prefixes = ctx.plan.blocks.map((block, index) =>
      deltaPrefix(block.kind, this.#wire[index]!),
    );
    this.#omitted = ctx.plan.blocks.map(
      (block) => block.kind === 'thinking' && ctx.plan.thinkingOmitted,
    );
  }

  #wireIndex(index: number): number {
    return this.#wire[index] ?? index;
  }

  open(): string {
    const ctx = this.#ctx;
    // Like the real API, message_start claims one output token before any was produced;
    // only message_delta carries the real count.
    const start =
      `{"type":"message_start","message":{"id":${JSON.stringify(anthropicMessageId(ctx.stem))},` +
      `"type":"message","role":"assistant","model":${JSON.stringify(ctx.model)},"content":[],` +
      `"stop_reason":null,"stop_sequence":null,"usage":${JSON.stringify(usageObject(ctx, 1, 0))}}}`;
    return sseEvent('message_start', start) + this.blockStart(0) + PING;
  }

  blockStart(index: number): string {
    const content = startBlockJson(this.#ctx, index, this.#search[index] ?? -1);
    return contentBlockStart(this.#wireIndex(index), content);
  }

  delta(index: number, text: string): string {
    // Omitted thinking is billed, never sent.
    if (this.#omitted[index]) return '';
    return `${this.#prefixes[index]}${JSON.stringify(text)}}}\n\n`;
  }

  blockStop(index: number): string {
    const wire = this.#wireIndex(index);
    const stop = contentBlockStop(wire);
    const block = this.#ctx.plan.blocks[index];
    if (block && isPerformedSearch(block)) {
      // The search ran: its results follow at once, as one block without deltas.
      const result = JSON.stringify(searchResult(this.#ctx, this.#search[index]!));
      return stop + contentBlockStart(wire + 1, result) + contentBlockStop(wire + 1);
    }
    if (block?.kind !== 'thinking') return stop;
    const sig = JSON.stringify(signature(this.#ctx.stem));
    return (
      sseEvent(
        'content_block_delta',
        `{"type":"content_block_delta","index":${wire},"delta":{"type":"signature_delta","signature":${sig}}}`,
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
        // Unlike message_start, the final input count includes the search results.
        input_tokens: inputTokens(ctx, ctx.plan.searches),
        cache_creation_input_tokens: cacheWrite(ctx),
        cache_read_input_tokens: ctx.cacheReadTokens,
        output_tokens: tokensSent,
        server_tool_use: serverToolUse(ctx.plan.searches),
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
    const prefix = this.#prefixes[index] ?? deltaPrefix('text', this.#wireIndex(index));
    return `${prefix}"cut off here\n\n`;
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

/** Parsed tool input JSON; `{}` when `max_tokens` cut it (no longer valid JSON). */
function parseInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // A tool input cut by max_tokens is not valid JSON; the API then reports it empty.
    return {};
  }
}

/** The `content` of a complete Message: each search's result block follows its query. */
function contentJson(ctx: ResponseContext, texts: readonly string[]): unknown[] {
  const content: unknown[] = [];
  const searches = searchNumbers(ctx.plan);
  ctx.plan.blocks.forEach((block, index) => {
    const text = texts[index] ?? '';
    switch (block.kind) {
      case 'thinking':
        content.push({
          type: 'thinking',
          thinking: ctx.plan.thinkingOmitted ? '' : text,
          signature: signature(ctx.stem),
        });
        return;
      case 'web_search': {
        const search = searches[index]!;
        content.push({
          type: 'server_tool_use',
          id: anthropicServerToolUseId(ctx.stem, search),
          name: WEB_SEARCH_TOOL_NAME,
          input: parseInput(text),
        });
        if (isPerformedSearch(block)) content.push(searchResult(ctx, search));
        return;
      }
      case 'tool_use':
        content.push({
          type: 'tool_use',
          id: anthropicToolUseId(ctx.stem),
          name: block.toolName,
          input: parseInput(text),
        });
        return;
      default:
        content.push({ type: 'text', text });
    }
  });
  return content;
}

function isPositiveInteger(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

export const anthropicProtocol: ProviderProtocol = {
  provider: 'anthropic',
  dialect: 'anthropic',
  requestIdHeader: 'request-id',
  midStreamErrorStatus: 529,

  maxTokens(body: Readonly<Record<string, unknown>>): number | undefined {
    return typeof body.max_tokens === 'number' ? body.max_tokens : undefined;
  },

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
      usage: usageObject(ctx, tokensSent, ctx.plan.searches),
    });
  },

  stopReason,

  usage(ctx: ResponseContext, tokensSent: number): ReportedUsage {
    let thinking = 0;
    for (const block of ctx.plan.blocks) if (block.kind === 'thinking') thinking += block.tokens;
    return {
      inputTokens: inputTokens(ctx, ctx.plan.searches),
      outputTokens: tokensSent,
      cacheReadTokens: ctx.cacheReadTokens,
      cacheWrite5mTokens: ctx.cacheWrite5mTokens,
      cacheWrite1hTokens: ctx.cacheWrite1hTokens,
      reasoningTokens: Math.min(thinking, tokensSent),
      webSearchRequests: ctx.plan.searches,
      speed: ctx.speed,
      inferenceGeo: ctx.inferenceGeo,
    };
  },
};

/** The body of a count_tokens answer. */
export function countTokensBody(inputTokens: number): string {
  return JSON.stringify({ input_tokens: inputTokens });
}
