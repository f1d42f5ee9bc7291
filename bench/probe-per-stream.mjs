#!/usr/bin/env node
/**
 * What one stream costs a variant, one stream at a time: server CPU per stream, and the
 * async resources (promises, timers) it creates per stream, counted by an async hook in the
 * variant's process. Optional `--cpu-prof` for a function-by-function diff of two variants.
 * A probe for finding per-stream work, not a benchmark: it runs variants one after the
 * other (no interleaving), so compare its CPU figures only within one invocation and
 * repeat them; the resource counts are exact.
 *
 *   node bench/probe-per-stream.mjs                          bare-express, tokenmeter-memory, both +otel
 *   node bench/probe-per-stream.mjs --variants=bare-express+otel,tokenmeter-memory+otel --streams=3000
 *   node bench/probe-per-stream.mjs --count                  + promises and timers per stream (slower)
 *   node bench/probe-per-stream.mjs --profile                + .cpuprofile per variant in bench/results/probe/
 *   node bench/probe-per-stream.mjs --alloc                  + bytes allocated per stream, by
 *       function (V8's sampling heap profiler, collected objects included), and a .heapprofile
 *   node bench/probe-per-stream.mjs --interleave             all variants at once, blocks of
 *       --block streams to each in turn: noise common to all (CPU steal, clock) cancels in the
 *       per-block ratios to the first variant, whose medians it prints
 *
 * The fake upstream (in this process) answers `--tokens` tokens (default 10) at once.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFakeLLM } from '@tokenmeter/testkit';
import { stopChild } from './lib/processes.mjs';
import { startVariant, VARIANTS, variantStats } from './lib/variants.mjs';

const { values: args } = parseArgs({
  options: {
    variants: {
      type: 'string',
      default: 'bare-express,tokenmeter-memory,bare-express+otel,tokenmeter-memory+otel',
    },
    streams: { type: 'string', default: '2000' },
    tokens: { type: 'string', default: '10' },
    /** With --interleave: clients at once, and the fake's pace (tokens/s per stream, per delta). */
    concurrency: { type: 'string', default: '1' },
    tps: { type: 'string', default: '0' },
    chunk: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '2' },
    count: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    interleave: { type: 'boolean', default: false },
    /**
     * Streams each variant serves before measuring. A fresh process compiles for thousands of
     * streams (bench/lib/workloads.mjs, jitWarm): 300 measures it cold, 5000 warm.
     */
    warm: { type: 'string', default: '300' },
    alloc: { type: 'boolean', default: false },
    /** With --alloc: only objects that outlived a young-generation GC. */
    survivors: { type: 'boolean', default: false },
    /** Sampling interval of --profile, µs (V8's default is 1,000). */
    interval: { type: 'string', default: '250' },
    block: { type: 'string', default: '100' },
    /** With --interleave: every block's figure too (e.g. --warm=0 shows the JIT warming up). */
    each: { type: 'boolean', default: false },
  },
});
const names = args.variants.split(',');
for (const name of names) {
  if (!VARIANTS[name] || VARIANTS[name].redis || VARIANTS[name].postgres) {
    throw new Error(`--variants: ${name} is not a variant this probe runs (no Redis, no Postgres)`);
  }
}
const streams = Number(args.streams);
const hook = fileURLToPath(new URL('./lib/probe-hook.mjs', import.meta.url));
const allocHook = fileURLToPath(new URL('./lib/probe-alloc-hook.mjs', import.meta.url));
const profileDir = fileURLToPath(new URL('./results/probe/', import.meta.url));
if (args.profile || args.alloc) mkdirSync(profileDir, { recursive: true });

const fake = await startFakeLLM({
  tps: Number(args.tps),
  chunk: Number(args.chunk),
  ttftMs: 0,
  tokens: Number(args.tokens),
  text: 'plain',
});
const body = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 1_024,
  messages: [{ role: 'user', content: 'Tell me about streaming.' }],
});

/** One stream to the variant at `base`, read to its end. */
async function one(base, i) {
  const response = await fetch(`${base}/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user': `u${i % 50}` },
    body,
  });
  await response.text();
}

/** The variant's server CPU so far (user + system), µs. */
async function cpuUs(variant) {
  const { cpu } = await variantStats(variant);
  return cpu.user + cpu.system;
}

async function probe(name, round) {
  const nodeFlags = [
    ...(args.count ? ['--import', hook] : []),
    ...(args.alloc ? ['--import', allocHook] : []),
    ...(args.profile
      ? [
          '--cpu-prof',
          `--cpu-prof-interval=${Number(args.interval)}`,
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${name}-${round}.cpuprofile`,
        ]
      : []),
  ];
  const allocFile = `${profileDir}${name}-${round}.heapprofile`;
  const variant = await startVariant(name, {
    upstreamUrl: fake.url,
    nodeFlags,
    env: args.alloc
      ? { PROBE_ALLOC_FILE: allocFile, PROBE_ALLOC_SURVIVORS: args.survivors ? '1' : '0' }
      : {},
  });
  const { child } = variant;
  const base = `http://127.0.0.1:${variant.port}`;
  for (let i = 0; i < Number(args.warm); i++) await one(base, i);
  if (args.count || args.alloc) child.kill('SIGUSR2');
  // Let the profiler start before the first measured stream.
  if (args.alloc) await new Promise((resolve) => setTimeout(resolve, 200));
  const cpu0 = await cpuUs(variant);
  const t0 = performance.now();
  for (let i = 0; i < streams; i++) await one(base, i);
  const wallMs = performance.now() - t0;
  const usedUs = (await cpuUs(variant)) - cpu0;
  let counts = '';
  if (args.count) {
    child.kill('SIGUSR2');
    const started = Date.now();
    while (!/PROBE (.*)/.test(child.output) && Date.now() - started < 5_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const tally = JSON.parse(/PROBE (.*)/.exec(child.output)?.[1] ?? '{}');
    counts = Object.entries(tally)
      .sort((a, b) => b[1] - a[1])
      .map(([type, n]) => `${type} ${(n / streams).toFixed(1)}`)
      .join(', ');
  }
  if (args.alloc) {
    child.kill('SIGUSR2');
    const started = Date.now();
    while (!/PROBE_ALLOC written/.test(child.output) && Date.now() - started < 30_000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    counts += `${counts ? '; ' : ''}${allocationSummary(allocFile, streams)}`;
  }
  // Time for --cpu-prof to write its profile.
  await stopChild(child, 10_000);
  console.log(
    `${name.padEnd(24)} round ${round}: server CPU ${(usedUs / streams).toFixed(0)} µs/stream, ` +
      `wall ${(wallMs / streams).toFixed(2)} ms/stream${counts ? `; per stream: ${counts}` : ''}`,
  );
}

/** Bytes allocated per stream in all, and by the functions that allocate the most. */
function allocationSummary(file, streams) {
  const { head } = JSON.parse(readFileSync(file, 'utf8'));
  const byFunction = new Map();
  let total = 0;
  const walk = (node) => {
    const self = node.selfSize;
    total += self;
    if (self > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url.replace(/.*node_modules\//, '').replace(/.*\/packages\//, '');
      const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + self);
    }
    for (const child of node.children) walk(child);
  };
  walk(head);
  const top = [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([key, bytes]) => `\n    ${(bytes / streams).toFixed(0).padStart(6)} B  ${key}`)
    .join('');
  return `allocated ${(total / streams / 1024).toFixed(1)} KB/stream (sampled), most by:${top}`;
}

/** Every variant up at once; blocks of streams to each in turn, CPU per stream per block. */
async function interleaved() {
  const block = Number(args.block);
  const started = [];
  try {
    for (const name of names) {
      const variant = await startVariant(name, { upstreamUrl: fake.url });
      started.push({ name, variant, base: `http://127.0.0.1:${variant.port}`, perBlock: [] });
    }
    // `count` streams from `concurrency` clients, each opening its next when one ends.
    const run = async (base, count, from) => {
      let next = 0;
      const client = async () => {
        while (next < count) await one(base, from + next++);
      };
      await Promise.all(Array.from({ length: Number(args.concurrency) }, client));
    };
    for (const s of started) await run(s.base, Number(args.warm), 0);
    const blocks = Math.ceil(streams / block);
    for (let b = 0; b < blocks; b++) {
      // Alternate the order so neither variant always follows the same one.
      for (const s of b % 2 ? [...started].reverse() : started) {
        const cpu0 = await cpuUs(s.variant);
        await run(s.base, block, b * block);
        s.perBlock.push(((await cpuUs(s.variant)) - cpu0) / block);
      }
    }
    const quantile = (xs, q) => {
      const sorted = [...xs].sort((x, y) => x - y);
      const at = (sorted.length - 1) * q;
      const lo = Math.floor(at);
      return sorted[lo] + (sorted[Math.ceil(at)] - sorted[lo]) * (at - lo);
    };
    const median = (xs) => quantile(xs, 0.5);
    const first = started[0];
    if (args.each) {
      console.log(
        `server CPU µs/stream per block of ${block} (${started.map((s) => s.name).join(' | ')})`,
      );
      for (let b = 0; b < blocks; b++) {
        const row = started.map((s) => s.perBlock[b].toFixed(0).padStart(6)).join(' | ');
        console.log(
          `  streams ${String(b * block).padStart(6)}–${String((b + 1) * block).padEnd(6)} ${row}`,
        );
      }
    }
    for (const s of started) {
      const ratios = s.perBlock.map((v, i) => v / first.perBlock[i]);
      console.log(
        `${s.name.padEnd(24)} server CPU median ${median(s.perBlock).toFixed(0)} µs/stream ` +
          `over ${blocks} blocks of ${block}; ÷ ${first.name}: median ${median(ratios).toFixed(3)}× ` +
          `(quartiles ${quantile(ratios, 0.25).toFixed(3)}–${quantile(ratios, 0.75).toFixed(3)})`,
      );
    }
  } finally {
    for (const s of started) await stopChild(s.variant.child, 10_000);
  }
}

try {
  if (args.interleave) await interleaved();
  else {
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const name of round % 2 ? names : [...names].reverse()) await probe(name, round);
    }
  }
  if (args.profile) {
    console.log(`profiles in ${profileDir} (node bench/lib/profile.mjs <file> summarises one)`);
  }
} finally {
  await fake.close();
}
