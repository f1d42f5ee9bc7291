export type {
  ErrorBody,
  ServerToolLimit,
  SseBudget,
  SseDeltaData,
  SseDoneData,
  SseErrorData,
  SseFinalUsage,
  SseMetaData,
  SseUsageData,
} from '@tokenmeter/core';
export type {
  BudgetAlert,
  BudgetInput,
  Logger,
  MeteredStream,
  RequestParams,
  ReservationStrategy,
  SettleInfo,
  StreamLimit,
  Subject,
  TelemetryOptions,
} from '@tokenmeter/engine';
export {
  rateLimitHeaders,
  SSE_HEADERS,
  type Transport,
} from '@tokenmeter/engine';
export { NodeTransport, NodeTransport as SseWriter } from '@tokenmeter/engine/node';
export { costTrackedSSE } from './cost-tracked-sse.js';
export {
  anthropicGateway,
  callerKey,
  type GatewayOptions,
  openaiGateway,
} from './gateway.js';
export { jsonErrorHandler } from './json-error-handler.js';
export type { CostTrackedSSEOptions, MeteredRequest, MeteredResponse } from './types.js';
