// What one answer will contain before a byte is sent: which blocks, how many tokens each,
// after `max_tokens` cut them. The plan is what makes usage exact: the generator streams
// exactly the planned tokens and reports exactly what it streamed.

import {
  type Dialect,
  functionTools,
  namedToolChoice,
  type OfferedTool,
  toolForced,
  toolResultCount,
  toolsDisabled,
} from './request-tools.js';
import { SEARCH_QUERY_TOKENS } from './text-generator.js';
import { toolInputTokens } from './tool-arguments.js';
import type { Knobs, Provider } from './types.js';

export interface PlannedBlock {
  /**
   * `web_search`: the query of one Anthropic web search (a `server_tool_use` block). When
   * it is complete (`SEARCH_QUERY_TOKENS` tokens) the search is performed and a
   * `web_search_tool_result` block (no tokens, not a planned block) follows it on the wire.
   */
  kind: 'thinking' | 'web_search' | 'text' | 'tool_use';
  /** Tokens streamed for this block (after `max_tokens`). */
  tokens: number;
  toolName?: string;
  /** tool_use: the called tool's input schema; absent when it has none. */
  toolSchema?: unknown;
  /** tool_use cut by `max_tokens`: tokens of the whole input (absent when not cut). */
  inputTokens?: number;
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
  /**
   * Responses API: the request asked a reasoning summary, so the reasoning tokens are the
   * `thinking` block, streamed as the summary (else they are `reasoningTokens`, unseen).
   */
  reasoningSummary: boolean;
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

/** Whether a Responses request asks for a reasoning summary. */
function summaryRequested(body: Record<string, unknown>): boolean {
  const reasoning = asRecord(body.reasoning);
  const summary = reasoning?.summary ?? reasoning?.generate_summary;
  return summary === 'auto' || summary === 'concise' || summary === 'detailed';
}

/** A tool call the answer should end with. */
interface ToolCallPlan {
  name: string;
  schema: unknown;
  /** Input tokens asked for, before the schema's smallest instance is fitted. */
  wanted: number;
}

/**
 * The tool to call: the one tool_choice names, else the knob's if offered, else the first
 * function tool offered (with no schema when the tool is not offered at all).
 */
function chosenTool(
  tools: readonly OfferedTool[],
  forced: string | undefined,
  knobName: string | undefined,
): OfferedTool {
  const byName = (name: string | undefined) => tools.find((tool) => tool.name === name);
  if (forced !== undefined) return byName(forced) ?? { name: forced, schema: undefined };
  return byName(knobName) ?? tools[0] ?? { name: knobName ?? 'fake_tool', schema: undefined };
}

/**
 * The tool call to plan, if any. With the `toolTurns` knob the conversation decides: a call
 * while it carries fewer tool results than `toolTurns`, text after. Otherwise a call of
 * `toolTokens` tokens (by default 12 when `tool_choice` forces a tool, else none).
 */
function plannedToolCall(
  dialect: Dialect,
  body: Record<string, unknown>,
  knobs: Readonly<Knobs>,
): ToolCallPlan | undefined {
  const tools = functionTools(dialect, body);
  let wanted: number;
  if (knobs.toolTurns !== undefined) {
    const more = toolResultCount(dialect, body) < knobs.toolTurns;
    if (!more || tools.length === 0 || toolsDisabled(dialect, body)) return undefined;
    wanted = Math.max(1, knobs.toolTokens ?? DEFAULT_TOOL_TOKENS);
  } else {
    wanted = knobs.toolTokens ?? (toolForced(dialect, body) ? DEFAULT_TOOL_TOKENS : 0);
  }
  if (wanted === 0) return undefined;
  const tool = chosenTool(tools, namedToolChoice(dialect, body), knobs.toolName);
  return { name: tool.name, schema: tool.schema, wanted };
}

/**
 * Plans the answer to `body`, read as `dialect` (`'anthropic'` or `'openai'` for Chat
 * Completions also name the provider), under `knobs`, capped at `maxTokens` output tokens.
 */
export function planOutput(
  dialect: Dialect,
  body: Record<string, unknown>,
  knobs: Readonly<Knobs>,
  maxTokens: number | undefined,
): OutputPlan {
  const provider: Provider = dialect === 'anthropic' ? 'anthropic' : 'openai';
  let budget = maxTokens ?? Number.POSITIVE_INFINITY;
  let truncated = false;
  const take = (wanted: number): number => {
    const granted = Math.min(wanted, budget);
    if (granted < wanted) truncated = true;
    budget -= granted;
    return granted;
  };

  // With a Responses reasoning summary the reasoning is streamed, as a thinking block.
  const reasoningSummary = dialect === 'openai-responses' && summaryRequested(body);
  // OpenAI bills reasoning before any content, and max_completion_tokens covers it.
  const reasoningTokens =
    provider === 'openai' && !reasoningSummary ? take(knobs.reasoningTokens) : 0;
  let thinkingWanted = 0;
  if (provider === 'anthropic') {
    thinkingWanted = knobs.thinkingTokens ?? (thinkingEnabled(body) ? DEFAULT_THINKING_TOKENS : 0);
  } else if (reasoningSummary) {
    thinkingWanted = knobs.reasoningTokens;
  }
  const call = plannedToolCall(dialect, body, knobs);
  // The input must at least be the schema's smallest instance: the call grows to fit it.
  const toolWanted = call ? toolInputTokens(knobs.seed, call.schema, call.wanted) : 0;

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
  if (call && tool > 0) {
    const block: PlannedBlock = { kind: 'tool_use', tokens: tool, toolName: call.name };
    if (call.schema !== undefined) block.toolSchema = call.schema;
    if (tool < toolWanted) block.inputTokens = toolWanted;
    blocks.push(block);
  }

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
    reasoningSummary,
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
