/**
 * Variants `tokenmeter-memory` and `tokenmeter-redis` (BENCH_STORE), telemetry off or on
 * (BENCH_TELEMETRY): the real `costTrackedSSE()` on Express 5 as a terminal middleware, with
 * what a typical app configures — a daily budget per user and two sliding-window limits
 * (requests and tokens per minute) — set high enough that the benchmark never hits them,
 * except the race workload, which makes the budget tight. BENCH_LEDGER=on adds the
 * PostgreSQL ledger (BENCH_POSTGRES_URL); BENCH_CHUNK_TIMES=on turns on
 * `telemetry.timePerOutputChunk`.
 */
import { createServer } from 'node:http';
import express from 'express';
import {
  addStats,
  anthropic,
  listen,
  METERED,
  settings,
  startTelemetry,
  statsHandler,
} from './common.mjs';

// Before the middleware is loaded: it uses the global OTel API.
await startTelemetry();

const { costTrackedSSE } = await import('@tokenmeter/express');
const storeKind = process.env.BENCH_STORE ?? 'memory';
let store;
if (storeKind === 'redis') {
  const { createRedisStore } = await import('@tokenmeter/store-redis');
  store = createRedisStore({ url: settings.redisUrl, prefix: settings.prefix });
} else {
  const { createMemoryStore } = await import('@tokenmeter/store-memory');
  store = createMemoryStore();
}

// BENCH_LEDGER=on: every settlement also goes to the PostgreSQL ledger (batched, off the
// request path), as an app with DATABASE_URL set would run it.
let ledger;
if (process.env.BENCH_LEDGER === 'on') {
  const { createPostgresLedger } = await import('@tokenmeter/ledger-postgres');
  ledger = createPostgresLedger({ connectionString: process.env.BENCH_POSTGRES_URL });
  await ledger.ready;
}

const outcomes = {};
const logged = { warn: 0, error: 0 };
const app = express();
app.get('/__stats', statsHandler);
app.post(
  '/chat',
  express.json(),
  costTrackedSSE({
    store,
    ...METERED,
    // BENCH_CHUNK_TIMES=on: the opt-in histogram of the time between output chunks.
    ...(process.env.BENCH_CHUNK_TIMES === 'on' && { telemetry: { timePerOutputChunk: true } }),
    upstream: (req, meter) =>
      anthropic.messages.create(
        { messages: req.body.messages, ...meter.params, stream: true },
        { signal: meter.signal },
      ),
    onSettle: (info) => {
      ledger?.onSettle(info);
      const { outcome } = info;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    },
    // Counted, and the first few printed: a broken run should say why.
    logger: {
      warn: (message, fields) => {
        if (logged.warn++ < 5) console.error('warn', message, fields ?? '');
      },
      error: (message, fields) => {
        if (logged.error++ < 5) console.error('error', message, fields ?? '');
      },
    },
  }),
);

addStats(() => ({ outcomes, logged, store: storeKind, ledger: ledger?.stats() }));
listen(createServer(app), async () => {
  await ledger?.close();
  await store.shutdown?.();
});
