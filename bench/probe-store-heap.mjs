#!/usr/bin/env node
/**
 * What the memory store keeps on the heap for admissions that have ended but are still in
 * a rate-limit window: `--admissions` admissions, each settled at once, spread over
 * `--scopes` scopes, with the bench's metered policy (a daily budget, a requests and a
 * tokens window of 60 s), one store millisecond apart so every one stays in its windows.
 * A full GC before and after; the difference over the admissions is the bytes each leaves
 * behind (its window entries, and the ended id and admission key the store remembers), and
 * the count of heap objects says how many of them the old generation must trace. Exact, so
 * one run is enough.
 *
 *   node --expose-gc bench/probe-store-heap.mjs
 *   BENCH_BEFORE=/tmp/before node --expose-gc bench/probe-store-heap.mjs   also that tree's store
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapSnapshot, getHeapStatistics } from 'node:v8';
import { importFrom } from './lib/variants.mjs';

const { values: args } = parseArgs({
  options: {
    admissions: { type: 'string', default: '20000' },
    scopes: { type: 'string', default: '100' },
    /** Internal: measure the store of this built checkout in this process and print JSON. */
    tree: { type: 'string' },
  },
});

if (args.tree !== undefined) await measure(args.tree);
else {
  const trees = [['this tree', '']];
  if (process.env.BENCH_BEFORE) trees.push(['BENCH_BEFORE', process.env.BENCH_BEFORE]);
  console.log(
    `${args.admissions} admissions over ${args.scopes} scopes, each settled, all still in their 60 s windows:`,
  );
  for (const [label, tree] of trees) {
    // A fresh process each: nothing of one store's heap in the other's figure.
    const run = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        fileURLToPath(import.meta.url),
        `--tree=${tree}`,
        `--admissions=${args.admissions}`,
        `--scopes=${args.scopes}`,
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`${label}: ${run.stderr}`);
    const { bytes, objects } = JSON.parse(run.stdout);
    console.log(
      `  ${label.padEnd(14)} ${bytes.toFixed(0).padStart(5)} bytes and ${objects.toFixed(1)} heap objects an admission`,
    );
  }
}

async function measure(tree) {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
  const { createMemoryStore } = await importFrom(tree, '@tokenmeter/store-memory');
  let now = Date.UTC(2026, 0, 1, 12);
  const store = createMemoryStore({ clock: { now: () => now } });
  const admissions = Number(args.admissions);
  const scopes = Number(args.scopes);
  const policy = {
    budget: { limitNanos: 1e15, period: 'day' },
    rateLimits: [
      { kind: 'requests', limit: 1_000_000, windowMs: 60_000 },
      { kind: 'tokens', limit: 1_000_000_000, windowMs: 60_000 },
    ],
  };
  const one = async (i) => {
    now += 1;
    const result = await store.admit({
      scope: { kind: 'user', id: `u${i % scopes}` },
      ...policy,
      reserveNanos: 5_000_000,
      estimatedTokens: 1_200,
      ttlMs: 120_000,
      requestKey: `req-${i.toString(36)}-0123456789`,
    });
    if (!result.admitted) throw new Error(`admission ${i} refused: ${result.reason}`);
    await store.settle(result.reservation.id, { costNanos: 12_345, tokens: 300 });
  };
  // Every scope made, its logs and maps grown, before the first reading.
  for (let i = 0; i < scopes * 4; i++) await one(i);
  const heap = () => {
    globalThis.gc();
    globalThis.gc();
    return getHeapStatistics().used_heap_size;
  };
  const before = heap();
  const countBefore = await liveObjects();
  for (let i = scopes * 4; i < scopes * 4 + admissions; i++) await one(i);
  const after = heap();
  const countAfter = await liveObjects();
  process.stdout.write(
    JSON.stringify({
      bytes: (after - before) / admissions,
      objects: (countAfter - countBefore) / admissions,
    }),
  );
}

/** Live heap objects now: the node count of a heap snapshot (taken after a full GC). */
function liveObjects() {
  globalThis.gc();
  return new Promise((resolve, reject) => {
    const stream = getHeapSnapshot();
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      // The node count is in the snapshot's header, before the first node.
      if (text.length < 65_536) text += chunk;
    });
    stream.on('end', () => {
      const match = /"node_count":(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
      else reject(new Error('no node_count in the heap snapshot'));
    });
    stream.on('error', reject);
  });
}
