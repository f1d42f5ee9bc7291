/**
 * The engine's telemetry: OpenTelemetry spans and metrics for metered streams (API only;
 * bring your own SDK), subscribed to the engine's events, and every name they use.
 */
export * as semconv from './semconv.js';
export { Telemetry, type TelemetryOptions } from './telemetry.js';
