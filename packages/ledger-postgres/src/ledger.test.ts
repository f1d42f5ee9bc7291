import { emptyUsage } from '@tokenmeter/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPostgresLedger } from './ledger.js';
import { entry, usePrivatePostgres } from './ledger.test-helper.js';
import { spendByModel, spendByPeriod, streamRecord, topSpenders } from './queries.js';
import { migrate } from './schema.js';
import type { PrivatePostgres } from './testing.js';

let db: PrivatePostgres;
let pool: pg.Pool;

usePrivatePostgres((d, p) => {
  db = d;
  pool = p;
});

const quiet = { warn: () => {}, error: () => {} };
let seq = 0;

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql, params);
  return Number(rows[0]!.n);
}

describe('migrations', () => {
  it('apply once, whichever of several instances starting together gets there first', async () => {
    const pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: db.url, max: 1 }));
    const applied = await Promise.all(pools.map((p) => migrate(p)));
    await Promise.all(pools.map((p) => p.end()));
    expect(applied.flat()).toEqual([1, 2]);
    expect(await migrate(pool)).toEqual([]);
    expect(await count('SELECT count(*) AS n FROM tokenmeter_ledger_migrations')).toBe(2);
  });
});

describe('writing', () => {
  it('records every field of a settlement as it was, times included', async () => {
    const ledger = createPostgresLedger({
      pool,
      logger: quiet,
      now: () => Date.UTC(2026, 11, 3, 12),
    });
    const e = entry({
      scopes: [
        { kind: 'user', id: 'ada' },
        { kind: 'team', id: 'core' },
      ],
      outcome: 'budget_exceeded',
      limit: 'lease_denied',
    });
    e.final = {
      usage: {
        ...emptyUsage(),
        inputTokens: 100,
        outputTokens: 50,
        cacheReadTokens: 7,
        cacheWrite5mTokens: 3,
        cacheWrite1hTokens: 2,
        reasoningTokens: 9,
        webSearchRequests: 1,
        serviceTier: 'standard',
        speed: 'fast',
        inferenceGeo: 'us',
      },
      costNanos: 9_007_199_254_740_991, // the largest exact integer survives the round trip
      estimated: true,
    };
    ledger.onSettle(e);
    expect(await ledger.flush()).toBe(true);
    const record = await streamRecord(pool, e.requestId);
    expect(record).toMatchObject({
      requestId: e.requestId,
      scopes: e.scopes,
      model: 'claude-haiku-4-5',
      provider: 'anthropic',
      outcome: 'budget_exceeded',
      limit: 'lease_denied',
      costNanos: 9_007_199_254_740_991,
      estimated: true,
      reservedNanos: 5_220_000,
      recordedInStore: true,
    });
    // Every token kind and tier, exactly as settled (a `Usage` again).
    expect(record!.usage).toEqual(e.final.usage);
    const end = Date.UTC(2026, 11, 3, 12);
    expect(record!.endedAt.getTime()).toBe(end);
    expect(record!.startedAt.getTime()).toBe(end - 1_200);
    expect(record!.firstTokenAt!.getTime()).toBe(end - 1_200 + 150);
    // Without the store's admission time, the stream is dated by its start.
    expect(record!.admittedAt.getTime()).toBe(end - 1_200);
    expect(
      await count('SELECT count(*) AS n FROM tokenmeter_stream_scopes WHERE request_id = $1', [
        e.requestId,
      ]),
    ).toBe(2);
    expect(await streamRecord(pool, 'no-such-request')).toBeUndefined();
    await ledger.close();
  });

  it('1,000 concurrent settlements land as exactly 1,000 rows; a duplicate delivery is ignored', async () => {
    const ledger = createPostgresLedger({ pool, logger: quiet });
    const scope = { kind: 'user', id: `bulk-${++seq}` };
    const entries = Array.from({ length: 1_000 }, (_, i) => {
      const e = entry({ scopes: [scope] });
      return { ...e, final: { ...e.final, costNanos: 1_000 + i, estimated: i % 2 === 0 } };
    });
    await Promise.all(entries.map(async (e) => ledger.onSettle(e)));
    // The same deliveries again (a retried hook, a second instance): nothing changes.
    for (const e of entries.slice(0, 100)) ledger.onSettle(e);
    expect(await ledger.flush()).toBe(true);
    const expected = entries.reduce((sum, e) => sum + e.final.costNanos, 0); // 1,499,500 by hand
    expect(expected).toBe(1_000 * 1_000 + (999 * 1_000) / 2);
    const rows = await pool.query<{ n: string; total: string }>(
      'SELECT count(*) AS n, sum(cost_nanos) AS total FROM tokenmeter_stream_scopes WHERE scope_kind = $1 AND scope_id = $2',
      [scope.kind, scope.id],
    );
    expect(Number(rows.rows[0]!.n)).toBe(1_000);
    expect(Number(rows.rows[0]!.total)).toBe(expected);
    expect(ledger.stats()).toMatchObject({
      written: 1_000,
      duplicates: 100,
      dropped: 0,
      queued: 0,
    });
    // A usage without tier, speed or region comes back without them.
    expect((await streamRecord(pool, entries[0]!.requestId))!.usage).toEqual(
      entries[0]!.final.usage,
    );
    await ledger.close();
  });
});

describe('Postgres down', () => {
  it('settlements wait in the queue, never the caller; nothing is lost once it returns', async () => {
    const warnings: string[] = [];
    const ledger = createPostgresLedger({
      pool,
      logger: { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
      retry: { minMs: 50, maxMs: 400 },
    });
    await ledger.ready;
    const scope = { kind: 'user', id: `outage-${++seq}` };
    const before = Array.from({ length: 50 }, () => entry({ scopes: [scope] }));
    for (const e of before) ledger.onSettle(e);
    expect(await ledger.flush()).toBe(true);
    db.stop();
    try {
      const during = Array.from({ length: 500 }, () => entry({ scopes: [scope] }));
      let slowest = 0;
      for (const e of during) {
        const t = performance.now();
        ledger.onSettle(e);
        slowest = Math.max(slowest, performance.now() - t);
        // Postgres stays down for 10 s, settlements arriving before and after the pause.
        if (e === during[250]) await new Promise((r) => setTimeout(r, 10_000));
      }
      // Queued in memory, the caller never waited on the database.
      expect(slowest).toBeLessThan(20);
      expect(await ledger.flush(1_000)).toBe(false);
      expect(ledger.stats().retries).toBeGreaterThan(0);
      expect(ledger.stats().queued).toBe(500);
    } finally {
      db.start();
    }
    const flushed = await ledger.flush(15_000);
    expect(flushed).toBe(true);
    expect(
      await count('SELECT count(*) AS n FROM tokenmeter_stream_scopes WHERE scope_id = $1', [
        scope.id,
      ]),
    ).toBe(550);
    expect(ledger.stats()).toMatchObject({ written: 550, dropped: 0, queued: 0 });
    expect(warnings.filter((w) => w.includes('a write failed'))).toHaveLength(1);
    await ledger.close();
  }, 30_000);

  it('a ledger started while Postgres is down creates its tables once it returns', async () => {
    await pool.query('CREATE DATABASE late_start');
    const errors: string[] = [];
    const url = db.url.replace(/\/[^/]*$/, '/late_start');
    db.stop();
    let ledger: ReturnType<typeof createPostgresLedger> | undefined;
    try {
      ledger = createPostgresLedger({
        connectionString: url,
        retry: { minMs: 50, maxMs: 200 },
        logger: { warn: () => {}, error: (m) => errors.push(m) },
      });
      await ledger.ready;
      expect(errors.some((e) => e.includes('the migration failed'))).toBe(true);
      for (let i = 0; i < 3; i++)
        ledger.onSettle(entry({ scopes: [{ kind: 'user', id: 'late' }] }));
      expect(await ledger.flush(300)).toBe(false);
    } finally {
      db.start();
    }
    expect(await ledger.flush(10_000)).toBe(true);
    const late = new pg.Client({ connectionString: url });
    await late.connect();
    try {
      const { rows } = await late.query<{ n: string }>(
        "SELECT count(*) AS n FROM tokenmeter_stream_scopes WHERE scope_id = 'late'",
      );
      expect(Number(rows[0]!.n)).toBe(3);
    } finally {
      await late.end();
      await ledger.close();
    }
  }, 30_000);

  it('beyond maxQueue, settlements are dropped, counted and logged once', async () => {
    const errors: string[] = [];
    const ledger = createPostgresLedger({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      migrate: false,
      maxQueue: 10,
      retry: { minMs: 1_000, maxMs: 1_000 },
      logger: { warn: () => {}, error: (m) => errors.push(m) },
    });
    for (let i = 0; i < 25; i++) ledger.onSettle(entry());
    expect(ledger.stats()).toMatchObject({ queued: 10, dropped: 15 });
    expect(errors.filter((e) => e.includes('queue is full'))).toHaveLength(1);
    const closed = await ledger.close(200);
    expect(closed.queued).toBe(10);
    expect(errors.some((e) => e.includes('closing with settlements not written'))).toBe(true);
  });
});

describe('dating', () => {
  it('a stream belongs to the period the store charged: its admission, not its end', async () => {
    const end = Date.UTC(2026, 11, 1, 0, 0, 5);
    const ledger = createPostgresLedger({ pool, logger: quiet, now: () => end });
    const scope = { kind: 'user', id: `dating-${++seq}` };
    // Admitted by the store 10 ms before midnight, started here 10 ms after it (the
    // process's clock, read after admission), ended 5 s into the next day.
    const admittedAt = Date.UTC(2026, 10, 30, 23, 59, 59, 990);
    const e = entry({ scopes: [scope], admittedAt, startedAt: admittedAt + 20, durationMs: 5_000 });
    const plain = entry({ scopes: [scope], startedAt: admittedAt - 1_000, durationMs: 6_000 });
    ledger.onSettle(e);
    ledger.onSettle(plain);
    expect(await ledger.flush()).toBe(true);
    const winter = { from: new Date(Date.UTC(2026, 10, 1)), to: new Date(Date.UTC(2027, 0, 1)) };
    expect(await spendByPeriod(pool, scope, 'day', winter)).toEqual([
      { period: new Date(Date.UTC(2026, 10, 30)), costNanos: 700_000, streams: 2 },
    ]);
    const record = await streamRecord(pool, e.requestId);
    expect(record!.admittedAt.getTime()).toBe(admittedAt);
    expect(record!.startedAt.getTime()).toBe(admittedAt + 20);
    expect(record!.endedAt.getTime()).toBe(end);
    await ledger.close();
  });
});

describe('queries', () => {
  it('spend by day and month, by model, and the top spenders, to the nano-dollar', async () => {
    let clock = 0;
    const ledger = createPostgresLedger({ pool, logger: quiet, now: () => clock });
    const kind = `q${++seq}`;
    // Admitted at `at`, ended 1.2 s later: a stream belongs to the period of its admission.
    const put = (at: number, id: string, model: string, cost: number) => {
      clock = at + 1_200;
      ledger.onSettle({
        ...entry({ scopes: [{ kind, id }], model }),
        final: { usage: emptyUsage(), costNanos: cost, estimated: false },
      });
    };
    const nov30 = Date.UTC(2026, 10, 30, 23, 59, 59);
    const dec1 = Date.UTC(2026, 11, 1, 0, 0, 0);
    const dec2 = Date.UTC(2026, 11, 2, 13, 0, 0);
    put(nov30, 'ada', 'claude-haiku-4-5', 1_111); // ends on Dec 1: counted on Nov 30
    put(dec1, 'ada', 'claude-haiku-4-5', 2_000);
    put(dec1 + 1, 'ada', 'claude-sonnet-4-6', 30_000);
    put(dec2, 'ada', 'claude-haiku-4-5', 5);
    put(dec2, 'bob', 'gpt-4o-mini', 40_000);
    put(dec2, 'eve', 'gpt-4o-mini', 7);
    expect(await ledger.flush()).toBe(true);
    const ada = { kind, id: 'ada' };
    const year = { from: new Date(Date.UTC(2026, 0, 1)), to: new Date(Date.UTC(2027, 0, 1)) };
    expect(await spendByPeriod(pool, ada, 'day', year)).toEqual([
      { period: new Date(Date.UTC(2026, 10, 30)), costNanos: 1_111, streams: 1 },
      { period: new Date(Date.UTC(2026, 11, 1)), costNanos: 32_000, streams: 2 },
      { period: new Date(Date.UTC(2026, 11, 2)), costNanos: 5, streams: 1 },
    ]);
    expect(await spendByPeriod(pool, ada, 'month', year)).toEqual([
      { period: new Date(Date.UTC(2026, 10, 1)), costNanos: 1_111, streams: 1 },
      { period: new Date(Date.UTC(2026, 11, 1)), costNanos: 32_005, streams: 3 },
    ]);
    const december = { from: new Date(dec1), to: new Date(Date.UTC(2027, 0, 1)) };
    expect(await spendByModel(pool, ada, december)).toEqual([
      { model: 'claude-sonnet-4-6', costNanos: 30_000, streams: 1 },
      { model: 'claude-haiku-4-5', costNanos: 2_005, streams: 2 },
    ]);
    expect(await topSpenders(pool, kind, december, 2)).toEqual([
      { scope: { kind, id: 'bob' }, costNanos: 40_000, streams: 1 },
      { scope: { kind, id: 'ada' }, costNanos: 32_005, streams: 3 },
    ]);
    await ledger.close();
  });
});
