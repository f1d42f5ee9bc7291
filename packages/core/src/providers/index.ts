/** The provider adapters and their registry. */
export { type AnthropicStreamEvent, anthropicMessages, fromAnthropicEvent } from './anthropic.js';
export { fromOpenAIChunk, type OpenAIChunk, openaiChat } from './openai-chat.js';
export type { ProviderAdapter, RequestRules } from './provider.js';
export { providerAdapters, registerProvider, requestRules } from './registry.js';
export { forwardedBody, readRequestTerms } from './requests.js';
