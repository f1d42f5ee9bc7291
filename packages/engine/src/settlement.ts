/**
 * A stream's settlement, in pieces the stream's one end puts in order: the final usage
 * (the provider's, an estimate, or the reservation where nothing can be trusted less),
 * the store's record of it (retried), and the final event the client reads.
 */
import {
  type BudgetState,
  emptyUsage,
  type FinalUsage,
  jsonSseEncoder,
  nanosToUsd,
  type ScopeRef,
  type SseEncoder,
  type StreamOutcome,
  type Usage,
} from '@tokenmeter/core';
import type { StreamMeter } from '@tokenmeter/core/meter';
import { promptTokens } from '@tokenmeter/core/providers';
import { type EndResult, settleAll } from '@tokenmeter/core/store';
import type { ReservationEnd } from './events.js';
import type { Config } from './options.js';
import type { StreamLimit } from './types.js';
import { describe, type UpstreamFailure } from './upstream-errors.js';

export const LIMIT_MESSAGES: Record<StreamLimit, string> = {
  max_cost_per_request: "The answer reached this route's cost cap per request; it was cut short.",
  lease_denied: 'The budget cannot cover more of this answer; it was cut short.',
  lease_unavailable: 'The budget store could not extend this answer; it was cut short.',
  budget_fit: 'The answer reached the output the budget covered when it started; it was cut short.',
};

export const CODE_MESSAGES: Record<StreamOutcome, string> = {
  completed: 'The answer is complete.',
  client_disconnected: 'The client disconnected.',
  budget_exceeded: 'The budget for this request ran out; the answer was cut short.',
  rate_limited: 'Rate limit reached.',
  upstream_error: 'The model provider failed.',
  timeout: 'The answer took longer than this route allows.',
  store_unavailable: 'The budget store is unavailable.',
  handler_error: 'The server failed before the answer could start.',
  client_stalled: 'The client stopped reading.',
  upstream_idle: 'The model provider stopped sending.',
  internal_error: 'The server failed to stream the answer.',
};

/** The message of an end: the limit's that stopped it, else the outcome's. */
export function endMessage(outcome: StreamOutcome, limit: StreamLimit | undefined): string {
  return limit !== undefined ? LIMIT_MESSAGES[limit] : CODE_MESSAGES[outcome];
}

/** How a stream ends: the outcome, and what else the end must know. */
export interface EndOptions {
  /** The provider billed nothing (an HTTP error status, or the call never started). */
  refused?: boolean;
  failure?: UpstreamFailure;
  /** Close the connection without a final event (the client is not reading). */
  destroy?: boolean;
}

/** What the final usage is decided from, beside the meter. */
export interface FinalFacts {
  requestId: string;
  model: string;
  reservedNanos: number;
  /** A whole-body answer (a gateway's non-streaming call). */
  wholeBody: boolean;
}

/**
 * The final usage. A usage that cannot be priced charges the reservation, and so does a
 * whole-body answer cut before it arrived (the provider may have generated all of it, and
 * nothing of it was seen), and an answer that completed without the provider's usage
 * (billed, perhaps, for more than it showed): what was reserved, never an estimate below.
 */
export function finalUsage(
  config: Config,
  meter: StreamMeter,
  outcome: StreamOutcome,
  options: EndOptions,
  facts: FinalFacts,
): FinalUsage {
  const charge = (why: string, seen?: FinalUsage) =>
    reservationCharge(facts.reservedNanos, facts.model, outcome, why, seen);
  let final: FinalUsage;
  try {
    final =
      facts.wholeBody &&
      outcome !== 'completed' &&
      options.refused !== true &&
      meter.eventCount === 0
        ? charge('the answer was cut before it arrived')
        : meter.finish(outcome, { refused: options.refused === true });
    if (options.failure?.chargeReservation) {
      final = charge('the provider stream could not be metered', final);
    }
    if (outcome === 'completed' && final.estimated && final.costNanos < facts.reservedNanos) {
      config.services.logger.warn(
        "tokenmeter: an answer completed without the provider's usage; charged its reservation",
        {
          requestId: facts.requestId,
          estimatedNanos: final.costNanos,
          reservedNanos: facts.reservedNanos,
        },
      );
      final = charge("the answer completed without the provider's usage", final);
    }
  } catch (error) {
    config.services.logger.error(
      'tokenmeter: the final usage could not be priced; charging the reservation',
      {
        requestId: facts.requestId,
        error: describe(error),
      },
    );
    final = charge(`the final usage could not be priced (${describe(error)})`);
  }
  return final;
}

/** The final usage when the provider's cannot be priced or was never seen: the reservation, estimated. */
export function reservationCharge(
  nanos: number,
  model: string,
  outcome: StreamOutcome,
  why: string,
  seen?: FinalUsage,
): FinalUsage {
  return {
    ...(seen ?? {}),
    usage: seen?.usage ?? emptyUsage(),
    cost: {
      nanos,
      usd: nanosToUsd(nanos),
      model,
      pricedAs: model,
      fallback: false,
      multipliers: {},
      lines: [],
      warnings: [`${why}; charged the reservation`],
    },
    costNanos: nanos,
    estimated: true,
    outcome,
    inputSource: 'estimate',
    outputSource: 'estimate',
  };
}

/** What the store made of a settlement. */
export interface Recorded {
  recorded: boolean;
  /** The tightest budget after it. */
  budget: BudgetState | null;
  error?: unknown;
  ends: Partial<Record<ReservationEnd, number>>;
  /** Each scope's budget after the settlement (kept for budget alerts). */
  budgets?: Array<{ scope: ScopeRef; budget: BudgetState }>;
}

/** Settles every reservation at the final cost, retrying a failing store a few times. */
export async function recordSettlement(
  config: Config,
  reservationIds: readonly string[],
  final: FinalUsage,
  facts: { requestId: string; metered: boolean; keepBudgets: boolean },
): Promise<Recorded> {
  if (reservationIds.length === 0) {
    // Nothing applied, nothing to record; or the store failed open: a charge to reconcile.
    return facts.metered
      ? { recorded: false, budget: null, error: 'unmetered (store failed open)', ends: {} }
      : { recorded: false, budget: null, ends: {} };
  }
  const actual = {
    costNanos: final.costNanos,
    tokens: promptTokens(final.usage) + final.usage.outputTokens,
  };
  let lastError: unknown;
  for (const delay of config.timing.settleRetryDelaysMs) {
    if (delay > 0) await sleep(delay);
    try {
      const results = await settleAll(config.services.store, reservationIds, actual);
      return recordedFrom(config, results, facts);
    } catch (error) {
      lastError = error;
    }
  }
  return {
    recorded: false,
    budget: null,
    error: lastError,
    ends: { unrecorded: reservationIds.length },
  };
}

/** The store's answers to a settlement, counted by how each reservation ended. */
function recordedFrom(
  config: Config,
  results: readonly EndResult[],
  facts: { requestId: string; keepBudgets: boolean },
): Recorded {
  let tightest: BudgetState | null = null;
  const ends: Partial<Record<ReservationEnd, number>> = {};
  // Kept only for budget alerts: a stream without any allocates nothing here.
  const budgets: Recorded['budgets'] = facts.keepBudgets ? [] : undefined;
  for (const r of results) {
    const end: ReservationEnd = r.ended
      ? 'settled'
      : r.previously === 'expired'
        ? 'expired_before_settle'
        : 'already_ended';
    ends[end] = (ends[end] ?? 0) + 1;
    if (!r.ended) {
      config.services.logger.warn('tokenmeter: a reservation had already ended before settlement', {
        requestId: facts.requestId,
        previously: r.previously,
      });
      continue;
    }
    if (r.budget) budgets?.push({ scope: r.reservation.scope, budget: r.budget });
    if (r.budget && (!tightest || r.budget.remainingNanos < tightest.remainingNanos))
      tightest = r.budget;
  }
  return { recorded: true, budget: tightest, ends, budgets };
}

/**
 * The final event: `done` with usage, cost and the budget left, or `error` saying why it
 * ended (a custom encoder that throws still ends the stream with one error event).
 */
export function finalEvent(
  config: Config,
  encoder: SseEncoder,
  end: { outcome: StreamOutcome; final: FinalUsage; budget: BudgetState | null },
  failure: UpstreamFailure | undefined,
  limit: StreamLimit | undefined,
  requestId: string,
): string {
  const { outcome, final, budget } = end;
  const body = {
    usage: usageJson(final.usage),
    costUsd: final.cost.usd,
    costNanos: final.costNanos,
    estimated: final.estimated,
    budget: budget ? budgetJson(budget) : null,
  };
  try {
    if (outcome === 'completed') {
      return encoder.done({ stopReason: final.stopReason ?? null, ...body });
    }
    return encoder.error({
      code: outcome,
      message: failure?.message ?? endMessage(outcome, limit),
      ...(failure?.status !== undefined ? { upstreamStatus: failure.status } : {}),
      ...(failure?.type !== undefined ? { upstreamType: failure.type } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...body,
    });
  } catch (error) {
    config.services.logger.error('tokenmeter: the encoder failed on the final event', {
      requestId,
      error: describe(error),
    });
    return jsonSseEncoder.error({
      code: 'internal_error',
      message: CODE_MESSAGES.internal_error,
      ...body,
    });
  }
}

export function usageJson(usage: Usage) {
  return {
    inputTokens: promptTokens(usage),
    outputTokens: usage.outputTokens,
    uncachedInputTokens: usage.inputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    cacheWriteTokens: usage.cacheWrite5mTokens + usage.cacheWrite1hTokens,
    ...(usage.reasoningTokens ? { reasoningTokens: usage.reasoningTokens } : {}),
  };
}

export function budgetJson(budget: BudgetState) {
  return {
    limitUsd: nanosToUsd(budget.limitNanos),
    spentUsd: nanosToUsd(budget.spentNanos),
    reservedUsd: nanosToUsd(budget.reservedNanos),
    remainingUsd: nanosToUsd(budget.remainingNanos),
    periodEnd: budget.periodEnd === null ? null : isoTime(budget.periodEnd),
  };
}

// Every request of a period shares its end: format it once, not per meta and done event.
let lastIsoMs = Number.NaN;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString();
    lastIsoMs = ms;
  }
  return lastIso;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
