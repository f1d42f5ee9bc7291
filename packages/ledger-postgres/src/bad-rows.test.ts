/**
 * Rows Postgres cannot take as they are: text it cannot store is escaped and written; a row
 * it refuses outright is found by writing its batch apart, dropped, counted and logged,
 * and every other row of the batch is written.
 */
import type pg from 'pg';
import { expect, it } from 'vitest';
import { createPostgresLedger } from './ledger.js';
import { entry, recordingLogger, usePrivatePostgres } from './ledger.test-helper.js';
import { spendByPeriod, streamRecord, topSpenders } from './queries.js';

let pool: pg.Pool;

usePrivatePostgres((_db, p) => {
  pool = p;
});

it('a poison batch: NUL and lone surrogates escaped and written, refused rows dropped, counted and logged, every other row written', async () => {
  const log = recordingLogger();
  const ledger = createPostgresLedger({ pool, logger: log, retry: { minMs: 50, maxMs: 100 } });
  await ledger.ready;
  const kind = 'poison';
  const good = Array.from({ length: 100 }, (_, i) =>
    entry({ scopes: [{ kind, id: `user-${i % 10}` }] }),
  );
  const nul = entry({ scopes: [{ kind, id: 'a\u0000b' }], model: 'claude\u0000haiku' });
  const lookalike = entry({ scopes: [{ kind, id: 'a\\u0000b' }] }); // a backslash, not a NUL
  const surrogate = entry({
    requestId: `lone-\ud800-${process.pid}`,
    scopes: [
      { kind, id: 'x\ud800' },
      { kind, id: 'y\udc00' },
    ],
  });
  const negative = entry({ scopes: [{ kind, id: 'refused' }] });
  negative.final = { ...negative.final, costNanos: -5 }; // the CHECK on cost_nanos refuses it
  const notANumber = entry({ scopes: [{ kind, id: 'refused' }] });
  notANumber.final = {
    ...notANumber.final,
    usage: { ...notANumber.final.usage, inputTokens: Number.NaN },
  };
  // One batch, the bad rows among the good.
  const all = [...good.slice(0, 30), nul, negative, ...good.slice(30, 60), surrogate, lookalike];
  all.push(notANumber, ...good.slice(60));
  let batches = 0;
  const onAcquire = () => batches++;
  pool.on('acquire', onAcquire);
  for (const e of all) ledger.onSettle(e);
  expect(await ledger.flush(20_000)).toBe(true);
  pool.off('acquire', onAcquire);
  // Halving finds the two bad rows of 105 in a few dozen statements, not one per row.
  expect(batches).toBeLessThan(40);
  console.info(`105 rows, 2 refused: ${batches} batch writes`);

  expect(ledger.stats()).toMatchObject({
    written: 103,
    rejected: 2,
    duplicates: 0,
    dropped: 0,
    retries: 0,
    queued: 0,
  });
  // Every good row, and the escaped ones, are in the ledger; the refused ones are not.
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM tokenmeter_stream_scopes WHERE scope_kind = $1',
    [kind],
  );
  expect(Number(rows[0]!.n)).toBe(100 + 1 + 1 + 2);
  for (const bad of [negative, notANumber]) {
    expect(await streamRecord(pool, bad.requestId)).toBeUndefined();
  }
  // Each refused row is logged with what it takes to reconcile it by hand.
  const refused = log.lines.filter((l) => l.message.includes('Postgres refused a settlement'));
  expect(refused.map((l) => l.fields.requestId).sort()).toEqual(
    [negative.requestId, notANumber.requestId].sort(),
  );
  expect(refused.find((l) => l.fields.requestId === negative.requestId)?.fields).toMatchObject({
    code: '23514',
    costNanos: -5,
    scopes: [{ kind, id: 'refused' }],
  });
  // A data error is not an outage: no retry, no outage warning.
  expect(log.lines.some((l) => l.message.includes('a write failed'))).toBe(false);

  // Stored escaped, read back as the app wrote it; the look-alike stays a different scope.
  const raw = await pool.query<{ scope_id: string }>(
    'SELECT scope_id FROM tokenmeter_stream_scopes WHERE request_id IN ($1, $2) ORDER BY scope_id',
    [nul.requestId, lookalike.requestId],
  );
  expect(raw.rows.map((r) => r.scope_id)).toEqual(['a\\u0000b', 'a\\u005cu0000b']);
  const record = await streamRecord(pool, surrogate.requestId);
  expect(record).toMatchObject({ requestId: surrogate.requestId, scopes: surrogate.scopes });
  expect((await streamRecord(pool, nul.requestId))?.model).toBe('claude\u0000haiku');
  const today = new Date();
  today.setUTCHours(0, 0, 0, 0);
  const range = { from: today, to: new Date(today.getTime() + 2 * 86_400_000) };
  for (const [id, e] of [
    ['a\u0000b', nul],
    ['a\\u0000b', lookalike],
    ['x\ud800', surrogate],
  ] as const) {
    const spend = await spendByPeriod(pool, { kind, id }, 'day', range);
    expect(spend.map((s) => [s.costNanos, s.streams])).toEqual([[e.final.costNanos, 1]]);
  }
  const top = await topSpenders(pool, kind, range, 100);
  expect(top.map((s) => s.scope.id)).toEqual(
    expect.arrayContaining(['a\u0000b', 'a\\u0000b', 'x\ud800', 'y\udc00']),
  );
  await ledger.close();
}, 60_000);

it('a settlement that cannot even be queued is counted and logged, never thrown at the caller', () => {
  const log = recordingLogger();
  const ledger = createPostgresLedger({ pool, logger: log, migrate: false });
  const broken = { ...entry(), scopes: undefined } as unknown as Parameters<
    typeof ledger.onSettle
  >[0];
  expect(() => ledger.onSettle(broken)).not.toThrow();
  expect(ledger.stats()).toMatchObject({ rejected: 1, queued: 0 });
  expect(log.lines.some((l) => l.message.includes('could not be queued'))).toBe(true);
  return ledger.close();
});
