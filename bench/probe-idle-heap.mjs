#!/usr/bin/env node
/**
 * Where the heap of an idle open stream goes: each variant serves a few hundred ordinary
 * streams, then holds `--streams` open whose upstream sent `message_start` and nothing
 * more; a heap snapshot before and after (each after a full GC) gives the bytes per stream
 * by V8 object kind, and the difference between two variants says what one adds. A probe,
 * not a benchmark: heap snapshots are exact, so one run is enough.
 *
 *   node bench/probe-idle-heap.mjs                                   bare-express vs tokenmeter-memory
 *   node bench/probe-idle-heap.mjs --variants=bare-express,tokenmeter-memory+otel --streams=2000
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeLLM } from '@tokenmeter/testkit';
import { stopChild } from './lib/processes.mjs';
import { startVariant, VARIANTS, variantStats } from './lib/variants.mjs';

const { values: args } = parseArgs({
  options: {
    variants: { type: 'string', default: 'bare-express,tokenmeter-memory' },
    streams: { type: 'string', default: '1000' },
    top: { type: 'string', default: '25' },
  },
});
const [baseName, name] = args.variants.split(',');
for (const n of [baseName, name]) {
  if (!VARIANTS[n] || VARIANTS[n].redis || VARIANTS[n].postgres) {
    throw new Error(`--variants: ${n} is not a variant this probe runs (no Redis, no Postgres)`);
  }
}
const streams = Number(args.streams);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const body = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 1_024,
  messages: [{ role: 'user', content: 'Tell me about streaming.' }],
});

/** Bytes and counts per (V8 node type, constructor name) in a heap snapshot. */
function tally(path) {
  const snapshot = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [width, iType, iName, iSize] = [
    fields.length,
    fields.indexOf('type'),
    fields.indexOf('name'),
    fields.indexOf('self_size'),
  ];
  const out = new Map();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + iType]];
    let label = snapshot.strings[snapshot.nodes[i + iName]];
    if (type.includes('string') || type === 'code' || type === 'hidden') label = '';
    const key = `${type}${label ? `: ${label.slice(0, 50)}` : ''}`;
    const entry = out.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += snapshot.nodes[i + iSize];
    entry.count++;
    out.set(key, entry);
  }
  return out;
}

/** Writes a snapshot of `variant` (after a full GC) into `dir` and returns its path. */
async function snapshot(variant, dir) {
  await variantStats(variant, { gc: true });
  const before = new Set(readdirSync(dir));
  variant.child.kill('SIGUSR2');
  for (;;) {
    await sleep(250);
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    let last = -1;
    for (;;) {
      await sleep(1_000);
      const size = statSync(join(dir, file)).size;
      if (size > 0 && size === last) return join(dir, file);
      last = size;
    }
  }
}

/** Per-stream growth of one variant's heap by object kind. */
async function perStream(variantName) {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-heap-'));
  let fake = await startFakeLLM({ tps: 0, ttftMs: 0, tokens: 20, text: 'plain' });
  const fakePort = Number(new URL(fake.url).port);
  const variant = await startVariant(variantName, {
    upstreamUrl: fake.url,
    nodeFlags: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
  });
  const { port } = variant;
  const held = [];
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    const open = (i, hold) =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/chat',
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'x-user': `u${i % 100}` },
          },
          (res) => {
            if (hold) resolve(res);
            else res.resume().on('end', () => resolve(res));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    for (let i = 0; i < 300; i++) await open(i, false);
    // The same port, now answering message_start and then nothing for two minutes.
    await fake.close();
    fake = await startFakeLLM({ port: fakePort, tps: 0, ttftMs: 120_000, tokens: 20 });
    await sleep(500);
    const empty = tally(await snapshot(variant, dir));
    for (let i = 0; i < streams; i += 100) {
      held.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(100, streams - i) }, (_, k) => open(i + k, true)),
        )),
      );
    }
    await sleep(1_500);
    const full = tally(await snapshot(variant, dir));
    const growth = new Map();
    for (const key of new Set([...empty.keys(), ...full.keys()])) {
      const a = empty.get(key) ?? { bytes: 0, count: 0 };
      const b = full.get(key) ?? { bytes: 0, count: 0 };
      growth.set(key, {
        bytes: (b.bytes - a.bytes) / streams,
        count: (b.count - a.count) / streams,
      });
    }
    return growth;
  } finally {
    for (const res of held) res.destroy();
    await stopChild(variant.child);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const base = await perStream(baseName);
const ours = await perStream(name);
const total = (m) => [...m.values()].reduce((n, e) => n + e.bytes, 0);
console.log(
  `heap per idle stream: ${baseName} ${Math.round(total(base))} B, ${name} ${Math.round(total(ours))} B ` +
    `(+${Math.round(total(ours) - total(base))} B)\n`,
);
console.log(`| bytes added | objects added | kind (${name} − ${baseName}, per stream) |`);
console.log('| ---: | ---: | --- |');
const rows = [...new Set([...base.keys(), ...ours.keys()])].map((key) => [
  key,
  (ours.get(key)?.bytes ?? 0) - (base.get(key)?.bytes ?? 0),
  (ours.get(key)?.count ?? 0) - (base.get(key)?.count ?? 0),
]);
rows.sort((a, b) => b[1] - a[1]);
for (const [key, bytes, count] of rows.slice(0, Number(args.top))) {
  console.log(`| ${Math.round(bytes)} | ${count.toFixed(2)} | ${key} |`);
}
