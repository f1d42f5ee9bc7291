/**
 * The ledger's schema, as numbered migrations the package ships and applies in order, each
 * once (recorded in `tokenmeter_ledger_migrations`), under an advisory lock so that several
 * instances starting at once apply each migration exactly once.
 *
 * - `tokenmeter_streams`: one row per settled stream, keyed by the request id (a retried
 *   write never duplicates). Every token kind, the cost in nano-dollars (`bigint`: exact),
 *   whether it is the provider's figure or an estimate, outcome, reservation, times.
 * - `tokenmeter_stream_scopes`: one row per stream and paying scope (user, team, …), with
 *   the stream's end time, cost and model copied in: spend by scope and period, by model,
 *   and top spenders read this table through its indexes alone.
 * - `admitted_at` (migration 2) dates a stream for every spend query: the instant the store
 *   charged, its admission, so a stream that runs across a period's end lands in the period
 *   the budget counted it in (the store settles a reservation into the period it was made
 *   in). Rows written before it are dated by their `started_at`.
 */
import type { Pool, PoolClient } from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'streams and scopes',
    sql: `
CREATE TABLE tokenmeter_streams (
  request_id            text PRIMARY KEY,
  scopes                jsonb NOT NULL,
  model                 text NOT NULL,
  provider              text,
  outcome               text NOT NULL,
  stream_limit          text,
  input_tokens          bigint NOT NULL,
  output_tokens         bigint NOT NULL,
  cache_read_tokens     bigint NOT NULL,
  cache_write_5m_tokens bigint NOT NULL,
  cache_write_1h_tokens bigint NOT NULL,
  reasoning_tokens      bigint NOT NULL,
  web_search_requests   bigint NOT NULL,
  web_fetch_requests    bigint NOT NULL,
  service_tier          text,
  speed                 text,
  inference_geo         text,
  cost_nanos            bigint NOT NULL CHECK (cost_nanos >= 0),
  estimated             boolean NOT NULL,
  reserved_nanos        bigint,
  recorded_in_store     boolean,
  started_at            timestamptz NOT NULL,
  first_token_at        timestamptz,
  ended_at              timestamptz NOT NULL,
  written_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tokenmeter_streams_ended_at ON tokenmeter_streams (ended_at);

CREATE TABLE tokenmeter_stream_scopes (
  scope_kind  text NOT NULL,
  scope_id    text NOT NULL,
  ended_at    timestamptz NOT NULL,
  request_id  text NOT NULL REFERENCES tokenmeter_streams (request_id) ON DELETE CASCADE,
  model       text NOT NULL,
  cost_nanos  bigint NOT NULL,
  PRIMARY KEY (scope_kind, scope_id, ended_at, request_id)
);
-- Spend of one scope over a period, and by model: the primary key's prefix.
-- Top spenders of a kind over a period:
CREATE INDEX tokenmeter_stream_scopes_kind_time ON tokenmeter_stream_scopes (scope_kind, ended_at);
CREATE INDEX tokenmeter_stream_scopes_request ON tokenmeter_stream_scopes (request_id);
`,
  },
  {
    version: 2,
    name: 'date streams by their admission',
    sql: `
ALTER TABLE tokenmeter_streams ADD COLUMN admitted_at timestamptz;
UPDATE tokenmeter_streams SET admitted_at = started_at;
ALTER TABLE tokenmeter_streams ALTER COLUMN admitted_at SET NOT NULL;

ALTER TABLE tokenmeter_stream_scopes ADD COLUMN admitted_at timestamptz;
UPDATE tokenmeter_stream_scopes s SET admitted_at = t.started_at
  FROM tokenmeter_streams t WHERE t.request_id = s.request_id;
ALTER TABLE tokenmeter_stream_scopes ALTER COLUMN admitted_at SET NOT NULL;
-- Spend of one scope over a period, and by model: the primary key's prefix, by admission.
ALTER TABLE tokenmeter_stream_scopes DROP CONSTRAINT tokenmeter_stream_scopes_pkey;
ALTER TABLE tokenmeter_stream_scopes ADD PRIMARY KEY (scope_kind, scope_id, admitted_at, request_id);
-- Top spenders of a kind over a period:
DROP INDEX tokenmeter_stream_scopes_kind_time;
CREATE INDEX tokenmeter_stream_scopes_kind_time ON tokenmeter_stream_scopes (scope_kind, admitted_at);
`,
  },
];

/** Any 64-bit number: the advisory lock the migrations are applied under. */
const MIGRATION_LOCK = 0x746f6b656e6d; // "tokenm"

/**
 * Creates or updates the ledger's tables (idempotent; safe to call from every instance at
 * start). Returns the versions it applied now.
 */
export async function migrate(pool: Pool): Promise<number[]> {
  const client: PoolClient = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS tokenmeter_ledger_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (
        await client.query<{ version: number }>('SELECT version FROM tokenmeter_ledger_migrations')
      ).rows.map((r) => r.version),
    );
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query(
          'INSERT INTO tokenmeter_ledger_migrations (version, name) VALUES ($1, $2)',
          [migration.version, migration.name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      applied.push(migration.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    client.release();
  }
  return applied;
}
