#!/usr/bin/env node
/**
 * The side-by-side benchmark harness (`npm run bench`). Starts a private redis-server and
 * the fake upstream, then runs every workload against every variant it concerns, each
 * variant in its own process on loopback, and writes the results (JSON), a Markdown
 * report and an SVG plot.
 *
 *   npm run bench                       standard set (~35 min on 2 cores) → bench/results/latest.*
 *   npm run bench -- --quick            1-minute smoke run (CI)            → bench/results/quick/
 *   npm run bench -- --only=sweep,race  some workloads: sweep, interleaved, slow, disconnect, race, idle,
 *                                       admission, money, gateway, openai, sources, adapters, ledger, abuse
 *   npm run bench -- --reps=5           more repetitions per cell
 *   npm run bench -- --profile          CPU profiles of the bare and tokenmeter variants (with and
 *                                       without telemetry) at the highest concurrency
 *                                       → bench/results/profiles/ (see profile.mjs)
 *   npm run bench -- --profile --variants=bare-express+otel,tokenmeter-memory+otel   some of them
 *
 * Exits non-zero when the harness itself breaks (a variant does not start, a cell completes
 * no stream, a workload errors out), never because a figure misses its target.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { abuse } from './lib/abuse.mjs';
import { money } from './lib/money.mjs';
import { PLANS } from './lib/plans.mjs';
import { killAll, startRedis, stopChild, watchBackgroundLoad } from './lib/processes.mjs';
import { profileVariants } from './lib/profile.mjs';
import { writeReport } from './lib/report.mjs';
import { startUpstream } from './lib/upstream-client.mjs';
import { VARIANTS } from './lib/variants.mjs';
import {
  adapters,
  admission,
  disconnectStorm,
  gateway,
  idleStreams,
  interleaved,
  ledger,
  openai,
  overspendRace,
  slowReaders,
  sources,
  sweep,
} from './lib/workloads.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    profile: { type: 'boolean', default: false },
    variants: { type: 'string' },
    out: { type: 'string' },
  },
  allowPositionals: false,
});

const mode = args.quick ? 'quick' : 'standard';
const plan = PLANS[mode];
const reps = args.reps ? Number(args.reps) : plan.reps;
const WORKLOADS = [
  'sweep',
  'interleaved',
  'slow',
  'disconnect',
  'race',
  'idle',
  'admission',
  'money',
  'gateway',
  'openai',
  'sources',
  'adapters',
  'ledger',
  'abuse',
];
const only = args.only ? args.only.split(',') : WORKLOADS;
for (const name of only) {
  if (!WORKLOADS.includes(name))
    throw new Error(`--only: unknown workload ${name} (${WORKLOADS.join(', ')})`);
}
const resultsDir = fileURLToPath(
  new URL(args.quick ? './results/quick/' : './results/', import.meta.url),
);
const outPath = args.out ?? `${resultsDir}${args.profile ? 'profile' : 'latest'}.json`;
mkdirSync(resultsDir, { recursive: true });
mkdirSync(dirname(outPath), { recursive: true });

// Watchdogs: whatever hangs, every child dies and the run fails. The quick run (CI) must
// not fail because the machine is busy (a 150 s bound on the whole run failed CI beside
// another test run), so it is bounded by progress: a hang is no progress line for
// `stallMs` (every workload logs each cell and repetition, seconds apart on a quiet
// machine), with a loose bound on the whole run behind it. The standard set keeps its one
// bound on the whole run.
const WATCHDOG = args.quick
  ? { totalMs: 30 * 60_000, stallMs: 5 * 60_000 }
  : { totalMs: 60 * 60_000, stallMs: null };
/** @param {string} why */
function watchdogFired(why) {
  console.error(`bench: watchdog — ${why}; killing everything`);
  killAll();
  process.exit(2);
}
const watchdog = setTimeout(
  () => watchdogFired(`the run took longer than ${WATCHDOG.totalMs / 1000} s`),
  WATCHDOG.totalMs,
);
watchdog.unref();
let stallTimer;
/** Restarts the stall bound; called on every progress line. */
function progressed() {
  if (WATCHDOG.stallMs === null) return;
  clearTimeout(stallTimer);
  stallTimer = setTimeout(
    () => watchdogFired(`no progress for ${WATCHDOG.stallMs / 1000} s`),
    WATCHDOG.stallMs,
  );
  stallTimer.unref();
}
progressed();
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

const t0 = performance.now();
const log = (message) => {
  progressed();
  const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${message}\n`);
};
const problems = [];
const problem = (message) => {
  problems.push(message);
  log(`PROBLEM: ${message}`);
};

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1];
  return {
    cpuModel: model.trim(),
    cpuMHz: mhz ? Math.round(Number(mhz)) : undefined,
    cores: cpus().length,
    memoryGB: totalmem() / 2 ** 30,
    node: process.version,
    os: `Linux ${release()}`,
    loadAverageAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
  };
}

const results = {
  mode,
  startedAt: new Date().toISOString(),
  machine: machine(),
  reps,
  plan,
  problems,
};

let redis;
let upstream;
let exitCode = 0;
const background = watchBackgroundLoad();
try {
  log(`tokenmeter bench (${mode}), ${reps} repetition(s), workloads: ${only.join(', ')}`);
  redis = await startRedis();
  upstream = await startUpstream();
  log(`redis on ${redis.url}, fake upstream on ${upstream.url}`);
  const ctx = { plan, reps, upstream, redis, log, problem };

  if (args.profile) {
    const names = args.variants?.split(',');
    for (const name of names ?? []) {
      if (!VARIANTS[name]) throw new Error(`--variants: unknown variant ${name}`);
    }
    results.profiles = await profileVariants(ctx, resultsDir, names);
  } else {
    const steps = {
      sweep: async () => {
        const { cells, latency } = await sweep(ctx);
        results.sweep = cells;
        results.latency = latency;
      },
      interleaved: async () => {
        results.interleaved = await interleaved(ctx);
      },
      slow: async () => {
        results.slowReaders = await slowReaders(ctx);
      },
      disconnect: async () => {
        results.disconnect = await disconnectStorm(ctx);
      },
      race: async () => {
        results.race = await overspendRace(ctx);
      },
      idle: async () => {
        results.idle = await idleStreams(ctx);
      },
      admission: async () => {
        results.admission = await admission(ctx);
      },
      money: async () => {
        results.money = await money(ctx);
      },
      gateway: async () => {
        results.gateway = await gateway(ctx);
      },
      openai: async () => {
        results.openai = await openai(ctx);
      },
      sources: async () => {
        results.sources = await sources(ctx);
      },
      adapters: async () => {
        results.adapters = await adapters(ctx);
      },
      abuse: async () => {
        results.abuse = await abuse(ctx);
      },
      ledger: async () => {
        // A private PostgreSQL cluster, only for this workload.
        const { startPostgres } = await import('@tokenmeter/ledger-postgres/testing');
        ctx.postgres = await startPostgres();
        log(`postgres on ${ctx.postgres.url}`);
        try {
          results.ledger = await ledger(ctx);
        } finally {
          ctx.postgres.destroy();
        }
      },
    };
    for (const name of only) {
      try {
        await steps[name]();
      } catch (error) {
        problem(`${name}: ${error.stack ?? error}`);
      }
    }
  }
} catch (error) {
  problem(`harness: ${error.stack ?? error}`);
} finally {
  if (upstream) await stopChild(upstream.child);
  if (redis) await stopChild(redis.child);
  killAll();
}

results.durationMs = performance.now() - t0;
results.machine.backgroundLoad = background.stop();
results.machine.loadAverageAtEnd = readFileSync('/proc/loadavg', 'utf8')
  .split(' ')
  .slice(0, 3)
  .map(Number);
log(
  `other processes on the machine used ${results.machine.backgroundLoad.averageCores.toFixed(2)} cores on average ` +
    `(p90 ${results.machine.backgroundLoad.p90Cores.toFixed(2)}, max ${results.machine.backgroundLoad.maxCores.toFixed(2)})`,
);
if (!args.profile) {
  const md = writeReport(results, outPath);
  process.stdout.write(`${md}\n`);
  log(`wrote ${outPath}, ${outPath.replace(/\.json$/, '.md')} and plot.svg`);
}
if (problems.length > 0) {
  log(`${problems.length} problem(s): the harness did not run cleanly`);
  exitCode = 1;
}
log(`done in ${Math.round(results.durationMs / 1000)} s`);
clearTimeout(watchdog);
clearTimeout(stallTimer);
process.exit(exitCode);
