/**
 * Turns a results object (what the harness writes to latest.json) into the headline
 * figures with their targets, the Markdown tables, and the SVG plot (drawn by hand: no
 * plotting dependency). Also runnable alone to redraw from a saved file:
 * `node bench/lib/report.mjs bench/results/latest.json`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LEDGER_PAIR } from './plans.mjs';
import { median } from './stats.mjs';

const BASELINE = 'bare-express';
/** The baseline of the telemetry-on variants: the bare relay with the same OTel SDK registered. */
const OTEL_BASELINE = 'bare-express+otel';

// ---------------------------------------------------------------------------------------
// Headline figures

/** A level of the sweep: `load` ('latency', 'paced' or 'max') at `concurrency`. */
function cellsOf(sweep, variant, level) {
  return sweep.filter(
    (c) => c.variant === variant && c.concurrency === level.concurrency && c.load === level.load,
  );
}

/** Median over repetitions of `fn(cellOfA, cellOfB)` for cells of the same repetition. */
function paired(sweep, a, b, level, fn) {
  const values = [];
  for (const cellA of cellsOf(sweep, a, level)) {
    const cellB = cellsOf(sweep, b, level).find((c) => c.rep === cellA.rep);
    if (cellB) values.push(fn(cellA, cellB));
  }
  return { median: median(values), values };
}

function medianOf(cells, fn) {
  return median(cells.map(fn));
}

/** The levels present in the results, in table order. */
function levelsOf(sweep) {
  const order = { latency: 0, paced: 1, max: 2 };
  const seen = new Map();
  for (const c of sweep)
    seen.set(`${c.load}:${c.concurrency}`, { load: c.load, concurrency: c.concurrency });
  return [...seen.values()].sort(
    (a, b) => (order[a.load] ?? 9) - (order[b.load] ?? 9) || a.concurrency - b.concurrency,
  );
}

/** A small seeded PRNG (mulberry32): the same results file always gives the same intervals. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantileOf(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** 95% bootstrap interval of quantile(a, q) − quantile(b, q), each sample resampled on its own. */
function bootstrapDiff(a, b, q, rounds = 1_000) {
  if (!a?.length || !b?.length) return undefined;
  const random = prng(12345);
  const resampled = (xs) => {
    const out = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(random() * xs.length)];
    return out.sort();
  };
  const diffs = [];
  for (let r = 0; r < rounds; r++) {
    diffs.push(quantileOf(resampled(a), q) - quantileOf(resampled(b), q));
  }
  diffs.sort((x, y) => x - y);
  return [quantileOf(diffs, 0.025), quantileOf(diffs, 0.975)];
}

/**
 * The median of `values` with its 95 % bootstrap percentile interval (the values resampled
 * with replacement), and the resolution: the interval's larger half-width over the median.
 */
export function medianInterval(values, rounds = 2_000) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  const random = prng(4242);
  const medians = new Float64Array(rounds);
  const sample = new Float64Array(xs.length);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < xs.length; i++) sample[i] = xs[Math.floor(random() * xs.length)];
    medians[r] = median([...sample]);
  }
  medians.sort();
  const mid = median(xs);
  const lo = quantileOf(medians, 0.025);
  const hi = quantileOf(medians, 0.975);
  return { median: mid, lo, hi, resolution: Math.max(mid - lo, hi - mid) / mid, n: xs.length };
}

const cpuRatio = (a, b) => a.serverCpuPerTokenUs / b.serverCpuPerTokenUs;
const tputRatio = (a, b) => a.tokensPerSec / b.tokensPerSec;

/**
 * TTFT of `variant` minus `baseline`'s in the interleaved latency run (every sample pooled),
 * with 95% bootstrap intervals, and the p99 difference per time segment (the spread).
 */
function addedTtftRow(sweep, pooledList, variant, baseline, latency) {
  const pooled = (v) => (pooledList ?? []).find((p) => p.variant === v);
  if (!latency || !pooled(variant) || !pooled(baseline)) return undefined;
  const bySegment = paired(
    sweep,
    variant,
    baseline,
    latency,
    (a, b) => a.ttftMs.p99 - b.ttftMs.p99,
  );
  const ours = pooled(variant).ttftMs;
  const bare = pooled(baseline).ttftMs;
  const p99 = ours.p99 - bare.p99;
  const ci50 = bootstrapDiff(pooled(variant).ttftSamples, pooled(baseline).ttftSamples, 0.5);
  const ci99 = bootstrapDiff(pooled(variant).ttftSamples, pooled(baseline).ttftSamples, 0.99);
  const interval = (ci) => (ci ? ` [${ci[0].toFixed(2)}, ${ci[1].toFixed(2)}]` : '');
  return {
    value:
      `p50 ${ms(ours.p50 - bare.p50)}${interval(ci50)}, p99 ${ms(p99)}${interval(ci99)} ` +
      `(${ours.p50.toFixed(2)} / ${ours.p99.toFixed(2)} vs ${bare.p50.toFixed(2)} / ${bare.p99.toFixed(2)} ms, n=${ours.n})`,
    spread: `[95% bootstrap interval]; p99 difference per time segment: ${bySegment.values.map((v) => ms(v)).join(', ')}`,
    p99,
    ci99,
  };
}

/** True when the p99 difference's interval lies on one side of `limitMs` (none: unknown). */
function ttftSettled({ ci99 }, limitMs) {
  return ci99 ? ci99[1] <= limitMs || ci99[0] > limitMs : undefined;
}

/**
 * One metered variant beside its baseline in a run of the sweep harness (`results[run]`):
 * added TTFT (interleaved latency run), CPU per token at the paced level, throughput at the
 * unthrottled level, each a within-round ratio's median. `label` names the pair in the table.
 */
function pairRows(results, run, ours, base, label, baseName) {
  const cells = (results[run]?.cells ?? []).filter((c) => c.variant === ours || c.variant === base);
  if (!cells.length) return [];
  const levels = levelsOf(cells);
  const latency = levels.find((l) => l.load === 'latency');
  const paced = levels.filter((l) => l.load === 'paced').at(-1);
  const max = levels.filter((l) => l.load === 'max').at(-1);
  const rows = [];
  const ttft = addedTtftRow(cells, results[run].latency, ours, base, latency);
  if (ttft) {
    rows.push({
      key: `${run}:${ours}:ttft`,
      figure: `${label}: added TTFT vs ${baseName} (one stream at a time)`,
      ...ttft,
      target: '— (no target; reported)',
      met: undefined,
    });
  }
  const planned = (level) =>
    results.plan[run]?.levels.find(
      (l) => l.load === level.load && l.concurrency === level.concurrency,
    );
  if (paced) {
    const ratio = paired(cells, ours, base, paced, cpuRatio);
    const atMax = max ? paired(cells, ours, base, max, cpuRatio) : undefined;
    const p = planned(paced);
    rows.push({
      key: `${run}:${ours}:cpu`,
      figure: `${label}: server CPU per delivered token, ${paced.concurrency.toLocaleString('en')} streams paced${p ? ` (${p.knobs.tps} tokens/s each, ${p.knobs.chunk ?? 1} per delta)` : ''}, ÷ ${baseName}`,
      value: `${x(ratio.median)} (${us(medianOf(cellsOf(cells, ours, paced), (c) => c.serverCpuPerTokenUs))} vs ${us(medianOf(cellsOf(cells, base, paced), (c) => c.serverCpuPerTokenUs))})`,
      spread: `per round: ${ratio.values.map(x).join(', ')}${atMax ? `; unthrottled: ${x(atMax.median)}` : ''}`,
      target: '— (no target; reported)',
      met: undefined,
    });
  }
  if (max) {
    const ratio = paired(cells, ours, base, max, tputRatio);
    rows.push({
      key: `${run}:${ours}:throughput`,
      figure: `${label}: throughput at ${max.concurrency.toLocaleString('en')} streams (upstream unthrottled), ÷ ${baseName}`,
      value: `${x(ratio.median)} (${tokS(medianOf(cellsOf(cells, ours, max), (c) => c.tokensPerSec))} vs ${tokS(medianOf(cellsOf(cells, base, max), (c) => c.tokensPerSec))} tokens/s)`,
      spread: `per round: ${ratio.values.map(x).join(', ')}`,
      target: '— (no target; reported)',
      met: undefined,
    });
  }
  return rows;
}

/** The gateway beside the bare passthrough proxy (both speak `/v1/messages`). */
function gatewayRows(results) {
  return pairRows(
    results,
    'gateway',
    'gateway-memory',
    'bare-proxy',
    'Gateway',
    'a bare passthrough proxy, memory store',
  );
}

/** OpenAI's two APIs through the gateway, each beside the passthrough proxy of the same API. */
function openaiRows(results) {
  return [
    ...pairRows(
      results,
      'openai',
      'gateway-chat',
      'bare-proxy-chat',
      'Gateway, Chat Completions',
      'a bare passthrough proxy of Chat Completions, memory store',
    ),
    ...pairRows(
      results,
      'openai',
      'gateway-responses',
      'bare-proxy-responses',
      'Gateway, Responses API',
      'a bare passthrough proxy of the Responses API, memory store',
    ),
  ];
}

/** The ledger on beside off, and the rows per second one ledger sustains. */
function ledgerRows(results) {
  const run = results.ledger;
  if (!run) return [];
  const rows = pairRows(
    results,
    'ledger',
    'tokenmeter-memory+ledger',
    'tokenmeter-memory',
    'Ledger on',
    'ledger off',
  );
  if (run.rowsPerSec) {
    rows.push({
      key: 'ledger:rows',
      figure:
        'Ledger: rows written per second, sustained (one ledger, batches of 500, two scopes per row)',
      value: `${Math.round(run.rowsPerSec).toLocaleString('en')} rows/s (${run.rows.toLocaleString('en')} rows in ${(run.totalMs / 1000).toFixed(2)} s; queued in ${Math.round(run.queuedMs)} ms)`,
      spread: 'one run',
      target: '— (no target; reported)',
      met: undefined,
    });
  }
  return rows;
}

/** The AI SDK path and the raw SDK path, each beside its bare relay; and the AI SDK's own cost. */
function sourcesRows(results) {
  return [
    ...pairRows(
      results,
      'sources',
      'ai-sdk-memory',
      'bare-ai-sdk',
      'AI SDK path',
      'a bare AI SDK relay',
    ),
    ...pairRows(
      results,
      'sources',
      'tokenmeter-memory',
      'bare-express',
      'Raw SDK path (same run)',
      'bare-express',
    ),
    ...pairRows(
      results,
      'sources',
      'bare-ai-sdk',
      'bare-express',
      'The AI SDK itself, no tokenmeter',
      'bare-express',
    ),
  ];
}

/** Each adapter beside its own bare relay: the Web adapter on Hono, Express in the same run. */
function adapterRows(results) {
  return [
    ...pairRows(
      results,
      'adapters',
      'web-memory',
      'bare-hono',
      'Web adapter on Hono',
      'a bare Hono relay',
    ),
    ...pairRows(
      results,
      'adapters',
      'tokenmeter-memory',
      'bare-express',
      'Express adapter (same run)',
      'bare-express',
    ),
    ...pairRows(
      results,
      'adapters',
      'bare-hono',
      'bare-express',
      'Hono itself, no tokenmeter',
      'bare-express',
    ),
  ];
}

const shortName = (v) => v.replace('tokenmeter-', '').replace('bare-express', 'bare');

/** Per-block ratios of one pair at one interleaved level. */
function blockRatios(level, ours, base, fn) {
  return level.blocks
    .filter((b) => b[ours] && b[base])
    .map((b) => fn(b[ours], b[base]))
    .filter((v) => Number.isFinite(v));
}

/** "met", "missed", and whether the interval settles it. */
function verdict(ci, limit, below) {
  if (!ci) return { met: undefined, note: '' };
  const met = below ? ci.median <= limit : ci.median >= limit;
  const settled = below
    ? met
      ? ci.hi <= limit
      : ci.lo > limit
    : met
      ? ci.lo >= limit
      : ci.hi < limit;
  return {
    met,
    resolved: settled,
    note: settled
      ? `the 95 % interval lies ${met === below ? 'below' : 'above'} the target`
      : 'the 95 % interval spans the target: not resolved',
  };
}

/**
 * The targets of CPU per token (paced level) and throughput (unthrottled level) from the
 * interleaved run: each the median of per-block ratios with its 95 % bootstrap interval,
 * and the resolution that interval reached.
 */
function interleavedRows(results) {
  const run = results.interleaved;
  if (!run?.levels?.length) return [];
  const rows = [];
  const paced = run.levels.find((l) => l.load === 'paced');
  const max = run.levels.find((l) => l.load === 'max');
  const ciText = (ci) =>
    `${x(ci.median)} [${num(ci.lo, 2)}, ${num(ci.hi, 2)}], resolved to ±${(ci.resolution * 100).toFixed(1)} %`;
  for (const [ours, base] of run.pairs) {
    const label = `${shortName(ours)} / ${shortName(base)}`;
    if (paced) {
      const ci = medianInterval(blockRatios(paced, ours, base, cpuRatio));
      if (ci) {
        const cpu = (v) => median(paced.blocks.map((b) => b[v]?.serverCpuPerTokenUs));
        const redis = ours.includes('redis')
          ? `; + redis-server's own ${us(median(paced.blocks.map((b) => b[ours]?.extraCpuPerTokenUs?.[0])))}/token`
          : '';
        const v = verdict(ci, 1.2, true);
        const atMax = max ? medianInterval(blockRatios(max, ours, base, cpuRatio)) : undefined;
        // A server that cannot keep up burns whole cores whatever it delivers: its CPU per
        // token is then the inverse of what it managed, not like for like.
        const offered = paced.concurrency * paced.knobs.tps;
        const delivered = (name) =>
          median(paced.blocks.map((b) => b[name]?.tokensPerSec)) / offered;
        const saturated =
          delivered(ours) < 0.9 || delivered(base) < 0.9
            ? `; delivered of the ${tokS(offered)} tokens/s offered: ${shortName(ours)} ${Math.round(delivered(ours) * 100)} %, ${shortName(base)} ${Math.round(delivered(base) * 100)} % (below 90 % the server is saturated: not like for like)`
            : '';
        rows.push({
          key: `interleaved:cpu:${ours}`,
          figure: `Server CPU per delivered token, ${paced.concurrency.toLocaleString('en')} streams paced (${paced.knobs.tps} tokens/s each, ${paced.knobs.chunk ?? 1} per delta), ${label}, interleaved`,
          value: `${ciText(ci)} (${us(cpu(ours))} vs ${us(cpu(base))}${redis})`,
          spread: `${ci.n} blocks: ${blockRatios(paced, ours, base, cpuRatio).map(x).join(', ')}; ${v.note}${atMax ? `; unthrottled: ${ciText(atMax)}` : ''}${saturated}`,
          target: '≤ 1.2×',
          met: v.met,
          resolved: v.resolved,
        });
      }
    }
    if (max) {
      const ci = medianInterval(blockRatios(max, ours, base, tputRatio));
      if (ci) {
        const tput = (v) => median(max.blocks.map((b) => b[v]?.tokensPerSec));
        const v = verdict(ci, 0.9, false);
        rows.push({
          key: `interleaved:throughput:${ours}`,
          figure: `Throughput at ${max.concurrency.toLocaleString('en')} streams (upstream unthrottled), ${label}, interleaved`,
          value: `${ciText(ci)} (${tokS(tput(ours))} vs ${tokS(tput(base))} tokens/s)`,
          spread: `${ci.n} blocks: ${blockRatios(max, ours, base, tputRatio).map(x).join(', ')}; ${v.note}`,
          target: '≥ 0.9×',
          met: v.met,
          resolved: v.resolved,
        });
      }
    }
  }
  return rows;
}

/** The interleaved run's blocks, for the report: each variant's figures and each pair's ratio. */
function interleavedSection(results) {
  const run = results.interleaved;
  if (!run?.levels?.length) return [];
  const plan = results.plan.interleaved;
  const out = [
    '## CPU per token and throughput, interleaved',
    '',
    `Every variant's process up at once (${plan.variants.join(', ')})${plan.jitWarmup ? ', warmed past the JIT' : ''}; then, per level, ${plan.blocks} blocks, each running the same closed loop against the variants in the order ${(run.sequence ?? plan.variants).join(' → ')} (a palindrome around each baseline; backwards every other block), one cell each (${plan.levels.map((l) => `${l.load}: ${l.warmupMs / 1000} s warm-up, ${l.measureMs / 1000} s measured`).join('; ')}). ` +
      "A variant's figure in a block sums its cells (CPU over tokens, tokens over time), and a ratio is taken within each block, so a drift of the machine through the block falls on both sides alike; the headline gives the median of the block ratios with a 95 % bootstrap interval (blocks resampled), and the resolution it reached (the interval’s larger half-width over the median).",
    '',
  ];
  for (const level of run.levels) {
    const header = [
      'block',
      ...plan.variants.map((v) => `${shortName(v)} µs/token · tok/s`),
      ...run.pairs.map(([a, b]) => `${shortName(a)} ÷ ${shortName(b)} CPU · tok/s`),
    ];
    const rows = level.blocks.map((block, i) => [
      String(i + 1),
      ...plan.variants.map(
        (v) => `${num(block[v]?.serverCpuPerTokenUs, 1)} · ${tokS(block[v]?.tokensPerSec)}`,
      ),
      ...run.pairs.map(
        ([a, b]) =>
          `${x(block[a] && block[b] ? cpuRatio(block[a], block[b]) : undefined)} · ${x(block[a] && block[b] ? tputRatio(block[a], block[b]) : undefined)}`,
      ),
    ]);
    out.push(
      `### ${level.load}, ${level.concurrency.toLocaleString('en')} streams`,
      '',
      table(header, rows),
      '',
    );
  }
  return out;
}

export function headline(results) {
  const sweep = results.sweep ?? [];
  const levels = levelsOf(sweep);
  const latency = levels.find((l) => l.load === 'latency');
  const paced = levels.filter((l) => l.load === 'paced').at(-1);
  const max = levels.filter((l) => l.load === 'max').at(-1);
  const rows = [];
  const has = (v) => sweep.some((c) => c.variant === v);
  const short = (v) => v.replace('tokenmeter-', '');
  const planned = paced
    ? results.plan.sweep.levels.find(
        (l) => l.load === 'paced' && l.concurrency === paced.concurrency,
      )
    : undefined;
  const offered = planned?.knobs.tps ? paced.concurrency * planned.knobs.tps : undefined;
  /**
   * How much of the paced level's offered load (streams × tokens/s each) `variant` and `base`
   * delivered, median over rounds, when either fell below 90 %: a server that cannot keep up
   * is saturated, and its CPU per token is no longer like for like (nor its baseline's).
   */
  const keptUp = (variant, base) => {
    if (!offered) return '';
    const share = (v) => medianOf(cellsOf(sweep, v, paced), (c) => c.tokensPerSec / offered);
    const [ours, theirs] = [share(variant), share(base)];
    if (!(ours < 0.9 || theirs < 0.9)) return '';
    const pct = (f) => `${Math.round(f * 100)} %`;
    return `; delivered of the ${offered.toLocaleString('en')} tokens/s offered: ${short(variant)} ${pct(ours)}, ${short(base)} ${pct(theirs)} (below 90 % the server is saturated)`;
  };

  // Concurrency 1 comes from the interleaved latency run: every sample of every segment
  // pooled (the headline), and the difference per segment (the spread).
  const pooled = (v) => (results.latency ?? []).find((p) => p.variant === v);
  const addedTtft = (variant, limitMs, label) => {
    const row = addedTtftRow(sweep, results.latency, variant, BASELINE, latency);
    if (!row) return;
    rows.push({
      key: `ttft:${variant}`,
      figure: `Added TTFT vs bare, ${label} (one stream at a time)`,
      ...row,
      target: `p99 ≤ ${limitMs} ms`,
      met: row.p99 <= limitMs,
      resolved: ttftSettled(row, limitMs),
    });
  };
  addedTtft('tokenmeter-memory', 1, 'memory store');
  addedTtft('tokenmeter-redis', 2, 'Redis store');
  addedTtft('tokenmeter-memory+otel', 1, 'memory store, telemetry on');
  addedTtft('tokenmeter-redis+otel', 2, 'Redis store, telemetry on');

  // CPU per token and throughput: the interleaved run is the measurement when it ran; the
  // sweep's cells then stay in its own table, not in the headline.
  const fromInterleaved = interleavedRows(results);
  rows.push(...fromInterleaved);
  const sweepTargets = fromInterleaved.length === 0;

  if (max && sweepTargets) {
    for (const variant of ['tokenmeter-memory', 'tokenmeter-redis']) {
      if (!has(variant)) continue;
      const ratio = paired(sweep, variant, BASELINE, max, tputRatio);
      rows.push({
        key: `throughput:${variant}`,
        figure: `Throughput at ${max.concurrency.toLocaleString('en')} streams (upstream unthrottled), ${short(variant)} / bare`,
        value: `${x(ratio.median)} (${tokS(medianOf(cellsOf(sweep, variant, max), (c) => c.tokensPerSec))} vs ${tokS(medianOf(cellsOf(sweep, BASELINE, max), (c) => c.tokensPerSec))} tokens/s)`,
        spread: `per round: ${ratio.values.map(x).join(', ')}`,
        target: '≥ 0.9×',
        met: ratio.median === undefined ? undefined : ratio.median >= 0.9,
      });
    }
  }
  if (paced && sweepTargets) {
    const pacedAbout = planned
      ? `${planned.knobs.tps} tokens/s each, ${planned.knobs.chunk ?? 1} per delta`
      : 'paced';
    for (const variant of ['tokenmeter-memory', 'tokenmeter-redis']) {
      if (!has(variant)) continue;
      const ratio = paired(sweep, variant, BASELINE, paced, cpuRatio);
      const atMax = max ? paired(sweep, variant, BASELINE, max, cpuRatio) : undefined;
      const redisNote =
        variant === 'tokenmeter-redis'
          ? `; + redis-server's own ${us(medianOf(cellsOf(sweep, variant, paced), (c) => c.extraCpuPerTokenUs?.[0]))}/token`
          : '';
      rows.push({
        key: `cpu:${variant}`,
        figure: `Server CPU per delivered token, ${paced.concurrency.toLocaleString('en')} streams paced (${pacedAbout}), ${short(variant)} / bare`,
        value: `${x(ratio.median)} (${us(medianOf(cellsOf(sweep, variant, paced), (c) => c.serverCpuPerTokenUs))} vs ${us(medianOf(cellsOf(sweep, BASELINE, paced), (c) => c.serverCpuPerTokenUs))}${redisNote})`,
        spread: `per round: ${ratio.values.map(x).join(', ')}${atMax ? `; unthrottled: ${x(atMax.median)}` : ''}${keptUp(variant, BASELINE)}`,
        target: '≤ 1.2×',
        met: ratio.median === undefined ? undefined : ratio.median <= 1.2,
      });
    }
  }

  const slow = results.slowReaders ?? [];
  if (slow.length > 0) {
    const of = (v) => slow.filter((r) => r.variant === v);
    const queuedKB = (v) =>
      median(
        of(v).map((r) => (r.openAtPeak ? r.peakQueuedBytes / r.openAtPeak : Number.NaN) / 1024),
      );
    const growth = (v) => median(of(v).map((r) => (r.rssEnd - r.rssStart) / 2 ** 20));
    const ours = queuedKB('tokenmeter-memory');
    const naive = queuedKB('naive');
    // "Bounded by the socket buffer": Node's 16 KB high-water mark plus the chunk that
    // crossed it; 64 KB per stream is generous.
    const limitKB = 64;
    rows.push({
      key: 'slow',
      figure: `Slow readers (${results.plan.slow.streams} × 1 KB/s, ${results.plan.slow.durationMs / 1000} s): what the server holds for them`,
      value:
        `most queued per stream: ours ${num(ours, 1)} KB, naive ${num(naive, 0)} KB, bare ${num(queuedKB(BASELINE), 1)} KB; ` +
        `server RSS over the run: ours ${signed(growth('tokenmeter-memory'))} MB, naive ${signed(growth('naive'))} MB, bare ${signed(growth(BASELINE))} MB`,
      spread:
        'queued: res.writableLength (bytes waiting in the response and its socket, in Node and libuv, not yet in the kernel), polled every ~0.5 s, the largest',
      target: `ours flat (≤ ${limitKB} KB per stream), naive growing (≥ 10× ours)`,
      met:
        ours === undefined
          ? undefined
          : ours <= limitKB && (naive === undefined || naive >= 10 * Math.max(ours, 1)),
    });
  }

  const allStorms = results.disconnect ?? [];
  const storm = allStorms.filter((r) => r.scenario === (allStorms[0]?.scenario ?? 'paced'));
  if (storm.length > 0) {
    const scenario = results.plan.disconnect.scenarios.find((x) => x.name === storm[0].scenario);
    const burst = allStorms.filter((r) => r.scenario === 'burst');
    const burstOf = (v) =>
      median(burst.filter((r) => r.variant === v).map((r) => r.generatedAfterDisconnectPerStream));
    const after = (v) =>
      median(storm.filter((r) => r.variant === v).map((r) => r.generatedAfterDisconnectPerStream));
    const ours = after('tokenmeter-memory');
    const oursRedis = after('tokenmeter-redis');
    const latency = median(
      storm.filter((r) => r.variant === 'tokenmeter-memory').map((r) => r.abortLatencyMs.p99),
    );
    rows.push({
      key: 'disconnect',
      figure: `Upstream tokens generated after the client left, per stream (${scenario?.ratePerSec ?? '?'} new streams/s)`,
      value: `ours ${num(ours)}${oursRedis === undefined ? '' : ` (Redis ${num(oursRedis)})`}, naive ${num(after('naive'))}, bare ${num(after(BASELINE))}; ours closes the upstream ${num(latency)} ms (p99) after the client`,
      spread:
        `of ${results.plan.disconnect.knobs.tokens} planned, at ${results.plan.disconnect.knobs.tps} tokens/s` +
        (burst.length
          ? `; saturated burst: ours ${num(burstOf('tokenmeter-memory'))}, bare ${num(burstOf(BASELINE))}, naive ${num(burstOf('naive'))}`
          : ''),
      target: '≈ 0 (≤ 1 chunk)',
      met:
        ours === undefined ? undefined : ours <= 1 && (oursRedis === undefined || oursRedis <= 1),
    });
  }

  const race = results.race ?? [];
  if (race.length > 0) {
    const of = (v) => race.filter((r) => r.variant === v);
    const ours = of('tokenmeter-redis');
    const worst = ours.length ? Math.max(...ours.map((r) => r.overspendNanos)) : undefined;
    const naive = median(of('naive').map((r) => r.overspendNanos));
    const budget = race[0].budgetNanos;
    rows.push({
      key: 'overspend',
      figure: `Overspend, ${race[0].requests} concurrent requests over ${race[0].processes} processes on one Redis`,
      value: `ours ${usd(worst)} (worst run; admitted ${median(ours.map((r) => r.admitted))}), naive ${usd(naive)} = ${x((naive + budget) / budget)} the budget (admitted ${median(of('naive').map((r) => r.admitted))})`,
      spread: `budget ${usd(budget)}`,
      target: 'zero',
      met: worst === undefined ? undefined : worst === 0,
    });
  }

  const idle = results.idle ?? [];
  if (idle.length > 0) {
    const per = (v, field) => median(idle.filter((r) => r.variant === v).map((r) => r[field]));
    const parts = [...new Set(idle.map((r) => r.variant))].map(
      (v) => `${v} ${kb(per(v, 'rssPerStream'))} RSS / ${kb(per(v, 'heapPerStream'))} heap`,
    );
    rows.push({
      key: 'idle',
      figure: `Memory per idle open stream (${idle[0].open.toLocaleString('en')} open)`,
      value: parts.join('; '),
      spread: '',
      target: '— (no target; reported)',
      met: undefined,
    });
  }

  // With telemetry on both sides: tokenmeter+otel against the bare relay with the same
  // OTel SDK registered (what an app with telemetry pays for tokenmeter, not for the SDK).
  if (has(OTEL_BASELINE)) {
    for (const [variant, limitMs, label] of [
      ['tokenmeter-memory+otel', 1, 'memory store'],
      ['tokenmeter-redis+otel', 2, 'Redis store'],
    ]) {
      if (!has(variant)) continue;
      const ttft = addedTtftRow(sweep, results.latency, variant, OTEL_BASELINE, latency);
      if (ttft) {
        rows.push({
          key: `ttft-otel:${variant}`,
          figure: `Added TTFT vs bare+otel, ${label}, telemetry on both (one stream at a time)`,
          ...ttft,
          target: `p99 ≤ ${limitMs} ms`,
          met: ttft.p99 <= limitMs,
          resolved: ttftSettled(ttft, limitMs),
        });
      }
      // The Redis variant with telemetry joins only the latency run in the standard plan.
      if (sweepTargets && max && cellsOf(sweep, variant, max).length) {
        const ratio = paired(sweep, variant, OTEL_BASELINE, max, tputRatio);
        rows.push({
          key: `throughput-otel:${variant}`,
          figure: `Throughput at ${max.concurrency.toLocaleString('en')} streams (upstream unthrottled), ${short(variant)} / bare+otel`,
          value: `${x(ratio.median)} (${tokS(medianOf(cellsOf(sweep, variant, max), (c) => c.tokensPerSec))} vs ${tokS(medianOf(cellsOf(sweep, OTEL_BASELINE, max), (c) => c.tokensPerSec))} tokens/s)`,
          spread: `per round: ${ratio.values.map(x).join(', ')}`,
          target: '≥ 0.9×',
          met: ratio.median === undefined ? undefined : ratio.median >= 0.9,
        });
      }
      if (sweepTargets && paced && cellsOf(sweep, variant, paced).length) {
        const ratio = paired(sweep, variant, OTEL_BASELINE, paced, cpuRatio);
        const atMax = max ? paired(sweep, variant, OTEL_BASELINE, max, cpuRatio) : undefined;
        rows.push({
          key: `cpu-otel:${variant}`,
          figure: `Server CPU per delivered token, ${paced.concurrency.toLocaleString('en')} streams paced, ${short(variant)} / bare+otel`,
          value: `${x(ratio.median)} (${us(medianOf(cellsOf(sweep, variant, paced), (c) => c.serverCpuPerTokenUs))} vs ${us(medianOf(cellsOf(sweep, OTEL_BASELINE, paced), (c) => c.serverCpuPerTokenUs))})`,
          spread: `per round: ${ratio.values.map(x).join(', ')}${atMax ? `; unthrottled: ${x(atMax.median)}` : ''}${keptUp(variant, OTEL_BASELINE)}`,
          target: '≤ 1.2×',
          met: ratio.median === undefined ? undefined : ratio.median <= 1.2,
        });
      }
    }
  }

  for (const [otel, plain] of [
    [OTEL_BASELINE, BASELINE],
    ['tokenmeter-memory+otel', 'tokenmeter-memory'],
    ['tokenmeter-redis+otel', 'tokenmeter-redis'],
  ]) {
    if (!has(otel) || !has(plain)) continue;
    const parts = [];
    if (paced && cellsOf(sweep, otel, paced).length) {
      parts.push(`CPU/token ${x(paired(sweep, otel, plain, paced, cpuRatio).median)} (paced)`);
    }
    if (max && cellsOf(sweep, otel, max).length) {
      parts.push(
        `throughput ${x(paired(sweep, otel, plain, max, tputRatio).median)} (unthrottled)`,
      );
    }
    const on = pooled(otel)?.ttftMs;
    const off = pooled(plain)?.ttftMs;
    if (on && off) parts.push(`TTFT p50 ${ms(on.p50 - off.p50)}, p99 ${ms(on.p99 - off.p99)}`);
    const spans = median(
      sweep.filter((c) => c.variant === otel).map((c) => c.telemetry?.spansExported),
    );
    rows.push({
      key: `otel:${plain}`,
      figure: `Telemetry overhead (${short(plain)}${plain === BASELINE ? ': the OTel SDK alone, no tokenmeter' : ''}): on / off`,
      value: parts.join(', '),
      spread: `spans exported by the process: ${spans ?? 0}`,
      target: '— (no target; reported)',
      met: undefined,
    });
  }
  rows.push(...gatewayRows(results));
  rows.push(...openaiRows(results));
  rows.push(...sourcesRows(results));
  rows.push(...adapterRows(results));
  rows.push(...ledgerRows(results));
  return rows;
}

// ---------------------------------------------------------------------------------------
// Markdown

const VARIANT_ORDER = [
  'bare-node',
  'bare-express',
  'bare-express+otel',
  'naive',
  'tokenmeter-memory',
  'tokenmeter-memory+otel',
  'tokenmeter-redis',
  'tokenmeter-redis+otel',
  'bare-proxy',
  'gateway-memory',
  'bare-proxy-chat',
  'gateway-chat',
  'bare-proxy-responses',
  'gateway-responses',
  'bare-ai-sdk',
  'ai-sdk-memory',
  'bare-hono',
  'web-memory',
  'tokenmeter-memory+ledger',
];

/**
 * The markdown of one run of the sweep harness other than the sweep itself (gateway,
 * sources, ledger): what the variants are, the levels, and the table against `base`.
 */
function pairSection(results, run, base, { title, about, latency, after = '', baseOf }) {
  const cells = results[run]?.cells ?? [];
  if (cells.length === 0) return [];
  const plan = results.plan[run];
  return [
    `## ${title}`,
    '',
    about,
    '',
    `- **latency**, 1 stream: one stream at a time, ${latency}, ${plan.latency?.knobs?.tokens ?? '?'}-token answers, ${(plan.latency?.measureMs ?? 0) / 1000} s.`,
    ...plan.levels.map(
      (l) =>
        `- **${l.load}**, ${l.concurrency.toLocaleString('en')} streams: closed loop, answers of ${l.maxTokensRange?.join('–') ?? l.knobs.tokens} tokens, ` +
        `${l.knobs.chunk ?? 1} token(s) per delta, upstream ${l.knobs.tps ? `at ${l.knobs.tps} tokens/s per stream` : 'as fast as the socket takes it'}; ${l.warmupMs / 1000} s warm-up, ${l.measureMs / 1000} s measured.`,
    ),
    '',
    `${plan.reps ?? results.reps} rounds, order rotating; medians. Ratios ("÷ bare") are against ${base} within a round.${after ? ` ${after}` : ''}`,
    '',
    table(LEVEL_HEADER, levelRows(cells, baseOf ?? base)),
    '',
  ];
}

/**
 * The ledger off and on with PostgreSQL up, then stopped: the same two warm processes in
 * each window, so "on ÷ off" is read within a window; then what the queue held and whether
 * every settlement reached the table once Postgres was back.
 */
function ledgerOutageSection(results) {
  const outage = results.ledger?.outage;
  if (!outage?.phases?.length) return [];
  const plan = results.plan.ledger.outage;
  const [off, on] = LEDGER_PAIR;
  const rows = [];
  for (const { phase, cells } of outage.phases) {
    for (const load of ['latency', plan.level.load]) {
      const of = (variant) => cells.find((c) => c.variant === variant && c.load === load);
      const a = of(off);
      const b = of(on);
      if (!a || !b) continue;
      const label =
        load === 'latency'
          ? 'latency, 1 stream'
          : `${load}, ${plan.level.concurrency.toLocaleString('en')} streams`;
      rows.push([
        phase === 'up' ? 'up' : '**stopped**',
        label,
        `${num(a.ttftMs.p50)} / ${num(a.ttftMs.p99)}`,
        `${num(b.ttftMs.p50)} / ${num(b.ttftMs.p99)}`,
        `${num(b.ttftMs.p50 - a.ttftMs.p50)} / ${num(b.ttftMs.p99 - a.ttftMs.p99)}`,
        load === 'latency' ? '—' : x(b.serverCpuPerTokenUs / a.serverCpuPerTokenUs),
        `${a.errors} / ${b.errors}`,
      ]);
    }
  }
  const r = outage.recovery;
  const down = outage.phases.find((p) => p.phase === 'down');
  return [
    '### PostgreSQL stopped under load',
    '',
    `Both variants started and warm, measured with Postgres up, then again after \`pg_ctl stop\` (${down ? `${down.seconds.toFixed(0)} s down` : ''}): ` +
      `the interleaved latency run (${plan.latency.measureMs / 1000} s, ${plan.latency.knobs.tokens}-token answers) and ${plan.level.concurrency.toLocaleString('en')} streams ${plan.level.load} ` +
      `(${plan.level.measureMs / 1000} s measured). One round: compare on with off inside a window.`,
    '',
    table(
      [
        'Postgres',
        'load',
        'TTFT p50 / p99 off (ms)',
        'TTFT p50 / p99 on (ms)',
        'on − off (ms)',
        'CPU/token on ÷ off',
        'errors off / on',
      ],
      rows,
    ),
    '',
    r
      ? `While it was down the ledger held ${down?.ledger?.queued?.toLocaleString('en') ?? '?'} settlements (${down?.ledger?.retries ?? '?'} failed batch writes, retried with backoff). ` +
        `Once Postgres was back they were written in ${(r.drainedMs / 1000).toFixed(1)} s: ${r.rows.toLocaleString('en')} rows for ${r.settled.toLocaleString('en')} settled streams, ${r.dropped} dropped.`
      : '',
    '',
  ];
}

function variantsIn(list) {
  const present = new Set(list.map((r) => r.variant));
  return VARIANT_ORDER.filter((v) => present.has(v));
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function headlineTable(rows) {
  return table(
    ['figure', 'result', 'target', 'met?', 'notes'],
    rows.map((r) => [
      r.figure,
      r.value,
      r.target,
      // A target counts as met or missed only when the interval, where there is one, says so.
      r.met === undefined
        ? '—'
        : r.resolved === false
          ? `not resolved (${r.met ? 'yes' : 'no'} at the median)`
          : r.met
            ? '**yes**'
            : '**no**',
      r.spread,
    ]),
  );
}

/** Rows of the per-level table: every level, every variant, ratios against `baseline`. */
function levelRows(sweep, baselineOf) {
  const rows = [];
  for (const level of levelsOf(sweep)) {
    for (const v of variantsIn(sweep)) {
      const baseline = typeof baselineOf === 'function' ? baselineOf(v) : baselineOf;
      const cells = cellsOf(sweep, v, level);
      if (cells.length === 0) continue;
      const med = (fn) => medianOf(cells, fn);
      const isLatency = level.load === 'latency';
      rows.push([
        level.load,
        level.concurrency.toLocaleString('en'),
        v,
        num(med((c) => c.ttftMs.p50)),
        num(med((c) => c.ttftMs.p99)),
        num(
          med((c) => c.gapMs.p50),
          3,
        ),
        num(med((c) => c.gapMs.p99)),
        isLatency
          ? '–'
          : num(
              med((c) => c.streamsPerSec),
              0,
            ),
        isLatency
          ? '–'
          : num(
              med((c) => c.tokensPerSec),
              0,
            ),
        isLatency ? '–' : x(paired(sweep, v, baseline, level, tputRatio).median),
        num(
          med((c) => c.serverCpuPerTokenUs),
          1,
        ),
        x(paired(sweep, v, baseline, level, cpuRatio).median),
        isLatency
          ? '–'
          : num(
              med((c) => c.serverCpuCores),
              2,
            ),
        num(
          med((c) => c.extraCpuPerTokenUs?.[0]),
          1,
        ),
        num(
          med((c) => c.peakRss / 2 ** 20),
          0,
        ),
        String(cells.reduce((sum, c) => sum + c.errors, 0)),
      ]);
    }
  }
  return rows;
}

const LEVEL_HEADER = [
  'load',
  'streams',
  'variant',
  'TTFT p50 ms',
  'TTFT p99 ms',
  'gap p50 ms',
  'gap p99 ms',
  'streams/s',
  'tokens/s',
  'tokens/s ÷ bare',
  'server CPU µs/token',
  'CPU/token ÷ bare',
  'server cores busy',
  'Redis CPU µs/token',
  'peak RSS MB',
  'errors',
];

export function markdown(results) {
  const out = [];
  const m = results.machine;
  out.push(
    `# tokenmeter benchmark results (${results.mode})`,
    '',
    `${results.startedAt} · ${m.cpuModel} × ${m.cores} cores · ${Math.round(m.memoryGB)} GB · Node ${m.node} · ${m.os} · ` +
      `${results.reps} repetition(s) per cell, medians shown · run took ${Math.round(results.durationMs / 1000)} s` +
      (m.backgroundLoad
        ? ` · other processes used ${m.backgroundLoad.averageCores.toFixed(2)} cores on average (p90 ${m.backgroundLoad.p90Cores.toFixed(2)}) during the run`
        : ''),
    '',
    '## Headline',
    '',
    headlineTable(headline(results)),
    '',
  );
  const sweep = results.sweep ?? [];
  if (sweep.length > 0) {
    const rows = levelRows(sweep, BASELINE);
    const plan = results.plan.sweep;
    out.push(
      '## Concurrency sweep',
      '',
      `- **latency**, 1 stream: one stream at a time, rotating over ${(plan.latency?.variants ?? []).join(', ')} (all running at once), ` +
        `${plan.latency?.knobs?.tokens ?? '?'}-token answers, ${(plan.latency?.measureMs ?? 0) / 1000} s; rows are medians over ${plan.reps ?? results.reps} time segments. ` +
        'CPU per token there includes every per-request cost spread over only 10 tokens.',
      ...plan.levels.map(
        (l) =>
          `- **${l.load}**, ${l.concurrency.toLocaleString('en')} streams: closed loop (each client opens the next stream when one ends), answers of ${l.maxTokensRange?.join('–') ?? l.knobs.tokens} tokens ` +
          `(random max_tokens), ${l.knobs.chunk ?? 1} token(s) per delta, upstream ${l.knobs.tps ? `at ${l.knobs.tps} tokens/s per stream` : 'as fast as the socket takes it'}; ` +
          `${l.warmupMs / 1000} s warm-up, ${l.measureMs / 1000} s measured.`,
      ),
      '',
      `${plan.reps ?? results.reps} rounds, variant order rotating between rounds; medians. Ratios are against bare-express, within a round, then the median. ` +
        'Server CPU: the variant process only (utime + stime from /proc); Redis CPU: redis-server, for the Redis variants.' +
        (plan.jitWarmup
          ? ` Every process is warmed first with ${plan.jitWarmup.ms / 1000} s of ${plan.jitWarmup.knobs?.tokens ?? '?'}-token answers at ${plan.jitWarmup.concurrency} streams (past the JIT's compiling phase), then ${(plan.warmup?.measureMs ?? 0) / 1000} s of ordinary streams.`
          : ''),
      '',
      table(LEVEL_HEADER, rows),
      '',
    );
  }
  out.push(...interleavedSection(results));
  out.push(
    ...pairSection(results, 'gateway', 'bare-proxy', {
      title: 'Gateway beside a bare passthrough proxy',
      about:
        'Both variants speak the Anthropic Messages API end to end (the load generator counts `content_block_delta` events): ' +
        '**bare-proxy** is an Express 5 route that forwards the body to the fake `/v1/messages` with fetch and pipes the answer back untouched; ' +
        '**gateway-memory** is `anthropicGateway()` with the memory store, a daily budget and two sliding-window limits per key (set never to refuse), ' +
        'which reads every event to meter it and settles each stream.',
      latency: 'alternating between the two (both running at once)',
    }),
    ...pairSection(results, 'openai', 'the proxy of the same API', {
      title: "OpenAI's two APIs through the gateway",
      about:
        'Four variants in one run, each pair speaking one OpenAI API end to end (the load generator counts Chat Completions chunks with content, and `response.output_text.delta` events): ' +
        '**bare-proxy-chat** and **bare-proxy-responses** forward the body to the fake `/v1/chat/completions` or `/v1/responses` with fetch and pipe the answer back untouched; ' +
        '**gateway-chat** and **gateway-responses** are `openaiGateway()` with the memory store, a daily budget and two sliding-window limits per key (set never to refuse), ' +
        'reading every event to meter it and settling each stream. Both Chat variants ask for `stream_options.include_usage`.',
      latency: 'rotating over the four',
      baseOf: (variant) =>
        variant.endsWith('-responses') ? 'bare-proxy-responses' : 'bare-proxy-chat',
    }),
    ...pairSection(results, 'sources', 'bare-express', {
      title: 'The AI SDK path beside the raw SDK path',
      about:
        "Four variants in one run, all relaying tokenmeter's `delta` events: **bare-express** (the raw SDK stream relayed) and " +
        '**tokenmeter-memory** (`costTrackedSSE()` on that stream), **bare-ai-sdk** (`streamText()` with `@ai-sdk/anthropic`, its `fullStream` ' +
        'text parts relayed with a wait on drain) and **ai-sdk-memory** (`costTrackedSSE()` with the `streamText()` result as the source, same budget and limits).',
      latency: 'rotating over the four',
    }),
    ...pairSection(results, 'adapters', 'bare-express', {
      title: 'The Web adapter beside a bare Hono relay',
      about:
        "Four variants in one run, all relaying tokenmeter's `delta` events: **bare-express** and **tokenmeter-memory** (`costTrackedSSE()`), " +
        '**bare-hono** (a Hono app on `@hono/node-server`: `streamSSE()`, one `writeSSE()` awaited per text chunk of the raw SDK stream, the upstream aborted on `onAbort`) and ' +
        '**web-memory** (`honoSSE()` from `@tokenmeter/web` on the same server, same budget and limits).',
      latency: 'rotating over the four',
    }),
    ...pairSection(results, 'ledger', 'tokenmeter-memory', {
      title: 'The PostgreSQL ledger on and off',
      about:
        '**tokenmeter-memory+ledger** is tokenmeter-memory with every settlement also handed to `createPostgresLedger()` ' +
        '(a private PostgreSQL 15 cluster on loopback, fsync off), which queues it and writes batches off the request path.',
      latency: 'alternating',
      after: results.ledger
        ? `Then ${results.ledger.rows?.toLocaleString('en')} settlements pushed into one ledger as fast as it takes them: ${Math.round(results.ledger.rowsPerSec ?? 0).toLocaleString('en')} rows/s sustained.`
        : '',
    }),
    ...ledgerOutageSection(results),
  );
  const slow = results.slowReaders ?? [];
  if (slow.length > 0) {
    const k = results.plan.slow;
    out.push(
      '## Slow readers',
      '',
      `${k.streams} clients each reading ${k.readRate} B/s for ${k.durationMs / 1000} s; the upstream offers ${k.knobs.tokens.toLocaleString('en')} tokens ` +
        `per answer (${k.knobs.chunk} per delta) as fast as it is read. On loopback the kernel's socket buffers take several MB per connection ` +
        "before a relay sees any backpressure: that memory is the kernel's, not in RSS, and the upstream keeps generating until it is full.",
      '',
      table(
        [
          'variant',
          'RSS start → end MB',
          'slope, second half, MB/s',
          'most queued for the clients, KB per stream',
          'upstream tokens generated',
          'client B/s per stream',
        ],
        variantsIn(slow).map((v) => {
          const runs = slow.filter((r) => r.variant === v);
          const med = (fn) => median(runs.map(fn));
          const mbOf = (field) =>
            num(
              med((r) => (r[field] ?? Number.NaN) / 2 ** 20),
              0,
            );
          return [
            v,
            `${mbOf('rssStart')} → ${mbOf('rssEnd')}`,
            num(
              med((r) => r.slopeMBps),
              2,
            ),
            num(
              med((r) => (r.openAtPeak ? r.peakQueuedBytes / r.openAtPeak : Number.NaN) / 1024),
              1,
            ),
            num(
              med((r) => r.upstreamTokensGenerated),
              0,
            ),
            num(
              med((r) => r.clientBytesPerSecPerStream),
              0,
            ),
          ];
        }),
      ),
      '',
    );
  }
  const storms = results.disconnect ?? [];
  if (storms.length > 0) {
    const k = results.plan.disconnect;
    out.push(
      '## Disconnect storm',
      '',
      `Every client closes its stream right after the first delta; the upstream would send ${k.knobs.tokens} tokens at ${k.knobs.tps} tokens/s. ` +
        'Scenarios: ' +
        k.scenarios
          .map(
            (x) =>
              `**${x.name}** — ${x.streams} streams, ${x.ratePerSec ? `${x.ratePerSec} new per second` : `${x.concurrency} at a time, each replaced at once`}`,
          )
          .join('; ') +
        '.',
      '',
    );
    const rows = [];
    for (const scenario of k.scenarios) {
      const storm = storms.filter((r) => r.scenario === scenario.name);
      for (const v of variantsIn(storm)) {
        const runs = storm.filter((r) => r.variant === v);
        const med = (fn) => median(runs.map(fn));
        rows.push([
          scenario.name,
          v,
          num(
            med((r) => r.tokensReceived),
            0,
          ),
          num(
            med((r) => r.tokensGenerated),
            0,
          ),
          num(
            med((r) => r.generatedAfterDisconnectPerStream),
            2,
          ),
          num(
            med((r) => r.undeliveredPerStream),
            2,
          ),
          `${num(
            med((r) => r.abortLatencyMs.p50),
            2,
          )} / ${num(
            med((r) => r.abortLatencyMs.p99),
            2,
          )}`,
          num(
            med((r) => r.upstreamNeverClosed),
            0,
          ),
        ]);
      }
    }
    out.push(
      table(
        [
          'scenario',
          'variant',
          'tokens delivered',
          'tokens generated',
          'generated after the client left, per stream',
          'generated but not delivered, per stream',
          'client left → upstream closed, p50 / p99 ms',
          'upstream never closed',
        ],
        rows,
      ),
      '',
      'After the client left: per stream, the tokens the upstream generated after the moment the client closed (the upstream paces token k at first + k / tps, never early; times compared across processes on the wall clock, ±1 ms). Not delivered: everything generated minus what reached the client, in-flight tokens included.',
      '',
    );
  }
  const race = results.race ?? [];
  if (race.length > 0) {
    out.push(
      '## Overspend race',
      '',
      `${race[0].requests} requests for one user fired at once, round-robin over ${race[0].processes} server processes sharing one Redis; budget ${usd(race[0].budgetNanos)} (about ${results.plan.race.budgetAnswers} worst-case answers). Spend is what the upstream's records cost (the provider's bill).`,
      '',
      table(
        ['variant', 'run', 'admitted', 'rejected', 'spent', 'overspend'],
        race.map((r) => [
          r.variant,
          String(r.rep + 1),
          String(r.admitted),
          String(r.rejected),
          usd(r.spentNanos),
          usd(r.overspendNanos),
        ]),
      ),
      '',
    );
  }
  const idle = results.idle ?? [];
  if (idle.length > 0) {
    out.push(
      '## Idle open streams',
      '',
      'Streams whose upstream sent its headers and `message_start`, then nothing: memory after a full GC, minus the same before opening them.',
      '',
      table(
        [
          'variant',
          'open',
          'time to open all, s',
          'RSS per stream, KB',
          'JS heap per stream, KB',
          'external per stream, KB',
        ],
        idle.map((r) => [
          r.variant,
          r.open.toLocaleString('en'),
          num(r.openMs / 1000, 1),
          num(r.rssPerStream / 1024, 1),
          num(r.heapPerStream / 1024, 1),
          num(r.externalPerStream / 1024, 1),
        ]),
      ),
      '',
    );
  }
  const moneyResults = results.money;
  if (moneyResults) {
    out.push(
      '## Money bounds',
      '',
      `Not timed. Every request goes through the README's mount pattern (\`{ ...req.body, model, max_tokens, stream: true }\`) to the fake, which bills fast mode, data residency, web searches (fee and result tokens) and cache writes as published; "billed" is what its records cost at the catalog's prices. ${results.plan.money.seeds.length} seed(s) of each text kind.`,
      '',
      "### Worst-case reservation (`'strict'`): the bill never passes the reservation",
      '',
      table(
        ['request', 'requests', 'largest bill ÷ reserved', 'largest overspend'],
        moneyResults.worstCase.map((r) => [
          r.kind,
          String(r.requests),
          num(r.maxBillOverReserved, 3),
          usd(r.maxOverspendNanos),
        ]),
      ),
      '',
      '### No false cut-offs: answers of 481 tokens with max_tokens 500 and $5 left',
      '',
      table(
        ['text', 'answers', 'cut off', 'output charged above max_tokens'],
        moneyResults.cutOffs.map((r) => [
          r.text,
          String(r.answers),
          String(r.cut),
          String(r.chargedAboveMaxTokens),
        ]),
      ),
      '',
      '### Incremental leases: a 6,000-token answer against a $0.01 budget (steps of 256 tokens), sent with the max_tokens the budget covers',
      '',
      'Worst seed per text kind. The request is sent with the max_tokens $0.01 covers after the prompt\'s bound, and the lease grows with the answer up to it, so the answer ends at max_tokens with the provider\'s own usage (a lease refused mid-way, when other streams took the budget, ends with `lease_denied`). "Books" is the store\'s spend, what tokenmeter charged; "bill" what the provider generated, priced; "billed ÷ budget" the smallest share of the budget used; "after the cut" the most tokens the provider generated after the middleware stopped reading (0 where nothing was cut).',
      '',
      table(
        [
          'text',
          'ended',
          'books',
          'bill',
          'bill past the budget',
          'in steps',
          'billed ÷ budget',
          'after the cut',
        ],
        moneyResults.leases.map((r) => [
          r.text,
          r.ended,
          usd(r.booksNanos),
          usd(r.billNanos),
          usd(r.overspendBillNanos),
          num(r.overspendBillNanos / r.stepNanos, 2),
          `${Math.round(r.leastBilledShare * 100)}%`,
          String(r.mostTokensAfterCut),
        ]),
      ),
      '',
      '### Per-request cap of $0.005 against a 4,000-token answer',
      '',
      "The request is sent with the max_tokens the cap covers after the prompt's bound: the provider stops there.",
      '',
      table(
        ['text', 'cap', 'smallest bill', 'largest bill'],
        moneyResults.cap.map((r) => [
          r.text,
          usd(r.capNanos),
          usd(r.minBillNanos),
          usd(r.maxBillNanos),
        ]),
      ),
      '',
    );
    if (moneyResults.hostile) {
      out.push(
        "### Callers we don't control: hostile bodies through the gateways (their defaults)",
        '',
        'Raw HTTP calls to `anthropicGateway()` / `openaiGateway()`. "Billed" is what the fake generated (sent or not) and counted, priced; "limit" is the budget, or the cap where the case has one. The byte-billed cases make the fake count a token per UTF-8 byte of every string it reads: the most any byte-level tokenizer can.',
        '',
        table(
          [
            'case',
            'answers',
            'reserved',
            'charged',
            'billed',
            'limit',
            'billed past the limit',
            'billed past the reservation',
          ],
          moneyResults.hostile.map((r) => [
            r.case,
            r.statuses,
            usd(r.reservedNanos),
            usd(r.chargedNanos),
            usd(r.billedNanos),
            usd(r.limitNanos),
            usd(r.pastLimitNanos),
            usd(r.pastReservationNanos),
          ]),
        ),
        '',
      );
    }
    if (moneyResults.agentDay) {
      out.push(
        "### A coding agent's day: Claude Code's recorded call on a $2 a day key (one row $1.50), by reservation mode",
        '',
        'claude-opus-5-5, max_tokens 128,000, adaptive thinking billed unseen (600 tokens a call here) and 1,600 tokens of text: about $0.09 a call. Replayed in rounds until every call of a round is refused: alone; with Claude Code\'s title request (the same model and max_tokens) sent at the same moment; or two sessions\' main calls at once. "Refused while money remained": calls refused in a round where another call was admitted. "Past the budget": what the provider billed beyond it.',
        '',
        table(
          [
            'mode',
            'calls',
            'main calls',
            'refused while money remained',
            'a main call',
            'billed',
            'past the budget',
            'left at the end',
          ],
          moneyResults.agentDay.map((r) => [
            `${r.mode}, ${r.variant}`,
            String(r.calls),
            String(r.mainCalls),
            String(r.refusedEarly),
            usd(r.meanMainNanos),
            usd(r.billedNanos),
            usd(r.pastBudgetNanos),
            usd(r.leftNanos),
          ]),
        ),
        '',
      );
    }
  }
  const abuse = results.abuse ?? [];
  if (abuse.length > 0) {
    out.push(
      '## Uploads from unidentified callers',
      '',
      `A gateway in its own process gets ${abuse[0].uploads} connections promising 19 MiB bodies (nested \`[\`) with no valid key, the last byte withheld, while ${abuse[0].streams} honest streams run through it. Measured in the gateway's process: peak RSS over the baseline, event-loop delay, CPU time; "alone" is the same streams just before, without the uploads.`,
      '',
      table(
        [
          'route',
          'rep',
          'RSS growth, MB',
          'loop delay p99 (alone), ms',
          'loop delay max (alone), ms',
          'CPU (alone), ms',
          'uploads closed by the server',
          'streams completed',
        ],
        abuse.map((r) => [
          r.path,
          String(r.rep + 1),
          num(r.rssGrowthMb, 1),
          `${num(r.delayP99Ms, 1)} (${num(r.aloneDelayP99Ms, 1)})`,
          `${num(r.delayMaxMs, 0)} (${num(r.aloneDelayMaxMs, 0)})`,
          `${num(r.cpuMs, 0)} (${num(r.aloneCpuMs, 0)})`,
          `${r.closedByServer}/${r.uploads}`,
          `${r.completed}/${r.streams}`,
        ]),
      ),
      '',
    );
  }
  const adm = results.admission ?? {};
  for (const [store, run] of Object.entries(adm)) {
    out.push(`## Admission micro-benchmark: ${store} store`, '');
    if (run.skipped) out.push(`Skipped: ${run.skipped}.`, '');
    else out.push('```', run.output, '```', '');
  }
  if (results.problems?.length) {
    out.push('## Problems', '', ...results.problems.map((p) => `- ${p}`), '');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// SVG

const COLORS = {
  'bare-node': '#7f7f7f',
  'bare-express': '#000000',
  'bare-express+otel': '#8c564b',
  naive: '#d62728',
  'tokenmeter-memory': '#1f77b4',
  'tokenmeter-memory+otel': '#17becf',
  'tokenmeter-redis': '#2ca02c',
  'tokenmeter-redis+otel': '#98df8a',
};

function esc(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceTicks(min, max, log) {
  if (log) {
    const ticks = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++)
      ticks.push(10 ** e);
    return ticks;
  }
  const span = max - min || 1;
  const step = 10 ** Math.floor(Math.log10(span / 4));
  const mult = [1, 2, 5, 10].find((m) => span / (m * step) <= 6) ?? 10;
  const s = mult * step;
  const ticks = [];
  for (let t = Math.floor(min / s) * s; t <= max + s / 2; t += s)
    ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

/** One line chart: `series` = [{ name, points: [[x, y]] }]. */
function chart({ x0, y0, width, height, title, xLabel, yLabel, series, logX, logY, xTicks }) {
  const pts = series
    .flatMap((s) => s.points)
    .filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py));
  if (pts.length === 0) return '';
  let [xmin, xmax] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [ymin, ymax] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (logY) {
    ymin = 10 ** Math.floor(Math.log10(Math.max(ymin, 1e-3)));
    ymax = 10 ** Math.ceil(Math.log10(ymax));
  } else {
    ymin = Math.min(0, ymin);
    ymax = ymax * 1.08 || 1;
  }
  if (xmin === xmax) xmax = xmin + 1;
  const left = x0 + 58;
  const right = x0 + width - 10;
  const top = y0 + 28;
  const bottom = y0 + height - 40;
  const sx = (v) =>
    logX
      ? left +
        ((Math.log10(v) - Math.log10(xmin)) / (Math.log10(xmax) - Math.log10(xmin) || 1)) *
          (right - left)
      : left + ((v - xmin) / (xmax - xmin)) * (right - left);
  const sy = (v) =>
    logY
      ? bottom -
        ((Math.log10(Math.max(v, ymin)) - Math.log10(ymin)) /
          (Math.log10(ymax) - Math.log10(ymin))) *
          (bottom - top)
      : bottom - ((v - ymin) / (ymax - ymin)) * (bottom - top);
  const out = [];
  out.push(
    `<text x="${x0 + width / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
  );
  out.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`,
  );
  for (const t of niceTicks(ymin, ymax, logY)) {
    if (t < ymin || t > ymax) continue;
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${left}" x2="${right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    out.push(
      `<text x="${left - 4}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="10">${esc(fmtTick(t))}</text>`,
    );
  }
  for (const t of xTicks ?? niceTicks(xmin, xmax, logX)) {
    if (t < xmin || t > xmax) continue;
    const xx = sx(t).toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${bottom}" stroke="#eee"/>`);
    out.push(
      `<text x="${xx}" y="${bottom + 14}" text-anchor="middle" font-size="10">${esc(fmtTick(t))}</text>`,
    );
  }
  out.push(
    `<text x="${(left + right) / 2}" y="${bottom + 30}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`,
  );
  out.push(
    `<text x="${x0 + 12}" y="${(top + bottom) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 ${x0 + 12} ${(top + bottom) / 2})">${esc(yLabel)}</text>`,
  );
  for (const s of series) {
    const p = s.points.filter(([px, py]) => Number.isFinite(px) && Number.isFinite(py));
    if (p.length === 0) continue;
    const d = p
      .map(([px, py], i) => `${i ? 'L' : 'M'}${sx(px).toFixed(1)},${sy(py).toFixed(1)}`)
      .join(' ');
    const color = COLORS[s.name] ?? '#444';
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    if (p.length < 12) {
      for (const [px, py] of p)
        out.push(
          `<circle cx="${sx(px).toFixed(1)}" cy="${sy(py).toFixed(1)}" r="3" fill="${color}"/>`,
        );
    }
  }
  return out.join('\n');
}

function fmtTick(t) {
  if (t >= 1000) return `${t / 1000}k`;
  if (t < 1) return String(Number(t.toPrecision(2)));
  return String(t);
}

export function svg(results) {
  const sweep = results.sweep ?? [];
  const curve = levelsOf(sweep).filter((l) => l.load === 'latency' || l.load === 'paced');
  const levels = curve.map((l) => l.concurrency);
  const variants = variantsIn(sweep);
  const perLevel = (v, fn) =>
    curve
      .map((l) => [l.concurrency, medianOf(cellsOf(sweep, v, l), fn)])
      .filter(([, y]) => y !== undefined);
  const W = 460;
  const H = 300;
  const panels = [
    chart({
      x0: 0,
      y0: 0,
      width: W,
      height: H,
      title: 'Time to first token, p50 (paced load)',
      xLabel: 'concurrent streams',
      yLabel: 'ms (log)',
      logX: true,
      logY: true,
      xTicks: levels,
      series: variants.map((v) => ({ name: v, points: perLevel(v, (c) => c.ttftMs.p50) })),
    }),
    chart({
      x0: W,
      y0: 0,
      width: W,
      height: H,
      title: 'Time to first token, p99 (paced load)',
      xLabel: 'concurrent streams',
      yLabel: 'ms (log)',
      logX: true,
      logY: true,
      xTicks: levels,
      series: variants.map((v) => ({ name: v, points: perLevel(v, (c) => c.ttftMs.p99) })),
    }),
    chart({
      x0: 0,
      y0: H,
      width: W,
      height: H,
      // Fresh processes only (the latency run's processes have served its traffic first).
      title: 'Server peak RSS (paced load, fresh process)',
      xLabel: 'concurrent streams',
      yLabel: 'MB',
      logX: true,
      xTicks: levels.filter((l) => l > 1),
      series: variants.map((v) => ({
        name: v,
        points: perLevel(v, (c) => (c.load === 'paced' ? c.peakRss / 2 ** 20 : undefined)),
      })),
    }),
  ];
  const slow = results.slowReaders ?? [];
  if (slow.length > 0) {
    panels.push(
      chart({
        x0: W,
        y0: H,
        width: W,
        height: H,
        title: `Server RSS, ${results.plan.slow.streams} slow readers (1 KB/s)`,
        xLabel: 'seconds',
        yLabel: 'MB',
        series: variantsIn(slow).map((v) => {
          // The median run by final RSS, drawn as measured.
          const runs = slow.filter((r) => r.variant === v).sort((a, b) => a.rssEnd - b.rssEnd);
          const run = runs[Math.floor((runs.length - 1) / 2)];
          return { name: v, points: run.series.map((p) => [p.t / 1000, p.rss / 2 ** 20]) };
        }),
      }),
    );
  }
  const legendNames = [...new Set([...variants, ...variantsIn(slow)])];
  const legend = legendNames
    .map((v, i) => {
      const lx = 20 + (i % 4) * 225;
      const ly = 2 * H + 18 + Math.floor(i / 4) * 18;
      return `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${COLORS[v] ?? '#444'}" stroke-width="3"/><text x="${lx + 28}" y="${ly}" dominant-baseline="middle" font-size="11">${esc(v)}</text>`;
    })
    .join('\n');
  const height = 2 * H + 18 + Math.ceil(legendNames.length / 4) * 18 + 20;
  const m = results.machine;
  const caption = `${results.mode} run, ${results.startedAt.slice(0, 10)}, ${m.cpuModel} × ${m.cores}, Node ${m.node}; medians of ${results.reps} run(s)`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${height}" viewBox="0 0 ${2 * W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels,
    legend,
    `<text x="${W}" y="${height - 6}" text-anchor="middle" font-size="10" fill="#666">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// Formatting

function num(v, digits = 2) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
}
function ms(v, signedValue = false) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return `${signedValue || v < 0 ? (v >= 0 ? '+' : '') : '+'}${v.toFixed(2)} ms`;
}
function x(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(2)}×` : '–';
}
function us(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(1)} µs` : '–';
}
function tokS(v) {
  return typeof v === 'number' && Number.isFinite(v) ? Math.round(v).toLocaleString('en') : '–';
}
function signed(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(0)}` : '–';
}
function kb(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${(v / 1024).toFixed(1)} KB` : '–';
}
function usd(nanos) {
  return typeof nanos === 'number' && Number.isFinite(nanos) ? `$${(nanos / 1e9).toFixed(6)}` : '–';
}

/** Writes `<name>.json`, `<name>.md` and `plot.svg` beside each other. */
export function writeReport(results, jsonPath) {
  // Indented for diffs, but arrays of numbers (samples) on one line each.
  const json = JSON.stringify(results, null, 1).replace(
    /\[\n\s*(-?[\d.e+-]+(?:,\n\s*-?[\d.e+-]+)*)\n\s*\]/g,
    (_, inner) => `[${inner.split(/,\s*/).join(',')}]`,
  );
  writeFileSync(jsonPath, `${json}\n`);
  const md = markdown(results);
  writeFileSync(jsonPath.replace(/\.json$/, '.md'), md);
  // A run without the sweep (e.g. --only=money) has nothing to plot: keep the last plot.
  if (results.sweep?.length) writeFileSync(join(dirname(jsonPath), 'plot.svg'), svg(results));
  return md;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = process.argv[2] ?? new URL('../results/latest.json', import.meta.url).pathname;
  const results = JSON.parse(readFileSync(path, 'utf8'));
  process.stdout.write(writeReport(results, path));
}
