/**
 * The ledger's writer: settlements go into a bounded in-memory queue at once (the request
 * never waits for Postgres), and a single writer loop drains it in batches — one INSERT
 * per batch, `ON CONFLICT (request_id) DO NOTHING`, so a batch retried after a lost reply
 * never duplicates a row. Every batch is bounded in time (batch-write.ts): a statement
 * timeout, or a slow or unreachable Postgres, is a failed write like any other, retried
 * with capped exponential backoff while new settlements queue up to `maxQueue` (beyond it
 * they are dropped, counted, and logged once per outage). A batch Postgres refuses for
 * what a row holds is written apart, halving, until the bad row is alone: it is dropped,
 * counted and logged, every other row written. What is queued when the process dies is
 * lost: `close()` on shutdown writes it within its deadline and logs what it could not.
 */
import { Socket } from 'node:net';
import pg from 'pg';
import { BatchWrite, isDataError } from './batch-write.js';
import { INSERT_SQL, insertParams, type Row, toRow } from './rows.js';
import { migrate } from './schema.js';
import type {
  LedgerEntry,
  LedgerLogger,
  LedgerStats,
  PostgresLedger,
  PostgresLedgerOptions,
} from './types.js';

/** Slow batches after the first are reported at most this often. */
const SLOW_WARNING_EVERY_MS = 60_000;

interface Config {
  batchSize: number;
  flushIntervalMs: number;
  maxQueue: number;
  minBackoff: number;
  maxBackoff: number;
  statementTimeoutMs: number;
  slowBatchMs: number;
  logger: LedgerLogger;
  now: () => number;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(
      `createPostgresLedger: ${name} must be a positive integer (got ${String(value)}); leave it out for the default, ${fallback}.`,
    );
  }
  return value;
}

/** The options merged with their defaults, checked once at creation. */
function parseOptions(options: PostgresLedgerOptions): Config {
  if (!options.pool && !options.connectionString) {
    throw new Error(
      'createPostgresLedger needs a pool or a connectionString (e.g. process.env.DATABASE_URL).',
    );
  }
  const minBackoff = positiveInteger('retry.minMs', options.retry?.minMs, 100);
  return {
    batchSize: positiveInteger('batchSize', options.batchSize, 500),
    flushIntervalMs: positiveInteger('flushIntervalMs', options.flushIntervalMs, 50),
    maxQueue: positiveInteger('maxQueue', options.maxQueue, 100_000),
    minBackoff,
    maxBackoff: Math.max(minBackoff, positiveInteger('retry.maxMs', options.retry?.maxMs, 5_000)),
    statementTimeoutMs: positiveInteger('statementTimeoutMs', options.statementTimeoutMs, 10_000),
    slowBatchMs: positiveInteger('slowBatchMs', options.slowBatchMs, 1_000),
    logger: options.logger ?? console,
    now: options.now ?? Date.now,
  };
}

const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/**
 * A ledger on PostgreSQL. Pass `ledger.onSettle` as (or call it from) the middleware's
 * `onSettle`; query with the functions of `queries.ts`.
 *
 * @example
 * const ledger = createPostgresLedger({ connectionString: process.env.DATABASE_URL });
 * app.post('/api/chat', costTrackedSSE({ ...options, onSettle: ledger.onSettle }));
 * process.on('SIGTERM', async () => { await ledger.close(); process.exit(0); });
 */
export function createPostgresLedger(options: PostgresLedgerOptions): PostgresLedger {
  const config = parseOptions(options);
  const { batchSize, flushIntervalMs, maxQueue, logger, now } = config;
  const ownsPool = !options.pool;
  // The sockets of a pool the ledger opened, so close() can cut them at its deadline
  // whatever the server does (pool.end() waits for every connection to end).
  const sockets = new Set<Socket>();
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString,
      max: 4,
      stream: () => {
        const socket = new Socket();
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
        return socket;
      },
    });
  // An idle client's error (Postgres restarted) must not crash the process.
  if (ownsPool) pool.on('error', () => {});

  const queue: Row[] = [];
  const stats: LedgerStats = {
    queued: 0,
    written: 0,
    duplicates: 0,
    dropped: 0,
    rejected: 0,
    retries: 0,
    slowBatches: 0,
  };
  /** Rows ever queued, and rows done with (written, duplicate or rejected): flush() waits on them. */
  let enqueued = 0;
  let done = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing = false;
  let backoff = 0;
  let dropLogged = false;
  let closeLogged = false;
  /** Set once close() has drained or reached its deadline: nothing is written any more. */
  let closed = false;
  let closeResult: Promise<LedgerStats> | undefined;
  /** The batch being written, for close() to abandon at its deadline. */
  let inFlight: BatchWrite | undefined;
  let slowWarnedAt = Number.NEGATIVE_INFINITY;
  let slowSinceWarning = 0;
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
    // The ledger never keeps a process alive on its own; close() holds it until its deadline.
    timer.unref?.();
  }

  /** Writes now instead of at the pending timer. */
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

  /** Resolves true once every row queued before `target` is done, false after `ms`. */
  function waitFor(target: number, ms: number, keepAlive: boolean): Promise<boolean> {
    if (done >= target) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timeout = setTimeout(() => {
        const at = waiters.indexOf(waiter);
        if (at !== -1) waiters.splice(at, 1);
        resolve(false);
      }, ms);
      if (!keepAlive) timeout.unref?.();
      const waiter = {
        target,
        resolve: (ok: boolean) => {
          clearTimeout(timeout);
          resolve(ok);
        },
      };
      waiters.push(waiter);
    });
  }

  /** The first `count` rows of the queue are done with. */
  function finished(count: number): void {
    queue.splice(0, count);
    done += count;
    settleWaiters();
  }

  function noteDuration(ms: number, rows: number): void {
    if (ms < config.slowBatchMs) return;
    stats.slowBatches++;
    slowSinceWarning++;
    const at = performance.now();
    if (at - slowWarnedAt < SLOW_WARNING_EVERY_MS) return;
    logger.warn('tokenmeter ledger: Postgres is slow; a batch took longer than slowBatchMs', {
      ms: Math.round(ms),
      rows,
      slowBatchMs: config.slowBatchMs,
      slowBatches: slowSinceWarning,
      queued: queue.length,
    });
    slowWarnedAt = at;
    slowSinceWarning = 0;
  }

  /** One INSERT of `rows` (the head of the queue), bounded in time. */
  async function write(rows: readonly Row[]): Promise<void> {
    const attempt = new BatchWrite(pool, config.statementTimeoutMs);
    inFlight = attempt;
    const started = performance.now();
    try {
      const result = await attempt.run<{ inserted: number }>(INSERT_SQL, insertParams(rows));
      noteDuration(performance.now() - started, rows.length);
      const inserted = result.rows[0]?.inserted ?? 0;
      stats.written += inserted;
      stats.duplicates += rows.length - inserted;
      finished(rows.length);
    } finally {
      if (inFlight === attempt) inFlight = undefined;
    }
  }

  /**
   * Writes `rows`; when Postgres refuses them for what one holds, writes each half apart
   * (left first, so what is done is always the head of the queue) until the bad rows are
   * alone: each is dropped, counted and logged. A batch of 500 with one bad row costs about
   * 18 statements, where one row at a time would cost 500.
   */
  async function writeIsolating(rows: readonly Row[]): Promise<void> {
    try {
      await write(rows);
    } catch (error) {
      if (closed || !isDataError(error)) throw error;
      if (rows.length === 1) {
        reject(rows[0]!, error);
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await writeIsolating(rows.slice(0, half));
      await writeIsolating(rows.slice(half));
    }
  }

  function reject(row: Row, error: unknown): void {
    stats.rejected++;
    const { entry } = row;
    // The log line is the only record of this settlement: enough to reconcile it by hand.
    logger.error('tokenmeter ledger: Postgres refused a settlement; it was dropped', {
      error: message(error),
      code: (error as { code?: unknown }).code,
      requestId: entry.requestId,
      scopes: entry.scopes,
      model: entry.model,
      costNanos: entry.final.costNanos,
      outcome: entry.outcome,
    });
    finished(1);
  }

  async function drain(): Promise<void> {
    if (writing || closed) return;
    writing = true;
    await ready;
    try {
      while (queue.length > 0 && !closed) {
        try {
          await ensureSchema();
          await writeIsolating(queue.slice(0, batchSize));
        } catch (error) {
          if (closed) return;
          stats.retries++;
          stats.lastError = message(error);
          if (backoff === 0) {
            logger.warn('tokenmeter ledger: a write failed; retrying with backoff', {
              error: stats.lastError,
              queued: queue.length,
            });
          }
          backoff = backoff === 0 ? config.minBackoff : Math.min(config.maxBackoff, backoff * 2);
          writing = false;
          schedule(backoff * (0.5 + Math.random() / 2));
          return;
        }
        if (backoff > 0) {
          logger.warn('tokenmeter ledger: writing again after a failure', {
            retries: stats.retries,
            queued: queue.length,
          });
        }
        backoff = 0;
        dropLogged = false;
        delete stats.lastError;
      }
    } finally {
      writing = false;
    }
  }

  const onSettle = (entry: LedgerEntry): void => {
    try {
      if (closed) {
        stats.dropped++;
        if (!closeLogged) {
          closeLogged = true;
          logger.error('tokenmeter ledger: a settlement arrived after close(); not recorded', {
            requestId: entry.requestId,
          });
        }
        return;
      }
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
      stats.rejected++;
      logger.error('tokenmeter ledger: a settlement could not be queued', {
        error: String(error),
        requestId: (entry as Partial<LedgerEntry> | undefined)?.requestId,
      });
    }
  };

  function flush(timeoutMs = 10_000): Promise<boolean> {
    const target = enqueued;
    if (done >= target) return Promise.resolve(true);
    if (backoff === 0 && !writing) drainNow();
    return waitFor(target, timeoutMs, false);
  }

  /** Ends a pool the ledger opened without waiting past `ms`; then cuts what is left. */
  async function endPool(ms: number): Promise<void> {
    const ended = pool.end().then(
      () => true,
      () => true,
    );
    let wait: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      ended,
      new Promise<false>((resolve) => {
        wait = setTimeout(() => resolve(false), Math.max(0, ms));
      }),
    ]);
    clearTimeout(wait);
    for (const socket of sockets) {
      // Ended in time: the goodbyes finish in the background without holding the process.
      if (inTime) socket.unref();
      else socket.destroy();
    }
  }

  async function close(deadlineMs = 5_000): Promise<LedgerStats> {
    const started = performance.now();
    // One last attempt now, even while backing off; later retries still run until the deadline.
    if (!writing) drainNow();
    // A timer that holds the process: close() always gets to say what was not written.
    const drained = await waitFor(enqueued, deadlineMs, true);
    closed = true;
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    inFlight?.abandon(
      new Error(`the ledger closed (deadline ${deadlineMs} ms) before this batch was written`),
    );
    const notWritten = queue.length;
    if (!drained || notWritten > 0) {
      logger.error('tokenmeter ledger: closing with settlements not written', {
        notWritten,
        deadlineMs,
        lastError: stats.lastError,
      });
    }
    if (ownsPool) await endPool(deadlineMs - (performance.now() - started));
    for (const w of waiters.splice(0)) w.resolve(false);
    return { ...stats, queued: notWritten };
  }

  return {
    onSettle,
    flush,
    close(deadlineMs?: number) {
      closeResult ??= close(deadlineMs);
      return closeResult;
    },
    stats: () => ({ ...stats, queued: queue.length }),
    pool,
    ready,
  };
}
