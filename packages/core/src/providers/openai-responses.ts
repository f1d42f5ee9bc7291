/**
 * The OpenAI Responses API (`POST /v1/responses`): its stream events (`response.created` …
 * `response.completed` / `.incomplete` / `.failed`, and `error`) and its whole `Response`,
 * as normalised events; and its requests: `max_output_tokens`, `max_tool_calls`, built-in
 * tools, service tiers. Usage arrives once, at the end, inside the final response; reasoning
 * is never streamed (a summary is not the reasoning), so a call cut before its end cannot
 * know what its reasoning cost: the meter is told (`unseen_output`) and charges the bound.
 */
import type { MeterEvent } from '../meter-event.js';
import {
  DEFAULT_SERVER_TOOL_LIMITS,
  describeValue,
  type ForwardTerms,
  patched,
  type RequestTerms,
  unbounded,
} from '../request-terms.js';
import { fromOpenAIUsage, type Usage } from '../usage.js';
import type { ProviderAdapter } from './provider.js';
import { toolInput } from './tool-calls.js';

/** The Responses usage object (`ResponseUsage`): input includes cached, output includes reasoning. */
export interface ResponsesUsageLike {
  input_tokens?: number | null;
  input_tokens_details?: {
    cached_tokens?: number | null;
    cache_write_tokens?: number | null;
  } | null;
  output_tokens?: number | null;
  output_tokens_details?: { reasoning_tokens?: number | null } | null;
  total_tokens?: number | null;
}

/** An output item of a Response, as far as the bill goes. */
interface OutputItemLike {
  type?: string;
  id?: string;
  call_id?: string;
  name?: string;
  arguments?: string;
  input?: string;
  content?: Array<{ type?: string; text?: string; refusal?: string }>;
}

/** The `Response` object: whole, or inside the stream's first and last events. */
export interface ResponseLike {
  id?: string;
  object?: string;
  model?: string;
  status?: string;
  service_tier?: string | null;
  incomplete_details?: { reason?: string | null } | null;
  error?: { code?: string | null; message?: string | null } | null;
  output?: OutputItemLike[] | null;
  usage?: ResponsesUsageLike | null;
}

/**
 * Responses usage → `Usage`, with the built-in tool calls the response made: web searches
 * are billed per call and the usage object does not count them.
 */
export function fromResponsesUsage(response: ResponseLike): Usage {
  const raw = response.usage ?? {};
  const usage = fromOpenAIUsage(
    {
      prompt_tokens: raw.input_tokens ?? null,
      completion_tokens: raw.output_tokens ?? null,
      prompt_tokens_details: raw.input_tokens_details ?? null,
      completion_tokens_details: raw.output_tokens_details ?? null,
    },
    response.service_tier,
  );
  usage.webSearchRequests = (response.output ?? []).filter(
    (item) => item?.type === 'web_search_call',
  ).length;
  return usage;
}

/**
 * The stop reason of a finished response, in Chat Completions' words (which `finishReason`
 * maps): a function call ends in `tool_calls`, an output limit in `length`.
 */
function stopReason(response: ResponseLike): string {
  if (response.status === 'incomplete') {
    const reason = response.incomplete_details?.reason;
    return reason === 'max_output_tokens' ? 'length' : (reason ?? 'incomplete');
  }
  if (response.status === 'failed') return 'error';
  const calls = (response.output ?? []).some(
    (item) => item?.type === 'function_call' || item?.type === 'custom_tool_call',
  );
  return calls ? 'tool_calls' : 'stop';
}

/** Built-in tools whose calls the provider runs and bills; the meter counts them. */
const SERVER_TOOL_ITEMS: Readonly<Record<string, string>> = {
  web_search_call: 'web_search',
  file_search_call: 'file_search',
};

/** A completed client tool call (a function or a custom tool), for protocols that show calls. */
function toolCall(item: OutputItemLike): MeterEvent | undefined {
  if (item.type === 'function_call') {
    return {
      type: 'tool_call',
      id: item.call_id ?? item.id ?? '',
      name: item.name ?? '',
      input: toolInput(item.arguments ?? ''),
    };
  }
  if (item.type === 'custom_tool_call') {
    return {
      type: 'tool_call',
      id: item.call_id ?? item.id ?? '',
      name: item.name ?? '',
      input: item.input ?? '',
    };
  }
  return undefined;
}

/** The events an output item gives when it starts: a reasoning or server tool call. */
function itemStarted(item: OutputItemLike | undefined): MeterEvent[] {
  if (!item) return [];
  if (item.type === 'reasoning') return [{ type: 'unseen_output' }];
  const server = item.type === undefined ? undefined : SERVER_TOOL_ITEMS[item.type];
  return server ? [{ type: 'server_tool', name: server }] : [];
}

/** The end of a response: its usage (the provider's last word) and why it stopped. */
function ended(response: ResponseLike | undefined): MeterEvent[] {
  if (!response) return [];
  const out: MeterEvent[] = [];
  if (response.status === 'failed') {
    out.push({
      type: 'error',
      errorType: response.error?.code ?? 'response_failed',
      message: response.error?.message ?? 'The response failed.',
    });
  }
  if (response.usage) out.push({ type: 'usage', usage: fromResponsesUsage(response), final: true });
  if (response.status !== 'failed') out.push({ type: 'stop', reason: stopReason(response) });
  return out;
}

function started(response: ResponseLike | undefined): MeterEvent {
  const start: MeterEvent = { type: 'start', provider: 'openai' };
  if (response?.id) start.id = response.id;
  if (response?.model) start.model = response.model;
  return start;
}

/** A Responses stream event (the SDK's `ResponseStreamEvent`), the fields tokenmeter reads. */
interface StreamEventLike {
  type: string;
  delta?: string;
  response?: ResponseLike;
  item?: OutputItemLike;
  code?: string | null;
  message?: string;
}

/** Maps one Responses stream event to normalised events. */
function fromResponsesEvent(event: StreamEventLike): MeterEvent[] {
  switch (event.type) {
    case 'response.output_text.delta':
    case 'response.refusal.delta':
      return event.delta ? [{ type: 'text', text: event.delta }] : [];
    case 'response.reasoning_summary_text.delta':
    case 'response.reasoning_text.delta':
      return event.delta ? [{ type: 'thinking', text: event.delta }] : [];
    case 'response.function_call_arguments.delta':
    case 'response.custom_tool_call_input.delta':
      return event.delta ? [{ type: 'tool_input', json: event.delta }] : [];
    case 'response.output_item.added':
      return itemStarted(event.item);
    case 'response.output_item.done': {
      const call = event.item ? toolCall(event.item) : undefined;
      return call ? [call] : [];
    }
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed':
      return ended(event.response);
    case 'error':
      return [
        {
          type: 'error',
          errorType: event.code ?? 'api_error',
          message: event.message ?? 'upstream error',
        },
      ];
    default:
      return [];
  }
}

/** A first chunk of a Responses stream: `response.*` events, numbered. */
function isResponsesEvent(chunk: object): boolean {
  const c = chunk as { type?: unknown; sequence_number?: unknown };
  return (
    typeof c.type === 'string' &&
    (c.type.startsWith('response.') ||
      (c.type === 'error' && typeof c.sequence_number === 'number'))
  );
}

/** The events of a whole (non-streamed) `Response`. */
function responseBodyEvents(body: object): MeterEvent[] | undefined {
  const response = body as ResponseLike;
  if (response.object !== 'response') return undefined;
  const out: MeterEvent[] = [started(response)];
  for (const item of response.output ?? []) {
    if (!item) continue;
    out.push(...itemStarted(item));
    for (const part of item.content ?? []) {
      if (part?.type === 'output_text' && part.text) out.push({ type: 'text', text: part.text });
      if (part?.type === 'refusal' && part.refusal) out.push({ type: 'text', text: part.refusal });
    }
    if (item.type === 'function_call' && item.arguments)
      out.push({ type: 'tool_input', json: item.arguments });
    if (item.type === 'custom_tool_call' && item.input)
      out.push({ type: 'tool_input', json: item.input });
  }
  out.push(...ended(response));
  return out;
}

// The request side: what a Responses body says about its bill, and the body sent.

/** Built-in tools the caller runs itself (no fee; their results come back as input). */
const CLIENT_TOOL_TYPES = new Set([
  'function',
  'custom',
  'local_shell',
  'shell',
  'apply_patch',
  'computer_use_preview',
  'computer',
]);

/** The fields that raise a Responses bill: built-in tools, stored context, the tier. */
function readTerms(b: Record<string, unknown>, terms: RequestTerms): RequestTerms {
  // OpenAI caches prompts by itself (see Chat Completions).
  terms.cacheWrite ??= '5m';
  for (const field of ['max_output_tokens', 'max_tool_calls'] as const) {
    const value = b[field];
    if (
      value !== undefined &&
      value !== null &&
      (!Number.isSafeInteger(value) || (value as number) < 1)
    ) {
      return {
        ...terms,
        problem: `"${field}" must be a whole number ≥ 1, got ${describeValue(value)}.`,
      };
    }
  }
  if (typeof b.service_tier === 'string') terms.serviceTier = b.service_tier;
  const refused = readTools(b, terms);
  return refused === undefined ? terms : unbounded(terms, refused);
}

/**
 * Every tool the request offers (in `tools`, and in `additional_tools` input items, through
 * namespaces): web search is bounded by `max_tool_calls`; a built-in tool with a fee or
 * results no limit holds is refused, with what to do instead.
 */
function readTools(b: Record<string, unknown>, terms: RequestTerms): string | undefined {
  const maxCalls = typeof b.max_tool_calls === 'number' ? b.max_tool_calls : undefined;
  let searches = 0;
  for (const tool of offeredTools(b)) {
    const type = typeof tool.type === 'string' ? tool.type : 'function';
    if (CLIENT_TOOL_TYPES.has(type)) continue;
    if (type === 'web_search' || /^web_search_\d{4}_\d{2}_\d{2}$/.test(type)) {
      if (searches++ === 0) {
        terms.serverTools.push({
          name: 'web_search',
          type,
          ...(maxCalls === undefined ? {} : { maxUses: maxCalls }),
        });
      }
      continue;
    }
    return REFUSED_TOOLS[type.replace(/_\d{4}_\d{2}_\d{2}$/, '')] ?? unknownTool(type);
  }
  return undefined;
}

const REFUSED_TOOLS: Readonly<Record<string, string>> = {
  web_search_preview:
    'the "web_search_preview" tool bills up to $25 per 1,000 calls and tokenmeter prices OpenAI web search at the "web_search" tool\'s rate: send { "type": "web_search" } instead.',
  file_search:
    'the "file_search" tool bills per call and its results as input with no price in the catalog: search your files from your server instead.',
  code_interpreter:
    'the "code_interpreter" tool bills its containers by the session, which the catalog does not price: run code from your server instead.',
  image_generation:
    'the "image_generation" tool bills image tokens the catalog does not price: call the Images API instead.',
  mcp: 'remote MCP tools ("mcp") return results billed as input with no limit tokenmeter can reserve: call the tools from your server instead.',
};

function unknownTool(type: string): string {
  return `the ${JSON.stringify(type)} tool may be billed in ways tokenmeter cannot bound before the call; remove it or run it from your server.`;
}

/** The tools a Responses request offers, wherever it offers them. */
function offeredTools(b: Record<string, unknown>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const visit = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const tool of list) {
      if (typeof tool !== 'object' || tool === null || Array.isArray(tool)) continue;
      const t = tool as Record<string, unknown>;
      if (t.type === 'namespace') visit(t.tools);
      else out.push(t);
    }
  };
  visit(b.tools);
  if (Array.isArray(b.input)) {
    for (const item of b.input) {
      const i = item as { type?: unknown; tools?: unknown } | null;
      if (i?.type === 'additional_tools') visit(i.tools);
    }
  }
  return out;
}

/**
 * The body to send: `max_output_tokens` as reserved and, when web search is offered without
 * a `max_tool_calls`, the searches that were reserved for it (a limit the caller set was
 * reserved as set).
 */
function forward(body: Record<string, unknown>, terms: ForwardTerms): Record<string, unknown> {
  const patch: Record<string, unknown> = { max_output_tokens: terms.maxTokens };
  const search = (terms.serverTools ?? DEFAULT_SERVER_TOOL_LIMITS).web_search;
  const asked = body.max_tool_calls;
  if (search && (asked === undefined || asked === null) && offersWebSearch(body)) {
    patch.max_tool_calls = search.defaultMaxUses;
  }
  return patched(body, patch);
}

function offersWebSearch(body: Record<string, unknown>): boolean {
  return offeredTools(body).some(
    (tool) => typeof tool.type === 'string' && tool.type.startsWith('web_search'),
  );
}

export const openaiResponses: ProviderAdapter = {
  name: 'openai-responses',
  provider: 'openai',
  requests: {
    tokens: 'openai',
    terms: readTerms,
    forward,
    outputLimit: 'optional',
    // The API refuses a max_output_tokens below 16.
    minOutputTokens: 16,
  },
  detect: isResponsesEvent,
  translator() {
    let seenStart = false;
    return (raw) => {
      const event = raw as StreamEventLike;
      if (typeof event.type !== 'string') return [];
      const events = fromResponsesEvent(event);
      if (seenStart) return events;
      seenStart = true;
      return [started(event.response), ...events];
    };
  },
  response: responseBodyEvents,
};
