/**
 * The ledger's writer: settlements go into a bounded in-memory queue at once (the request
 * never waits for Postgres), and a single writer loop drains it in batches — one statement
 * per batch, `ON CONFLICT (request_id) DO NOTHING`, so a batch retried after a lost reply
 * never duplicates a row. While Postgres is down the batch is retried with capped
 * exponential backoff and new settlements queue up to `maxQueue`; beyond it they are
 * dropped, counted, and logged once per outage. What is queued when the process dies is
 * lost: `close()` on shutdown drains it (see the README).
 */
import type { Usage } from '@tokenmeter/core';
import pg from 'pg';
import { migrate } from './schema.js';

/** What the ledger records of one settled stream: `SettleInfo` of @tokenmeter/express fits. */
export interface LedgerEntry {
  requestId: string;
  scopes: readonly { kind: string; id: string }[];
  model: string;
  provider?: string;
  outcome: string;
  final: { usage: Usage; costNanos: number; estimated: boolean };
  reservedNanos?: number;
  /** Admission time, ms since the epoch. Defaults to the end minus `durationMs`. */
  startedAt?: number;
  durationMs: number;
  timeToFirstTokenMs?: number;
  limit?: string;
  /** Whether the store recorded the settlement (budget counters). */
  recorded?: boolean;
}

export interface LedgerLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface PostgresLedgerOptions {
  /** A pool the app owns (the ledger never ends it), or a connection string to open one. */
  pool?: pg.Pool;
  connectionString?: string;
  /** Rows per INSERT. Defaults to 500. */
  batchSize?: number;
  /** How long a settlement may wait for companions before its batch is written. Defaults to 50 ms. */
  flushIntervalMs?: number;
  /**
   * Settlements held in memory while Postgres is slow or down; beyond it new ones are
   * dropped (counted in `stats().dropped`, logged once per outage). Defaults to 100,000
   * (about 100 MB at most).
   */
  maxQueue?: number;
  /** Backoff between retries of a failed batch: from `minMs`, doubling, capped at `maxMs`. */
  retry?: { minMs?: number; maxMs?: number };
  /** Create or update the tables at start (`migrate()`). Defaults to true. */
  migrate?: boolean;
  /** Defaults to `console`. */
  logger?: LedgerLogger;
  /** The clock for end times (ms since the epoch). Defaults to `Date.now`. */
  now?: () => number;
}

export interface LedgerStats {
  /** Settlements waiting to be written. */
  queued: number;
  /** Rows written (a duplicate delivery is not counted here). */
  written: number;
  /** Deliveries whose request id was already in the ledger: ignored. */
  duplicates: number;
  /** Settlements dropped because the queue was full. */
  dropped: number;
  /** Batch writes that failed and were retried. */
  retries: number;
  /** The last write error, while the ledger is failing. */
  lastError?: string;
}

export interface PostgresLedger {
  /** Queues one settlement; never throws, never waits. Pass as `costTrackedSSE({ onSettle })`. */
  readonly onSettle: (entry: LedgerEntry) => void;
  /** Resolves once everything queued before the call is written (or `timeoutMs` passed: false). */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Drains the queue (within `timeoutMs`, default 5,000), then ends the pool if the ledger opened it. */
  close(timeoutMs?: number): Promise<LedgerStats>;
  stats(): LedgerStats;
  /** The pool, for the queries. */
  readonly pool: pg.Pool;
  /** Resolves when the tables exist (the start-up migration ran). */
  readonly ready: Promise<void>;
}

/** The columns, in the order of the INSERT. */
const COLUMNS: readonly (readonly [string, string])[] = [
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
];

/**
 * One statement per batch: the stream rows (arrays unnested), a duplicate request id left
 * alone, and one scope row per paying scope of each row actually inserted.
 */
const INSERT_SQL = `
WITH ins AS (
  INSERT INTO tokenmeter_streams (${COLUMNS.map(([c]) => c).join(', ')})
  SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
  ON CONFLICT (request_id) DO NOTHING
  RETURNING request_id, scopes, ended_at, cost_nanos, model
), scopes AS (
  INSERT INTO tokenmeter_stream_scopes (scope_kind, scope_id, ended_at, request_id, model, cost_nanos)
  SELECT s->>'kind', s->>'id', ins.ended_at, ins.request_id, ins.model, ins.cost_nanos
  FROM ins, jsonb_array_elements(ins.scopes) AS s
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins)::int AS inserted`;

interface Row {
  values: unknown[];
}

function toRow(entry: LedgerEntry, endedAt: number): Row {
  const u = entry.final.usage;
  const startedAt = entry.startedAt ?? endedAt - entry.durationMs;
  const firstToken =
    entry.timeToFirstTokenMs !== undefined ? startedAt + entry.timeToFirstTokenMs : null;
  // Scopes that are the same kind and id twice would collide on the scope table's key.
  const scopes = [...new Map(entry.scopes.map((s) => [`${s.kind}\u0000${s.id}`, s])).values()];
  return {
    values: [
      entry.requestId,
      JSON.stringify(scopes.map((s) => ({ kind: s.kind, id: s.id }))),
      entry.model,
      entry.provider ?? null,
      entry.outcome,
      entry.limit ?? null,
      u.inputTokens,
      u.outputTokens,
      u.cacheReadTokens,
      u.cacheWrite5mTokens,
      u.cacheWrite1hTokens,
      u.reasoningTokens,
      u.webSearchRequests,
      u.webFetchRequests,
      u.serviceTier ?? null,
      u.speed ?? null,
      u.inferenceGeo ?? null,
      entry.final.costNanos,
      entry.final.estimated,
      entry.reservedNanos ?? null,
      entry.recorded ?? null,
      new Date(startedAt),
      firstToken === null ? null : new Date(firstToken),
      new Date(endedAt),
    ],
  };
}

/**
 * A ledger on PostgreSQL. Pass `ledger.onSettle` as (or call it from) the middleware's
 * `onSettle`; query with the functions of `queries.ts`.
 *
 * @example
 * const ledger = createPostgresLedger({ connectionString: process.env.DATABASE_URL });
 * app.post('/api/chat', costTrackedSSE({ ...options, onSettle: ledger.onSettle }));
 * process.on('SIGTERM', () => ledger.close());
 */
export function createPostgresLedger(options: PostgresLedgerOptions): PostgresLedger {
  if (!options.pool && !options.connectionString) {
    throw new Error(
      'createPostgresLedger needs a pool or a connectionString (e.g. process.env.DATABASE_URL).',
    );
  }
  const ownsPool = !options.pool;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: 4 });
  // An idle client's error (Postgres restarted) must not crash the process.
  if (ownsPool) pool.on('error', () => {});
  const batchSize = options.batchSize ?? 500;
  const flushIntervalMs = options.flushIntervalMs ?? 50;
  const maxQueue = options.maxQueue ?? 100_000;
  const minBackoff = options.retry?.minMs ?? 100;
  const maxBackoff = options.retry?.maxMs ?? 5_000;
  const logger = options.logger ?? console;
  const now = options.now ?? Date.now;

  const queue: Row[] = [];
  const stats: LedgerStats = { queued: 0, written: 0, duplicates: 0, dropped: 0, retries: 0 };
  /** Rows ever queued, and rows done with (written or found duplicate): flush() waits on them. */
  let enqueued = 0;
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing = false;
  let backoff = 0;
  let dropLogged = false;
  let closed = false;
  const waiters: Array<{ target: number; resolve: (ok: boolean) => void }> = [];

  // The tables are created at start; if Postgres is down then, each write retries the
  // migration first, so a ledger started during an outage still finds its tables.
  let migrated = options.migrate === false;
  const ensureSchema = async (): Promise<void> => {
    if (migrated) return;
    await migrate(pool);
    migrated = true;
  };
  const ready = ensureSchema().catch((error: unknown) => {
    logger.error('tokenmeter ledger: the migration failed; it is retried with the writes', {
      error: String(error),
    });
  });

  function schedule(delay: number): void {
    if (timer || writing || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, delay);
    timer.unref?.();
  }

  /** Writes now instead of at the pending timer (never while a retry is waiting). */
  function drainNow(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    void drain();
  }

  function settleWaiters(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (done >= w.target) {
        waiters.splice(i, 1);
        w.resolve(true);
      }
    }
  }

  async function drain(): Promise<void> {
    if (writing) return;
    writing = true;
    await ready;
    try {
      while (queue.length > 0) {
        const batch = queue.slice(0, batchSize);
        const params = COLUMNS.map((_, column) => batch.map((row) => row.values[column]));
        try {
          await ensureSchema();
          const result = await pool.query<{ inserted: number }>(INSERT_SQL, params);
          const inserted = result.rows[0]?.inserted ?? 0;
          queue.splice(0, batch.length);
          stats.written += inserted;
          stats.duplicates += batch.length - inserted;
          done += batch.length;
          if (backoff > 0) {
            logger.warn('tokenmeter ledger: writing again after a failure', {
              retries: stats.retries,
              queued: queue.length,
            });
          }
          backoff = 0;
          dropLogged = false;
          delete stats.lastError;
          settleWaiters();
        } catch (error) {
          stats.retries++;
          stats.lastError = error instanceof Error ? error.message : String(error);
          if (backoff === 0) {
            logger.warn('tokenmeter ledger: a write failed; retrying with backoff', {
              error: stats.lastError,
              queued: queue.length,
            });
          }
          backoff = backoff === 0 ? minBackoff : Math.min(maxBackoff, backoff * 2);
          writing = false;
          if (!closed) schedule(backoff * (0.5 + Math.random() / 2));
          return;
        }
      }
    } finally {
      writing = false;
    }
  }

  const onSettle = (entry: LedgerEntry): void => {
    try {
      if (queue.length >= maxQueue) {
        stats.dropped++;
        if (!dropLogged) {
          dropLogged = true;
          logger.error('tokenmeter ledger: the queue is full; settlements are being dropped', {
            maxQueue,
            lastError: stats.lastError,
          });
        }
        return;
      }
      queue.push(toRow(entry, now()));
      enqueued++;
      if (queue.length >= batchSize && backoff === 0) {
        // A full batch goes at once (while failing, the retry timer decides).
        drainNow();
      } else {
        schedule(backoff > 0 ? backoff : flushIntervalMs);
      }
    } catch (error) {
      // A malformed entry: never the request's problem.
      logger.error('tokenmeter ledger: a settlement could not be queued', { error: String(error) });
    }
  };

  function flush(timeoutMs = 10_000): Promise<boolean> {
    const target = enqueued;
    if (done >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { target, resolve };
      waiters.push(waiter);
      if (backoff === 0) drainNow();
      setTimeout(() => {
        const at = waiters.indexOf(waiter);
        if (at !== -1) {
          waiters.splice(at, 1);
          resolve(false);
        }
      }, timeoutMs).unref?.();
    });
  }

  return {
    onSettle,
    flush,
    async close(timeoutMs = 5_000) {
      const drained = await flush(timeoutMs);
      closed = true;
      if (timer) clearTimeout(timer);
      if (!drained) {
        logger.error('tokenmeter ledger: closing with settlements not written', {
          lost: queue.length,
          lastError: stats.lastError,
        });
      }
      if (ownsPool) await pool.end().catch(() => {});
      return { ...stats, queued: queue.length };
    },
    stats: () => ({ ...stats, queued: queue.length }),
    pool,
    ready,
  };
}
