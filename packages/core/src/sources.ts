/**
 * Source adapters for the two libraries most Express apps stream through: the Vercel AI
 * SDK (`streamText()`'s `fullStream` parts) and LangChain.js chat models (`AIMessageChunk`s
 * from `model.stream()`). Like the provider adapters in stream-events.ts they map what the
 * library yields to `MeterEvent`s, and their usage to the same `Usage` the raw SDK streams
 * give, so the same answer costs the same to the nano-dollar whichever way it was streamed.
 *
 * Both read plain fields (no import of `ai` or `@langchain/core`): any version whose parts
 * have these shapes works (AI SDK 5–7, LangChain.js 0.3–1).
 *
 * Where a library drops what the bill depends on, the raw provider usage it carries is
 * read instead: the AI SDK's `usage.raw` (Anthropic's object with the cache TTL split,
 * tier, speed and region, or OpenAI's), LangChain's `response_metadata.usage` of
 * Anthropic's `message_start`. What neither carries is listed in the README ("Sources").
 */
import type { MeterEvent } from './meter-event.js';
import { measureRequestTokens } from './token-estimate.js';
import {
  type AnthropicUsageLike,
  addUsage,
  emptyUsage,
  fromAnthropicUsage,
  fromOpenAIUsage,
  normaliseUsage,
  type OpenAIUsageLike,
  type Usage,
} from './usage.js';

/** The part types of the AI SDK's `fullStream` (`TextStreamPart`), all versions 5–7. */
const AI_SDK_PARTS = new Set([
  'start-step',
  'finish-step',
  'finish',
  'abort',
  'raw',
  'text-start',
  'text-delta',
  'text-end',
  'reasoning-start',
  'reasoning-delta',
  'reasoning-end',
  'tool-input-start',
  'tool-input-delta',
  'tool-input-end',
  'tool-call',
  'tool-result',
  'tool-error',
  'tool-output-denied',
  'tool-approval-request',
  'source',
  'file',
]);

/** Whether `type` names a part of the AI SDK's `fullStream` (its `start` and `error` excepted). */
export function isAiSdkPartType(type: string): boolean {
  return AI_SDK_PARTS.has(type);
}

/** What tokenmeter reads of an AI SDK `LanguageModelUsage` (v5 flat fields, v6+ details, `raw`). */
export interface AiSdkUsageLike {
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  reasoningTokens?: number | undefined;
  cachedInputTokens?: number | undefined;
  inputTokenDetails?: {
    noCacheTokens?: number | undefined;
    cacheReadTokens?: number | undefined;
    cacheWriteTokens?: number | undefined;
  };
  outputTokenDetails?: { reasoningTokens?: number | undefined };
  /** The provider's own usage object (AI SDK 6+). */
  raw?: unknown;
}

/** An AI SDK `streamText()` result: anything with a `fullStream` to read. */
export interface AiSdkStreamResult {
  readonly fullStream: AsyncIterable<unknown>;
}

/** Whether `value` is an AI SDK `streamText()` result (it has a `fullStream`). */
export function isAiSdkResult(value: unknown): value is AiSdkStreamResult {
  if (value === null || typeof value !== 'object') return false;
  const stream = (value as { fullStream?: unknown }).fullStream;
  return (
    stream !== null &&
    typeof stream === 'object' &&
    typeof (stream as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/**
 * The parts of an AI SDK result's `fullStream`, with an `error` part thrown instead of
 * yielded: the AI SDK reports a provider's HTTP error (an `APICallError` with its
 * `statusCode`) as a part, and a refusal must end a metered stream the way the raw SDKs'
 * thrown errors do (nothing billed when nothing ran). Returning closes the `fullStream`.
 */
export function aiSdkParts(result: AiSdkStreamResult): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const inner = result.fullStream[Symbol.asyncIterator]();
      return {
        next: () =>
          inner.next().then((step) => {
            const part = step.value as { type?: unknown; error?: unknown } | undefined;
            if (!step.done && part?.type === 'error') throw part.error;
            return step;
          }),
        return: (value?: unknown) =>
          inner.return ? inner.return(value) : Promise.resolve({ done: true, value }),
      };
    },
  };
}

/**
 * An AI SDK usage → `Usage`. The provider's raw usage (AI SDK 6+ `usage.raw`) is read when
 * present: it keeps what the normalised fields lose (Anthropic's cache TTL split, service
 * tier, speed, region, server tool counts). Otherwise the normalised fields are used, with
 * cache writes at the default (5-minute) TTL.
 */
export function fromAiSdkUsage(usage: AiSdkUsageLike): Usage {
  const raw = usage.raw;
  if (raw !== null && typeof raw === 'object') {
    const r = raw as Record<string, unknown>;
    if ('prompt_tokens' in r || 'completion_tokens' in r) {
      return fromOpenAIUsage(r as OpenAIUsageLike, r.service_tier as string | undefined);
    }
    if ('input_tokens_details' in r || 'output_tokens_details' in r) {
      // OpenAI Responses API: input_tokens includes the cached ones.
      const input = r as {
        input_tokens?: number;
        output_tokens?: number;
        input_tokens_details?: { cached_tokens?: number } | null;
        output_tokens_details?: { reasoning_tokens?: number } | null;
        service_tier?: string;
      };
      if (!('cache_creation_input_tokens' in r)) {
        return fromOpenAIUsage(
          {
            prompt_tokens: input.input_tokens ?? null,
            completion_tokens: input.output_tokens ?? null,
            prompt_tokens_details: { cached_tokens: input.input_tokens_details?.cached_tokens },
            completion_tokens_details: {
              reasoning_tokens: input.output_tokens_details?.reasoning_tokens,
            },
          },
          input.service_tier,
        );
      }
    }
    if ('input_tokens' in r || 'output_tokens' in r) {
      return fromAnthropicUsage(r as AnthropicUsageLike);
    }
  }
  const details = usage.inputTokenDetails;
  const cacheRead = details?.cacheReadTokens ?? usage.cachedInputTokens ?? 0;
  const cacheWrite = details?.cacheWriteTokens ?? 0;
  const input =
    details?.noCacheTokens ?? Math.max(0, (usage.inputTokens ?? 0) - cacheRead - cacheWrite);
  return normaliseUsage({
    inputTokens: input,
    outputTokens: usage.outputTokens ?? 0,
    cacheReadTokens: cacheRead,
    cacheWrite5mTokens: cacheWrite,
    reasoningTokens: usage.outputTokenDetails?.reasoningTokens ?? usage.reasoningTokens ?? 0,
  });
}

interface AiSdkPart {
  type: string;
  text?: unknown;
  delta?: unknown;
  textDelta?: unknown;
  toolName?: unknown;
  providerExecuted?: unknown;
  request?: { body?: unknown };
  response?: { id?: unknown; modelId?: unknown };
  usage?: AiSdkUsageLike;
  totalUsage?: AiSdkUsageLike;
  finishReason?: unknown;
  rawFinishReason?: unknown;
  rawValue?: { service_tier?: unknown };
  toolCallId?: unknown;
  input?: unknown;
  args?: unknown;
  providerMetadata?: { openai?: unknown };
}

/**
 * A translator for the parts of an AI SDK `fullStream`. Each step is one provider request:
 * `start-step` becomes a `request` event (the `max_tokens` the AI SDK really sent — it adds
 * Anthropic's thinking budget — and a bound of the step's prompt), `finish-step` the usage
 * of that step. The meter adds the steps up; the middleware reserves each one.
 */
export function createAiSdkTranslator(): (part: unknown) => MeterEvent[] {
  let started = false;
  let reported = false;
  let serviceTier: string | undefined;
  return (value) => {
    const part = value as AiSdkPart;
    switch (part.type) {
      case 'raw':
        // With `includeRawChunks: true`: OpenAI's chunks name the service tier, which the
        // AI SDK's usage does not carry.
        if (typeof part.rawValue?.service_tier === 'string')
          serviceTier = part.rawValue.service_tier;
        return [];
      case 'text-delta': {
        // `text` since AI SDK 5 (`textDelta` before).
        const text = typeof part.text === 'string' ? part.text : part.textDelta;
        return typeof text === 'string' && text !== '' ? [{ type: 'text', text }] : [];
      }
      case 'reasoning-start':
        // An OpenAI reasoning item: its tokens are billed and never streamed (a summary, if
        // any, is not the reasoning), so until the step's usage only max_tokens bounds them.
        return part.providerMetadata?.openai !== undefined ? [{ type: 'unseen_output' }] : [];
      case 'reasoning-delta': {
        const text = typeof part.text === 'string' ? part.text : part.delta;
        return typeof text === 'string' && text !== '' ? [{ type: 'thinking', text }] : [];
      }
      case 'tool-input-start':
        // A provider-executed tool (Anthropic's web search) is billed per use.
        return part.providerExecuted === true && typeof part.toolName === 'string'
          ? [{ type: 'server_tool', name: part.toolName }]
          : [];
      case 'tool-call':
        // A tool the app runs (the AI SDK streamed its input as tool-input-delta parts).
        return part.providerExecuted !== true &&
          typeof part.toolCallId === 'string' &&
          typeof part.toolName === 'string'
          ? [
              {
                type: 'tool_call',
                id: part.toolCallId,
                name: part.toolName,
                input: part.input !== undefined ? part.input : part.args,
              },
            ]
          : [];
      case 'tool-input-delta':
        return typeof part.delta === 'string' && part.delta !== ''
          ? [{ type: 'tool_input', json: part.delta }]
          : [];
      case 'start-step': {
        const body = part.request?.body;
        const parsed = (typeof body === 'string' ? safeJson(body) : body) as
          | Record<string, unknown>
          | undefined;
        const out: MeterEvent[] = [requestEvent(parsed)];
        if (!started) {
          started = true;
          const start: MeterEvent = { type: 'start', provider: 'ai-sdk' };
          if (typeof parsed?.model === 'string') start.model = parsed.model;
          out.push(start);
        }
        return out;
      }
      case 'finish-step': {
        if (!part.usage) return [];
        const step = fromAiSdkUsage(part.usage);
        if (serviceTier !== undefined && step.serviceTier === undefined)
          step.serviceTier = serviceTier;
        reported = true;
        const out: MeterEvent[] = [];
        const id = part.response?.id;
        const model = part.response?.modelId;
        if (typeof id === 'string' || typeof model === 'string') {
          const start: MeterEvent = { type: 'start', provider: 'ai-sdk' };
          if (typeof id === 'string') start.id = id;
          if (typeof model === 'string') start.model = model;
          out.push(start);
        }
        out.push({ type: 'usage', usage: step, final: true });
        // Why this call ended (`tool-calls` before the next step): the call's own stop.
        const reason =
          typeof part.rawFinishReason === 'string' ? part.rawFinishReason : part.finishReason;
        if (typeof reason === 'string') out.push({ type: 'stop', reason });
        return out;
      }
      case 'finish': {
        const out: MeterEvent[] = [];
        // Only when no step reported its usage (AI SDK versions without finish-step usage).
        if (!reported && part.totalUsage) {
          out.push({ type: 'usage', usage: fromAiSdkUsage(part.totalUsage), final: true });
        }
        const reason =
          typeof part.rawFinishReason === 'string' ? part.rawFinishReason : part.finishReason;
        if (typeof reason === 'string') out.push({ type: 'stop', reason });
        return out;
      }
      default:
        return []; // start, *-start/-end, tool-result, source, file, abort
    }
  };
}

/** A step's provider request: its max_tokens as sent and its prompt's upper bound. */
function requestEvent(body: Record<string, unknown> | undefined): MeterEvent {
  const event: MeterEvent = { type: 'request' };
  if (!body) return event;
  const max = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens;
  if (typeof max === 'number' && Number.isSafeInteger(max) && max > 0) event.maxTokens = max;
  try {
    event.inputTokens = measureRequestTokens(body).upperBound;
  } catch {
    // A body the estimator cannot read: the meter keeps the admitted figure.
  }
  return event;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What tokenmeter reads of a LangChain.js `AIMessageChunk`. */
export interface LangChainChunkLike {
  id?: string;
  content?: unknown;
  usage_metadata?: {
    input_tokens?: number;
    output_tokens?: number;
    input_token_details?: { cache_read?: number; cache_creation?: number };
    output_token_details?: { reasoning?: number };
  };
  response_metadata?: Record<string, unknown>;
  additional_kwargs?: Record<string, unknown>;
  tool_call_chunks?: Array<{ args?: unknown }>;
}

/** Whether `value` looks like a LangChain.js message chunk (`AIMessageChunk`). */
export function isLangChainChunk(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const v = value as { content?: unknown; response_metadata?: unknown };
  return 'content' in v && typeof v.response_metadata === 'object';
}

/**
 * A translator for the `AIMessageChunk`s of a LangChain.js chat model stream
 * (`ChatAnthropic`, `ChatOpenAI`, … `.stream()`).
 *
 * LangChain's `usage_metadata` is additive across chunks (it sums them when concatenating),
 * with one exception this reads around: for Anthropic its first chunk carries the input and
 * the cache counts, its last the cumulative output; the `message_start` usage it keeps in
 * `response_metadata.usage` (TTL split, tier, speed, region) completes the picture.
 */
export function createLangChainTranslator(): (chunk: unknown) => MeterEvent[] {
  let started = false;
  let provider = '';
  let serviceTier: string | undefined;
  let anthropic: Usage | undefined;
  let sum: Usage | undefined;
  let stopped = false;
  return (value) => {
    const chunk = value as LangChainChunkLike;
    const meta = chunk.response_metadata ?? {};
    const out: MeterEvent[] = [];
    if (typeof meta.model_provider === 'string') provider = meta.model_provider;
    if (typeof meta.service_tier === 'string') serviceTier = meta.service_tier;
    const usage = chunk.usage_metadata;
    let startUsage: Usage | undefined;
    if (usage && provider === 'anthropic') {
      const raw = meta.usage as AnthropicUsageLike | undefined;
      if (!anthropic && raw && typeof raw === 'object') {
        // message_start: input (LangChain adds the cache counts into it) and cache detail.
        const cached =
          (usage.input_token_details?.cache_read ?? 0) +
          (usage.input_token_details?.cache_creation ?? 0);
        anthropic = fromAnthropicUsage({
          ...raw,
          input_tokens: Math.max(0, (usage.input_tokens ?? 0) - cached),
          output_tokens: usage.output_tokens ?? 0,
        });
        startUsage = anthropic;
      } else if (anthropic) {
        // message_delta: Anthropic's output count is cumulative.
        anthropic = fromAnthropicUsage({ output_tokens: usage.output_tokens ?? 0 }, anthropic);
      }
    }
    if (!started || startUsage) {
      started = true;
      const start: MeterEvent = { type: 'start', provider: provider || 'langchain' };
      if (typeof chunk.id === 'string' && chunk.id !== '') start.id = chunk.id;
      const model = meta.model_name ?? meta.model;
      if (typeof model === 'string') start.model = model;
      if (startUsage) start.usage = startUsage;
      out.push(start);
    }
    const content = chunk.content;
    if (typeof content === 'string') {
      if (content !== '') out.push({ type: 'text', text: content });
    } else if (Array.isArray(content)) {
      for (const block of content as Array<Record<string, unknown>>) {
        if (block === null || typeof block !== 'object') continue;
        if (
          (block.type === 'text' || block.type === 'text_delta') &&
          typeof block.text === 'string'
        )
          out.push({ type: 'text', text: block.text });
        else if (block.type === 'thinking' && typeof block.thinking === 'string')
          out.push({ type: 'thinking', text: block.thinking });
        else if (block.type === 'reasoning' && typeof block.reasoning === 'string')
          out.push({ type: 'thinking', text: block.reasoning });
        else if (block.type === 'server_tool_use' && typeof block.name === 'string')
          out.push({ type: 'server_tool', name: block.name });
      }
    }
    // An OpenAI Responses reasoning item: billed, never streamed (see the AI SDK's).
    const reasoning = chunk.additional_kwargs?.reasoning as { type?: unknown } | undefined;
    if (reasoning?.type === 'reasoning') out.push({ type: 'unseen_output' });
    for (const call of chunk.tool_call_chunks ?? []) {
      if (typeof call.args === 'string' && call.args !== '')
        out.push({ type: 'tool_input', json: call.args });
    }
    if (usage && !startUsage) {
      if (provider === 'anthropic' && anthropic) {
        out.push({ type: 'usage', usage: anthropic, final: true });
      } else {
        const rawOpenAI = meta.usage as OpenAIUsageLike | undefined;
        if (rawOpenAI && typeof rawOpenAI.prompt_tokens === 'number') {
          // OpenAI's own usage object, as the raw SDK stream reports it.
          sum = fromOpenAIUsage(rawOpenAI, serviceTier);
        } else {
          const read = usage.input_token_details?.cache_read ?? 0;
          const write = usage.input_token_details?.cache_creation ?? 0;
          const step = normaliseUsage({
            inputTokens: Math.max(0, (usage.input_tokens ?? 0) - read - write),
            outputTokens: usage.output_tokens ?? 0,
            cacheReadTokens: read,
            cacheWrite5mTokens: write,
            reasoningTokens: usage.output_token_details?.reasoning ?? 0,
          });
          sum = addUsage(sum ?? emptyUsage(), step);
          if (serviceTier) sum.serviceTier = serviceTier;
        }
        out.push({ type: 'usage', usage: sum, final: true });
      }
    }
    const reason =
      meta.finish_reason ?? meta.stop_reason ?? chunk.additional_kwargs?.stop_reason ?? undefined;
    if (!stopped && typeof reason === 'string') {
      stopped = true;
      out.push({ type: 'stop', reason });
    }
    return out;
  };
}
