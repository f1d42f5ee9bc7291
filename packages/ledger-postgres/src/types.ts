/** The ledger's public types: what it records, its options, its counters, its handle. */
import type { Usage } from '@tokenmeter/core';
import type pg from 'pg';

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
  /**
   * The store's time of admission (ms since the epoch): the instant whose budget period the
   * store charged (a reservation settles into the period it was made in). The ledger dates
   * the stream by it, so its spend lands in the same period as the budget's. Defaults to
   * `startedAt`.
   */
  admittedAt?: number;
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
  /**
   * How long one statement of a batch may run in Postgres, waiting on a lock included,
   * before Postgres cancels it (`SET LOCAL statement_timeout`, this transaction only: a
   * pool you pass keeps its settings). A cancelled batch is retried with backoff and
   * counted in `stats().retries`. A batch Postgres does not answer at all within this plus
   * 1 s (connecting included) has its connection closed and is retried the same way.
   * Defaults to 10,000 ms.
   *
   * @example
   * createPostgresLedger({ connectionString, statementTimeoutMs: 2_000 })
   */
  statementTimeoutMs?: number;
  /**
   * A batch written more slowly than this logs a warning (the first one, then at most one
   * a minute, with the count meanwhile) and counts in `stats().slowBatches`: Postgres is
   * slow before it times out. Defaults to 1,000 ms.
   */
  slowBatchMs?: number;
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
  /** Settlements dropped because the queue was full, or delivered after `close()`. */
  dropped: number;
  /**
   * Settlements Postgres refused for what they hold (a value no column accepts, such as a
   * negative cost): found by writing their batch apart, dropped, and each logged with its
   * request id, scopes and cost.
   */
  rejected: number;
  /** Batch writes that failed (statement timeouts included) and were retried. */
  retries: number;
  /** Batches written more slowly than `slowBatchMs`. */
  slowBatches: number;
  /** The last write error, while the ledger is failing. */
  lastError?: string;
}

export interface PostgresLedger {
  /** Queues one settlement; never throws, never waits. Pass as `costTrackedSSE({ onSettle })`. */
  readonly onSettle: (entry: LedgerEntry) => void;
  /** Resolves once everything queued before the call is written (or `timeoutMs` passed: false). */
  flush(timeoutMs?: number): Promise<boolean>;
  /**
   * Writes what is queued until `deadlineMs` (default 5,000) has passed, then stops whatever
   * the database does: a batch still in flight is abandoned (its connection closed, its
   * transaction never committed), what was not written is logged with its count, and a
   * pool the ledger opened is ended without waiting on it past the deadline. Resolves by
   * the deadline (plus a few ms), with the final counters (`queued`: not written).
   */
  close(deadlineMs?: number): Promise<LedgerStats>;
  stats(): LedgerStats;
  /** The pool, for the queries. */
  readonly pool: pg.Pool;
  /** Resolves when the tables exist (the start-up migration ran). */
  readonly ready: Promise<void>;
}
