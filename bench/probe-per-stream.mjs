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
 *
 * The fake upstream (in this process) answers `--tokens` tokens (default 10) at once.
 */
import { mkdirSync } from 'node:fs';
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
    rounds: { type: 'string', default: '2' },
    count: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
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
const profileDir = fileURLToPath(new URL('./results/probe/', import.meta.url));
if (args.profile) mkdirSync(profileDir, { recursive: true });

const fake = await startFakeLLM({ tps: 0, ttftMs: 0, tokens: Number(args.tokens), text: 'plain' });
const body = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 1_024,
  messages: [{ role: 'user', content: 'Tell me about streaming.' }],
});

async function probe(name, round) {
  const nodeFlags = [
    ...(args.count ? ['--import', hook] : []),
    ...(args.profile
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${name}-${round}.cpuprofile`,
        ]
      : []),
  ];
  const variant = await startVariant(name, { upstreamUrl: fake.url, nodeFlags });
  const { child } = variant;
  const base = `http://127.0.0.1:${variant.port}`;
  const one = async (i) => {
    const response = await fetch(`${base}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user': `u${i % 50}` },
      body,
    });
    await response.text();
  };
  const cpu = async () => {
    const { cpu } = await variantStats(variant);
    return cpu.user + cpu.system;
  };
  for (let i = 0; i < 300; i++) await one(i);
  if (args.count) child.kill('SIGUSR2');
  const cpu0 = await cpu();
  const t0 = performance.now();
  for (let i = 0; i < streams; i++) await one(i);
  const wallMs = performance.now() - t0;
  const cpuUs = (await cpu()) - cpu0;
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
  // Time for --cpu-prof to write its profile.
  await stopChild(child, 10_000);
  console.log(
    `${name.padEnd(24)} round ${round}: server CPU ${(cpuUs / streams).toFixed(0)} µs/stream, ` +
      `wall ${(wallMs / streams).toFixed(2)} ms/stream${counts ? `; per stream: ${counts}` : ''}`,
  );
}

try {
  for (let round = 1; round <= Number(args.rounds); round++) {
    for (const name of round % 2 ? names : [...names].reverse()) await probe(name, round);
  }
  if (args.profile) {
    console.log(`profiles in ${profileDir} (node bench/lib/profile.mjs <file> summarises one)`);
  }
} finally {
  await fake.close();
}
