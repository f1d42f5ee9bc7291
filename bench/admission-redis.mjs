/**
 * Micro-benchmark: how long one admission (and admission + settle) takes in the Redis
 * store on loopback, as the middleware would call it — budget plus request and token rate
 * limits per scope, over a pool of scopes — and how many admissions per second one client
 * sustains: sequentially, and with many calls in flight (with and without ioredis
 * `enableAutoPipelining`). Each admission is one Lua script, one round trip.
 *
 * Starts its own `redis-server` on a free port (or uses REDIS_URL if set; keys go under a
 * fresh prefix and expire within minutes). Run after building:
 * `npx tsc -p packages/core/tsconfig.build.json && npx tsc -p
 * packages/store-redis/tsconfig.build.json && node bench/admission-redis.mjs`.
 * Options: `--iterations=20000 --scopes=1000 --concurrency=64`.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { admitAll, settleAll } from '@tokenmeter/core/store';
import { createRedisStore } from '@tokenmeter/store-redis';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const ITERATIONS = args.iterations || 20_000;
const WARMUP = Math.min(2_000, ITERATIONS);
const SCOPES = args.scopes || 1_000;
const CONCURRENCY = args.concurrency || 64;
const PREFIX = `bench:${Date.now().toString(36)}:`;

const policy = {
  // A one-minute budget period so nothing the benchmark writes outlives it by much.
  budget: { limitNanos: 9_000_000_000_000_000, period: { windowMs: 60_000 } },
  rateLimits: [
    { kind: 'requests', limit: 1_000_000_000, windowMs: 60_000 },
    { kind: 'tokens', limit: 1_000_000_000, windowMs: 60_000 },
  ],
};
const actual = { costNanos: 12_345, tokens: 300 };

function requestFor(kind, i) {
  return {
    scope: { kind, id: `${kind}-${i % SCOPES}` },
    ...policy,
    reserveNanos: 50_000,
    estimatedTokens: 1_200,
    ttlMs: 120_000,
  };
}

async function admitOne(store, i) {
  const result = await store.admit(requestFor('user', i));
  if (!result.admitted) throw new Error(`unexpected rejection: ${result.reason}`);
  return result.reservation.id;
}

/** `perSecond`: calls completed per wall-clock second (omitted: one at a time, 1 / mean). */
function summarise(name, samples, perSecond) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  const us = (ns) => `${(ns / 1_000).toFixed(1)} µs`;
  return {
    name,
    n: sorted.length,
    p50: us(at(0.5)),
    p99: us(at(0.99)),
    'p99.9': us(at(0.999)),
    mean: us(mean),
    'per second': Math.round(perSecond ?? 1e9 / mean).toLocaleString('en-US'),
  };
}

/** One call at a time: latency of admit alone and of admit + settle. */
async function sequential(label, store, admitPart, settlePart) {
  const admitOnly = [];
  const together = [];
  let started = performance.now();
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    if (i === WARMUP) started = performance.now();
    const t0 = process.hrtime.bigint();
    const admitted = await admitPart(store, i);
    const t1 = process.hrtime.bigint();
    await settlePart(store, admitted);
    const t2 = process.hrtime.bigint();
    if (i >= WARMUP) {
      admitOnly.push(Number(t1 - t0));
      together.push(Number(t2 - t0));
    }
  }
  const seconds = (performance.now() - started) / 1_000;
  return [
    summarise(`${label}: admit`, admitOnly),
    summarise(`${label}: admit + settle`, together, ITERATIONS / seconds),
  ];
}

/** CONCURRENCY workers share one client; latency includes waiting behind the others. */
async function concurrent(label, store) {
  const latencies = [];
  let next = 0;
  const total = WARMUP + ITERATIONS;
  const started = performance.now();
  let measuredFrom = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) {
        const i = next++;
        if (i === WARMUP) measuredFrom = performance.now();
        const t0 = process.hrtime.bigint();
        const id = await admitOne(store, i);
        if (i >= WARMUP) latencies.push(Number(process.hrtime.bigint() - t0));
        await store.settle(id, actual);
      }
    }),
  );
  const seconds = (performance.now() - (measuredFrom || started)) / 1_000;
  // Throughput counts admissions; each is followed by its settle (two scripts per request).
  return summarise(
    `${label}, ${CONCURRENCY} in flight: admit (then settle)`,
    latencies,
    latencies.length / seconds,
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve, reject) => {
    let output = '';
    child.once('error', (error) =>
      reject(
        new Error(`cannot start redis-server (${error.message}); install it or set REDIS_URL`),
      ),
    );
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) resolve();
    });
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

const server = process.env.REDIS_URL ? undefined : await startRedis();
const url = process.env.REDIS_URL ?? server.url;
const options = { url, prefix: PREFIX, endedRetentionMs: 60_000 };
const rows = [];
try {
  {
    const store = createRedisStore(options);
    rows.push(
      ...(await sequential('redis, 1 scope, sequential', store, admitOne, (s, id) =>
        s.settle(id, actual),
      )),
    );
    rows.push(
      ...(await sequential(
        'redis, admitAll 3 scopes (user, key, global), sequential',
        store,
        async (s, i) => {
          const result = await admitAll(s, [
            requestFor('user', i),
            requestFor('key', i),
            { ...requestFor('global', 0), scope: { kind: 'global', id: 'all' } },
          ]);
          if (!result.admitted) throw new Error('unexpected rejection');
          return result.reservationIds;
        },
        (s, ids) => settleAll(s, ids, actual),
      )),
    );
    rows.push(await concurrent('redis, 1 client', store));
    await store.shutdown();
  }
  {
    const store = createRedisStore({ ...options, redisOptions: { enableAutoPipelining: true } });
    rows.push(await concurrent('redis, 1 client, enableAutoPipelining', store));
    await store.shutdown();
  }
} finally {
  server?.stop();
}

console.log(
  `tokenmeter Redis-store admission on ${server ? 'a local redis-server (loopback)' : url}, ` +
    `Node ${process.version}, ${ITERATIONS} iterations (+${WARMUP} warm-up), ${SCOPES} scopes, ` +
    'budget + 2 rate limits per scope; one Lua script (one round trip) per admission',
);
console.table(rows);
