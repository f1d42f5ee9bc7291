export {
  TokenmeterError,
  type TokenmeterErrorCode,
  type TokenmeterErrorOptions,
} from './errors.js';
export { isThenable } from './maybe-async.js';
export {
  type FinalUsage,
  type FinishOptions,
  type MeterSnapshot,
  type RunningEstimate,
  StreamMeter,
  type StreamMeterOptions,
  type UsageSource,
} from './meter.js';
export {
  addNanos,
  assertNanos,
  type FormatUsdOptions,
  formatUsd,
  MAX_NANOS,
  NANOS_PER_USD,
  type Nanos,
  nanosToDecimalString,
  nanosToUsd,
  saturatingAddNanos,
  usd,
  usdToNanos,
} from './money.js';
export { OUTCOMES, type StreamOutcome } from './outcome.js';
export {
  type CatalogInput,
  type CompiledRates,
  decimalToMicros,
  decimalToRatio,
  guessProvider,
  type ModelPrice,
  type ModelPriceInput,
  PricingCatalog,
  type ProviderPrice,
  type ProviderPriceInput,
  type RatesInput,
  type Ratio,
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
  fromLiteLLM,
  type LiteLLMEntry,
  type LiteLLMImport,
  perTokenToPerMillion,
} from './pricing/litellm.js';
export {
  outputWithin,
  type PlanRequest,
  planReservation,
  type ReservationMode,
  type ReservationPlan,
  type ReservationPolicy,
} from './pricing/reservation-plan.js';
export {
  type RequestBound,
  type WorstCase,
  worstCaseCost,
} from './pricing/worst-case.js';
export {
  anthropicMessages,
  forwardedBody,
  openaiChat,
  type ProviderAdapter,
  providerAdapters,
  type RequestRules,
  readRequestTerms,
  registerProvider,
  requestRules,
} from './providers/index.js';
export {
  type BoundRequestOptions,
  boundRequest,
  DEFAULT_SERVER_TOOL_LIMITS,
  type ForwardTerms,
  REQUEST_SHAPE_LIMITS,
  type RequestTerms,
  type ServerToolLimit,
  type ServerToolRequest,
} from './request-terms.js';
export {
  type AiSdkStreamResult,
  type AiSdkUsageLike,
  aiSdkParts,
  createAiSdkTranslator,
  createLangChainTranslator,
  fromAiSdkUsage,
  isAiSdkPartType,
  isAiSdkResult,
  isLangChainChunk,
  type LangChainChunkLike,
} from './sources.js';
export {
  encodeComment,
  encodeEvent,
  encodeJsonEvent,
  jsonSseEncoder,
  PLAIN_DONE,
  plainSseEncoder,
  type SseDeltaData,
  type SseEncoder,
  type SseEvent,
  type SseToolCallData,
} from './sse-encoder.js';
// The Store contract, multi-scope admission, periods, validation and the failure guard.
export * from './store/index.js';
export {
  type AnthropicStreamEvent,
  createEventTranslator,
  fromAnthropicEvent,
  fromOpenAIChunk,
  type MeterEvent,
  type MeterEventType,
  type OpenAIChunk,
  responseEvents,
} from './stream-events.js';
export {
  type RejectionInfo,
  type RequestFacts,
  type ReservationEnd,
  type StreamEndInfo,
  type StreamStartInfo,
  type StreamTrace,
  semconv,
  Telemetry,
  type TelemetryOptions,
  type TelemetryStart,
} from './telemetry/index.js';
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
} from './token-counter.js';
export {
  ATTACHMENT_BOUND_MARGIN,
  createOutputEstimator,
  type EstimateRequestOptions,
  estimateImageTokens,
  estimateRequestTokens,
  estimateTextTokenBound,
  estimateTextTokens,
  type ImageSize,
  measureRequestTokens,
  type OutputEstimator,
  type RequestTokenCount,
  TEXT_BOUND_MARGINS,
  TEXT_CLASSES,
  TEXT_ESTIMATE_ACCURACY,
  type TextClass,
  type TokenProvider,
  uncountedFieldTokens,
} from './token-estimate.js';
export {
  TOKENMETER_DATA_PART_ID,
  UI_MESSAGE_STREAM_HEADERS,
  uiFinishReason,
  uiMessageStreamEncoder,
} from './ui-message-stream.js';
export {
  type AnthropicUsageLike,
  addUsage,
  emptyUsage,
  fromAnthropicUsage,
  fromOpenAIUsage,
  normaliseUsage,
  type OpenAIUsageLike,
  type Provider,
  promptTokens,
  totalInputTokens,
  type Usage,
} from './usage.js';
