// The objects of the Responses API shared by its stream and its complete answer: the output
// items (reasoning, message, function_call), the Response envelope that echoes the request's
// settings, and its usage. The plan's blocks map onto output items; reasoning that is billed
// but not summarised is one more item, first, with no block behind it.

import { openaiToolCallId, responseId, responseItemId } from './ids.js';
import type { OutputPlan } from './plan.js';
import type { ResponseContext } from './protocol.js';

/** An output item: a plan block, or (`block` -1) the unseen reasoning. */
export interface OutputSlot {
  kind: 'reasoning' | 'message' | 'function_call';
  block: number;
}

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';

/** The output items of a plan, in order. */
export function outputSlots(plan: OutputPlan): OutputSlot[] {
  const slots: OutputSlot[] = [];
  // Hidden reasoning still shows as an item with an empty summary, as the real API sends it.
  if (plan.reasoningTokens > 0) slots.push({ kind: 'reasoning', block: -1 });
  plan.blocks.forEach((block, index) => {
    if (block.kind === 'thinking') slots.push({ kind: 'reasoning', block: index });
    else if (block.kind === 'tool_use') slots.push({ kind: 'function_call', block: index });
    else if (block.kind === 'text') slots.push({ kind: 'message', block: index });
  });
  return slots;
}

/** The status of the item of `block` once done: the last one is incomplete if the plan was cut. */
export function doneStatus(plan: OutputPlan, block: number): ItemStatus {
  return plan.truncated && block === plan.blocks.length - 1 ? 'incomplete' : 'completed';
}

export function itemId(ctx: ResponseContext, kind: OutputSlot['kind']): string {
  const prefix = kind === 'reasoning' ? 'rs' : kind === 'message' ? 'msg' : 'fc';
  return responseItemId(prefix, ctx.stem);
}

/** Whether the request asked for the reasoning's encrypted content. */
function includesEncrypted(ctx: ResponseContext): boolean {
  const include = ctx.request.include;
  return Array.isArray(include) && include.includes('reasoning.encrypted_content');
}

export function outputTextPart(text: string): Record<string, unknown> {
  return { type: 'output_text', annotations: [], logprobs: [], text };
}

/**
 * Output item `slot` with `text` (its summary, text or arguments) in state `status`
 * (`in_progress`: as `response.output_item.added` carries it, before any content).
 */
export function outputItem(
  ctx: ResponseContext,
  slot: OutputSlot,
  text: string,
  status: ItemStatus,
): Record<string, unknown> {
  const id = itemId(ctx, slot.kind);
  switch (slot.kind) {
    case 'reasoning': {
      const summary =
        slot.block >= 0 && status !== 'in_progress' ? [{ type: 'summary_text', text }] : [];
      const item: Record<string, unknown> = { id, type: 'reasoning', summary };
      if (includesEncrypted(ctx) && status !== 'in_progress') {
        item.encrypted_content = Buffer.from(`fake-llm-reasoning:${ctx.stem}`).toString('base64');
      }
      return item;
    }
    case 'message':
      return {
        id,
        type: 'message',
        status,
        content: status === 'in_progress' ? [] : [outputTextPart(text)],
        role: 'assistant',
      };
    case 'function_call': {
      const name = ctx.plan.blocks[slot.block]?.toolName;
      return {
        id,
        type: 'function_call',
        status,
        arguments: status === 'in_progress' ? '' : text,
        call_id: openaiToolCallId(ctx.stem),
        name,
      };
    }
  }
}

/** The complete output of a plan whose blocks' texts are `texts`. */
export function finalOutput(ctx: ResponseContext, texts: readonly string[]): unknown[] {
  return outputSlots(ctx.plan).map((slot) =>
    outputItem(ctx, slot, texts[slot.block] ?? '', doneStatus(ctx.plan, slot.block)),
  );
}

/** Reasoning tokens: hidden ones plus a streamed summary's. */
export function reasoningTokens(plan: OutputPlan): number {
  let tokens = plan.reasoningTokens;
  for (const block of plan.blocks) if (block.kind === 'thinking') tokens += block.tokens;
  return tokens;
}

/** Output tokens once `tokensSent` went out: they include the hidden reasoning. */
export function outputTokens(ctx: ResponseContext, tokensSent: number): number {
  return tokensSent + ctx.plan.reasoningTokens;
}

/** The `usage` of a Response: input includes the cached tokens, output the reasoning. */
export function usageObject(ctx: ResponseContext, tokensSent: number): Record<string, unknown> {
  const input = ctx.inputTokens + ctx.cacheReadTokens;
  const output = outputTokens(ctx, tokensSent);
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: ctx.cacheReadTokens, cache_write_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoningTokens(ctx.plan) },
    total_tokens: input + output,
  };
}

function echo(value: unknown, fallback: unknown): unknown {
  return value === undefined || value === null ? fallback : value;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

export type ResponseStatus = 'in_progress' | 'completed' | 'incomplete';

/** The Response object: the request's settings echoed, `output` and `usage` as given. */
export function responseObject(
  ctx: ResponseContext,
  status: ResponseStatus,
  output: unknown[],
  usage: Record<string, unknown> | null,
): Record<string, unknown> {
  const req = ctx.request;
  const reasoning = asRecord(req.reasoning);
  const text = asRecord(req.text);
  const tier = req.service_tier;
  return {
    id: responseId(ctx.stem),
    object: 'response',
    created_at: ctx.createdSec,
    status,
    background: false,
    completed_at: status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: echo(req.instructions, null),
    max_output_tokens: echo(req.max_output_tokens, null),
    max_tool_calls: echo(req.max_tool_calls, null),
    model: ctx.model,
    output,
    parallel_tool_calls: echo(req.parallel_tool_calls, true),
    previous_response_id: echo(req.previous_response_id, null),
    prompt_cache_key: echo(req.prompt_cache_key, null),
    reasoning: {
      effort: echo(reasoning.effort, null),
      summary: echo(reasoning.summary ?? reasoning.generate_summary, null),
    },
    safety_identifier: echo(req.safety_identifier, null),
    service_tier: tier === 'flex' || tier === 'scale' || tier === 'priority' ? tier : 'default',
    store: echo(req.store, true),
    temperature: echo(req.temperature, 1),
    text: {
      format: echo(text.format, { type: 'text' }),
      verbosity: echo(text.verbosity, 'medium'),
    },
    tool_choice: echo(req.tool_choice, 'auto'),
    tools: echo(req.tools, []),
    top_logprobs: echo(req.top_logprobs, 0),
    top_p: echo(req.top_p, 1),
    truncation: echo(req.truncation, 'disabled'),
    usage,
    user: echo(req.user, null),
    metadata: echo(req.metadata, {}),
  };
}

/** The final status of a plan's Response. */
export function finalStatus(plan: OutputPlan): ResponseStatus {
  return plan.truncated ? 'incomplete' : 'completed';
}
