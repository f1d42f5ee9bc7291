/**
 * A slow or silent Postgres: a lock held by another connection, a server that accepts and
 * never answers. Every batch is bounded (statement timeout, then a deadline here), a timed
 * out batch is retried, and close() keeps its deadline whatever the database does.
 */
import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresLedger } from './ledger.js';
import { entry, recordingLogger, usePrivatePostgres } from './ledger.test-helper.js';
import type { PrivatePostgres } from './testing.js';

let db: PrivatePostgres;
let pool: pg.Pool;

usePrivatePostgres((d, p) => {
  db = d;
  pool = p;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; fails the test with `what` after `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000) {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql, params);
  return Number(rows[0]!.n);
}

const rowsOf = (scopeId: string) =>
  count('SELECT count(*) AS n FROM tokenmeter_stream_scopes WHERE scope_id = $1', [scopeId]);

/** Holds `LOCK TABLE tokenmeter_streams` on its own connection: every INSERT waits. */
async function lockStreams(): Promise<{ release(): Promise<void> }> {
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE tokenmeter_streams IN EXCLUSIVE MODE');
  return {
    async release() {
      await locker.query('COMMIT');
      await locker.end();
    },
  };
}

describe('a lock held 10 s by another connection', () => {
  it('close(1000) resolves within 2 s and says how many rows were not written; a ledger left open retries its timed-out batch and loses nothing', async () => {
    const closingLog = recordingLogger();
    const openLog = recordingLogger();
    // The ledger that closes opens its own pool (so close() ends it), with the default
    // statement timeout (10 s): only close()'s deadline can end its wait.
    const closing = createPostgresLedger({
      connectionString: `${db.url}?application_name=closing-ledger`,
      logger: closingLog,
    });
    const open = createPostgresLedger({
      pool,
      logger: openLog,
      statementTimeoutMs: 1_000,
      retry: { minMs: 100, maxMs: 500 },
    });
    await Promise.all([closing.ready, open.ready]);
    const closingScope = `closing-${process.pid}`;
    const openScope = `open-${process.pid}`;

    const lock = await lockStreams();
    const released = sleep(10_000).then(() => lock.release());
    let closeMs: number;
    try {
      for (let i = 0; i < 100; i++)
        closing.onSettle(entry({ scopes: [{ kind: 'user', id: closingScope }] }));
      for (let i = 0; i < 100; i++)
        open.onSettle(entry({ scopes: [{ kind: 'user', id: openScope }] }));
      // The closing ledger's batch is in Postgres, waiting on the lock.
      await until(
        'the batch waits on the lock',
        async () =>
          (await count(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'closing-ledger' AND wait_event_type = 'Lock'",
          )) === 1,
      );
      const started = performance.now();
      const stats = await closing.close(1_000);
      closeMs = performance.now() - started;
      expect(closeMs).toBeGreaterThanOrEqual(990);
      expect(closeMs).toBeLessThan(2_000);
      expect(stats).toMatchObject({ queued: 100, written: 0 });
      expect(closingLog.lines).toContainEqual({
        level: 'error',
        message: 'tokenmeter ledger: closing with settlements not written',
        fields: expect.objectContaining({ notWritten: 100, deadlineMs: 1_000 }),
      });
      // Meanwhile the open ledger's batch is cancelled by Postgres after 1 s, again and again.
      await until('the open ledger retried twice', () => open.stats().retries >= 2);
      expect(open.stats().lastError).toMatch(/statement timeout/);
      expect(open.stats().queued).toBe(100);
    } finally {
      await released;
    }
    // After the lock: nothing lost, nothing twice.
    const afterLock = performance.now();
    expect(await open.flush(20_000)).toBe(true);
    const catchUpMs = performance.now() - afterLock;
    expect(await rowsOf(openScope)).toBe(100);
    expect(open.stats()).toMatchObject({
      written: 100,
      duplicates: 0,
      dropped: 0,
      rejected: 0,
      queued: 0,
    });
    const failures = openLog.lines.filter((l) => l.message.includes('a write failed'));
    expect(failures).toHaveLength(1);
    expect(String(failures[0]!.fields.error)).toMatch(/statement timeout/);
    expect(openLog.lines.some((l) => l.message.includes('writing again after a failure'))).toBe(
      true,
    );
    // What close() reported unwritten stays unwritten: its transaction never committed,
    // even once the lock it waited on was released.
    await until(
      'the abandoned connection is gone',
      async () =>
        (await count(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'closing-ledger'",
        )) === 0,
    );
    expect(await rowsOf(closingScope)).toBe(0);
    console.info(
      `close(1000) under a held lock resolved in ${Math.round(closeMs)} ms; the open ledger retried ${open.stats().retries} times and wrote everything ${Math.round(catchUpMs)} ms after the lock`,
    );
    await open.close();
  }, 60_000);

  it('a batch slower than slowBatchMs is written, counted and warned about', async () => {
    const log = recordingLogger();
    const ledger = createPostgresLedger({ pool, logger: log, slowBatchMs: 200 });
    await ledger.ready;
    const scope = `slow-${process.pid}`;
    const lock = await lockStreams();
    const released = sleep(1_000).then(() => lock.release());
    for (let i = 0; i < 5; i++) ledger.onSettle(entry({ scopes: [{ kind: 'user', id: scope }] }));
    await released;
    expect(await ledger.flush(20_000)).toBe(true);
    expect(await rowsOf(scope)).toBe(5);
    expect(ledger.stats()).toMatchObject({ written: 5, retries: 0, slowBatches: 1 });
    const warning = log.lines.find((l) => l.message.includes('Postgres is slow'));
    expect(warning?.fields).toMatchObject({ rows: 5, slowBatchMs: 200 });
    expect(warning!.fields.ms as number).toBeGreaterThanOrEqual(200);
    await ledger.close();
  }, 30_000);
});

describe('a server that accepts and never answers', () => {
  let silent: Server;
  const accepted: Socket[] = [];
  beforeAll(async () => {
    silent = createServer((socket) => {
      accepted.push(socket);
      socket.on('error', () => {});
      socket.resume(); // reads the startup message, never replies
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('a batch is given up after the statement timeout and retried; close(500) keeps its deadline and cuts the connections', async () => {
    const log = recordingLogger();
    const { port } = silent.address() as { port: number };
    const ledger = createPostgresLedger({
      connectionString: `postgres://postgres@127.0.0.1:${port}/none`,
      migrate: false,
      statementTimeoutMs: 300,
      retry: { minMs: 50, maxMs: 100 },
      logger: log,
    });
    for (let i = 0; i < 10; i++) ledger.onSettle(entry());
    await until('a silent batch was retried', () => ledger.stats().retries >= 1);
    expect(ledger.stats().lastError).toMatch(/did not answer within 1300 ms/);
    const started = performance.now();
    const stats = await ledger.close(500);
    const closeMs = performance.now() - started;
    expect(closeMs).toBeLessThan(1_500);
    console.info(`close(500) against a silent server resolved in ${Math.round(closeMs)} ms`);
    expect(stats.queued).toBe(10);
    expect(log.lines).toContainEqual(
      expect.objectContaining({ fields: expect.objectContaining({ notWritten: 10 }) }),
    );
    // Nothing of the ledger's is left connected to the server.
    await until('every connection to the silent server is closed', () =>
      accepted.every((s) => s.destroyed || s.readableEnded),
    );
    expect(accepted.length).toBeGreaterThan(0);
    // A settlement after close() is counted, not queued.
    ledger.onSettle(entry());
    expect(ledger.stats()).toMatchObject({ dropped: 1, queued: 10 });
  }, 30_000);
});
