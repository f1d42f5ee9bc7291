/**
 * @tokenmeter/core, for apps: money (integer nano-dollars), prices and cost, usage, the
 * outcomes a stream ends with, the SSE and UI message stream encoders, and the types an
 * app's options use. Parts for other audiences have subpaths of their own:
 * `@tokenmeter/core/store` (store authors), `/tokens` (token counting and estimates),
 * `/providers` (provider APIs: adapters, stream translation, request terms), `/meter`
 * (the per-stream meter and reservation planning the engine runs on) and
 * `/testing` (the store conformance suite).
 */
export {
  TokenmeterError,
  type TokenmeterErrorCode,
  type TokenmeterErrorOptions,
} from './errors.js';
export type { CallUsage, FinalUsage } from './meter.js';
export type { MeterEvent, MeterEventType } from './meter-event.js';
export {
  type FormatUsdOptions,
  formatUsd,
  MAX_NANOS,
  NANOS_PER_USD,
  type Nanos,
  nanosToUsd,
  usd,
} from './money.js';
export { OUTCOMES, type StreamOutcome } from './outcome.js';
export {
  type CatalogInput,
  type ModelPrice,
  type ModelPriceInput,
  PricingCatalog,
  type ProviderPrice,
  type ProviderPriceInput,
  type RatesInput,
  type TokenKind,
} from './pricing/catalog.js';
export {
  type Cost,
  type CostLine,
  costOf,
  Pricing,
  type PricingOptions,
  type UnknownModelPolicy,
} from './pricing/cost.js';
export {
  catalogFromLiteLLM,
  type LiteLLMImport,
} from './pricing/litellm.js';
export { DEFAULT_SERVER_TOOL_LIMITS, type ServerToolLimit } from './request-terms.js';
export {
  type ErrorBody,
  encodeComment,
  encodeEvent,
  encodeJsonEvent,
  jsonSseEncoder,
  PLAIN_DONE,
  plainSseEncoder,
  type SseBudget,
  type SseCharge,
  type SseDeltaData,
  type SseDoneData,
  type SseEncoder,
  type SseErrorData,
  type SseEvent,
  type SseFinalUsage,
  type SseMetaData,
  type SseToolCallData,
  type SseUsageData,
} from './sse-encoder.js';
export type {
  BudgetPeriod,
  BudgetRule,
  BudgetState,
  ConcurrencyLimitRule,
  CustomPeriod,
  RateLimitRule,
  ScopeRef,
  Store,
  WindowRateLimitRule,
} from './store/types.js';
export {
  TOKENMETER_DATA_PART_ID,
  UI_MESSAGE_STREAM_HEADERS,
  uiMessageStreamEncoder,
} from './ui-message-stream.js';
export { addUsage, emptyUsage, type Usage } from './usage.js';
