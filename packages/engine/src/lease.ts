/**
 * What one stream's reservation covers, and how it grows: the output the reservation
 * covers so far, the cost cap's stop, the lease steps (priced on the call's own terms,
 * halved near the end of a budget before a refusal), and provider calls a source announced
 * that admission did not see (the AI SDK's steps). It decides; the stream acts on a stop.
 */
import type { MeterEvent } from '@tokenmeter/core';
import {
  outputWithin,
  planReservation,
  type RequestBound,
  type StreamMeter,
  worstCaseCost,
} from '@tokenmeter/core/meter';
import { extendAll } from '@tokenmeter/core/store';
import type { Admission } from './admission-result.js';
import type { Config } from './options.js';
import type { StreamLimit } from './types.js';
import { describe } from './upstream-errors.js';

type RequestEvent = Extract<MeterEvent, { type: 'request' }>;

/** The smallest lease extension tried before a lease is refused, in output tokens. */
const MIN_LEASE_STEP = 16;

/** Why the stream must stop: the limit to name, and the outcome. */
export interface LeaseStop {
  limit: StreamLimit;
  outcome: 'budget_exceeded' | 'store_unavailable';
}

export class Lease {
  /** Nano-dollars reserved so far (admission, plus every step). */
  reservedNanos: number;
  /** Output watched up to: past it the lease must grow (Infinity: not watched). */
  private watchedTo: number;
  /** `max_tokens` of the provider call being read (a source's `request` event may raise it). */
  private callMaxTokens: number;
  /** Output of the current call the per-request cost cap allows (Infinity: no cap below max). */
  private capOutputTokens: number;
  /** The limit named when the stream stops at `capOutputTokens`. */
  private stopLimit: StreamLimit;
  /** Output of the current call the reservation covers so far. */
  private coveredOutputTokens: number;
  /** The current call's terms, for the worst case of its lease steps. */
  private callBound: RequestBound;
  /** Provider calls the source announced, and those still to cover (with the spend before each). */
  private requestsSeen = 0;
  private readonly uncovered: Array<{ event: RequestEvent; spentNanos: number }> = [];

  constructor(
    private readonly config: Config,
    private readonly admission: Admission,
    private readonly meter: StreamMeter,
    /** Whether the route read the planned max_tokens (its body then carries it). */
    private readonly termsRead: () => boolean,
  ) {
    this.reservedNanos = admission.reservedNanos;
    this.watchedTo = admission.leasedOutputTokens;
    this.callMaxTokens = admission.maxTokens;
    this.capOutputTokens = admission.capOutputTokens;
    this.stopLimit = admission.stopLimit;
    this.coveredOutputTokens = admission.reservedOutputTokens;
    this.callBound = admission.bound;
  }

  /** A provider call the source announced, with what was spent before it. */
  announce(event: RequestEvent, spentNanos: number): void {
    this.uncovered.push({ event, spentNanos });
  }

  /**
   * Whether `afterChunk()` has anything to do: a call to cover, or output past what is
   * watched. Checked on every chunk, so without a promise: most chunks need nothing.
   */
  get due(): boolean {
    return this.uncovered.length > 0 || this.outgrown;
  }

  /** The output's conservative bound reached what is watched (a lease, or a cap below max). */
  private get outgrown(): boolean {
    return (
      this.watchedTo !== Number.POSITIVE_INFINITY && this.meter.outputTokensBound >= this.watchedTo
    );
  }

  /**
   * Covers announced calls, then grows the lease the output outgrew. A stop says why the
   * stream must end.
   */
  async afterChunk(): Promise<LeaseStop | undefined> {
    if (this.uncovered.length > 0) {
      const stop = await this.coverRequests();
      if (stop) return stop;
    }
    return this.outgrown ? this.grow() : undefined;
  }

  /** The output's cost on the current call's terms (the worst case with that much output). */
  private worst(output: number): number {
    return worstCaseCost(
      { ...this.callBound, outputTokens: output },
      this.admission.model,
      this.config.services.pricing,
    ).nanos;
  }

  /**
   * The conservative output bound reached what the reservation covers: extend it
   * (incremental leases), or stop at the cost cap. Never called for a reservation that
   * covers max_tokens.
   */
  private async grow(): Promise<LeaseStop | undefined> {
    const { config } = this;
    if (
      this.termsRead() &&
      this.capOutputTokens === this.admission.capOutputTokens &&
      this.requestsSeen === 0
    ) {
      // The stop the admission set for a body it could not write: the route read the
      // planned max_tokens, so the provider stops there itself (no early cut on the bound).
      this.capOutputTokens = Number.POSITIVE_INFINITY;
      if (this.watchedTo >= this.callMaxTokens || config.policy.leaseStepTokens === 0) {
        this.watchedTo = Number.POSITIVE_INFINITY;
        return undefined;
      }
    }
    if (this.meter.outputTokensBound >= this.capOutputTokens) {
      return { limit: this.stopLimit, outcome: 'budget_exceeded' };
    }
    const from = this.watchedTo;
    // Incremental leases grow by a step; a worst-case reservation that a source's larger
    // max_tokens outgrew, by the rest of it at once.
    const step =
      config.policy.leaseStepTokens > 0 ? config.policy.leaseStepTokens : this.callMaxTokens - from;
    if (step <= 0) return undefined; // the cap is further on: nothing to grow
    let to = Math.min(from + step, this.callMaxTokens, this.capOutputTokens);
    // The step's price on the request's own terms (tier, fast mode, residency): the worst
    // case with more output, less the worst case already reserved.
    let addNanos = this.worst(to) - this.worst(from);
    if (this.admission.reservationIds.length > 0 && addNanos > 0) {
      // Near the end of a budget a whole step may not fit: halve it (down to
      // MIN_LEASE_STEP tokens) before refusing, so the answer uses what is left.
      for (;;) {
        const extended = await this.extend(addNanos);
        if (typeof extended === 'object') return extended;
        if (extended) break;
        if (to - from <= MIN_LEASE_STEP)
          return { limit: 'lease_denied', outcome: 'budget_exceeded' };
        to = from + Math.max(MIN_LEASE_STEP, Math.floor((to - from) / 2));
        addNanos = this.worst(to) - this.worst(from);
      }
    }
    this.reservedNanos += addNanos;
    this.coveredOutputTokens = to;
    // Covering max_tokens (and no cap below it) ends the watch: the provider stops there.
    this.watchedTo =
      to >= this.callMaxTokens && this.capOutputTokens >= this.callMaxTokens
        ? Number.POSITIVE_INFINITY
        : to;
    return undefined;
  }

  /**
   * Extends every reservation of this stream by `addNanos`: true when done, false when a
   * budget refused it, a stop when the store failed.
   */
  private async extend(addNanos: number): Promise<boolean | LeaseStop> {
    const { config } = this;
    try {
      return (await extendAll(config.services.store, this.admission.reservationIds, { addNanos }))
        .extended;
    } catch (error) {
      config.services.logger.warn(
        'tokenmeter: extending the reservation failed; stopping the stream',
        {
          requestId: this.admission.requestId,
          error: describe(error),
        },
      );
      return {
        limit: 'lease_unavailable',
        outcome: config.policy.storeFailure === 'open' ? 'budget_exceeded' : 'store_unavailable',
      };
    }
  }

  /**
   * Provider calls a source announced (`request` events: the AI SDK's steps) that the
   * admission did not see. A first call with a larger max_tokens (the AI SDK adds the
   * thinking budget) resumes the watch: the reservation grows as the answer outgrows it,
   * or the stream stops where the budget or the cap ends. Each later call (another step)
   * is reserved on its own terms before its answer is read on — its prompt's bound and its
   * max_tokens, within the cap — or the stream stops at once.
   */
  private async coverRequests(): Promise<LeaseStop | undefined> {
    const { admission, config } = this;
    for (const { event, spentNanos } of this.uncovered.splice(0)) {
      this.requestsSeen++;
      const max = event.maxTokens ?? admission.maxTokens;
      if (this.requestsSeen === 1) {
        if (max <= this.callMaxTokens) continue;
        this.callMaxTokens = max;
        if (config.policy.maxCostNanos !== undefined) {
          const costFor = (output: number) => this.worst(output);
          this.capOutputTokens =
            costFor(max) > config.policy.maxCostNanos
              ? outputWithin(costFor, config.policy.maxCostNanos, max)
              : Number.POSITIVE_INFINITY;
          this.stopLimit = 'max_cost_per_request';
        }
        if (this.watchedTo === Number.POSITIVE_INFINITY) {
          this.watchedTo = Math.min(this.coveredOutputTokens, this.capOutputTokens);
        }
        continue;
      }
      // Another provider call: priced on the admitted terms with its own prompt and output.
      const bound: RequestBound = {
        ...admission.bound,
        promptTokens: event.inputTokens ?? admission.bound.promptTokens,
        outputTokens: max,
      };
      // Planned like an admission, within what the cap leaves after the calls before it.
      const plan = planReservation({
        bound,
        model: admission.model,
        pricing: config.services.pricing,
        policy: {
          ...config.policy.reservation,
          minOutputTokens: 1,
          capNanos:
            config.policy.maxCostNanos === undefined
              ? null
              : Math.max(0, config.policy.maxCostNanos - spentNanos),
        },
        availableNanos: null,
        watchable: true,
      });
      if (!plan.ok) return { limit: 'max_cost_per_request', outcome: 'budget_exceeded' };
      // The call was sent with `max` already: a lower plan is watched, not forwarded.
      const cap = plan.maxTokens < max ? plan.maxTokens : Number.POSITIVE_INFINITY;
      const covered = plan.coveredOutputTokens;
      const addNanos = plan.reserveNanos;
      if (admission.reservationIds.length > 0 && addNanos > 0) {
        const extended = await this.extend(addNanos);
        if (typeof extended === 'object') return extended;
        if (!extended) return { limit: 'lease_denied', outcome: 'budget_exceeded' };
      }
      this.reservedNanos += addNanos;
      this.callBound = bound;
      this.callMaxTokens = max;
      this.capOutputTokens = cap;
      this.stopLimit = 'max_cost_per_request';
      this.coveredOutputTokens = covered;
      this.watchedTo = covered < max ? covered : cap;
    }
    return undefined;
  }
}
