// What one answer will contain before a byte is sent: which blocks, how many tokens each,
// after `max_tokens` cut them. The plan is what makes usage exact: the generator streams
// exactly the planned tokens and reports exactly what it streamed.

import type { Knobs, Provider } from './types.js';

export interface PlannedBlock {
  kind: 'thinking' | 'text' | 'tool_use';
  tokens: number;
  toolName?: string;
}

export interface OutputPlan {
  /** Streamed blocks, in order: thinking, text, tool_use. */
  blocks: PlannedBlock[];
  /** OpenAI hidden reasoning tokens (counted in completion_tokens, never streamed). */
  reasoningTokens: number;
  /** Visible tokens over all blocks. */
  totalTokens: number;
  /** `max_tokens` cut the answer. */
  truncated: boolean;
  /** The answer ends in a (complete) tool call. */
  toolCall: boolean;
}

/** Thinking tokens when the request enables thinking and no knob says otherwise. */
const DEFAULT_THINKING_TOKENS = 16;
/** Tool input tokens when the request forces a tool and no knob says otherwise. */
const DEFAULT_TOOL_TOKENS = 12;

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function thinkingEnabled(body: Record<string, unknown>): boolean {
  const type = asRecord(body.thinking)?.type;
  return type === 'enabled' || type === 'adaptive';
}

function toolForced(provider: Provider, body: Record<string, unknown>): boolean {
  const choice = body.tool_choice;
  if (provider === 'openai') return choice === 'required' || asRecord(choice)?.type === 'function';
  const type = asRecord(choice)?.type;
  return type === 'any' || type === 'tool';
}

function toolName(provider: Provider, body: Record<string, unknown>): string {
  const choice = asRecord(body.tool_choice);
  const first = Array.isArray(body.tools) ? asRecord(body.tools[0]) : undefined;
  const name =
    provider === 'openai'
      ? (asRecord(choice?.function)?.name ?? asRecord(first?.function)?.name)
      : (choice?.name ?? first?.name);
  return typeof name === 'string' && name !== '' ? name : 'fake_tool';
}

/** Plans the answer to `body` under `knobs`, capped at `maxTokens` output tokens. */
export function planOutput(
  provider: Provider,
  body: Record<string, unknown>,
  knobs: Readonly<Knobs>,
  maxTokens: number | undefined,
): OutputPlan {
  let budget = maxTokens ?? Number.POSITIVE_INFINITY;
  let truncated = false;
  const take = (wanted: number): number => {
    const granted = Math.min(wanted, budget);
    if (granted < wanted) truncated = true;
    budget -= granted;
    return granted;
  };

  // OpenAI bills reasoning before any content, and max_completion_tokens covers it.
  const reasoningTokens = provider === 'openai' ? take(knobs.reasoningTokens) : 0;
  const thinkingWanted =
    provider === 'anthropic'
      ? (knobs.thinkingTokens ?? (thinkingEnabled(body) ? DEFAULT_THINKING_TOKENS : 0))
      : 0;
  const toolWanted = knobs.toolTokens ?? (toolForced(provider, body) ? DEFAULT_TOOL_TOKENS : 0);

  const thinking = take(thinkingWanted);
  const text = take(knobs.tokens);
  const tool = take(toolWanted);
  const blocks: PlannedBlock[] = [];
  if (thinking > 0) blocks.push({ kind: 'thinking', tokens: thinking });
  // An answer always has a text block unless another block carries it.
  if (text > 0 || (thinking === 0 && tool === 0)) blocks.push({ kind: 'text', tokens: text });
  if (tool > 0) blocks.push({ kind: 'tool_use', tokens: tool, toolName: toolName(provider, body) });

  let totalTokens = 0;
  for (const block of blocks) totalTokens += block.tokens;
  return { blocks, reasoningTokens, totalTokens, truncated, toolCall: tool > 0 && !truncated };
}
