/**
 * `@tokenmeter/core/providers`: the provider APIs tokenmeter meters — one adapter per API
 * in a registry, the translation of their streams (and of the AI SDK's and LangChain.js's)
 * into meter events, usage normalisation, and what a request body says about its bill.
 */
export { finishReason } from '../finish-reason.js';
export {
  type BoundRequestOptions,
  boundRequest,
  type ForwardTerms,
  REQUEST_SHAPE_LIMITS,
  type RequestTerms,
  type ServerToolRequest,
} from '../request-terms.js';
export {
  type AiSdkStreamResult,
  type AiSdkUsageLike,
  aiSdkParts,
  createAiSdkTranslator,
  createLangChainTranslator,
  fromAiSdkUsage,
  isAiSdkResult,
  type LangChainChunkLike,
} from '../sources.js';
export { createEventTranslator, responseEvents } from '../stream-events.js';
export {
  type AnthropicUsageLike,
  fromAnthropicUsage,
  fromOpenAIUsage,
  normaliseUsage,
  type OpenAIUsageLike,
  promptTokens,
} from '../usage.js';
export { type AnthropicStreamEvent, anthropicMessages, fromAnthropicEvent } from './anthropic.js';
export { fromOpenAIChunk, type OpenAIChunk, openaiChat } from './openai-chat.js';
export {
  fromResponsesUsage,
  openaiResponses,
  type ResponseLike,
  type ResponsesUsageLike,
} from './openai-responses.js';
export type { ProviderAdapter, RequestRules } from './provider.js';
export { providerAdapters, providerOfApi, registerProvider, requestRules } from './registry.js';
export { forwardedBody, readRequestTerms } from './requests.js';
