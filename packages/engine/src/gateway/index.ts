/**
 * `@tokenmeter/engine/gateway`: a provider's own API behind budgets and rate limits, on any
 * framework — the `Gateway` an adapter serves requests with, and the two providers it speaks.
 */
export { ANTHROPIC_GATEWAY } from './anthropic.js';
export { Gateway, routePath } from './gateway.js';
export { callerKey, forwarded, type HeaderList, nodeHeaders } from './headers.js';
export { OPENAI_GATEWAY } from './openai.js';
export {
  DEFAULT_CALLER_CONCURRENCY,
  GATEWAY_OPTION_NAMES,
  type GatewayOptions,
} from './options.js';
export type {
  Endpoint,
  FreeRoute,
  GatewayProvider,
  MeteredRoute,
  ProviderCall,
} from './provider.js';
export { type RelayFilter, type RelaySource, type SseBlock, sseBlocks } from './relay.js';
