/**
 * Spend queries over the ledger. Periods are UTC days and months, like the budgets'.
 * Sums are exact: `bigint` in Postgres, `numeric` sums returned as text, read as numbers
 * only while they are safe integers (a sum above 2^53 nano-dollars, $9 million, throws).
 */
import {
  type BudgetPeriod,
  MAX_NANOS,
  periodBounds,
  type Store,
  type Usage,
} from '@tokenmeter/core';
import type pg from 'pg';

export interface ScopeRef {
  kind: string;
  id: string;
}

/** A time range: `from` inclusive, `to` exclusive. */
export interface Range {
  from: Date;
  to: Date;
}

export interface PeriodSpend {
  /** Start of the UTC day or month. */
  period: Date;
  costNanos: number;
  streams: number;
}

export interface ModelSpend {
  model: string;
  costNanos: number;
  streams: number;
}

export interface Spender {
  scope: ScopeRef;
  costNanos: number;
  streams: number;
}

function exact(value: string | number | null | undefined): number {
  const n = Number(value ?? 0);
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`a sum of ${String(value)} nano-dollars is beyond exact numbers`);
  }
  return n;
}

/** Spend of one scope per UTC day or month within `range`, oldest first. */
export async function spendByPeriod(
  pool: pg.Pool,
  scope: ScopeRef,
  period: 'day' | 'month',
  range: Range,
): Promise<PeriodSpend[]> {
  const { rows } = await pool.query<{ period: Date; cost: string; streams: string }>(
    `SELECT date_trunc($1, ended_at, 'UTC') AS period, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $2 AND scope_id = $3 AND ended_at >= $4 AND ended_at < $5
      GROUP BY 1 ORDER BY 1`,
    [period, scope.kind, scope.id, range.from, range.to],
  );
  return rows.map((r) => ({
    period: r.period,
    costNanos: exact(r.cost),
    streams: exact(r.streams),
  }));
}

/** Spend of one scope by model within `range`, largest first. */
export async function spendByModel(
  pool: pg.Pool,
  scope: ScopeRef,
  range: Range,
): Promise<ModelSpend[]> {
  const { rows } = await pool.query<{ model: string; cost: string; streams: string }>(
    `SELECT model, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $1 AND scope_id = $2 AND ended_at >= $3 AND ended_at < $4
      GROUP BY model ORDER BY cost DESC, model`,
    [scope.kind, scope.id, range.from, range.to],
  );
  return rows.map((r) => ({ model: r.model, costNanos: exact(r.cost), streams: exact(r.streams) }));
}

/** The scopes of one kind that spent the most within `range`. */
export async function topSpenders(
  pool: pg.Pool,
  kind: string,
  range: Range,
  limit = 10,
): Promise<Spender[]> {
  const { rows } = await pool.query<{ id: string; cost: string; streams: string }>(
    `SELECT scope_id AS id, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $1 AND ended_at >= $2 AND ended_at < $3
      GROUP BY scope_id ORDER BY cost DESC, scope_id LIMIT $4`,
    [kind, range.from, range.to, limit],
  );
  return rows.map((r) => ({
    scope: { kind, id: r.id },
    costNanos: exact(r.cost),
    streams: exact(r.streams),
  }));
}

/** One stream's record, as written; undefined when the ledger has none. */
export interface StreamRecord {
  requestId: string;
  scopes: ScopeRef[];
  model: string;
  provider: string | null;
  outcome: string;
  limit: string | null;
  /** As settled: `costOf(model, usage)` prices it again. */
  usage: Usage;
  costNanos: number;
  estimated: boolean;
  reservedNanos: number | null;
  recordedInStore: boolean | null;
  startedAt: Date;
  firstTokenAt: Date | null;
  endedAt: Date;
}

export async function streamRecord(
  pool: pg.Pool,
  requestId: string,
): Promise<StreamRecord | undefined> {
  const { rows } = await pool.query<Record<string, unknown>>(
    'SELECT * FROM tokenmeter_streams WHERE request_id = $1',
    [requestId],
  );
  const r = rows[0];
  if (!r) return undefined;
  const n = (v: unknown) => exact(v as string);
  return {
    requestId: r.request_id as string,
    scopes: r.scopes as ScopeRef[],
    model: r.model as string,
    provider: (r.provider as string | null) ?? null,
    outcome: r.outcome as string,
    limit: (r.stream_limit as string | null) ?? null,
    usage: {
      inputTokens: n(r.input_tokens),
      outputTokens: n(r.output_tokens),
      cacheReadTokens: n(r.cache_read_tokens),
      cacheWrite5mTokens: n(r.cache_write_5m_tokens),
      cacheWrite1hTokens: n(r.cache_write_1h_tokens),
      reasoningTokens: n(r.reasoning_tokens),
      webSearchRequests: n(r.web_search_requests),
      webFetchRequests: n(r.web_fetch_requests),
      ...(r.service_tier != null ? { serviceTier: r.service_tier as string } : {}),
      ...(r.speed != null ? { speed: r.speed as string } : {}),
      ...(r.inference_geo != null ? { inferenceGeo: r.inference_geo as string } : {}),
    },
    costNanos: n(r.cost_nanos),
    estimated: r.estimated as boolean,
    reservedNanos: r.reserved_nanos === null ? null : n(r.reserved_nanos),
    recordedInStore: (r.recorded_in_store as boolean | null) ?? null,
    startedAt: r.started_at as Date,
    firstTokenAt: (r.first_token_at as Date | null) ?? null,
    endedAt: r.ended_at as Date,
  };
}

/** One scope's spend in the ledger beside the store's budget counter, for one period. */
export interface Reconciliation {
  scope: ScopeRef;
  period: { start: Date; end: Date | null };
  ledgerNanos: number;
  storeNanos: number;
  /** Ledger minus store: 0 when they agree. */
  differenceNanos: number;
}

/**
 * Compares each scope's spend in the ledger with the store's budget counter for the period
 * holding `nowMs` (the store's own clock by default). A difference means a settlement the
 * ledger lost (a crash with a full queue, a dropped write) or one the store could not record
 * (`recorded: false`), or, within a second of a period's end, a stream the two dated on
 * either side of it; expired reservations charged by the store (`'charge-reserved'`) show
 * as store spend with no ledger row.
 */
export async function reconcile(
  pool: pg.Pool,
  store: Store,
  scopes: readonly ScopeRef[],
  period: BudgetPeriod,
  options: { nowMs?: number } = {},
): Promise<Reconciliation[]> {
  const nowMs = options.nowMs ?? (await store.now());
  const bounds = periodBounds(period, nowMs);
  const out: Reconciliation[] = [];
  for (const scope of scopes) {
    const { rows } = await pool.query<{ cost: string | null }>(
      `SELECT sum(cost_nanos) AS cost FROM tokenmeter_stream_scopes
        WHERE scope_kind = $1 AND scope_id = $2 AND ended_at >= $3
          AND ($4::timestamptz IS NULL OR ended_at < $4)`,
      [
        scope.kind,
        scope.id,
        new Date(bounds.start),
        bounds.end === null ? null : new Date(bounds.end),
      ],
    );
    const state = await store.getState(scope, { budget: { limitNanos: MAX_NANOS, period } });
    const ledgerNanos = exact(rows[0]?.cost);
    const storeNanos = state.budget?.spentNanos ?? 0;
    out.push({
      scope,
      period: {
        start: new Date(bounds.start),
        end: bounds.end === null ? null : new Date(bounds.end),
      },
      ledgerNanos,
      storeNanos,
      differenceNanos: ledgerNanos - storeNanos,
    });
  }
  return out;
}
