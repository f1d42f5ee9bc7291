/**
 * `@tokenmeter/core/meter`: what the engine runs a stream on — the per-stream meter, the
 * reservation plan and the worst case it prices, and exact money arithmetic.
 * For adapters and the engine; apps use an adapter.
 */
export { isThenable } from '../maybe-async.js';
export {
  type CallUsage,
  type FinalUsage,
  type FinishOptions,
  type MeterSnapshot,
  type RunningEstimate,
  StreamMeter,
  type StreamMeterOptions,
  type UsageSource,
} from '../meter.js';
export { addNanos, saturatingAddNanos } from '../money.js';
export {
  type CompiledRates,
  decimalToRatio,
  guessProvider,
  type Ratio,
} from '../pricing/catalog.js';
export {
  outputWithin,
  type PlanRequest,
  planReservation,
  type ReservationMode,
  type ReservationPlan,
  type ReservationPolicy,
} from '../pricing/reservation-plan.js';
export { type RequestBound, type WorstCase, worstCaseCost } from '../pricing/worst-case.js';
