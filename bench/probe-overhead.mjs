#!/usr/bin/env node
/**
 * tokenmeter's own work per stream, with the provider taken out of the picture: one server
 * process serves the same answer on several routes — a bare relay and `costTrackedSSE()` in
 * a few configurations — from an in-memory upstream (the SDK's event objects, `--tokens`
 * text deltas, a macrotask every 10 events as if they came in reads). A client process runs a
 * closed loop of `--concurrency` keep-alive streams against one route at a time, in blocks
 * whose order reverses every other block; per block it reads the server's CPU time, its GC
 * pause time, and the CPU of its threads other than the main one (V8's concurrent marking
 * and sweeping, libuv's pool: part of the CPU time that neither a CPU profile nor the pause
 * times show). Each route's figure is the median over blocks, and its distance from the bare
 * relay is taken within each block (noise common to a block cancels).
 *
 * A probe, not a benchmark: no upstream socket, no SDK parsing, so the bare relay here is a
 * fraction of a real one, and the ratios mean nothing — the differences (µs per stream) are
 * what tokenmeter adds, and what a change to its per-stream work moves. From the third route
 * on, each is also measured against the route before it (`bare,metered,chunk-times`: what
 * the chunk histogram adds to `metered`).
 *
 *   node bench/probe-overhead.mjs                              every route, 10 blocks of 2 s
 *   node bench/probe-overhead.mjs --routes=bare,metered --blocks=20
 *   BENCH_BEFORE=/tmp/before node bench/probe-overhead.mjs --routes=bare,metered,metered@before
 *   node bench/probe-overhead.mjs --otel --routes=bare,metered,chunk-times
 *   node bench/probe-overhead.mjs --profile=/tmp/prof     the server's .cpuprofile (all routes)
 *
 * Routes: `bare` (the bare relay's loop: a `delta` per text chunk, `done`), `metered` (the
 * bench's metered setup: a daily budget and two sliding-window limits per user, memory
 * store), `no-limits` (the budget only), `unbudgeted` (identify only: metering, `meta`,
 * `usage`, `done`, no store call that holds anything), `no-usage` (as `metered`, `usage`
 * events off in practice), `remember-1000` (as `metered`, its store remembering 1,000 ended
 * reservations, not 100,000), `chunk-times` (as `metered`, with `telemetry.timePerOutputChunk`:
 * pair it with `--otel`, which registers the bench's OTel SDK in the server). With
 * `BENCH_BEFORE` (a built checkout, from before this probe existed or after), a route@before
 * is that route served by that tree's packages, in a second server process.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, quantile } from './lib/stats.mjs';

const { values: args } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    routes: { type: 'string', default: 'bare,metered,no-limits,unbudgeted,no-usage' },
    concurrency: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '2' },
    blocks: { type: 'string', default: '10' },
    /** The bench's OTel SDK registered in the server (no-op exporters), before tokenmeter loads. */
    otel: { type: 'boolean', default: false },
    /** A directory: the server runs with --cpu-prof and writes its profile there on exit. */
    profile: { type: 'string' },
  },
});

if (args.serve) await serve();
else await probe();

/** The server: every route on one Express app, printing `listening <port>`. */
async function serve() {
  const { createServer } = await import('node:http');
  const { PerformanceObserver } = await import('node:perf_hooks');
  const { default: express } = await import('express');
  // Before tokenmeter loads: it uses the global OTel API.
  if (args.otel) {
    process.env.BENCH_TELEMETRY = 'on';
    const { startTelemetry } = await import('./variants/common.mjs');
    await startTelemetry();
  }
  // PROBE_PACKAGES: tokenmeter's packages from another built checkout (a route@before).
  const { importFrom } = await import('./lib/variants.mjs');
  const { cpuMs } = await import('./lib/processes.mjs');
  const tree = process.env.PROBE_PACKAGES;
  const { costTrackedSSE } = await importFrom(tree, '@tokenmeter/express');
  const { createMemoryStore } = await importFrom(tree, '@tokenmeter/store-memory');
  const { METERED, SSE_HEADERS, deltaEvent } = await import('./variants/common.mjs');
  const tokens = Number(args.tokens);
  const WORDS = [' drain', ' cost', ' meter', ' settle', '\n', ' usage', ' stream', ' quick'];
  async function* upstream(maxTokens) {
    const n = Math.min(tokens, maxTokens);
    yield {
      type: 'message_start',
      message: {
        id: 'msg_probe',
        type: 'message',
        role: 'assistant',
        model: 'claude-haiku-4-5',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 7, output_tokens: 1 },
      },
    };
    yield { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
    for (let i = 0; i < n; i++) {
      if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      yield {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: WORDS[i % WORDS.length] },
      };
    }
    yield { type: 'content_block_stop', index: 0 };
    yield {
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: n },
    };
    yield { type: 'message_stop' };
  }
  const store = createMemoryStore();
  const metered = (options) =>
    costTrackedSSE({
      store,
      ...METERED,
      ...options,
      upstream: (_req, meter) => upstream(meter.params.max_tokens),
    });
  const app = express();
  app.post('/bare', express.json(), async (req, res) => {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    for await (const event of upstream(req.body.max_tokens)) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        res.write(deltaEvent(event.delta.text));
      }
    }
    res.end('event: done\ndata: {}\n\n');
  });
  app.post('/metered', express.json(), metered({}));
  app.post('/no-limits', express.json(), metered({ rateLimits: undefined }));
  app.post('/unbudgeted', express.json(), metered({ budgets: undefined, rateLimits: undefined }));
  // Ten thousand seconds: longer than any stream here, so no `usage` event is ever due.
  app.post('/no-usage', express.json(), metered({ usageIntervalMs: 10_000_000 }));
  // Its own store, remembering 1,000 ended reservations instead of the default 100,000.
  const rememberFew = createMemoryStore({ rememberEnded: 1_000 });
  app.post('/remember-1000', express.json(), metered({ store: rememberFew }));
  app.post('/chunk-times', express.json(), metered({ telemetry: { timePerOutputChunk: true } }));
  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });
  const { readdirSync } = await import('node:fs');
  /**
   * CPU of the process's other threads (V8's concurrent marking and sweeping, libuv's pool),
   * µs, from /proc (whole clock ticks): neither the CPU profile nor the GC pauses see it.
   */
  const helperCpuUs = () => {
    let ms = 0;
    for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
      if (Number(tid) === process.pid) continue;
      try {
        ms += cpuMs(process.pid, tid);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return ms * 1_000;
  };
  app.get('/__cpu', (_req, res) => {
    const { user, system } = process.cpuUsage();
    res.end(JSON.stringify({ cpuUs: user + system, gcUs: gcMs * 1_000, helperUs: helperCpuUs() }));
  });
  const server = createServer(app).listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  process.once('SIGTERM', () => process.exit(0));
}

/** Starts a server: this file, with tokenmeter's packages from `tree` when given. */
function startServer(tree) {
  const script = fileURLToPath(import.meta.url);
  const profile = args.profile
    ? ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${args.profile}`]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, script, '--serve', `--tokens=${args.tokens}`, ...(args.otel ? ['--otel'] : [])],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: tree ? { ...process.env, PROBE_PACKAGES: tree } : process.env,
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) =>
      reject(new Error(`the probe server${tree ? ` on ${tree}` : ''} exited (${code})`)),
    );
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
  });
}

/** The client: blocks of closed-loop streams per route, then the medians. */
async function probe() {
  const routes = args.routes.split(',');
  if (routes[0] !== 'bare') throw new Error('--routes must start with bare (the baseline)');
  const concurrency = Number(args.concurrency);
  const servers = { now: await startServer() };
  if (routes.some((r) => r.endsWith('@before'))) {
    const before = process.env.BENCH_BEFORE?.replace(/\/$/, '');
    if (!before) throw new Error('a route@before needs BENCH_BEFORE=/path/to/a/built/checkout');
    servers.before = await startServer(before);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency * 2 });
  const body = JSON.stringify({
    model: 'claude-haiku-4-5',
    max_tokens: 1_024,
    messages: [{ role: 'user', content: 'Tell me about streaming.' }],
  });
  const call = (port, method, path, payload, user) =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          agent,
          headers: { 'content-type': 'application/json', 'x-user': user ?? 'probe' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            if (method === 'GET') text += chunk;
          });
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(text)
              : reject(new Error(`${path}: ${res.statusCode}`)),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const target = (route) => {
    const [name, tree] = route.split('@');
    return { port: servers[tree ?? 'now'].port, path: `/${name}` };
  };
  const counters = async (port) => JSON.parse(await call(port, 'GET', '/__cpu'));
  /** One block of one route: µs of server CPU and of GC pauses per stream. */
  const block = async (route) => {
    const { port, path } = target(route);
    const before = await counters(port);
    const until = performance.now() + Number(args.seconds) * 1_000;
    let streams = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        for (let i = worker; performance.now() < until; i += concurrency) {
          await call(port, 'POST', path, body, `u${i % 100}`);
          streams++;
        }
      }),
    );
    const after = await counters(port);
    return {
      cpu: (after.cpuUs - before.cpuUs) / streams,
      gc: (after.gcUs - before.gcUs) / streams,
      helper: (after.helperUs - before.helperUs) / streams,
    };
  };
  try {
    for (const route of routes) await block(route); // warm: JIT, connections
    const results = Object.fromEntries(routes.map((r) => [r, []]));
    const blocks = Number(args.blocks);
    for (let b = 0; b < blocks; b++) {
      for (const route of b % 2 ? [...routes].reverse() : routes) {
        results[route].push(await block(route));
      }
    }
    const quartiles = (xs) => `${quantile(xs, 0.25).toFixed(0)}–${quantile(xs, 0.75).toFixed(0)}`;
    // One route's distance from another, per block: what the second adds to the first.
    const step = (route, from) => {
      const over = results[route].map((r, i) => r.cpu - results[from][i].cpu);
      return `${median(over).toFixed(0)} (quartiles ${quartiles(over)})`;
    };
    console.log(
      `${blocks} blocks of ${args.seconds} s per route, ${concurrency} streams at once, ` +
        `${args.tokens} text deltas a stream; server CPU, GC pauses and the other threads' CPU ` +
        '(in the CPU: GC helpers, libuv) per stream (µs):',
    );
    routes.forEach((route, at) => {
      const cpu = results[route].map((r) => r.cpu);
      const gc = results[route].map((r) => r.gc);
      const over = cpu.map((v, i) => v - results.bare[i].cpu);
      const gcOver = gc.map((v, i) => v - results.bare[i].gc);
      const helper = results[route].map((r) => r.helper);
      const helperOver = helper.map((v, i) => v - results.bare[i].helper);
      console.log(
        `  ${route.padEnd(18)} CPU ${median(cpu).toFixed(0).padStart(5)}, GC ${median(gc).toFixed(0).padStart(4)}, ` +
          `threads ${median(helper).toFixed(0).padStart(4)}` +
          (route === 'bare'
            ? ''
            : `; over bare: CPU ${median(over).toFixed(0).padStart(4)} (quartiles ${quartiles(over)}),` +
              ` GC ${median(gcOver).toFixed(0)}, threads ${median(helperOver).toFixed(0)}`) +
          (at < 2 ? '' : `; over ${routes[at - 1]}: CPU ${step(route, routes[at - 1])}`),
      );
    });
  } finally {
    agent.destroy();
    for (const { child } of Object.values(servers)) {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
    }
  }
}
