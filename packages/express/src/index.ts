export type { ServerToolLimit, TelemetryOptions } from '@tokenmeter/core';
export { costTrackedSSE } from './cost-tracked-sse.js';
export { anthropicGateway } from './gateway/anthropic.js';
export { callerKey, type GatewayOptions } from './gateway/common.js';
export { openaiGateway } from './gateway/openai.js';
export { jsonErrorHandler } from './json-error-handler.js';
export { NodeTransport, NodeTransport as SseWriter } from './node-transport.js';
export { rateLimitHeaders } from './rate-limit-headers.js';
export { SSE_HEADERS, type Transport } from './transport.js';
export type {
  BudgetAlert,
  BudgetInput,
  CostTrackedSSEOptions,
  Logger,
  MeteredRequest,
  MeteredResponse,
  MeteredStream,
  RequestParams,
  ReservationStrategy,
  SettleInfo,
  StreamLimit,
  Subject,
} from './types.js';
