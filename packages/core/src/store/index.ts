/**
 * The store part of @tokenmeter/core: the Store contract, the multi-scope admission
 * helpers, budget period maths, argument checks and the timeout/failure guard.
 */
export {
  type AdmitAllAccepted,
  type AdmitAllOptions,
  type AdmitAllRejected,
  type AdmitAllResult,
  admitAll,
  type ExtendAllAccepted,
  type ExtendAllRejected,
  type ExtendAllResult,
  extendAll,
  type ReleaseLostAdmissionOptions,
  releaseAll,
  releaseLostAdmission,
  settleAll,
} from './admit-all.js';
export { type GuardStoreOptions, guardStore } from './guard-store.js';
export { assertBudgetPeriod, type PeriodBounds, periodBounds, periodId } from './period.js';
export type {
  AdmitAccepted,
  AdmitRejected,
  AdmitRequest,
  AdmitResult,
  BudgetPeriod,
  BudgetRejection,
  BudgetRule,
  BudgetState,
  Clock,
  CustomPeriod,
  Ended,
  EndOutcome,
  EndResult,
  ExpiryPolicy,
  ExtendAfterEnd,
  Extended,
  ExtendRejected,
  ExtendRequest,
  ExtendResult,
  NotEnded,
  RateLimitRejection,
  RateLimitRule,
  RateLimitState,
  Reservation,
  ReservationCounts,
  ScopePolicy,
  ScopeRef,
  ScopeState,
  SettleRequest,
  Store,
} from './types.js';
export {
  assertAdmitRequest,
  assertClaim,
  assertExtendRequest,
  assertRequestKey,
  assertReservationId,
  assertScope,
  assertScopePolicy,
  assertSettleRequest,
  assertStore,
} from './validate.js';
