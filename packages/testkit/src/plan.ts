// What one answer will contain before a byte is sent: which blocks, how many tokens each,
// after `max_tokens` cut them. The plan is what makes usage exact: the generator streams
// exactly the planned tokens and reports exactly what it streamed.

import { SEARCH_QUERY_TOKENS } from './text-generator.js';
import type { Knobs, Provider } from './types.js';

export interface PlannedBlock {
  /**
   * `web_search`: the query of one Anthropic web search (a `server_tool_use` block). When
   * it is complete (`SEARCH_QUERY_TOKENS` tokens) the search is performed and a
   * `web_search_tool_result` block (no tokens, not a planned block) follows it on the wire.
   */
  kind: 'thinking' | 'web_search' | 'text' | 'tool_use';
  tokens: number;
  toolName?: string;
}

export interface OutputPlan {
  /** Streamed blocks, in order: thinking, web_search…, text, tool_use. */
  blocks: PlannedBlock[];
  /** Web searches performed: web_search blocks whose query `max_tokens` did not cut. */
  searches: number;
  /** OpenAI hidden reasoning tokens (counted in completion_tokens, never streamed). */
  reasoningTokens: number;
  /** Visible tokens over all blocks. */
  totalTokens: number;
  /** `max_tokens` cut the answer. */
  truncated: boolean;
  /** The answer ends in a (complete) tool call. */
  toolCall: boolean;
  /**
   * The request asked `thinking.display: "omitted"`: the thinking tokens are billed but
   * their text is never sent (only the block and its signature), as the real API does.
   */
  thinkingOmitted: boolean;
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

/** The first `web_search_*` server tool of an Anthropic request, if any. */
function webSearchTool(body: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!Array.isArray(body.tools)) return undefined;
  for (const tool of body.tools) {
    const record = asRecord(tool);
    if (typeof record?.type === 'string' && record.type.startsWith('web_search_')) return record;
  }
  return undefined;
}

/** Searches the request allows and the knob asks for (1 by default with the tool). */
function searchesWanted(
  provider: Provider,
  body: Record<string, unknown>,
  knobs: Readonly<Knobs>,
): number {
  if (provider !== 'anthropic') return 0;
  const tool = webSearchTool(body);
  if (!tool) return 0;
  const wanted = knobs.searches ?? 1;
  const maxUses = tool.max_uses;
  return typeof maxUses === 'number' && Number.isInteger(maxUses) && maxUses >= 0
    ? Math.min(wanted, maxUses)
    : wanted;
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
  const blocks: PlannedBlock[] = [];
  if (thinking > 0) blocks.push({ kind: 'thinking', tokens: thinking });
  // Each search query comes out of the budget like any block; a cut query is not searched.
  let searches = 0;
  let searchBlocks = 0;
  const searchWanted = searchesWanted(provider, body, knobs);
  for (let i = 0; i < searchWanted && budget > 0; i++) {
    const query = take(SEARCH_QUERY_TOKENS);
    blocks.push({ kind: 'web_search', tokens: query });
    searchBlocks += 1;
    if (query === SEARCH_QUERY_TOKENS) searches += 1;
  }
  if (budget === 0 && searchBlocks < searchWanted) truncated = true;
  const text = take(knobs.tokens);
  const tool = take(toolWanted);
  // An answer always has a text block unless another block carries it.
  if (text > 0 || (thinking === 0 && searchBlocks === 0 && tool === 0)) {
    blocks.push({ kind: 'text', tokens: text });
  }
  if (tool > 0) blocks.push({ kind: 'tool_use', tokens: tool, toolName: toolName(provider, body) });

  let totalTokens = 0;
  for (const block of blocks) totalTokens += block.tokens;
  return {
    blocks,
    searches,
    reasoningTokens,
    totalTokens,
    truncated,
    toolCall: tool > 0 && !truncated,
    thinkingOmitted: provider === 'anthropic' && asRecord(body.thinking)?.display === 'omitted',
  };
}

/** A complete web search query: the search is performed and its result block follows. */
export function isPerformedSearch(block: PlannedBlock): boolean {
  return block.kind === 'web_search' && block.tokens === SEARCH_QUERY_TOKENS;
}

/** For each block, its 0-based number among the plan's web_search blocks (-1 for others). */
export function searchNumbers(plan: OutputPlan): number[] {
  let next = 0;
  return plan.blocks.map((block) => (block.kind === 'web_search' ? next++ : -1));
}
