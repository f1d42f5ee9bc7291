/**
 * Provider stream adapters: Anthropic Messages stream events and OpenAI chat completion
 * chunks → one small set of normalised `MeterEvent`s that the meter, the middleware and
 * telemetry understand. Unknown event types map to nothing (tolerated, never thrown) once
 * the stream's format is known; a first chunk of no known format is an error.
 */
import { TokenmeterError } from './errors.js';
import {
  createAiSdkTranslator,
  createLangChainTranslator,
  isAiSdkPartType,
  isLangChainChunk,
} from './sources.js';
import {
  type AnthropicUsageLike,
  fromAnthropicUsage,
  fromOpenAIUsage,
  type OpenAIUsageLike,
  type Usage,
} from './usage.js';

/** A normalised stream event. `usage` values are cumulative totals: overwrite, never add. */
export type MeterEvent =
  | {
      type: 'start';
      provider: string;
      /** Provider response id (`msg_…`, `chatcmpl-…`). */
      id?: string;
      /** Model the provider says served the request. */
      model?: string;
      /** Usage known at the start (Anthropic `message_start`: input and cache tokens). */
      usage?: Usage;
    }
  | { type: 'text'; text: string }
  | { type: 'thinking'; text: string }
  | { type: 'tool_input'; json: string }
  /**
   * A complete call of a tool the app runs: its id, name and parsed input (the raw text
   * when it is not JSON), for protocols that show tool calls. Never counted: its input was
   * counted as `tool_input` while it streamed.
   */
  | { type: 'tool_call'; id: string; name: string; input: unknown }
  /** A server tool the provider runs (Anthropic `server_tool_use`: `web_search`, …): billed per use. */
  | { type: 'server_tool'; name: string }
  /**
   * The source made a provider request (the AI SDK says so at each step): its `max_tokens`
   * as sent and an upper bound of its prompt. The first is the request admitted; each
   * later one is another billed call, whose usage events count on their own (the meter
   * adds the calls up).
   */
  | { type: 'request'; maxTokens?: number; inputTokens?: number }
  /** Provider-reported cumulative usage (of the current call); `final` when it is the provider's last word. */
  | { type: 'usage'; usage: Usage; final: boolean }
  | { type: 'stop'; reason: string }
  | { type: 'error'; errorType: string; message: string };

export type MeterEventType = MeterEvent['type'];

/** The Anthropic raw stream events tokenmeter reads (shape of the SDK's RawMessageStreamEvent). */
export type AnthropicStreamEvent =
  | {
      type: 'message_start';
      message: { id?: string; model?: string; usage?: AnthropicUsageLike | null };
    }
  | {
      type: 'content_block_start';
      index: number;
      content_block: { type: string; text?: string; thinking?: string; name?: string };
    }
  | {
      type: 'content_block_delta';
      index: number;
      delta: { type: string; text?: string; thinking?: string; partial_json?: string };
    }
  | { type: 'content_block_stop'; index: number }
  | {
      type: 'message_delta';
      delta: { stop_reason?: string | null };
      usage?: AnthropicUsageLike | null;
    }
  | { type: 'message_stop' }
  | { type: 'ping' }
  | { type: 'error'; error: { type?: string; message?: string } }
  | { type: string; [key: string]: unknown };

/**
 * Maps one Anthropic stream event to normalised events, merging usage into `previous`
 * (the last cumulative usage seen) because `message_delta` omits what `message_start`
 * said about the cache TTL split and service tier.
 */
export function fromAnthropicEvent(event: AnthropicStreamEvent, previous?: Usage): MeterEvent[] {
  switch (event.type) {
    case 'message_start': {
      const message = (event as Extract<AnthropicStreamEvent, { type: 'message_start' }>).message;
      const start: MeterEvent = { type: 'start', provider: 'anthropic' };
      if (message?.id) start.id = message.id;
      if (message?.model) start.model = message.model;
      if (message?.usage) start.usage = fromAnthropicUsage(message.usage);
      return [start];
    }
    case 'content_block_start': {
      const block = (event as Extract<AnthropicStreamEvent, { type: 'content_block_start' }>)
        .content_block;
      // Blocks may start with text already in them.
      if (block?.type === 'text' && block.text) return [{ type: 'text', text: block.text }];
      if (block?.type === 'thinking' && block.thinking)
        return [{ type: 'thinking', text: block.thinking }];
      if (block?.type === 'server_tool_use' && typeof block.name === 'string')
        return [{ type: 'server_tool', name: block.name }];
      return [];
    }
    case 'content_block_delta': {
      const delta = (event as Extract<AnthropicStreamEvent, { type: 'content_block_delta' }>).delta;
      switch (delta?.type) {
        case 'text_delta':
          return delta.text ? [{ type: 'text', text: delta.text }] : [];
        case 'thinking_delta':
          return delta.thinking ? [{ type: 'thinking', text: delta.thinking }] : [];
        case 'input_json_delta':
          return delta.partial_json ? [{ type: 'tool_input', json: delta.partial_json }] : [];
        default:
          return []; // signature_delta, citations_delta, future delta types
      }
    }
    case 'message_delta': {
      const e = event as Extract<AnthropicStreamEvent, { type: 'message_delta' }>;
      const out: MeterEvent[] = [];
      if (e.usage)
        out.push({ type: 'usage', usage: fromAnthropicUsage(e.usage, previous), final: true });
      if (e.delta?.stop_reason) out.push({ type: 'stop', reason: e.delta.stop_reason });
      return out;
    }
    case 'error': {
      const e = event as Extract<AnthropicStreamEvent, { type: 'error' }>;
      return [
        {
          type: 'error',
          errorType: e.error?.type ?? 'api_error',
          message: e.error?.message ?? 'upstream error event',
        },
      ];
    }
    default:
      return []; // content_block_stop, message_stop, ping and unknown types
  }
}

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

/**
 * A stateful translator for a stream whose provider is recognised from its first event:
 * Anthropic events (`message_start`, …), OpenAI chunks (`object: "chat.completion.chunk"`),
 * AI SDK `fullStream` parts (`text-delta`, `finish-step`, …), LangChain.js `AIMessageChunk`s,
 * or events already normalised.
 *
 * @example
 * const translate = createEventTranslator();
 * for await (const raw of client.messages.create({ ...params, stream: true }, { signal })) {
 *   for (const event of translate(raw)) meter.observe(event);
 * }
 */
export function createEventTranslator(): (raw: unknown) => MeterEvent[] {
  let usage: Usage | undefined;
  /** The stream's format was recognised: later chunks it does not know are skipped. */
  let known = false;
  let seenOpenAIStart = false;
  let aiSdk: ((part: unknown) => MeterEvent[]) | undefined;
  let langChain: ((chunk: unknown) => MeterEvent[]) | undefined;
  // Tool calls being streamed, by content block (Anthropic) or tool_calls index (OpenAI).
  let tools: Map<number, PendingToolCall> | undefined;
  return (raw) => {
    if (typeof raw !== 'object' || raw === null) {
      if (!known) throw unrecognized(raw);
      return [];
    }
    const candidate = raw as { type?: unknown; object?: unknown };
    let events: MeterEvent[];
    if (candidate.object === 'chat.completion.chunk') {
      events = fromOpenAIChunk(raw as OpenAIChunk, seenOpenAIStart);
      seenOpenAIStart = true;
      for (const choice of (raw as OpenAIChunk).choices ?? []) {
        for (const call of choice.delta?.tool_calls ?? []) {
          tools ??= new Map();
          collectOpenAIToolCall(tools, call);
        }
        if (choice.finish_reason && tools?.size) events = [...completedToolCalls(tools), ...events];
      }
    } else if (typeof candidate.type === 'string' && isAiSdkPartType(candidate.type)) {
      aiSdk ??= createAiSdkTranslator();
      events = aiSdk(raw);
    } else if (langChain || isLangChainChunk(raw)) {
      langChain ??= createLangChainTranslator();
      events = langChain(raw);
    } else if (
      typeof candidate.type === 'string' &&
      (NORMALISED.has(candidate.type) || (candidate.type === 'error' && 'errorType' in raw))
    ) {
      // The AI SDK's own `{ type: 'start' }` (no provider) says nothing ran yet: not an event.
      if (
        candidate.type === 'start' &&
        typeof (raw as { provider?: unknown }).provider !== 'string'
      )
        return [];
      events = [raw as MeterEvent];
    } else if (
      typeof candidate.type === 'string' &&
      (known || ANTHROPIC_EVENTS.has(candidate.type))
    ) {
      events = fromAnthropicEvent(raw as AnthropicStreamEvent, usage);
      if (candidate.type === 'content_block_start' || tools?.size) {
        tools ??= new Map();
        const call = anthropicToolCall(tools, raw as AnthropicStreamEvent);
        if (call) events = [...events, call];
      }
    } else if (typeof (raw as { error?: unknown }).error === 'object') {
      // An OpenAI stream's error chunk: `data: {"error": {"message", "type", "code"}}`.
      const error = (raw as { error: { type?: unknown; code?: unknown; message?: unknown } }).error;
      const errorType =
        typeof error?.type === 'string'
          ? error.type
          : typeof error?.code === 'string'
            ? error.code
            : 'api_error';
      const message = typeof error?.message === 'string' ? error.message : 'upstream error';
      events = [{ type: 'error', errorType, message }];
    } else {
      if (!known) throw unrecognized(raw);
      return [];
    }
    known = true;
    for (const e of events) {
      if (e.type === 'usage') usage = e.usage;
      else if (e.type === 'start' && e.usage) usage = e.usage;
    }
    return events;
  };
}

/** Anthropic Messages stream events: one of them opens any Anthropic stream. */
const ANTHROPIC_EVENTS = new Set([
  'message_start',
  'content_block_start',
  'content_block_delta',
  'content_block_stop',
  'message_delta',
  'message_stop',
  'ping',
  'error',
]);

/**
 * A first chunk no format matches: metering it as nothing would bill an answer the
 * provider charged for as if it were empty, so the stream fails instead.
 */
function unrecognized(raw: unknown): TokenmeterError {
  const shape =
    typeof raw === 'object' && raw !== null
      ? `an object with keys ${Object.keys(raw).slice(0, 6).join(', ') || '(none)'}`
      : typeof raw;
  return new TokenmeterError(
    'unrecognized_stream',
    `The stream's first chunk is ${shape}: not an Anthropic Messages event, an OpenAI Chat Completions chunk, an AI SDK part, a LangChain.js chunk or a normalised MeterEvent, so it cannot be metered. Hand over the provider's raw stream (see "Which stream to hand over").`,
  );
}

interface PendingToolCall {
  id: string;
  name: string;
  json: string;
}

/** Parsed tool input: JSON as an object, anything else as the text it is. */
function toolInput(json: string): unknown {
  if (json === '') return {};
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}

/**
 * Follows an Anthropic `tool_use` block (a tool the app runs) through its start, input
 * deltas and stop; returns the complete call at its stop.
 */
function anthropicToolCall(
  tools: Map<number, PendingToolCall>,
  event: AnthropicStreamEvent,
): MeterEvent | undefined {
  const e = event as {
    type: string;
    index?: number;
    content_block?: { type?: string; id?: unknown; name?: unknown };
    delta?: { type?: string; partial_json?: string };
  };
  if (typeof e.index !== 'number') return undefined;
  if (e.type === 'content_block_start') {
    const block = e.content_block;
    if (
      block?.type === 'tool_use' &&
      typeof block.id === 'string' &&
      typeof block.name === 'string'
    )
      tools.set(e.index, { id: block.id, name: block.name, json: '' });
    return undefined;
  }
  const call = tools.get(e.index);
  if (!call) return undefined;
  if (e.type === 'content_block_delta' && e.delta?.type === 'input_json_delta') {
    call.json += e.delta.partial_json ?? '';
    return undefined;
  }
  if (e.type !== 'content_block_stop') return undefined;
  tools.delete(e.index);
  return { type: 'tool_call', id: call.id, name: call.name, input: toolInput(call.json) };
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

/** A complete Anthropic Message, as its `content` blocks have them. */
interface AnthropicMessageLike {
  id?: string;
  model?: string;
  content?: Array<{
    type?: string;
    text?: string;
    thinking?: string;
    input?: unknown;
    name?: string;
  }>;
  stop_reason?: string | null;
  usage?: AnthropicUsageLike | null;
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

/**
 * A complete (non-streamed) answer as the events its stream would have given: an
 * Anthropic Message (`type: "message"`) or an OpenAI chat completion
 * (`object: "chat.completion"`). Anything else gives no events.
 *
 * @example
 * for (const event of responseEvents(await response.json())) meter.observe(event);
 */
export function responseEvents(body: unknown): MeterEvent[] {
  if (typeof body !== 'object' || body === null) return [];
  const b = body as { type?: unknown; object?: unknown };
  const out: MeterEvent[] = [];
  if (b.type === 'message') {
    const m = body as AnthropicMessageLike;
    const usage = m.usage ? fromAnthropicUsage(m.usage) : undefined;
    const start: MeterEvent = { type: 'start', provider: 'anthropic' };
    if (m.id) start.id = m.id;
    if (m.model) start.model = m.model;
    out.push(start);
    for (const block of m.content ?? []) {
      if (block.type === 'text' && block.text) out.push({ type: 'text', text: block.text });
      else if (block.type === 'thinking' && block.thinking)
        out.push({ type: 'thinking', text: block.thinking });
      else if (block.type === 'tool_use' || block.type === 'server_tool_use') {
        if (block.type === 'server_tool_use' && typeof block.name === 'string')
          out.push({ type: 'server_tool', name: block.name });
        out.push({ type: 'tool_input', json: JSON.stringify(block.input ?? {}) });
      }
    }
    if (usage) out.push({ type: 'usage', usage, final: true });
    if (m.stop_reason) out.push({ type: 'stop', reason: m.stop_reason });
    return out;
  }
  if (b.object === 'chat.completion') {
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
  }
  return out;
}

const NORMALISED = new Set<string>([
  'start',
  'text',
  'thinking',
  'tool_input',
  'tool_call',
  'request',
  'server_tool',
  'usage',
  'stop',
]);
