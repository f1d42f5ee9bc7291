/**
 * The workloads. Each starts the variant processes it needs (fresh ones: no state or heap
 * carried over between variants), points the load generator at them, reads the upstream's
 * records, stops them, and returns plain numbers. Variants are interleaved within each
 * repetition (and the order rotates between repetitions), so a slow minute on a shared
 * machine hits every variant rather than one.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { emptyUsage, Pricing } from '@tokenmeter/core';
import { runLoad } from './loadgen-client.mjs';
import { BODY, LEDGER_PAIR } from './plans.mjs';
import { memory, openFileLimit, spawnChild, stopChild } from './processes.mjs';
import { summary } from './stats.mjs';
import { startVariant, VARIANTS, variantStats } from './variants.mjs';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `list` rotated by `rep` places: rep 0 as given, rep 1 starting from the second… */
function rotate(list, rep) {
  const k = rep % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

async function start(ctx, name, options = {}) {
  return startVariant(name, {
    upstreamUrl: ctx.upstream.url,
    redisUrl: VARIANTS[name].redis ? ctx.redis.url : undefined,
    postgresUrl: VARIANTS[name].postgres ? ctx.postgres?.url : undefined,
    ...options,
  });
}

/** A second of ordinary streams, so what follows meets warm JIT code and connection pools. */
function warm(ctx, variant) {
  return runLoad(
    {
      mode: 'closed',
      port: variant.port,
      body: BODY,
      concurrency: 20,
      warmupMs: 0,
      measureMs: ctx.plan.warmMs ?? 1_000,
      serverPids: [variant.pid],
      upstreamPid: ctx.upstream.pid,
    },
    { timeoutMs: 30_000 },
  );
}

// ---------------------------------------------------------------------------------------
// (1) Concurrency sweep

/**
 * Short answers at high concurrency until the JIT has compiled what every stream runs
 * (`sweep.jitWarmup`). A fresh Node process keeps compiling for thousands of streams: in the
 * first 1,000 a stream costs about three times its steady-state CPU, and what a window
 * measures soon after start is mostly the optimising compiler, in proportion to how much
 * code each variant runs. Servers run for hours; the sweep measures them warm.
 */
async function jitWarm(ctx, variant, sweep) {
  const warmup = sweep.jitWarmup;
  if (!warmup) return;
  await ctx.upstream.prepare({ ...sweep.knobs, ...warmup.knobs });
  await closedCell(ctx, variant, {
    concurrency: warmup.concurrency,
    warmupMs: 0,
    measureMs: warmup.ms,
  });
  await ctx.upstream.prepare(sweep.knobs);
}

/** One variant alone, in a fresh process (with `nodeFlags`), through `levels` — for profiling. */
export async function sweepVariant(ctx, name, rep, { nodeFlags = [], levels } = {}) {
  const { sweep } = ctx.plan;
  await ctx.upstream.prepare(sweep.knobs);
  const variant = await start(ctx, name, { nodeFlags });
  const cells = [];
  try {
    await jitWarm(ctx, variant, sweep);
    await closedCell(ctx, variant, sweep.warmup);
    for (const level of levels ?? sweep.levels) {
      await ctx.upstream.prepare({ ...sweep.knobs, ...level.knobs });
      await sleep(150);
      const result = await closedCell(ctx, variant, level);
      cells.push({
        variant: name,
        rep,
        load: level.load,
        concurrency: level.concurrency,
        ...result,
      });
      logCell(ctx, name, level, result);
    }
  } finally {
    await stopChild(variant.child);
  }
  return cells;
}

/**
 * Every variant's process runs for the whole sweep (idle ones cost nothing measurable), so
 * cells can be interleaved finely: first the interleaved latency run (one stream at a time,
 * rotating over the variants), then every concurrency level, variant after variant, for
 * `reps` rounds whose variant order rotates.
 */
export async function sweep(ctx, sweep = ctx.plan.sweep, label = 'sweep') {
  const reps = sweep.reps ?? ctx.reps;
  const cells = [];
  let latencyRun;

  if (sweep.latency) {
    const { latency } = sweep;
    const running = [];
    try {
      await ctx.upstream.prepare(sweep.knobs);
      for (const name of latency.variants) running.push(await start(ctx, name));
      for (const variant of running) {
        await jitWarm(ctx, variant, sweep);
        await closedCell(ctx, variant, sweep.warmup);
      }
      await ctx.upstream.prepare({ ...sweep.knobs, ...latency.knobs });
      ctx.log(
        `${label}: interleaved latency, 1 stream at a time over ${running.length} variants, ${latency.measureMs / 1000} s in ${reps} segments`,
      );
      latencyRun = await runLoad(
        {
          mode: 'latency',
          targets: running.map((v) => ({ name: v.name, port: v.port, pid: v.pid })),
          body: BODY,
          warmupMs: latency.warmupMs,
          measureMs: latency.measureMs,
          segments: reps,
        },
        { timeoutMs: latency.warmupMs + latency.measureMs + 30_000 },
      );
      for (const row of latencyRun.segments) {
        for (const cell of row) {
          cells.push({ ...cell, rep: cell.segment, load: 'latency', concurrency: 1 });
          if (cell.completed === 0) {
            ctx.problem(`${label}: ${cell.variant} completed no stream in the latency run`);
          }
          if (cell.errors > Math.max(2, cell.started * 0.01)) {
            ctx.problem(
              `${label}: ${cell.variant} (latency run): ${cell.errors} errors ${JSON.stringify(cell.errorKinds)}`,
            );
          }
        }
      }
      for (const p of latencyRun.pooled) {
        ctx.log(
          `  ${p.variant.padEnd(24)} c=1     ttft p50 ${fmt(p.ttftMs.p50)} p99 ${fmt(p.ttftMs.p99)} ms (n=${p.ttftMs.n}), gap p99 ${fmt(p.gapMs.p99)} ms`,
        );
      }
      for (const variant of running.filter((v) => v.name.includes('otel'))) {
        const stats = await variantStats(variant);
        for (const cell of cells)
          if (cell.variant === variant.name) cell.telemetry = stats.telemetry;
      }
    } finally {
      for (const variant of running) await stopChild(variant.child);
    }
  }

  // Each variant in a fresh process for each round: peak RSS then belongs to these levels,
  // not to whatever an earlier round left in the heap. (Levels interleaved across live
  // variants were tried: a level's streams still open when the next variant's window starts
  // — paced answers run for seconds — made every cell after the first slower.)
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`${label}: concurrency levels, round ${rep + 1}/${reps}`);
    for (const name of rotate(sweep.levelVariants ?? sweep.variants, rep)) {
      await ctx.upstream.prepare(sweep.knobs);
      const variant = await start(ctx, name);
      try {
        await jitWarm(ctx, variant, sweep);
        await closedCell(ctx, variant, sweep.warmup);
        for (const level of sweep.levels) {
          await ctx.upstream.prepare({ ...sweep.knobs, ...level.knobs });
          await sleep(150);
          const result = await closedCell(ctx, variant, level);
          cells.push({
            variant: name,
            rep,
            load: level.load,
            concurrency: level.concurrency,
            ...result,
          });
          logCell(ctx, name, level, result, label);
        }
        if (name.includes('otel')) {
          const stats = await variantStats(variant);
          cells.at(-1).telemetry = stats.telemetry;
        }
      } finally {
        await stopChild(variant.child);
      }
    }
  }
  return { cells, latency: latencyRun?.pooled };
}

/**
 * CPU per token and throughput, interleaved: every variant's process starts once and is
 * warmed past the JIT's compiling phase; then, per load level, `blocks` blocks. A block runs
 * `sequence` — each pair's two variants in a palindrome (A B B A, or A B C C B A around a
 * shared baseline) — each cell its own warm-up then its window (the client cuts its streams
 * at the window's end; the next cell's warm-up absorbs the closes). Every other block runs
 * the sequence backwards. A variant's figures in a block are its cells' sums (CPU over
 * tokens, tokens over time), so a drift of the machine's speed through the block falls on
 * both sides of each pair's ratio alike; noise common to both cancels.
 */
export async function interleaved(ctx) {
  const plan = ctx.plan.interleaved;
  const running = new Map();
  const levels = [];
  try {
    await ctx.upstream.prepare(plan.knobs);
    for (const name of plan.variants) running.set(name, await start(ctx, name));
    for (const variant of running.values()) {
      await jitWarm(ctx, variant, plan);
      await closedCell(ctx, variant, plan.warmup);
    }
    for (const level of plan.levels) {
      await ctx.upstream.prepare({ ...plan.knobs, ...level.knobs });
      const blocks = [];
      for (let b = 0; b < plan.blocks; b++) {
        ctx.log(`interleaved: ${level.load} c=${level.concurrency}, block ${b + 1}/${plan.blocks}`);
        const sums = {};
        for (const name of b % 2 ? [...plan.sequence].reverse() : plan.sequence) {
          const variant = running.get(name);
          // Every cell starts from a collected heap: a full GC that an earlier cell left
          // due does not land in this one's window.
          await variantStats(variant, { gc: true });
          await sleep(100);
          const result = await closedCell(ctx, variant, level);
          logCell(ctx, name, level, result, 'interleaved');
          sums[name] ??= {
            serverCpuMs: 0,
            extraCpuMs: [],
            tokens: 0,
            measuredMs: 0,
            errors: 0,
            started: 0,
            cells: 0,
          };
          const sum = sums[name];
          sum.serverCpuMs += result.serverCpuMs;
          result.extraCpuMs.forEach((ms, i) => {
            sum.extraCpuMs[i] = (sum.extraCpuMs[i] ?? 0) + ms;
          });
          sum.tokens += result.tokensInWindow;
          sum.measuredMs += result.measuredMs;
          sum.errors += result.errors;
          sum.started += result.started;
          sum.cells++;
        }
        const block = {};
        for (const [name, sum] of Object.entries(sums)) {
          block[name] = {
            ...sum,
            serverCpuPerTokenUs:
              sum.tokens > 0 ? (sum.serverCpuMs * 1_000) / sum.tokens : undefined,
            extraCpuPerTokenUs: sum.extraCpuMs.map((ms) =>
              sum.tokens > 0 ? (ms * 1_000) / sum.tokens : undefined,
            ),
            tokensPerSec: (sum.tokens * 1_000) / sum.measuredMs,
          };
        }
        blocks.push(block);
      }
      levels.push({
        load: level.load,
        concurrency: level.concurrency,
        knobs: level.knobs,
        tokensPerDelta: level.tokensPerDelta ?? 1,
        warmupMs: level.warmupMs,
        measureMs: level.measureMs,
        blocks,
      });
    }
    for (const [name, variant] of running) {
      if (!name.includes('otel')) continue;
      const stats = await variantStats(variant);
      for (const level of levels) level.telemetry = { ...level.telemetry, [name]: stats.telemetry };
    }
  } finally {
    for (const variant of running.values()) await stopChild(variant.child);
  }
  return { pairs: plan.pairs, sequence: plan.sequence, levels };
}

/**
 * The gateway beside its passthrough baseline: the same harness as the sweep (an interleaved
 * latency run, then closed loops at each level, variant order rotating per round), with the
 * provider's own protocol end to end — `anthropicGateway()` against an Express proxy that
 * pipes `/v1/messages` through untouched.
 */
export function gateway(ctx) {
  return sweep(ctx, ctx.plan.gateway, 'gateway');
}

/**
 * OpenAI's two APIs through `openaiGateway()`, each beside a passthrough proxy of the same
 * API (Chat Completions, the Responses API): the same harness as the sweep.
 */
export function openai(ctx) {
  return sweep(ctx, ctx.plan.openai, 'openai');
}

/**
 * The AI SDK path beside the raw SDK path, each against its own bare relay: the same
 * harness as the sweep, four variants (bare-express, tokenmeter-memory, bare-ai-sdk,
 * ai-sdk-memory), all speaking tokenmeter's `delta` events.
 */
export function sources(ctx) {
  return sweep(ctx, ctx.plan.sources, 'sources');
}

/** The Web adapter on Hono beside a bare Hono relay (and Express's pair, same run). */
export function adapters(ctx) {
  return sweep(ctx, ctx.plan.adapters, 'adapters');
}

/**
 * The ledger on and off: tokenmeter-memory with and without every settlement written to
 * PostgreSQL (a private cluster the harness starts), through the sweep's harness; then how
 * many rows per second one ledger sustains, pushed as fast as it takes them.
 */
export async function ledger(ctx) {
  const run = await sweep(ctx, ctx.plan.ledger, 'ledger');
  const outage = await ledgerOutage(ctx, ctx.plan.ledger.outage);
  const { createPostgresLedger } = await import('@tokenmeter/ledger-postgres');
  const { emptyUsage } = await import('@tokenmeter/core');
  const sink = createPostgresLedger({ connectionString: ctx.postgres.url, maxQueue: 1_000_000 });
  await sink.ready;
  const rows = ctx.plan.ledger.rows;
  const usage = { ...emptyUsage(), inputTokens: 120, outputTokens: 80 };
  const started = performance.now();
  for (let i = 0; i < rows; i++) {
    sink.onSettle({
      requestId: `bench-${started}-${i}`,
      scopes: [
        { kind: 'user', id: `u${i % 500}` },
        { kind: 'team', id: `t${i % 20}` },
      ],
      model: 'claude-haiku-4-5',
      provider: 'anthropic',
      outcome: 'completed',
      final: { usage, costNanos: 520_000, estimated: false },
      reservedNanos: 1_000_000,
      durationMs: 900,
      timeToFirstTokenMs: 120,
    });
  }
  const queuedMs = performance.now() - started;
  const flushed = await sink.flush(120_000);
  const totalMs = performance.now() - started;
  const stats = await sink.close();
  if (!flushed || stats.written !== rows) {
    ctx.problem(`ledger: ${stats.written} of ${rows} rows written (${JSON.stringify(stats)})`);
  }
  const rowsPerSec = (stats.written / totalMs) * 1_000;
  ctx.log(
    `ledger: ${stats.written} rows (2 scopes each) in ${(totalMs / 1000).toFixed(2)} s: ${Math.round(rowsPerSec)} rows/s; queued in ${queuedMs.toFixed(0)} ms`,
  );
  return { ...run, outage, rowsPerSec, rows: stats.written, queuedMs, totalMs };
}

/**
 * PostgreSQL down under load: the ledger off and on, both processes started and warm, are
 * measured with the cluster up, then again with it stopped (the interleaved latency run and
 * a closed loop each), so "on ÷ off" compares like with like inside each window. Then the
 * cluster comes back and the on variant must write everything it queued: its settlements
 * counted by the middleware equal the rows in the table.
 */
async function ledgerOutage(ctx, plan) {
  const [off, on] = LEDGER_PAIR;
  const pg = (await import('pg')).default;
  const countRows = async () => {
    const pool = new pg.Pool({ connectionString: ctx.postgres.url });
    try {
      return Number((await pool.query('SELECT count(*) AS n FROM tokenmeter_streams')).rows[0].n);
    } finally {
      await pool.end();
    }
  };
  // Rows the sweep's processes left: this run's own are counted on top of them.
  const rowsBefore = await countRows();
  await ctx.upstream.prepare(ctx.plan.ledger.knobs);
  const running = [await start(ctx, off), await start(ctx, on)];
  const phases = [];
  let recovery;
  try {
    for (const variant of running) await closedCell(ctx, variant, ctx.plan.ledger.warmup);
    for (const phase of ['up', 'down']) {
      if (phase === 'down') ctx.postgres.stop();
      const downSince = performance.now();
      ctx.log(`ledger: Postgres ${phase === 'up' ? 'up' : 'stopped'}, both variants measured`);
      await ctx.upstream.prepare({ ...ctx.plan.ledger.knobs, ...plan.latency.knobs });
      const latencyRun = await runLoad(
        {
          mode: 'latency',
          targets: running.map((v) => ({ name: v.name, port: v.port, pid: v.pid })),
          body: BODY,
          warmupMs: plan.latency.warmupMs,
          measureMs: plan.latency.measureMs,
          segments: 1,
        },
        { timeoutMs: plan.latency.warmupMs + plan.latency.measureMs + 30_000 },
      );
      const cells = latencyRun.segments[0].map((cell) => ({
        ...cell,
        phase,
        load: 'latency',
        concurrency: 1,
      }));
      for (const p of latencyRun.pooled) {
        ctx.log(
          `  ${p.variant.padEnd(24)} c=1     ttft p50 ${fmt(p.ttftMs.p50)} p99 ${fmt(p.ttftMs.p99)} ms (n=${p.ttftMs.n})`,
        );
      }
      await ctx.upstream.prepare({ ...ctx.plan.ledger.knobs, ...plan.level.knobs });
      for (const variant of phase === 'up' ? running : [...running].reverse()) {
        await sleep(150);
        const result = await closedCell(ctx, variant, plan.level);
        cells.push({
          variant: variant.name,
          phase,
          load: plan.level.load,
          concurrency: plan.level.concurrency,
          ...result,
        });
        logCell(ctx, variant.name, plan.level, result, `ledger (Postgres ${phase})`);
      }
      const stats = (await variantStats(running[1])).ledger;
      phases.push({
        phase,
        cells,
        latency: latencyRun.pooled.map(({ ttftSamples: _samples, ...p }) => p),
        ledger: stats,
        seconds: (performance.now() - downSince) / 1_000,
      });
      if (phase === 'down' && !(stats.queued > 0 && stats.retries > 0)) {
        ctx.problem(
          `ledger: Postgres was stopped, yet the ledger queued nothing: ${JSON.stringify(stats)}`,
        );
      }
    }
    // Back: the queue drains, nothing is lost.
    ctx.postgres.start();
    const back = performance.now();
    let stats;
    do {
      await sleep(100);
      stats = await variantStats(running[1]);
    } while (stats.ledger.queued > 0 && performance.now() - back < 60_000);
    const settled = Object.values(stats.outcomes ?? {}).reduce((n, k) => n + k, 0);
    const rows = (await countRows()) - rowsBefore;
    recovery = {
      drainedMs: performance.now() - back,
      queuedAtReturn: phases[1]?.ledger.queued,
      settled,
      rows,
      dropped: stats.ledger.dropped,
    };
    ctx.log(
      `ledger: Postgres back; ${recovery.queuedAtReturn} queued settlements written in ${(recovery.drainedMs / 1000).toFixed(1)} s; ${rows} rows for ${settled} settled streams, ${recovery.dropped} dropped`,
    );
    if (stats.ledger.queued > 0 || rows !== settled || recovery.dropped > 0) {
      ctx.problem(
        `ledger: after the outage ${rows} rows for ${settled} settlements (${JSON.stringify(stats.ledger)})`,
      );
    }
  } finally {
    for (const variant of running) await stopChild(variant.child);
  }
  return { phases, recovery };
}

function closedCell(ctx, variant, { load: _load, knobs: _knobs, ...level }) {
  return runLoad(
    {
      mode: 'closed',
      port: variant.port,
      body: BODY,
      serverPids: [variant.pid],
      upstreamPid: ctx.upstream.pid,
      // Admission and settlement of the Redis variants run partly inside redis-server.
      extraPids: VARIANTS[variant.name].redis ? [ctx.redis.child.pid] : [],
      users: 100,
      graceMs: 10_000,
      ...level,
    },
    { timeoutMs: level.warmupMs + level.measureMs + 30_000 },
  );
}

function logCell(ctx, name, level, result, label = 'sweep') {
  ctx.log(
    `  ${name.padEnd(24)} ${(level.load ?? '').padEnd(6)} c=${String(level.concurrency).padEnd(5)} ` +
      `ttft p50 ${fmt(result.ttftMs.p50)} p99 ${fmt(result.ttftMs.p99)} ms, ` +
      `${Math.round(result.tokensPerSec)} tok/s, cpu/token ${fmt(result.serverCpuPerTokenUs)} µs, ` +
      `rss ${Math.round(result.peakRss / 2 ** 20)} MB, errors ${result.errors}`,
  );
  if (result.completed === 0)
    ctx.problem(`${label}: ${name} at c=${level.concurrency} completed no stream`);
  if (result.errors > Math.max(2, result.started * 0.01)) {
    ctx.problem(
      `${label}: ${name} at c=${level.concurrency}: ${result.errors} errors of ${result.started} streams ${JSON.stringify(result.errorKinds)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------
// (2) Slow readers

export async function slowReaders(ctx) {
  const { slow } = ctx.plan;
  const runs = [];
  const reps = slow.reps ?? ctx.reps;
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`slow readers (${slow.streams} × ${slow.readRate} B/s), repetition ${rep + 1}/${reps}`);
    for (const name of rotate(slow.variants, rep)) {
      await ctx.upstream.prepare(ctx.plan.sweep.knobs);
      const variant = await start(ctx, name);
      try {
        await warm(ctx, variant);
        await ctx.upstream.prepare(slow.knobs);
        const loading = runLoad(
          {
            mode: 'slow',
            port: variant.port,
            body: { ...BODY, max_tokens: slow.knobs.tokens },
            serverPids: [variant.pid],
            concurrency: slow.streams,
            readRate: slow.readRate,
            durationMs: slow.durationMs,
            sampleEveryMs: 250,
          },
          { timeoutMs: slow.durationMs + 30_000 },
        );
        // While the readers are connected: what the server holds for them, in bytes queued in
        // responses and sockets, polled (a saturated server answers late: naive takes seconds).
        const polls = [];
        const started = performance.now();
        while (performance.now() - started < slow.durationMs - 1_000) {
          const stats = await variantStats(variant).catch(() => undefined);
          if (stats && performance.now() - started < slow.durationMs - 200) {
            polls.push({
              t: Math.round(performance.now() - started),
              open: stats.openResponses,
              queued: stats.queuedBytes,
            });
          }
          await sleep(500);
        }
        const peak = polls.reduce(
          // Ties (nothing queued at all) go to the poll with the most clients connected.
          (best, p) =>
            p.queued > (best?.queued ?? -1) || (p.queued === best?.queued && p.open > best.open)
              ? p
              : best,
          undefined,
        );
        const result = await loading;
        const upstream = await ctx.upstream.totals();
        const run = {
          variant: name,
          rep,
          ...result,
          ...rssGrowth(result.series),
          // The most the server held for its slow readers at any poll, and how many were open.
          peakQueuedBytes: peak?.queued,
          openAtPeak: peak?.open,
          queuedPolls: polls,
          // Tokens the upstream generated while the clients read (ended + still open).
          upstreamTokensGenerated: upstream.ended.tokensGenerated + upstream.generatedByOpen,
        };
        runs.push(run);
        ctx.log(
          `  ${name.padEnd(24)} RSS ${mb(run.rssStart)} → ${mb(run.rssEnd)} MB (slope ${fmt(run.slopeMBps)} MB/s), ` +
            `at most ${Math.round((run.peakQueuedBytes ?? Number.NaN) / 1024)} KB queued for ${run.openAtPeak} clients, ` +
            `upstream generated ${run.upstreamTokensGenerated} tokens, client got ${Math.round(result.clientBytesPerSecPerStream)} B/s per stream`,
        );
        if (result.errors > 0)
          ctx.problem(
            `slow readers: ${name}: ${result.errors} errors ${JSON.stringify(result.errorKinds)}`,
          );
      } finally {
        await stopChild(variant.child);
      }
    }
  }
  return runs;
}

/**
 * RSS at the start and end, and the least-squares slope (MB/s) over the second half of the
 * run: any relay's memory grows while streams open and buffers fill (V8 heap, undici's body
 * queue); what matters is whether it keeps growing afterwards.
 */
function rssGrowth(series) {
  const tail = series.filter((p) => p.t >= series.at(-1).t * 0.5);
  const n = tail.length;
  const mx = tail.reduce((s, p) => s + p.t / 1_000, 0) / n;
  const my = tail.reduce((s, p) => s + p.rss / 2 ** 20, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of tail) {
    sxy += (p.t / 1_000 - mx) * (p.rss / 2 ** 20 - my);
    sxx += (p.t / 1_000 - mx) ** 2;
  }
  return {
    rssStart: series[0].rss,
    rssEnd: series.at(-1).rss,
    rssMax: Math.max(...series.map((p) => p.rss)),
    slopeMBps: sxx > 0 ? sxy / sxx : 0,
  };
}

// ---------------------------------------------------------------------------------------
// (3) Disconnect storm

export async function disconnectStorm(ctx) {
  const { disconnect } = ctx.plan;
  const runs = [];
  const answerMs = (disconnect.knobs.tokens / disconnect.knobs.tps) * 1_000;
  for (const scenario of disconnect.scenarios) {
    for (let rep = 0; rep < (scenario.reps ?? ctx.reps); rep++) {
      ctx.log(
        `disconnect storm, ${scenario.name} (${scenario.streams} streams, ${scenario.ratePerSec ? `${scenario.ratePerSec}/s` : `${scenario.concurrency} at a time`}, closed after the first delta), repetition ${rep + 1}`,
      );
      for (const name of rotate(disconnect.variants, rep)) {
        runs.push(await disconnectRun(ctx, name, rep, scenario, answerMs));
      }
    }
  }
  return runs;
}

async function disconnectRun(ctx, name, rep, scenario, answerMs) {
  const { disconnect } = ctx.plan;
  await ctx.upstream.prepare(ctx.plan.sweep.knobs);
  const variant = await start(ctx, name);
  try {
    await warm(ctx, variant);
    await ctx.upstream.prepare(disconnect.knobs);
    const result = await runLoad(
      {
        mode: 'abort',
        port: variant.port,
        body: BODY,
        total: scenario.streams,
        ...(scenario.ratePerSec
          ? { ratePerSec: scenario.ratePerSec }
          : { concurrency: scenario.concurrency }),
      },
      { timeoutMs: 60_000 },
    );
    // A relay that does not abort keeps the upstream generating: wait for it to finish.
    const upstream = await ctx.upstream.waitIdle(answerMs + 3_000);
    const { ended } = upstream;
    const after = tokensAfterDisconnect(result.cuts, await ctx.upstream.marks());
    const run = {
      variant: name,
      scenario: scenario.name,
      rep,
      streams: result.streams,
      aborted: result.aborted,
      errors: result.errors,
      tokensReceived: result.tokensReceived,
      upstreamRequests: ended.requests,
      upstreamStillOpen: upstream.inFlight,
      tokensGenerated: upstream.totals.tokensGenerated,
      undeliveredPerStream:
        (upstream.totals.tokensGenerated - result.tokensReceived) / result.streams,
      generatedAfterDisconnectPerStream: after.matched ? after.tokens / after.matched : undefined,
      matched: after.matched,
      upstreamNeverClosed: after.neverClosed,
      abortLatencyMs: summary(after.latencies),
      upstreamClosedByRelay: ended.clientCloses,
    };
    ctx.log(
      `  ${name.padEnd(24)} generated ${run.tokensGenerated} tokens for ${run.tokensReceived} delivered; ` +
        `${fmt(run.generatedAfterDisconnectPerStream)} per stream after the client left; ` +
        `upstream closed ${fmt(run.abortLatencyMs.p50)} ms (p50) / ${fmt(run.abortLatencyMs.p99)} ms (p99) after, never for ${after.neverClosed}`,
    );
    if (result.aborted < result.streams * 0.95) {
      ctx.problem(
        `disconnect: ${name}: only ${result.aborted} of ${result.streams} streams reached a first delta ${JSON.stringify(result.errorKinds)}`,
      );
    }
    return run;
  } finally {
    await stopChild(variant.child);
  }
}

/**
 * Per stream, matched by the `[bench-stream n]` tag: tokens the upstream generated after the
 * client closed its connection, and how long after that the upstream saw its own connection
 * close. The upstream paces tokens from its first one (token k is due at first + k·interval and
 * never comes early), so the tokens it had generated when the client left are those due by then.
 */
function tokensAfterDisconnect(cuts, marks) {
  const byStream = new Map(marks.map((m) => [m.stream, m]));
  let tokens = 0;
  let matched = 0;
  let neverClosed = 0;
  const latencies = [];
  for (const cut of cuts) {
    const mark = byStream.get(cut.stream);
    if (!mark || mark.firstTokenAt === null || !(mark.msPerToken > 0)) continue;
    matched++;
    const dueByAbort = Math.floor((cut.abortAt - mark.firstTokenAt) / mark.msPerToken) + 1;
    tokens += Math.max(0, mark.tokensGenerated - Math.max(0, dueByAbort));
    if (mark.upstreamClosedAt === null) neverClosed++;
    else latencies.push(mark.upstreamClosedAt - cut.abortAt);
  }
  return { tokens, matched, neverClosed, latencies };
}

// ---------------------------------------------------------------------------------------
// (4) The overspend race

const pricing = new Pricing();

/** What the upstream's records cost: the bill a provider would send. */
function upstreamSpendNanos(ended) {
  let nanos = 0;
  for (const [model, usage] of Object.entries(ended.byModel)) {
    nanos += pricing.costOf(
      { ...emptyUsage(), inputTokens: usage.inputTokens, outputTokens: usage.outputTokens },
      model,
    ).nanos;
  }
  return nanos;
}

export async function overspendRace(ctx) {
  const { race } = ctx.plan;
  const runs = [];
  const worstCase = pricing.costOf(
    { ...emptyUsage(), inputTokens: 50, outputTokens: race.maxTokens },
    BODY.model,
  ).nanos;
  const budgetNanos = race.budgetAnswers * worstCase;
  for (let rep = 0; rep < ctx.reps; rep++) {
    ctx.log(
      `overspend race (${race.requests} concurrent requests, ${race.processes} processes, one Redis, budget ${budgetNanos} n$), repetition ${rep + 1}/${ctx.reps}`,
    );
    for (const name of rotate(race.variants, rep)) {
      await ctx.upstream.prepare(race.knobs);
      const prefix = `bench:race:${Date.now().toString(36)}:${rep}:`;
      const processes = [];
      try {
        const starting = [];
        for (let i = 0; i < race.processes; i++) {
          starting.push(
            start(ctx, name, {
              env: { BENCH_BUDGET_NANOS: String(budgetNanos), BENCH_PREFIX: prefix },
            }),
          );
        }
        // Stopped in `finally` even when one of them failed to start.
        const settled = await Promise.allSettled(starting);
        for (const one of settled) if (one.status === 'fulfilled') processes.push(one.value);
        for (const one of settled) if (one.status === 'rejected') throw one.reason;
        const result = await runLoad(
          {
            mode: 'race',
            ports: processes.map((p) => p.port),
            body: { ...BODY, max_tokens: race.maxTokens },
            requests: race.requests,
            user: `racer-${rep}`,
          },
          { timeoutMs: 60_000 },
        );
        const upstream = await ctx.upstream.waitIdle(10_000);
        const spentNanos = upstreamSpendNanos(upstream.ended);
        const run = {
          variant: name,
          rep,
          processes: race.processes,
          requests: race.requests,
          budgetNanos,
          admitted: result.statuses[200] ?? 0,
          rejected: (result.statuses[402] ?? 0) + (result.statuses[429] ?? 0),
          statuses: result.statuses,
          upstreamRequests: upstream.ended.requests,
          spentNanos,
          overspendNanos: Math.max(0, spentNanos - budgetNanos),
          errors: result.errors,
        };
        runs.push(run);
        ctx.log(
          `  ${name.padEnd(24)} admitted ${run.admitted}/${run.requests}, spent ${spentNanos} n$ of ${budgetNanos}: overspend ${run.overspendNanos} n$`,
        );
        if (run.admitted === 0) ctx.problem(`race: ${name} admitted no request`);
      } finally {
        for (const p of processes) await stopChild(p.child);
      }
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------
// (5) Idle open streams

export async function idleStreams(ctx) {
  const { idle } = ctx.plan;
  // Each idle stream holds two descriptors in the relay (client socket + upstream socket).
  const limit = openFileLimit();
  const streams = Math.min(idle.streams, Math.floor((limit - 200) / 2));
  if (streams < idle.streams) {
    ctx.log(
      `idle streams: open-file limit ${limit} → ${streams} streams instead of ${idle.streams}`,
    );
  }
  const runs = [];
  for (let rep = 0; rep < (idle.reps ?? ctx.reps); rep++) {
    ctx.log(`idle streams (${streams} open at once), repetition ${rep + 1}`);
    for (const name of rotate(idle.variants, rep)) {
      await ctx.upstream.prepare({ tokens: 20, tps: 0, ttftMs: 0 });
      const variant = await start(ctx, name);
      let loadChild;
      try {
        await warm(ctx, variant);
        // From now on the upstream sends headers and message_start, then nothing for 2 min.
        await ctx.upstream.prepare({ tokens: 20, tps: 0, ttftMs: 120_000 });
        await sleep(300);
        const before = await variantStats(variant, { gc: true });
        const rssBefore = memory(variant.pid).rss;
        let opened;
        const openLine = new Promise((resolve) => {
          opened = resolve;
        });
        const t0 = performance.now();
        const done = runLoad(
          {
            mode: 'hold',
            port: variant.port,
            body: BODY,
            streams,
            openConcurrency: idle.openConcurrency,
          },
          {
            timeoutMs: 180_000,
            onStart: (child) => {
              loadChild = child;
              child.stdout.on('data', (chunk) => {
                const line = chunk
                  .toString()
                  .split('\n')
                  .find((l) => l.startsWith('OPEN '));
                if (line) opened(line);
              });
            },
          },
        );
        const openResult = await Promise.race([openLine, done.then(() => 'exited')]);
        if (openResult === 'exited') throw new Error('load generator exited before opening');
        const [, open, failed] = openResult.trim().split(' ').map(Number);
        // The relay has opened the upstream call of every admitted stream.
        const upstream = await ctx.upstream.waitUntil((t) => t.inFlight >= open, 30_000);
        const openMs = performance.now() - t0;
        await sleep(1_000);
        const after = await variantStats(variant, { gc: true });
        const rssAfter = memory(variant.pid).rss;
        loadChild.stdin.write('close\n');
        await done;
        const run = {
          variant: name,
          rep,
          streams,
          open,
          failed,
          upstreamOpen: upstream.inFlight,
          openMs,
          rssBefore,
          rssAfter,
          rssPerStream: (rssAfter - rssBefore) / open,
          heapBefore: before.memory.heapUsed,
          heapAfter: after.memory.heapUsed,
          heapPerStream: (after.memory.heapUsed - before.memory.heapUsed) / open,
          externalPerStream: (after.memory.external - before.memory.external) / open,
        };
        runs.push(run);
        ctx.log(
          `  ${name.padEnd(24)} ${open} open (${failed} failed) in ${Math.round(openMs)} ms: ` +
            `RSS +${Math.round(run.rssPerStream)} B/stream, heap +${Math.round(run.heapPerStream)} B/stream`,
        );
        if (open < streams * 0.99)
          ctx.problem(`idle: ${name}: only ${open} of ${streams} streams opened`);
      } finally {
        if (loadChild) await stopChild(loadChild, 500);
        await stopChild(variant.child);
      }
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------
// (6) Admission micro-benchmarks (the store engineers' scripts, run as they are)

function runScript(path, args, env, timeoutMs) {
  const child = spawnChild(process.execPath, [path, ...args], { env, name: path });
  return new Promise((resolve) => {
    const timer = setTimeout(() => void stopChild(child, 200), timeoutMs);
    const t0 = performance.now();
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? signal,
        ms: Math.round(performance.now() - t0),
        output: child.output.trim(),
      });
    });
  });
}

export async function admission(ctx) {
  const results = {};
  const scripts = {
    memory: fileURLToPath(new URL('../admission-memory.mjs', import.meta.url)),
    redis: fileURLToPath(new URL('../admission-redis.mjs', import.meta.url)),
  };
  for (const [store, path] of Object.entries(scripts)) {
    if (!existsSync(path)) {
      results[store] = { skipped: `${path} does not exist yet` };
      ctx.log(`admission (${store}): skipped, no script`);
      continue;
    }
    ctx.log(`admission micro-benchmark (${store})`);
    const run = await runScript(
      path,
      ctx.plan.admission[store],
      { REDIS_URL: ctx.redis.url },
      120_000,
    );
    results[store] = run;
    if (run.code !== 0)
      ctx.problem(`admission (${store}) exited with ${run.code}: ${run.output.slice(-500)}`);
  }
  return results;
}

export function fmt(x, digits = 2) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function mb(bytes) {
  return Math.round(bytes / 2 ** 20);
}
