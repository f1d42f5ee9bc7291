/**
 * @tokenmeter/engine: what every adapter shares. An adapter wraps its framework's request
 * in an `Incoming` and its response in a `Transport`, and gives both to an `Engine` made
 * from its options (`parseOptions`); the engine admits, streams, and settles once.
 */

export {
  type AdmissionContext,
  type Admitted,
  identifyThenRead,
  isRejection,
  type Rejection,
  rateLimitRefusal,
  rejection,
  toScopes,
  UNAUTHENTICATED_MESSAGE,
} from './admission.js';
export { BudgetAlerts } from './alerts.js';
export {
  asObject,
  type BodyLimits,
  type BodyRead,
  closeIfUnread,
  type Incoming,
  isJsonType,
  readJsonBody,
  ShapeScan,
  UploadGate,
} from './body.js';
export { Engine, type ServeHooks } from './engine.js';
export type {
  EngineEvents,
  RejectionInfo,
  RequestFacts,
  RequestStart,
  ReservationEnd,
  StreamEndInfo,
  StreamStartInfo,
  StreamTrace,
} from './events.js';
export { sendJsonError } from './http-errors.js';
export { MeteredStreamImpl } from './metered-stream.js';
export { checkOptionNames } from './option-checks.js';
export {
  type Config,
  type Hooks,
  OPTION_NAMES,
  type ParseDefaults,
  type Policy,
  type Protocol,
  type Services,
  SSE_DEFAULTS,
  type Timing,
} from './options.js';
export { parseOptions } from './parse-options.js';
export { type RelayItem, TOKENMETER_WIRE, type WireProtocol } from './protocols.js';
export { rateLimitHeaders } from './rate-limit-headers.js';
export { semconv, Telemetry, type TelemetryOptions } from './telemetry/index.js';
export { SSE_HEADERS, type Transport } from './transport.js';
export type {
  BudgetAlert,
  BudgetInput,
  Logger,
  MeteredOptions,
  MeteredStream,
  RequestParams,
  ReservationStrategy,
  SettleInfo,
  StreamLimit,
  Subject,
} from './types.js';
export {
  describe as describeError,
  ProviderHttpError,
  type ProviderResponse,
  type UpstreamFailure,
} from './upstream-errors.js';
