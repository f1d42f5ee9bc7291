/**
 * Anthropic Messages: its stream events (`message_start` … `message_stop`, `error`) and its
 * whole `Message`, as normalised events. `message_delta.usage` is cumulative: merged into
 * what `message_start` said, never added.
 */
import type { MeterEvent } from '../meter-event.js';
import {
  CLIENT_TOOLS,
  DATED_TYPE,
  DEFAULT_SERVER_TOOL_LIMITS,
  describeValue,
  type ForwardTerms,
  patched,
  type RequestTerms,
  type ServerToolRequest,
  unbounded,
} from '../request-terms.js';
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
// The request side: what a Messages body says about its bill, and the body sent.

/** Anthropic's fields that raise the bill: fast mode, data residency, thinking, server tools. */
function readTerms(b: Record<string, unknown>, terms: RequestTerms): RequestTerms {
  if (b.speed !== undefined && b.speed !== null) {
    if (b.speed !== 'standard' && b.speed !== 'fast') {
      return unbounded(
        terms,
        `"speed": ${JSON.stringify(b.speed)} has no price tokenmeter knows; use "standard" or "fast".`,
      );
    }
    if (b.speed === 'fast') terms.speed = 'fast';
  }
  if (b.inference_geo !== undefined && b.inference_geo !== null) {
    if (typeof b.inference_geo !== 'string') {
      return { ...terms, problem: '"inference_geo" must be a string ("global", "us").' };
    }
    terms.inferenceGeo = b.inference_geo;
  }
  // 'auto' (the default) may run on Priority Tier capacity an organisation committed to;
  // that is a contract price, not a published one (see the README).
  if (typeof b.service_tier === 'string' && !ANTHROPIC_TIERS.has(b.service_tier)) {
    return {
      ...terms,
      problem: `"service_tier" must be "auto" or "standard_only", got ${describeValue(b.service_tier)}.`,
    };
  }
  if (b.thinking !== undefined && b.thinking !== null) {
    const thinking = b.thinking as { type?: unknown; budget_tokens?: unknown };
    if (
      typeof thinking !== 'object' ||
      Array.isArray(thinking) ||
      typeof thinking.type !== 'string'
    ) {
      return { ...terms, problem: '"thinking" must be an object with a "type".' };
    }
    if (thinking.type === 'enabled') {
      const budget = thinking.budget_tokens;
      if (!Number.isSafeInteger(budget) || (budget as number) < 1) {
        return {
          ...terms,
          problem: '"thinking.budget_tokens" must be a whole number ≥ 1 when thinking is enabled.',
        };
      }
      terms.thinkingBudget = budget as number;
    }
  }
  if (Array.isArray(b.mcp_servers) && b.mcp_servers.length > 0) {
    return unbounded(
      terms,
      '"mcp_servers": results of remote MCP tools are billed as input with no limit tokenmeter can reserve; call the tools from your server instead.',
    );
  }
  if (Array.isArray(b.tools)) {
    for (const tool of b.tools) {
      if (typeof tool !== 'object' || tool === null) continue;
      const t = tool as Record<string, unknown>;
      const type = t.type;
      if (typeof type !== 'string' || type === 'custom' || t.input_schema !== undefined) continue;
      if (!DATED_TYPE.test(type) || CLIENT_TOOLS.test(type)) continue;
      const server: ServerToolRequest = { name: type.replace(DATED_TYPE, ''), type };
      for (const [field, key] of [
        ['max_uses', 'maxUses'],
        ['max_content_tokens', 'maxContentTokens'],
      ] as const) {
        const value = t[field];
        if (value === undefined || value === null) continue;
        if (!Number.isSafeInteger(value) || (value as number) < 1) {
          return { ...terms, problem: `tools: "${field}" of ${type} must be a whole number ≥ 1.` };
        }
        server[key] = value as number;
      }
      terms.serverTools.push(server);
    }
  }
  return terms;
}

const ANTHROPIC_TIERS = new Set(['auto', 'standard_only']);

/** Anthropic server tools that take `max_uses` (and, for web fetch, `max_content_tokens`). */
const LIMITED_TOOLS = /^(web_search|web_fetch)_\d{8}$/;

/**
 * The body to send: `max_tokens` as reserved, a thinking budget lowered to fit under it
 * (keeping the answer's share, at least 1,024), and `max_uses` / `max_content_tokens`
 * written into web search and web fetch tools that set none, at what was reserved for them.
 */
function forward(body: Record<string, unknown>, terms: ForwardTerms): Record<string, unknown> {
  const patch: Record<string, unknown> = { max_tokens: terms.maxTokens };
  const asked = body.max_tokens;
  const thinking = body.thinking as { type?: unknown; budget_tokens?: unknown } | undefined;
  if (
    thinking?.type === 'enabled' &&
    typeof thinking.budget_tokens === 'number' &&
    thinking.budget_tokens >= terms.maxTokens
  ) {
    const answer = typeof asked === 'number' ? Math.max(0, asked - thinking.budget_tokens) : 0;
    const budget = Math.max(1_024, Math.min(terms.maxTokens - 1, terms.maxTokens - answer));
    patch.thinking = { ...thinking, budget_tokens: budget };
  }
  const limits = terms.serverTools ?? DEFAULT_SERVER_TOOL_LIMITS;
  if (Array.isArray(body.tools)) {
    let toolsChanged = false;
    const tools = body.tools.map((tool: unknown) => {
      const t = tool as Record<string, unknown>;
      if (typeof t?.type !== 'string' || !LIMITED_TOOLS.test(t.type)) return tool;
      const limit = limits[t.type.replace(DATED_TYPE, '')];
      if (!limit) return tool;
      const bounded: Record<string, unknown> = { ...t };
      if (t.max_uses === undefined || t.max_uses === null) bounded.max_uses = limit.defaultMaxUses;
      if (
        t.type.startsWith('web_fetch_') &&
        (t.max_content_tokens === undefined || t.max_content_tokens === null)
      ) {
        bounded.max_content_tokens = limit.inputTokensPerUse;
      }
      if (Object.keys(bounded).length === Object.keys(t).length) return tool;
      toolsChanged = true;
      return bounded;
    });
    if (toolsChanged) patch.tools = tools;
  }
  return patched(body, patch);
}

export const anthropicMessages: ProviderAdapter = {
  name: 'anthropic',
  requests: { tokens: 'anthropic', terms: readTerms, forward },
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
