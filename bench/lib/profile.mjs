/**
 * CPU profiles of variants under load (`npm run bench -- --profile`) and a summary of a
 * `.cpuprofile` file: self time per function and per area (tokenmeter packages, Express,
 * the Anthropic SDK, Node internals, GC), counted only inside the load generator's measured
 * window. Also runnable alone: `node bench/lib/profile.mjs file.cpuprofile [more…]`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { sweepVariant } from './workloads.mjs';

/** Which part of the system a call frame belongs to. */
export function areaOf(callFrame) {
  const { url, functionName } = callFrame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return 'native (syscalls, C++ bindings)';
  }
  if (url.includes('/packages/engine/')) return '@tokenmeter/engine';
  if (url.includes('/packages/express/')) return '@tokenmeter/express';
  if (url.includes('/packages/core/')) return '@tokenmeter/core';
  if (url.includes('/packages/store-memory/')) return '@tokenmeter/store-memory';
  if (url.includes('/packages/store-redis/')) return '@tokenmeter/store-redis';
  if (url.includes('/node_modules/@anthropic-ai/')) return '@anthropic-ai/sdk';
  if (url.includes('/node_modules/@opentelemetry/')) return '@opentelemetry/*';
  if (url.includes('/node_modules/ioredis') || url.includes('/node_modules/@ioredis')) {
    return 'ioredis';
  }
  if (
    /\/node_modules\/(express|router|body-parser|raw-body|send|finalhandler|on-finished|type-is|content-type|iconv-lite|qs|debug|depd|mime-types|accepts|negotiator|parseurl|statuses|http-errors)\//.test(
      url,
    )
  ) {
    return 'express (+ deps)';
  }
  if (url.includes('undici')) return 'undici (fetch)';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench variant code';
  if (url.includes('/node_modules/')) return 'other dependencies';
  return 'other';
}

/**
 * Self time per function and per area, in ms, from a V8 `.cpuprofile`; only samples taken
 * within `[fromUs, toUs]` (CLOCK_MONOTONIC µs, the profile's own clock) when given.
 */
export function summariseProfile(
  profile,
  { top = 25, fromUs = Number.NEGATIVE_INFINITY, toUs = Number.POSITIVE_INFINITY } = {},
) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples, timeDeltas } = profile;
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    // A sample stands for the time until the next one.
    const weight = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + weight);
  }
  const functions = new Map();
  const areas = new Map();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame;
    const area = areaOf(frame);
    if (area === 'idle') continue;
    totalUs += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const file = frame.url
      ? frame.url.replace(/^file:\/\/.*?\/(node_modules|packages|bench)\//, '$1/')
      : '';
    const key = `${frame.functionName || '(anonymous)'} ${file}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    const entry = functions.get(key) ?? { fn: key, area, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const pct = (us) => Math.round((us / totalUs) * 1_000) / 10;
  return {
    busyMs: Math.round(totalUs / 1_000),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: Math.round(us / 100) / 10, percent: pct(us) })),
    top: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({
        function: f.fn,
        area: f.area,
        ms: Math.round(f.us / 100) / 10,
        percent: pct(f.us),
      })),
  };
}

export function profileMarkdown(name, summary, tokens) {
  const perToken = (ms) => (tokens ? ((ms * 1_000) / tokens).toFixed(2) : '–');
  return [
    `### ${name}`,
    '',
    `Busy (non-idle) CPU in the measured window: ${summary.busyMs} ms` +
      (tokens
        ? ` for ${tokens.toLocaleString('en')} tokens delivered (${perToken(summary.busyMs)} µs/token)`
        : ''),
    '',
    '| area | self ms | % | µs per token |',
    '| --- | ---: | ---: | ---: |',
    ...summary.areas.map((a) => `| ${a.area} | ${a.ms} | ${a.percent} | ${perToken(a.ms)} |`),
    '',
    '| function (self time) | area | ms | % |',
    '| --- | --- | ---: | ---: |',
    ...summary.top.map((f) => `| \`${f.function}\` | ${f.area} | ${f.ms} | ${f.percent} |`),
    '',
  ].join('\n');
}

/**
 * Runs the 1,000-stream levels (paced and unthrottled) against each variant under
 * `--cpu-prof`, and summarises each level's measured window separately.
 */
export const PROFILED = [
  'bare-express',
  'tokenmeter-memory',
  'tokenmeter-redis',
  'bare-express+otel',
  'tokenmeter-memory+otel',
];

export async function profileVariants(ctx, resultsDir, names = PROFILED) {
  const dir = join(resultsDir, 'profiles');
  mkdirSync(dir, { recursive: true });
  const top = Math.max(...ctx.plan.sweep.levels.map((l) => l.concurrency));
  const levels = ctx.plan.sweep.levels.filter((l) => l.concurrency === top);
  const out = {};
  const md = [
    '# CPU profiles under load',
    '',
    `Each variant alone in a fresh process under \`--cpu-prof\`, through the ${top.toLocaleString('en')}-stream levels of the sweep ` +
      `(${levels.map((l) => `${l.load}: ${l.knobs.tps ? `${l.knobs.tps} tokens/s per stream` : 'upstream unthrottled'}`).join('; ')}); ` +
      'only samples inside each measured window count. Self time: the function itself, not its callees. ' +
      `Node ${process.version}. Profiling slows everything down: compare variants with each other, not with the sweep.`,
    '',
  ];
  for (const name of names) {
    const file = `${name}.cpuprofile`;
    rmSync(join(dir, file), { force: true });
    ctx.log(`profiling ${name}`);
    const cells = await sweepVariant(ctx, name, 0, {
      nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${file}`],
      levels,
    });
    if (!readdirSync(dir).includes(file)) {
      ctx.problem(`profile of ${name} was not written`);
      continue;
    }
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    out[name] = {};
    for (const cell of cells) {
      const [fromUs, toUs] = cell.windowMonotonicUs ?? [];
      if (!(fromUs >= profile.startTime && toUs <= profile.endTime)) {
        ctx.problem(`profile of ${name}: a measured window is outside the profile's time range`);
      }
      const summary = summariseProfile(profile, { fromUs, toUs });
      out[name][cell.load] = { cell, summary };
      md.push(
        profileMarkdown(
          `${name} — ${cell.load}, ${cell.concurrency} streams`,
          summary,
          cell.tokensInWindow,
        ),
      );
    }
  }
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(out, null, 1)}\n`);
  writeFileSync(join(dir, 'summary.md'), md.join('\n'));
  ctx.log(`profiles and summary in ${dir}`);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const path of process.argv.slice(2)) {
    const summary = summariseProfile(JSON.parse(readFileSync(path, 'utf8')));
    process.stdout.write(profileMarkdown(basename(path), summary));
  }
}
