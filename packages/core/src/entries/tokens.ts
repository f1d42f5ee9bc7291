/**
 * `@tokenmeter/core/tokens`: counting a prompt's tokens (the heuristic counter with its
 * upper bound, Anthropic's exact count) and the estimates behind them.
 */
export {
  type AnthropicCountTokensClient,
  type AnthropicCountTokensParams,
  type AnthropicTokenCounterOptions,
  anthropicTokenCounter,
  createHeuristicTokenCounter,
  heuristicTokenCounter,
  type InputTokenCount,
  measureInputTokens,
  measureInputTokensNow,
  type TokenCountContext,
  type TokenCounter,
} from '../token-counter.js';
export {
  estimateTextTokenBound,
  estimateTextTokens,
  measureRequestTokens,
  type RequestTokenCount,
  TEXT_BOUND_MARGINS,
  TEXT_ESTIMATE_ACCURACY,
  type TokenProvider,
  uncountedFieldTokens,
} from '../token-estimate.js';
