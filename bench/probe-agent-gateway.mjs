#!/usr/bin/env node
/**
 * What a coding agent's request costs the gateway: the largest recorded Claude Code request
 * (`test/fixtures/clients/`, ~50 KB of system prompt, tools and history) sent as it was
 * recorded, through `anthropicGateway()` (`gateway-memory`: memory store, a daily budget and
 * two sliding-window limits per key) beside the bare passthrough proxy (`bare-proxy`), both
 * against the fake upstream answering `--tokens` tokens at once. Four clients at a time;
 * blocks of `--requests` requests to each variant in turn, order reversing every block; per
 * block the server CPU per request of each (from `/__stats`), then the medians, the
 * gateway's distance from the proxy and the ratio, each with its 95 % bootstrap interval
 * over blocks.
 *
 * With `BENCH_BEFORE=<a built checkout>`, `gateway-memory@before` (that tree's gateway) runs
 * in the same blocks: a change beside the tree it started from.
 *
 *   node bench/probe-agent-gateway.mjs                        ~1 min
 *   node bench/probe-agent-gateway.mjs --fixture=claude-code-interactive --blocks=20
 *   BENCH_BEFORE=/tmp/before node bench/probe-agent-gateway.mjs
 */
import { parseArgs } from 'node:util';
import { startFakeLLM } from '@tokenmeter/testkit';
import { stopChild } from './lib/processes.mjs';
import { largestRecordedBody } from './lib/recordings.mjs';
import { medianInterval } from './lib/report.mjs';
import { median } from './lib/stats.mjs';
import * as now from './lib/variants.mjs';

const { values: args } = parseArgs({
  options: {
    fixture: { type: 'string', default: 'claude-code-print-opus' },
    blocks: { type: 'string', default: '12' },
    requests: { type: 'string', default: '300' },
    tokens: { type: 'string', default: '100' },
  },
});

const body = JSON.stringify(largestRecordedBody(args.fixture));

const fake = await startFakeLLM({
  tps: 0,
  chunk: 1,
  ttftMs: 0,
  tokens: Number(args.tokens),
  text: 'plain',
});
const variants = [
  { name: 'bare-proxy', lib: now },
  { name: 'gateway-memory', lib: now },
];
const before = process.env.BENCH_BEFORE?.replace(/\/$/, '');
if (before) {
  const lib = await import(`${before}/bench/lib/variants.mjs`);
  variants.push({ name: 'gateway-memory@before', lib });
}
for (const v of variants) {
  v.server = await v.lib.startVariant(v.name.split('@')[0], { upstreamUrl: fake.url });
  v.cpu = [];
}

async function send(port, i) {
  const response = await fetch(`http://127.0.0.1:${port}/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user': `key-${i % 50}` },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${response.status}: ${text.slice(0, 300)}`);
}

/** Server CPU µs per request over `n` requests, four at a time. */
async function block(v, n) {
  const cpu = async () => {
    const { cpu } = await v.lib.variantStats(v.server);
    return cpu.user + cpu.system;
  };
  const started = await cpu();
  let i = 0;
  const client = async () => {
    while (i < n) await send(v.server.port, i++);
  };
  await Promise.all([client(), client(), client(), client()]);
  return ((await cpu()) - started) / n;
}

try {
  const requests = Number(args.requests);
  for (const v of variants) await block(v, requests * 5); // compiled before the first block
  const blocks = Number(args.blocks);
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) v.cpu.push(await block(v, requests));
  }
  const [proxy, ...metered] = variants;
  const show = (i) => (i ? `${i.median.toFixed(0)} [${i.lo.toFixed(0)}, ${i.hi.toFixed(0)}]` : '');
  const ratio = (i) => `${i.median.toFixed(3)} [${i.lo.toFixed(3)}, ${i.hi.toFixed(3)}]`;
  console.log(
    `${args.fixture}, largest request (${Buffer.byteLength(body)} B), ${args.tokens}-token answers; server CPU per request (µs), ${blocks} blocks of ${requests}:`,
  );
  console.log(`  ${proxy.name.padEnd(24)} ${median(proxy.cpu).toFixed(0)}`);
  for (const v of metered) {
    const over = medianInterval(v.cpu.map((x, i) => x - proxy.cpu[i]));
    const times = medianInterval(v.cpu.map((x, i) => x / proxy.cpu[i]));
    console.log(
      `  ${v.name.padEnd(24)} ${median(v.cpu).toFixed(0)} · over the proxy ${show(over)} · ÷ proxy ${ratio(times)}`,
    );
  }
  if (metered.length === 2) {
    const change = medianInterval(metered[0].cpu.map((x, i) => x / metered[1].cpu[i]));
    console.log(`  now ÷ before: ${ratio(change)}`);
  }
} finally {
  for (const v of variants) if (v.server) await stopChild(v.server.child);
  await fake.close();
}
