/**
 * Anthropic Messages: its stream events (`message_start` … `message_stop`, `error`) and its
 * whole `Message`, as normalised events. `message_delta.usage` is cumulative: merged into
 * what `message_start` said, never added.
 */
import type { MeterEvent } from '../meter-event.js';
import { type AnthropicUsageLike, fromAnthropicUsage, type Usage } from '../usage.js';
import type { ProviderAdapter } from './provider.js';
import { type PendingToolCall, toolInput } from './tool-calls.js';

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

/** The Anthropic Messages API. */
export const anthropicMessages: ProviderAdapter = {
  name: 'anthropic',
  detect: (chunk) => {
    const type = (chunk as { type?: unknown }).type;
    // A normalised error event (`errorType`) is not Anthropic's.
    return typeof type === 'string' && ANTHROPIC_EVENTS.has(type) && !('errorType' in chunk);
  },
  translator() {
    let usage: Usage | undefined;
    // Tool calls being streamed, by content block.
    let tools: Map<number, PendingToolCall> | undefined;
    return (chunk) => {
      const event = chunk as AnthropicStreamEvent;
      if (typeof event.type !== 'string') return [];
      let events = fromAnthropicEvent(event, usage);
      if (event.type === 'content_block_start' || tools?.size) {
        tools ??= new Map();
        const call = anthropicToolCall(tools, event);
        if (call) events = [...events, call];
      }
      for (const e of events) {
        if (e.type === 'usage') usage = e.usage;
        else if (e.type === 'start' && e.usage) usage = e.usage;
      }
      return events;
    };
  },
  response(body) {
    if ((body as { type?: unknown }).type !== 'message') return undefined;
    const out: MeterEvent[] = [];
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
  },
};
