/**
 * The telemetry part of @tokenmeter/core: OpenTelemetry spans and metrics for metered
 * streams (API only; bring your own SDK), and every name they use.
 */
export * as semconv from './semconv.js';
export {
  type RejectionInfo,
  type RequestFacts,
  type ReservationEnd,
  type StreamEndInfo,
  type StreamStartInfo,
  type StreamTrace,
  Telemetry,
  type TelemetryOptions,
  type TelemetryStart,
} from './telemetry.js';
