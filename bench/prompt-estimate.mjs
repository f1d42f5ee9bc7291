#!/usr/bin/env node
/**
 * Micro-benchmark: the CPU one admission spends estimating and bounding a prompt
 * (`measureRequestTokens`, what the engine runs for every request it does not count
 * exactly), on the requests real clients send: the largest request of each recording in
 * `test/fixtures/clients/` (Claude Code, Codex, opencode: ~30–60 KB of system prompt, tools
 * and history) and a one-line chat. Reports µs per request, the median over blocks.
 *
 * With `BENCH_BEFORE=<a built checkout>`, that tree's estimator runs in the same process, in
 * alternating blocks with this one (noise common to a block cancels): per request, the
 * median ratio now ÷ before over blocks with its 95 % bootstrap interval, and a check that
 * both give the same figures.
 *
 *   node bench/prompt-estimate.mjs                    ~15 s
 *   BENCH_BEFORE=/tmp/before node bench/prompt-estimate.mjs --blocks=30
 */
import { parseArgs } from 'node:util';
import { largestRecordedBody, recordingNames } from './lib/recordings.mjs';
import { medianInterval } from './lib/report.mjs';
import { median } from './lib/stats.mjs';
import { importFrom } from './lib/variants.mjs';

const { values: args } = parseArgs({
  options: {
    blocks: { type: 'string', default: '20' },
    /** Milliseconds of calls per request, per tree, per block. */
    ms: { type: 'string', default: '100' },
  },
});

const requests = recordingNames().map((name) => ({ name, body: largestRecordedBody(name) }));
requests.push({
  name: 'one-line chat',
  body: {
    model: 'claude-haiku-4-5',
    max_tokens: 1_024,
    messages: [{ role: 'user', content: 'Tell me about streaming.' }],
  },
});

const trees = [{ name: 'now', core: await import('@tokenmeter/core/tokens') }];
const before = process.env.BENCH_BEFORE?.replace(/\/$/, '');
if (before) {
  trees.push({ name: 'before', core: await importFrom(before, '@tokenmeter/core/tokens') });
}

/** µs per call of `measure(body)` over about `ms` milliseconds. */
function time(measure, body, ms) {
  let calls = 0;
  const started = process.hrtime.bigint();
  const until = started + BigInt(ms) * 1_000_000n;
  let now = started;
  while (now < until) {
    for (let i = 0; i < 10; i++) measure(body);
    calls += 10;
    now = process.hrtime.bigint();
  }
  return Number(now - started) / 1_000 / calls;
}

const blocks = Number(args.blocks);
const ms = Number(args.ms);
console.log(
  `measureRequestTokens, µs per request (median of ${blocks} blocks of ${ms} ms per request${before ? ' per tree, trees alternating' : ''}):`,
);
for (const { name, body } of requests) {
  const bytes = Buffer.byteLength(JSON.stringify(body));
  const figures = trees.map((tree) => tree.core.measureRequestTokens(body));
  const same = figures.every(
    (f) => f.tokens === figures[0].tokens && f.upperBound === figures[0].upperBound,
  );
  // Warm: every tree compiled before the first block.
  for (const tree of trees) time(tree.core.measureRequestTokens, body, 300);
  const samples = trees.map(() => []);
  for (let b = 0; b < blocks; b++) {
    const order = b % 2 === 0 ? trees.map((_, i) => i) : trees.map((_, i) => i).reverse();
    for (const i of order) samples[i].push(time(trees[i].core.measureRequestTokens, body, ms));
  }
  const line = [
    `  ${name.padEnd(38)} ${String(bytes).padStart(6)} B  ${figures[0].tokens} tokens (bound ${figures[0].upperBound})`,
    `now ${median(samples[0]).toFixed(1)} µs`,
  ];
  if (before) {
    const ratio = medianInterval(samples[0].map((x, i) => x / samples[1][i]));
    line.push(
      `before ${median(samples[1]).toFixed(1)} µs`,
      `now ÷ before ${ratio.median.toFixed(3)} [${ratio.lo.toFixed(3)}, ${ratio.hi.toFixed(3)}]`,
      same
        ? 'same figures'
        : `FIGURES DIFFER (before: ${figures[1].tokens}, ${figures[1].upperBound})`,
    );
  }
  console.log(line.join(' · '));
}
