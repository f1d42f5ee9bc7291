/**
 * The end of one stream, in the order the README gives: stop the upstream and any wait;
 * the final usage; the store's settlement; the final event (or a JSON answer before any
 * header, or a closed connection for a stalled client); telemetry; onSettleFailure;
 * budget alerts; onSettle. Each step is guarded, so a failure in one (our bug, a custom
 * encoder, a hook, a usage too large to price) leaves the others to happen.
 */
import type { BudgetState, FinalUsage, SseEncoder, StreamOutcome } from '@tokenmeter/core';
import type { StreamMeter } from '@tokenmeter/core/meter';
import type { Admission } from './admission-result.js';
import { scopeKeyOf } from './alerts.js';
import type { StreamTrace } from './events.js';
import type { Config } from './options.js';
import type { StreamRegistry } from './registry.js';
import {
  type EndOptions,
  endMessage,
  finalEvent,
  finalUsage,
  type Recorded,
  recordSettlement,
} from './settlement.js';
import type { Transport } from './transport.js';
import type { SettleInfo, StreamLimit } from './types.js';
import { describe } from './upstream-errors.js';

/** What ending needs of a stream, read when its end begins. */
export interface EndingStream {
  readonly config: Config;
  readonly registry: StreamRegistry;
  readonly transport: Transport;
  readonly admission: Admission;
  readonly meter: StreamMeter;
  readonly trace: StreamTrace;
  readonly encoder: SseEncoder;
  readonly reservedNanos: number;
  /** Which limit stopped the stream, when one did. */
  readonly limit: StreamLimit | undefined;
  /** `performance.now()` when the stream began. */
  readonly startedAt: number;
  /** Stops the upstream call, the read and any wait for the client (step 1). */
  halt(outcome: StreamOutcome): void;
  /** Removes the stream's listeners from the transport. */
  readonly offClose: () => void;
}

/** Ends a stream: never rejects; resolves with the usage it was settled at. */
export async function endStream(
  s: EndingStream,
  outcome: StreamOutcome,
  options: EndOptions,
): Promise<FinalUsage> {
  const { config, admission } = s;
  const requestId = admission.requestId;
  const step = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      config.services.logger.error(`tokenmeter: ${what} failed while ending a stream`, {
        requestId,
        error: describe(error),
      });
    }
  };
  // 1. Whatever ended the stream, the upstream call must not go on generating.
  step('stopping the stream', () => s.halt(outcome));
  // 2. The final usage.
  const final = finalUsage(config, s.meter, outcome, options, {
    requestId,
    model: admission.model,
    reservedNanos: s.reservedNanos,
    wholeBody: admission.relay === 'json',
  });
  // 3. The store.
  let recorded: Recorded;
  try {
    recorded = await recordSettlement(config, admission.reservationIds, final, {
      requestId,
      metered: admission.metered,
      keepBudgets: admission.alerts.size > 0,
    });
  } catch (error) {
    recorded = { recorded: false, budget: null, error, ends: {} };
  }
  const { budget, error } = recorded;
  const info = settleInfo(s, outcome, final, recorded.recorded);
  // 4. What the client sees.
  step('ending the response', () => deliverEnd(s, outcome, final, budget, options));
  step('removing listeners', s.offClose);
  // 5. Telemetry: built only for a trace that records.
  if (s.trace.active) {
    step('ending the span', () =>
      s.trace.end({
        ...info,
        budgetRemainingNanos: budget?.remainingNanos ?? null,
        reservationEnds: recorded.ends,
        failure: {
          ...options.failure,
          message: options.failure?.message ?? endMessage(outcome, s.limit),
        },
      }),
    );
  }
  // 6. Hooks (guarded: a hook that throws or rejects is logged).
  if (!recorded.recorded && admission.metered) {
    await config.services.guard(() => config.hooks.onSettleFailure(info, error));
  }
  // Budget alerts: after the stream ended, never awaited by it.
  fireAlerts(s, recorded);
  const settled = config.services.guard(() => config.hooks.onSettle(info));
  if (settled) await settled;
  return final;
}

/** What `onSettle` (and the span) hears of the stream's end. */
function settleInfo(
  s: EndingStream,
  outcome: StreamOutcome,
  final: FinalUsage,
  recorded: boolean,
): SettleInfo {
  const admission = s.admission;
  const info: SettleInfo = {
    requestId: admission.requestId,
    scopes: admission.scopes,
    model: admission.model,
    provider: admission.provider,
    outcome,
    final,
    reservedNanos: s.reservedNanos,
    startedAt: Math.round(performance.timeOrigin + s.startedAt),
    ...(admission.admittedAt !== undefined ? { admittedAt: admission.admittedAt } : {}),
    durationMs: performance.now() - s.startedAt,
    recorded,
    ...(s.limit !== undefined ? { limit: s.limit } : {}),
    ...(admission.metered && admission.reservationIds.length === 0 ? { unmetered: true } : {}),
    backpressureWaits: s.transport.backpressureWaits,
    backpressureMs: s.transport.backpressureMs,
  };
  if (s.meter.timeToFirstTokenMs !== undefined)
    info.timeToFirstTokenMs = s.meter.timeToFirstTokenMs;
  return info;
}

/** Tells the route's budget alerts of each scope's budget after the settlement. */
function fireAlerts(s: EndingStream, recorded: Recorded): void {
  const alerts = s.registry.alerts;
  const wanted = s.admission.alerts;
  if (!alerts || !recorded.budgets || wanted.size === 0) return;
  const settled = recorded.budgets.flatMap(({ scope, budget }) => {
    const thresholds = wanted.get(scopeKeyOf(scope));
    return thresholds ? [{ scope, budget, thresholds }] : [];
  });
  void alerts.fire(settled, s.admission.requestId);
}

/** The final event, or the wire's answer before any header, or a closed connection. */
function deliverEnd(
  s: EndingStream,
  outcome: StreamOutcome,
  final: FinalUsage,
  budget: BudgetState | null,
  options: EndOptions,
): void {
  const transport = s.transport;
  if (!transport.headersSent) {
    s.config.protocol.wire.endBeforeHeaders(transport, outcome, options.failure);
    return;
  }
  if (options.destroy) {
    transport.destroy();
    return;
  }
  if (transport.closed) return;
  if (options.failure?.relayed) {
    endWith(s, '');
    return;
  }
  endWith(
    s,
    finalEvent(
      s.config,
      s.encoder,
      { outcome, final, budget },
      options.failure,
      s.limit,
      s.admission.requestId,
    ),
  );
}

/** Writes the last chunk and ends the response. */
function endWith(s: EndingStream, chunk: string): void {
  s.transport.end(chunk);
  // A client that reads nothing more would hold the finished response open forever.
  if (!s.transport.finished) {
    s.registry.destroyUnlessFinished(
      s.transport,
      performance.now() + s.config.timing.stallTimeoutMs,
    );
  }
}
