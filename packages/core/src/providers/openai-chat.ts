/**
 * OpenAI Chat Completions: its stream chunks (`object: "chat.completion.chunk"`, and the
 * `{ "error": … }` chunk a stream may end with) and its whole `chat.completion`, as
 * normalised events. Usage comes in the last chunk, with `stream_options.include_usage`.
 */
import type { MeterEvent } from '../meter-event.js';
import { type ForwardTerms, patched, type RequestTerms, unbounded } from '../request-terms.js';
import { fromOpenAIUsage, type OpenAIUsageLike } from '../usage.js';
import type { ProviderAdapter } from './provider.js';
import { type PendingToolCall, toolInput } from './tool-calls.js';

/** The OpenAI chat completion chunk fields tokenmeter reads. */
export interface OpenAIChunk {
  id?: string;
  object?: string;
  model?: string;
  service_tier?: string | null;
  choices?: Array<{
    index?: number;
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      refusal?: string | null;
      tool_calls?: Array<{
        index?: number;
        id?: string | null;
        function?: { name?: string | null; arguments?: string | null } | null;
      }> | null;
    } | null;
    finish_reason?: string | null;
  }>;
  usage?: OpenAIUsageLike | null;
}

/**
 * Maps one OpenAI chunk to normalised events. The first chunk of a stream (`seenStart`
 * false) also yields `start`; the final usage chunk (empty choices) yields `usage`.
 */
export function fromOpenAIChunk(chunk: OpenAIChunk, seenStart: boolean): MeterEvent[] {
  const out: MeterEvent[] = [];
  if (!seenStart) {
    const start: MeterEvent = { type: 'start', provider: 'openai' };
    if (chunk.id) start.id = chunk.id;
    if (chunk.model) start.model = chunk.model;
    out.push(start);
  }
  for (const choice of chunk.choices ?? []) {
    const delta = choice.delta;
    if (delta?.reasoning_content) out.push({ type: 'thinking', text: delta.reasoning_content });
    if (delta?.content) out.push({ type: 'text', text: delta.content });
    if (delta?.refusal) out.push({ type: 'text', text: delta.refusal });
    for (const call of delta?.tool_calls ?? []) {
      const args = call.function?.arguments;
      if (args) out.push({ type: 'tool_input', json: args });
    }
    if (choice.finish_reason) out.push({ type: 'stop', reason: choice.finish_reason });
  }
  if (chunk.usage) {
    out.push({
      type: 'usage',
      usage: fromOpenAIUsage(chunk.usage, chunk.service_tier),
      final: true,
    });
  }
  return out;
}

type OpenAIToolCallDelta = NonNullable<
  NonNullable<NonNullable<OpenAIChunk['choices']>[number]['delta']>['tool_calls']
>[number];

/** Accumulates one OpenAI `tool_calls` delta: the first names the call, the rest add arguments. */
function collectOpenAIToolCall(tools: Map<number, PendingToolCall>, delta: OpenAIToolCallDelta) {
  const index = delta.index ?? 0;
  let call = tools.get(index);
  if (!call) {
    call = { id: '', name: '', json: '' };
    tools.set(index, call);
  }
  if (delta.id) call.id = delta.id;
  if (delta.function?.name) call.name += delta.function.name;
  if (delta.function?.arguments) call.json += delta.function.arguments;
}

/** Every collected call as a complete `tool_call` (at the choice's finish), in index order. */
function completedToolCalls(tools: Map<number, PendingToolCall>): MeterEvent[] {
  const out: MeterEvent[] = [];
  for (const index of [...tools.keys()].sort((a, b) => a - b)) {
    const call = tools.get(index)!;
    if (call.name !== '')
      out.push({ type: 'tool_call', id: call.id, name: call.name, input: toolInput(call.json) });
  }
  tools.clear();
  return out;
}

/** A complete OpenAI chat completion. */
interface OpenAICompletionLike {
  id?: string;
  model?: string;
  service_tier?: string | null;
  choices?: Array<{
    message?: {
      content?: string | null;
      refusal?: string | null;
      tool_calls?: Array<{ function?: { arguments?: string } }> | null;
    } | null;
    finish_reason?: string | null;
  }>;
  usage?: OpenAIUsageLike | null;
}

/** An OpenAI stream's error chunk: `data: {"error": {"message", "type", "code"}}`. */
function errorChunk(chunk: object): MeterEvent[] {
  const error = (chunk as { error: { type?: unknown; code?: unknown; message?: unknown } }).error;
  const errorType =
    typeof error?.type === 'string'
      ? error.type
      : typeof error?.code === 'string'
        ? error.code
        : 'api_error';
  const message = typeof error?.message === 'string' ? error.message : 'upstream error';
  return [{ type: 'error', errorType, message }];
}

const isErrorChunk = (chunk: object) =>
  typeof (chunk as { error?: unknown }).error === 'object' &&
  typeof (chunk as { type?: unknown }).type !== 'string';

/** The OpenAI Chat Completions API. */
// The request side: what a Chat Completions body says about its bill, and the body sent.

/** Chat Completions' fields that raise the bill: `n`, audio, predictions, web search, the tier. */
function readTerms(b: Record<string, unknown>, terms: RequestTerms): RequestTerms {
  // OpenAI caches prompts by itself: any prompt may be billed at a cache-write rate where a
  // model has one (where it has none, the rate is the input rate and nothing changes).
  terms.cacheWrite ??= '5m';
  if (b.n !== undefined && b.n !== null && b.n !== 1) {
    return unbounded(
      terms,
      '"n" above 1 multiplies the output and is not supported on a metered stream; send one request per answer.',
    );
  }
  const modalities = b.modalities;
  if ((Array.isArray(modalities) && modalities.includes('audio')) || b.audio != null) {
    return unbounded(terms, 'audio output has no price in the catalog; request text only.');
  }
  if (b.prediction !== undefined && b.prediction !== null) {
    return unbounded(
      terms,
      '"prediction": rejected prediction tokens are billed beyond max_completion_tokens; send the request without it.',
    );
  }
  if (b.web_search_options !== undefined && b.web_search_options !== null) {
    terms.serverTools.push({ name: 'web_search', type: 'web_search_options' });
  }
  if (typeof b.service_tier === 'string') terms.serviceTier = b.service_tier;
  return terms;
}

/**
 * The body to send: the output limit as reserved, in the field the caller sent (both when
 * both were sent; they were checked equal).
 */
function forward(body: Record<string, unknown>, terms: ForwardTerms): Record<string, unknown> {
  const sent = (field: string) => body[field] !== undefined && body[field] !== null;
  const patch: Record<string, unknown> = {};
  if (sent('max_completion_tokens')) patch.max_completion_tokens = terms.maxTokens;
  if (!sent('max_completion_tokens') || sent('max_tokens')) patch.max_tokens = terms.maxTokens;
  return patched(body, patch);
}

export const openaiChat: ProviderAdapter = {
  name: 'openai',
  requests: { tokens: 'openai', terms: readTerms, forward },
  detect: (chunk) =>
    (chunk as { object?: unknown }).object === 'chat.completion.chunk' || isErrorChunk(chunk),
  translator() {
    let seenStart = false;
    // Tool calls being streamed, by tool_calls index.
    let tools: Map<number, PendingToolCall> | undefined;
    return (raw) => {
      if ((raw as { object?: unknown }).object !== 'chat.completion.chunk') {
        return isErrorChunk(raw) ? errorChunk(raw) : [];
      }
      const chunk = raw as OpenAIChunk;
      let events = fromOpenAIChunk(chunk, seenStart);
      seenStart = true;
      for (const choice of chunk.choices ?? []) {
        for (const call of choice.delta?.tool_calls ?? []) {
          tools ??= new Map();
          collectOpenAIToolCall(tools, call);
        }
        if (choice.finish_reason && tools?.size) events = [...completedToolCalls(tools), ...events];
      }
      return events;
    };
  },
  response(body) {
    if ((body as { object?: unknown }).object !== 'chat.completion') return undefined;
    const out: MeterEvent[] = [];
    const c = body as OpenAICompletionLike;
    const start: MeterEvent = { type: 'start', provider: 'openai' };
    if (c.id) start.id = c.id;
    if (c.model) start.model = c.model;
    out.push(start);
    let stop: string | undefined;
    for (const choice of c.choices ?? []) {
      const message = choice.message;
      if (message?.content) out.push({ type: 'text', text: message.content });
      if (message?.refusal) out.push({ type: 'text', text: message.refusal });
      for (const call of message?.tool_calls ?? []) {
        if (call.function?.arguments)
          out.push({ type: 'tool_input', json: call.function.arguments });
      }
      stop ??= choice.finish_reason ?? undefined;
    }
    if (c.usage)
      out.push({ type: 'usage', usage: fromOpenAIUsage(c.usage, c.service_tier), final: true });
    if (stop) out.push({ type: 'stop', reason: stop });
    return out;
  },
};
