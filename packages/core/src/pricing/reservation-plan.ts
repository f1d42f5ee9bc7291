/**
 * The reservation plan: how much to hold against a budget before a provider call, and the
 * `max_tokens` the call may be sent with so that what is reserved covers what can be
 * billed. One pure function, used at admission and again for every call a stream makes.
 *
 * Three modes, picked by name:
 * - `'strict'`: the call's worst case (the prompt's bound and `max_tokens` of output), or
 *   nothing: a request the budget cannot cover in full is refused.
 * - `'fit'`: the worst case when it fits; otherwise the call is sent with the largest
 *   `max_tokens` the budget covers (at least `minOutputTokens`), and that is reserved.
 * - `'lease'`: the prompt's bound and a first slice of output (`leaseInitialTokens`),
 *   grown as the answer streams; the call is sent with the largest `max_tokens` the
 *   budget has left, so no one call can be billed past it. A call whose answer cannot be
 *   watched as it comes (a whole-body answer) is planned as `'fit'`, with the first slice
 *   as its least output.
 *
 * A per-request cost cap lowers `max_tokens` the same way, in every mode.
 */
import type { Nanos } from '../money.js';
import type { Pricing } from './cost.js';
import { type RequestBound, worstCaseCost } from './worst-case.js';

export type ReservationMode = 'strict' | 'fit' | 'lease';

/** What a route allows: its mode, its cap and the smallest answer worth starting. */
export interface ReservationPolicy {
  readonly mode: ReservationMode;
  /** `'fit'`: the least output a call is admitted for when it cannot have all it asked. */
  readonly minOutputTokens: number;
  /** `'lease'`: the output covered at admission (and the least a call is admitted for). */
  readonly leaseInitialTokens: number;
  /** The most one request may cost, in nano-dollars; `null` for no cap. */
  readonly capNanos: Nanos | null;
}

export interface PlanRequest {
  /** The call's bound; `outputTokens` is the `max_tokens` it asks for. */
  readonly bound: RequestBound;
  readonly model: string;
  readonly pricing: Pricing;
  readonly policy: ReservationPolicy;
  /**
   * What the tightest budget has left for this call, when known (a refused admission says
   * it); `null` when unknown or when no budget applies: the call is planned as if it fits.
   */
  readonly availableNanos: Nanos | null;
  /** Whether the answer streams, so a lease can be watched and grown. */
  readonly watchable: boolean;
  /**
   * The least `max_tokens` the call can be sent with (Anthropic needs more than the
   * 1,024-token least thinking budget when thinking is on). Defaults to 1.
   */
  readonly minMaxTokens?: number;
}

export type ReservationPlan =
  | {
      readonly ok: false;
      /** What refuses it: the budget, or the per-request cap. */
      readonly limit: 'budget' | 'max_cost_per_request';
      /** The least that would have to be reserved to admit it. */
      readonly needNanos: Nanos;
      /** The output that least reservation covers. */
      readonly outputTokens: number;
    }
  | {
      readonly ok: true;
      readonly reserveNanos: Nanos;
      /** The `max_tokens` to send: as asked, or lowered to what the cap or budget covers. */
      readonly maxTokens: number;
      /** Output the reservation covers now: `maxTokens`, or a lease's first slice. */
      readonly coveredOutputTokens: number;
      /** What lowered `maxTokens`, if anything did. */
      readonly fittedTo: 'budget' | 'max_cost_per_request' | null;
    };

/**
 * Plans the reservation of one provider call.
 *
 * @example
 * planReservation({ bound: { promptTokens: 30_000, outputTokens: 64_000 }, model: 'claude-opus-4-6',
 *   pricing, policy: { mode: 'fit', minOutputTokens: 1_024, leaseInitialTokens: 256, capNanos: null },
 *   availableNanos: usd('0.50'), watchable: true });
 * // 30,000 × $5/M = $0.15 of prompt; $0.35 left is 14,000 output tokens at $25/M:
 * // { ok: true, reserveNanos: 500_000_000, maxTokens: 14_000, coveredOutputTokens: 14_000, fittedTo: 'budget' }
 */
export function planReservation(request: PlanRequest): ReservationPlan {
  const { bound, model, pricing, policy, availableNanos } = request;
  const costFor = (output: number) =>
    worstCaseCost({ ...bound, outputTokens: output }, model, pricing).nanos;
  const asked = bound.outputTokens;
  const least = Math.min(asked, Math.max(1, request.minMaxTokens ?? 1));
  const mode = policy.mode === 'lease' && !request.watchable ? 'fit' : policy.mode;
  // The least output worth admitting: a lease's first slice (also for a lease's whole-body
  // call, planned as fit), else `minOutputTokens`.
  const smallest = Math.min(
    asked,
    Math.max(least, policy.mode === 'lease' ? policy.leaseInitialTokens : policy.minOutputTokens),
  );

  let maxTokens = asked;
  let fittedTo: 'budget' | 'max_cost_per_request' | null = null;
  if (policy.capNanos !== null && costFor(asked) > policy.capNanos) {
    // The cap is the route's own choice: whatever output it allows is sent (at least one
    // token, or what the call cannot go below).
    maxTokens = outputWithin(costFor, policy.capNanos, asked);
    if (maxTokens < least) {
      return {
        ok: false,
        limit: 'max_cost_per_request',
        needNanos: costFor(least),
        outputTokens: least,
      };
    }
    fittedTo = 'max_cost_per_request';
  }

  if (mode === 'lease') {
    const initial = Math.min(maxTokens, Math.max(least, policy.leaseInitialTokens));
    const reserveNanos = costFor(initial);
    if (availableNanos !== null && reserveNanos > availableNanos) {
      return { ok: false, limit: 'budget', needNanos: reserveNanos, outputTokens: initial };
    }
    if (availableNanos !== null && costFor(maxTokens) > availableNanos) {
      maxTokens = Math.max(initial, outputWithin(costFor, availableNanos, maxTokens));
      fittedTo = 'budget';
    }
    return { ok: true, reserveNanos, maxTokens, coveredOutputTokens: initial, fittedTo };
  }

  const whole = costFor(maxTokens);
  if (availableNanos === null || whole <= availableNanos) {
    return { ok: true, reserveNanos: whole, maxTokens, coveredOutputTokens: maxTokens, fittedTo };
  }
  if (mode === 'strict') {
    return { ok: false, limit: 'budget', needNanos: whole, outputTokens: maxTokens };
  }
  const fitted = outputWithin(costFor, availableNanos, maxTokens);
  if (fitted < smallest) {
    return { ok: false, limit: 'budget', needNanos: costFor(smallest), outputTokens: smallest };
  }
  return {
    ok: true,
    reserveNanos: costFor(fitted),
    maxTokens: fitted,
    coveredOutputTokens: fitted,
    fittedTo: 'budget',
  };
}

/**
 * The most output tokens, up to `maxOutput`, whose cost (`costFor`, growing with the
 * output) stays within `nanos`; 0 when not even none does (binary search).
 */
export function outputWithin(
  costFor: (output: number) => number,
  nanos: number,
  maxOutput: number,
): number {
  if (costFor(maxOutput) <= nanos) return maxOutput;
  let lo = 0;
  let hi = maxOutput;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (costFor(mid) <= nanos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
