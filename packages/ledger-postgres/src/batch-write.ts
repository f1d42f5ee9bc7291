/**
 * One batch written on one connection of the pool, bounded whatever the database does:
 *
 * - in a transaction with `SET LOCAL statement_timeout`, so Postgres itself cancels a
 *   statement that waits too long (on a lock, on a saturated server) and the connection
 *   stays usable — without changing the settings of a pool the app owns;
 * - under a deadline here as well (the timeout plus `REPLY_GRACE_MS`, connecting
 *   included), for a server that does not answer at all: the connection is destroyed;
 * - abandonable at once (`abandon()`, from `close()` at its deadline): the connection is
 *   destroyed. No COMMIT is ever sent then, so an abandoned batch is rolled back by
 *   Postgres and never lands after the ledger reported it unwritten.
 */
import type pg from 'pg';

/** Time Postgres is given, beyond the statement timeout, to report the cancellation itself. */
export const REPLY_GRACE_MS = 1_000;

/** A batch Postgres did not answer within the deadline (retryable, like a statement timeout). */
export class BatchTimeoutError extends Error {
  readonly code = 'batch_timeout';
}

/** SQLSTATE classes that say a row is wrong (not the database): data exception, integrity. */
const DATA_ERROR_CLASSES = new Set(['22', '23']);

/**
 * Whether a failed batch failed because of what some row holds (a value Postgres refuses):
 * writing it again cannot help; writing its rows apart finds the bad one. Anything else
 * (a timeout, a lost connection, a missing table) is the database's state: retried.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 && DATA_ERROR_CLASSES.has(code.slice(0, 2));
}

const ignore = (): void => {};

export class BatchWrite {
  private client: pg.PoolClient | undefined;
  private released = false;
  private failure: Error | undefined;
  private fail!: (error: Error) => void;
  /** Rejects when the batch is abandoned or its deadline passes. */
  private readonly failed: Promise<never>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly statementTimeoutMs: number,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    // Nobody may be listening when it rejects (the batch already ended): not an unhandled rejection.
    this.failed.catch(() => {});
  }

  /** Runs `sql` in a transaction; resolves with its result once committed. */
  async run<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const deadline = setTimeout(
      () =>
        this.abandon(
          new BatchTimeoutError(
            `Postgres did not answer within ${this.statementTimeoutMs + REPLY_GRACE_MS} ms; the connection was closed`,
          ),
        ),
      this.statementTimeoutMs + REPLY_GRACE_MS,
    );
    try {
      const connecting = this.pool.connect();
      try {
        this.client = await Promise.race([connecting, this.failed]);
      } catch (error) {
        // A connection that arrives after the deadline goes back to the pool unused.
        connecting.then(
          (client) => client.release(),
          () => {},
        );
        throw error;
      }
      const client = this.client;
      // A connection lost while checked out is reported on the client as well as to the
      // query: without a listener, that event would crash the process.
      client.on('error', ignore);
      try {
        await Promise.race([
          client.query(`BEGIN; SET LOCAL statement_timeout = ${this.statementTimeoutMs}`),
          this.failed,
        ]);
        const result = await Promise.race([client.query<R>(sql, params), this.failed]);
        await Promise.race([client.query('COMMIT'), this.failed]);
        this.release();
        return result;
      } catch (error) {
        if (this.failure) throw this.failure;
        // The statement failed (a timeout, a row Postgres refused): the transaction is
        // aborted and the connection is fine once rolled back.
        try {
          await Promise.race([client.query('ROLLBACK'), this.failed]);
          this.release();
        } catch {
          this.release(true);
        }
        throw error;
      }
    } finally {
      clearTimeout(deadline);
    }
  }

  /** Ends the batch at once: its connection (if it has one) is destroyed, `run()` rejects. */
  abandon(reason: Error): void {
    if (this.failure) return;
    this.failure = reason;
    this.fail(reason);
    this.release(true);
  }

  private release(destroy = false): void {
    if (!this.client || this.released) return;
    this.released = true;
    // A destroyed client may still report its end: keep ignoring it then.
    if (!destroy) this.client.off('error', ignore);
    // A truthy argument makes the pool close the connection (at once when a query is active).
    this.client.release(destroy ? (this.failure ?? true) : undefined);
  }
}
