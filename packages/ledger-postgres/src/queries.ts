/**
 * Spend queries over the ledger. Periods are UTC days and months, like the budgets', and a
 * stream belongs to the period of its admission (`admitted_at`), the one the store charged.
 * Sums are exact: `bigint` in Postgres, `numeric` sums returned as text, read as numbers
 * only while they are safe integers (a sum above 2^53 nano-dollars, $9 million, throws).
 * Scope ids and request ids are passed and returned as the app knows them: the escaping of
 * what Postgres cannot store (escape.ts) is applied and undone here.
 */
import { type BudgetPeriod, MAX_NANOS, type Store, type Usage } from '@tokenmeter/core';
import { periodBounds } from '@tokenmeter/core/store';
import type pg from 'pg';
import { escapeText, unescapeText } from './escape.js';

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
  /** Start of the UTC day or month (of the streams' admission). */
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

/** Spend of one scope per UTC day or month of admission within `range`, oldest first. */
export async function spendByPeriod(
  pool: pg.Pool,
  scope: ScopeRef,
  period: 'day' | 'month',
  range: Range,
): Promise<PeriodSpend[]> {
  const { rows } = await pool.query<{ period: Date; cost: string; streams: string }>(
    `SELECT date_trunc($1, admitted_at, 'UTC') AS period, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $2 AND scope_id = $3 AND admitted_at >= $4 AND admitted_at < $5
      GROUP BY 1 ORDER BY 1`,
    [period, escapeText(scope.kind), escapeText(scope.id), range.from, range.to],
  );
  return rows.map((r) => ({
    period: r.period,
    costNanos: exact(r.cost),
    streams: exact(r.streams),
  }));
}

/** Spend of one scope by model, of streams admitted within `range`, largest first. */
export async function spendByModel(
  pool: pg.Pool,
  scope: ScopeRef,
  range: Range,
): Promise<ModelSpend[]> {
  const { rows } = await pool.query<{ model: string; cost: string; streams: string }>(
    `SELECT model, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $1 AND scope_id = $2 AND admitted_at >= $3 AND admitted_at < $4
      GROUP BY model ORDER BY cost DESC, model`,
    [escapeText(scope.kind), escapeText(scope.id), range.from, range.to],
  );
  return rows.map((r) => ({
    model: unescapeText(r.model),
    costNanos: exact(r.cost),
    streams: exact(r.streams),
  }));
}

/** The scopes of one kind that spent the most, on streams admitted within `range`. */
export async function topSpenders(
  pool: pg.Pool,
  kind: string,
  range: Range,
  limit = 10,
): Promise<Spender[]> {
  const { rows } = await pool.query<{ id: string; cost: string; streams: string }>(
    `SELECT scope_id AS id, sum(cost_nanos) AS cost, count(*) AS streams
       FROM tokenmeter_stream_scopes
      WHERE scope_kind = $1 AND admitted_at >= $2 AND admitted_at < $3
      GROUP BY scope_id ORDER BY cost DESC, scope_id LIMIT $4`,
    [escapeText(kind), range.from, range.to, limit],
  );
  return rows.map((r) => ({
    scope: { kind, id: unescapeText(r.id) },
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
  /** The store's admission: the instant that dates the stream's spend. */
  admittedAt: Date;
}

export async function streamRecord(
  pool: pg.Pool,
  requestId: string,
): Promise<StreamRecord | undefined> {
  const { rows } = await pool.query<Record<string, unknown>>(
    'SELECT * FROM tokenmeter_streams WHERE request_id = $1',
    [escapeText(requestId)],
  );
  const r = rows[0];
  if (!r) return undefined;
  const n = (v: unknown) => exact(v as string);
  const text = (v: unknown) => (v == null ? null : unescapeText(v as string));
  return {
    requestId,
    scopes: (r.scopes as ScopeRef[]).map((s) => ({
      kind: unescapeText(s.kind),
      id: unescapeText(s.id),
    })),
    model: unescapeText(r.model as string),
    provider: text(r.provider),
    outcome: unescapeText(r.outcome as string),
    limit: text(r.stream_limit),
    usage: {
      inputTokens: n(r.input_tokens),
      outputTokens: n(r.output_tokens),
      cacheReadTokens: n(r.cache_read_tokens),
      cacheWrite5mTokens: n(r.cache_write_5m_tokens),
      cacheWrite1hTokens: n(r.cache_write_1h_tokens),
      reasoningTokens: n(r.reasoning_tokens),
      webSearchRequests: n(r.web_search_requests),
      webFetchRequests: n(r.web_fetch_requests),
      ...(r.service_tier != null ? { serviceTier: unescapeText(r.service_tier as string) } : {}),
      ...(r.speed != null ? { speed: unescapeText(r.speed as string) } : {}),
      ...(r.inference_geo != null ? { inferenceGeo: unescapeText(r.inference_geo as string) } : {}),
    },
    costNanos: n(r.cost_nanos),
    estimated: r.estimated as boolean,
    reservedNanos: r.reserved_nanos === null ? null : n(r.reserved_nanos),
    recordedInStore: (r.recorded_in_store as boolean | null) ?? null,
    startedAt: r.started_at as Date,
    firstTokenAt: (r.first_token_at as Date | null) ?? null,
    endedAt: r.ended_at as Date,
    admittedAt: r.admitted_at as Date,
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
 * ledger lost (a crash with a full queue, a dropped or refused write) or one the store could
 * not record (`recorded: false`); expired reservations charged by the store
 * (`'charge-reserved'`) show as store spend with no ledger row. Both date a stream by its
 * admission, so a stream running across the period's end is counted in the same period by
 * both (to the millisecond when the entry carries the store's `admittedAt`; see the README).
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
        WHERE scope_kind = $1 AND scope_id = $2 AND admitted_at >= $3
          AND ($4::timestamptz IS NULL OR admitted_at < $4)`,
      [
        escapeText(scope.kind),
        escapeText(scope.id),
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
