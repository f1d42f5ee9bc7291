/**
 * A settlement as a row of the ledger, and the one statement that writes a batch of them.
 * Text goes through `escapeText()` (what Postgres cannot store is escaped, see escape.ts),
 * and the row is dated by the instant the store charged: its admission (see `admittedAt`).
 */
import { escapeText } from './escape.js';
import type { LedgerEntry } from './types.js';

/** The columns, in the order of the INSERT. */
export const COLUMNS: readonly (readonly [string, string])[] = [
  ['request_id', 'text'],
  ['scopes', 'jsonb'],
  ['model', 'text'],
  ['provider', 'text'],
  ['outcome', 'text'],
  ['stream_limit', 'text'],
  ['input_tokens', 'int8'],
  ['output_tokens', 'int8'],
  ['cache_read_tokens', 'int8'],
  ['cache_write_5m_tokens', 'int8'],
  ['cache_write_1h_tokens', 'int8'],
  ['reasoning_tokens', 'int8'],
  ['web_search_requests', 'int8'],
  ['web_fetch_requests', 'int8'],
  ['service_tier', 'text'],
  ['speed', 'text'],
  ['inference_geo', 'text'],
  ['cost_nanos', 'int8'],
  ['estimated', 'bool'],
  ['reserved_nanos', 'int8'],
  ['recorded_in_store', 'bool'],
  ['started_at', 'timestamptz'],
  ['first_token_at', 'timestamptz'],
  ['ended_at', 'timestamptz'],
  ['admitted_at', 'timestamptz'],
];

/**
 * One statement per batch: the stream rows (arrays unnested), a duplicate request id left
 * alone, and one scope row per paying scope of each row actually inserted.
 */
export const INSERT_SQL = `
WITH ins AS (
  INSERT INTO tokenmeter_streams (${COLUMNS.map(([c]) => c).join(', ')})
  SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
  ON CONFLICT (request_id) DO NOTHING
  RETURNING request_id, scopes, ended_at, admitted_at, cost_nanos, model
), scopes AS (
  INSERT INTO tokenmeter_stream_scopes (scope_kind, scope_id, admitted_at, ended_at, request_id, model, cost_nanos)
  SELECT s->>'kind', s->>'id', ins.admitted_at, ins.ended_at, ins.request_id, ins.model, ins.cost_nanos
  FROM ins, jsonb_array_elements(ins.scopes) AS s
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS inserted`;

export interface Row {
  /** For the log line of a row Postgres refused. */
  readonly entry: LedgerEntry;
  readonly values: unknown[];
}

const optionalText = (value: string | undefined | null): string | null =>
  value === undefined || value === null ? null : escapeText(value);

export function toRow(entry: LedgerEntry, endedAt: number): Row {
  const u = entry.final.usage;
  const startedAt = entry.startedAt ?? endedAt - entry.durationMs;
  const admittedAt = entry.admittedAt ?? startedAt;
  const firstToken =
    entry.timeToFirstTokenMs !== undefined ? startedAt + entry.timeToFirstTokenMs : null;
  const scopes = entry.scopes.map((s) => ({ kind: escapeText(s.kind), id: escapeText(s.id) }));
  // Scopes that are the same kind and id twice would collide on the scope table's key.
  const unique = [...new Map(scopes.map((s) => [`${s.kind}\u0000${s.id}`, s])).values()];
  return {
    entry,
    values: [
      escapeText(entry.requestId),
      JSON.stringify(unique),
      escapeText(entry.model),
      optionalText(entry.provider),
      escapeText(entry.outcome),
      optionalText(entry.limit),
      u.inputTokens,
      u.outputTokens,
      u.cacheReadTokens,
      u.cacheWrite5mTokens,
      u.cacheWrite1hTokens,
      u.reasoningTokens,
      u.webSearchRequests,
      u.webFetchRequests,
      optionalText(u.serviceTier),
      optionalText(u.speed),
      optionalText(u.inferenceGeo),
      entry.final.costNanos,
      entry.final.estimated,
      entry.reservedNanos ?? null,
      entry.recorded ?? null,
      new Date(startedAt),
      firstToken === null ? null : new Date(firstToken),
      new Date(endedAt),
      new Date(admittedAt),
    ],
  };
}

/** The INSERT's parameters for `rows`: one array per column. */
export function insertParams(rows: readonly Row[]): unknown[][] {
  return COLUMNS.map((_, column) => rows.map((row) => row.values[column]));
}
