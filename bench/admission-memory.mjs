/**
 * Micro-benchmark: how long one admission (and admission + settle) takes in the memory
 * store, as the middleware would call it — budget plus request and token rate limits per
 * scope, over a pool of scopes. Reports median, p99 and p99.9 per operation.
 *
 * Run after building: `npx tsc -p packages/core/tsconfig.build.json && npx tsc -p
 * packages/store-memory/tsconfig.build.json && node bench/admission-memory.mjs`.
 * Options: `--iterations=200000 --scopes=1000`.
 */
import { admitAll, guardStore, settleAll } from '@tokenmeter/core/store';
import { createMemoryStore } from '@tokenmeter/store-memory';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const ITERATIONS = args.iterations || 200_000;
const WARMUP = Math.min(20_000, ITERATIONS);
const SCOPES = args.scopes || 1_000;

const policy = {
  budget: { limitNanos: 9_000_000_000_000_000, period: 'day' },
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

function summarise(name, samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const mean = sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  const us = (ns) => `${(ns / 1_000).toFixed(2)} µs`;
  return {
    name,
    n: sorted.length,
    median: us(at(0.5)),
    p99: us(at(0.99)),
    'p99.9': us(at(0.999)),
    mean: us(mean),
  };
}

/** Times `admitPart` alone and `admitPart` + `settlePart` together, per iteration. */
async function measure(label, admitPart, settlePart) {
  const admitOnly = [];
  const together = [];
  for (let i = 0; i < WARMUP + ITERATIONS; i++) {
    const t0 = process.hrtime.bigint();
    const admitted = await admitPart(i);
    const t1 = process.hrtime.bigint();
    await settlePart(admitted);
    const t2 = process.hrtime.bigint();
    if (i >= WARMUP) {
      admitOnly.push(Number(t1 - t0));
      together.push(Number(t2 - t0));
    }
  }
  return [summarise(`${label}: admit`, admitOnly), summarise(`${label}: admit + settle`, together)];
}

const rows = [];

{
  const store = createMemoryStore({ max: 1_000_000 });
  rows.push(
    ...(await measure(
      'memory, 1 scope',
      async (i) => {
        const result = await store.admit(requestFor('user', i));
        if (!result.admitted) throw new Error(`unexpected rejection: ${result.reason}`);
        return result.reservation.id;
      },
      (id) => store.settle(id, actual),
    )),
  );
  await store.shutdown();
}

{
  const store = guardStore(createMemoryStore({ max: 1_000_000 }), { timeoutMs: 500 });
  rows.push(
    ...(await measure(
      'memory + guardStore, 1 scope',
      async (i) => {
        const result = await store.admit(requestFor('user', i));
        if (!result.admitted) throw new Error(`unexpected rejection: ${result.reason}`);
        return result.reservation.id;
      },
      (id) => store.settle(id, actual),
    )),
  );
  await store.shutdown?.();
}

{
  const store = createMemoryStore({ max: 1_000_000 });
  rows.push(
    ...(await measure(
      'memory, admitAll 3 scopes (user, key, global)',
      async (i) => {
        const result = await admitAll(store, [
          requestFor('user', i),
          requestFor('key', i),
          { ...requestFor('global', 0), scope: { kind: 'global', id: 'all' } },
        ]);
        if (!result.admitted) throw new Error('unexpected rejection');
        return result.reservationIds;
      },
      (ids) => settleAll(store, ids, actual),
    )),
  );
  await store.shutdown();
}

console.log(
  `tokenmeter memory-store admission, Node ${process.version}, ${ITERATIONS} iterations ` +
    `(+${WARMUP} warm-up), ${SCOPES} scopes, budget + 2 rate limits per scope`,
);
console.table(rows);
