/**
 * The store's own metrics: each call's latency and failures
 * (`tokenmeter.store.operation.duration`), and the reservation gauges of the scopes an app
 * asked to observe, read from the store when the SDK collects.
 */
import type { Attributes, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { type ScopeRef, type Store, TokenmeterError } from '@tokenmeter/core';
import { guarded } from './guarded.js';
import * as sc from './semconv.js';

const STORE_OPERATIONS = ['admit', 'settle', 'extend', 'release', 'getState', 'now'] as const;
type StoreOperation = (typeof STORE_OPERATIONS)[number];
/** Built once, shared by every call (never changed). */
const OPERATION_ATTRS = Object.fromEntries(
  STORE_OPERATIONS.map((op) => [op, { [sc.ATTR_TOKENMETER_STORE_OPERATION]: op }]),
) as unknown as Record<StoreOperation, Attributes>;

/**
 * The store with every call timed. Wrap the guarded store, so timeouts count as failures at
 * the guard's limit. `instruments()` is asked per call: no-ops until an SDK registers.
 */
export function timedStore(
  store: Store,
  instruments: () => { noop: boolean; storeLatency: Histogram },
): Store {
  const timed = <A extends unknown[], R>(
    op: StoreOperation,
    call: (...args: A) => Promise<R>,
  ): ((...args: A) => Promise<R>) => {
    const attrs = OPERATION_ATTRS[op];
    return (...args: A) => {
      const inst = instruments();
      if (inst.noop) return call(...args);
      const started = performance.now();
      return call(...args).then(
        (value) => {
          guarded(() => inst.storeLatency.record((performance.now() - started) / 1000, attrs));
          return value;
        },
        (error: unknown) => {
          guarded(() =>
            inst.storeLatency.record((performance.now() - started) / 1000, {
              ...attrs,
              [sc.ATTR_ERROR_TYPE]: storeErrorType(error),
            }),
          );
          throw error;
        },
      );
    };
  };
  const wrapped: Store = {
    admit: timed('admit', (request) => store.admit(request)),
    settle: timed('settle', (id, actual) => store.settle(id, actual)),
    extend: timed('extend', (id, request) => store.extend(id, request)),
    release: timed('release', (id) => store.release(id)),
    getState: timed('getState', (scope, policy) => store.getState(scope, policy)),
    now: timed('now', () => store.now()),
  };
  const releaseByKey = store.releaseByKey;
  if (releaseByKey) {
    // Measured as a release: it is one, found by admission key instead of id.
    wrapped.releaseByKey = timed('release', (scope, key) => releaseByKey.call(store, scope, key));
  }
  const claimOnce = store.claimOnce;
  // Once per alert threshold and period: too rare to be worth a latency series.
  if (claimOnce)
    wrapped.claimOnce = (scope, name, until) => claimOnce.call(store, scope, name, until);
  const shutdown = store.shutdown;
  if (shutdown) wrapped.shutdown = () => shutdown.call(store);
  return wrapped;
}

/** Gauges of the reservations open and expired in each observed scope, read at collection. */
export function observeReservations(
  meter: Meter,
  scopes: readonly ScopeRef[],
  observed: () => Store | undefined,
): void {
  const open: ObservableGauge = meter.createObservableGauge(
    sc.METRIC_TOKENMETER_STORE_RESERVATIONS_OPEN,
    {
      description: 'Reservations open in the store, per observed scope.',
      unit: '{reservation}',
    },
  );
  const expired: ObservableGauge = meter.createObservableGauge(
    sc.METRIC_TOKENMETER_STORE_RESERVATIONS_EXPIRED,
    {
      description:
        'Reservations the store ended by expiry (since it began tracking the scope), per observed scope.',
      unit: '{reservation}',
    },
  );
  meter.addBatchObservableCallback(
    async (result) => {
      const store = observed();
      if (!store) return;
      await Promise.all(
        scopes.map(async (scope) => {
          try {
            const state = await store.getState(scope);
            const attrs = {
              [sc.ATTR_TOKENMETER_SCOPE_KIND]: scope.kind,
              [sc.ATTR_TOKENMETER_SCOPE_ID]: scope.id,
            };
            result.observe(open, state.reservations.open, attrs);
            result.observe(expired, state.reservations.expired, attrs);
          } catch {
            // The store is down: no observation (the store latency metric shows the failure).
          }
        }),
      );
    },
    [open, expired],
  );
}

function storeErrorType(error: unknown): string {
  if (TokenmeterError.isInstance(error)) {
    return error.details.timeoutMs !== undefined ? 'timeout' : error.code;
  }
  return error instanceof Error ? error.name : '_OTHER';
}
