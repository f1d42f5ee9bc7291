/**
 * The load generator: a child process of its own (so its CPU and memory never mix with the
 * harness's bookkeeping) that opens SSE streams against one variant over raw `node:http`,
 * reads them at full speed or at a set rate, and measures on the client side. It also
 * reads the server's and the upstream's CPU time and RSS from /proc at the edges of the
 * measurement window, so figures and window line up exactly.
 *
 * Run by the harness as `node loadgen.mjs '<json config>'`; prints `RESULT <json>` at the
 * end (and, in `hold` mode, `OPEN <n>` once every stream is open, then waits for `close`
 * on stdin).
 *
 * Definitions (identical for every variant, since all send the same `delta` bytes — or, for
 * the gateways and their proxy baselines, the provider's own delta events, one per delta:
 * `content_block_delta`, a Chat Completions chunk with content, `response.output_text.delta`):
 * - time to first token (TTFT): request sent → the socket read holding the first
 *   `event: delta` whose text is not empty (or the first `content_block_delta`);
 * - inter-chunk gap: time between two socket reads of one stream that each carry ≥ 1 delta;
 * - tokens delivered: delta events received (the fake sends one token per delta unless
 *   the workload sets `chunk`), counted inside the window only.
 */
import { Agent, request } from 'node:http';
import { cpuMs, memory, resetPeakRss } from './processes.mjs';
import { summary } from './stats.mjs';

const config = JSON.parse(process.argv[2]);
const now = () => performance.now();

const bodyJson = JSON.stringify(
  config.body ?? {
    model: 'claude-haiku-4-5',
    max_tokens: 1_024,
    messages: [{ role: 'user', content: 'Tell me about streaming.' }],
  },
);
const bodyBytes = Buffer.byteLength(bodyJson);
const epochNow = () => performance.timeOrigin + performance.now();

/** The body with `[bench-stream <n>]` appended to the prompt, so the upstream can tell streams apart. */
function taggedBody(n) {
  const body = JSON.parse(bodyJson);
  body.messages[0].content = `${body.messages[0].content} [bench-stream ${n}]`;
  return JSON.stringify(body);
}

/**
 * The body with another max_tokens: the fake cuts its answer there, so answers of varied
 * length keep a closed loop from marching in step (every stream starting at once, again and
 * again), which would put per-request and per-token work in different measuring windows.
 */
function withMaxTokens(maxTokens) {
  const body = JSON.parse(bodyJson);
  body.max_tokens = maxTokens;
  return JSON.stringify(body);
}

/** A random whole number of `step`s between min and max (the fake sends `step` tokens per delta). */
function randomTokens(min, max, step = 1) {
  const lo = Math.ceil(min / step);
  const hi = Math.floor(max / step);
  return step * (lo + Math.floor(Math.random() * (hi - lo + 1)));
}

/** Process ids whose CPU and memory are measured: the variant's server(s) and the upstream. */
const serverPids = config.serverPids ?? [];
const upstreamPid = config.upstreamPid;
/** Other processes whose CPU is reported per cell (the redis-server of Redis variants). */
const extraPids = config.extraPids ?? [];

const win = { start: Number.POSITIVE_INFINITY, end: Number.POSITIVE_INFINITY };
const inWindow = (t) => t >= win.start && t < win.end;
/** Counters and samples of one target (every stream of a run, unless a mode keeps several). */
function newTally() {
  return {
    started: 0,
    completed: 0,
    completedInWindow: 0,
    tokensInWindow: 0,
    bytes: 0,
    cut: 0,
    errors: 0,
    errorKinds: {},
    ttfts: [],
    gaps: [],
  };
}
const totals = newTally();
const active = new Set();
let stopping = false;

function countError(tally, kind) {
  tally.errors++;
  tally.errorKinds[kind] = (tally.errorKinds[kind] ?? 0) + 1;
}

/**
 * Opens one stream and resolves when it ends (any way). `options.port` picks the server,
 * `options.user` the x-user header; `readRate` (bytes/s) paces the reading;
 * `abortAfterFirstDelta` closes the connection as soon as the first text arrived.
 */
function runStream(agent, options) {
  const tally = options.tally ?? totals;
  return new Promise((resolve) => {
    const s = {
      t0: now(),
      status: 0,
      firstAt: undefined,
      lastDeltaAt: undefined,
      inRead: false,
      deltas: 0,
      bytes: 0,
      done: false,
      errorEvent: false,
      cutByUs: false,
      req: undefined,
      res: undefined,
      finished: false,
    };
    tally.started++;
    const finish = (kind) => {
      if (s.finished) return;
      s.finished = true;
      active.delete(s);
      if (kind) countError(tally, kind);
      resolve(s);
    };
    s.cut = () => {
      s.cutAt = epochNow();
      s.cutByUs = true;
      tally.cut++;
      s.req.destroy();
      finish();
    };
    const payload =
      options.tag !== undefined
        ? taggedBody(options.tag)
        : options.maxTokens !== undefined
          ? withMaxTokens(options.maxTokens)
          : bodyJson;
    const req = request({
      host: '127.0.0.1',
      port: options.port,
      method: 'POST',
      path: '/chat',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': payload === bodyJson ? bodyBytes : Buffer.byteLength(payload),
        'x-user': options.user,
        accept: 'text/event-stream',
      },
    });
    s.req = req;
    active.add(s);
    req.on('error', (error) =>
      finish(s.cutByUs ? undefined : `socket:${error.code ?? error.message}`),
    );
    req.on('response', (res) => {
      s.res = res;
      s.status = res.statusCode;
      options.onResponse?.(s);
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', () =>
          finish(
            options.expectStatus?.includes(res.statusCode) ? undefined : `status:${res.statusCode}`,
          ),
        );
        return;
      }
      res.setEncoding('utf8');
      let carry = '';
      res.on('data', (chunk) => {
        const t = now();
        s.bytes += chunk.length;
        const text = carry === '' ? chunk : carry + chunk;
        let idx = 0;
        let deltas = 0;
        let end = text.indexOf('\n\n', idx);
        while (end !== -1) {
          if (text.startsWith('event: ', idx)) {
            if (text.startsWith('delta', idx + 7)) {
              deltas++;
              if (s.firstAt === undefined && !text.startsWith('data: {"text":""}', idx + 13)) {
                s.firstAt = t;
              }
            } else if (
              text.startsWith('content_block_delta', idx + 7) ||
              text.startsWith('response.output_text.delta', idx + 7)
            ) {
              // The Anthropic and Responses protocols (gateway and proxy variants).
              deltas++;
              if (s.firstAt === undefined) s.firstAt = t;
            } else if (
              text.startsWith('done', idx + 7) ||
              text.startsWith('message_stop', idx + 7) ||
              text.startsWith('response.completed', idx + 7) ||
              text.startsWith('response.incomplete', idx + 7)
            ) {
              s.done = true;
            } else if (text.startsWith('error', idx + 7)) s.errorEvent = true;
          } else if (text.startsWith('data: ', idx)) {
            // Chat Completions: unnamed events; a chunk with content is a delta.
            const content = text.indexOf('"delta":{"content":', idx);
            if (content !== -1 && content < end) {
              deltas++;
              if (s.firstAt === undefined) s.firstAt = t;
            } else if (text.startsWith('[DONE]', idx + 6)) s.done = true;
          }
          idx = end + 2;
          end = text.indexOf('\n\n', idx);
        }
        carry = idx < text.length ? text.slice(idx) : '';
        if (deltas > 0) {
          s.deltas += deltas;
          if (inWindow(t)) tally.tokensInWindow += deltas * (config.tokensPerDelta ?? 1);
          // One socket read can hold many HTTP chunks, each its own 'data' event, all in one
          // macrotask: a gap is measured between reads, not between those events.
          if (!s.inRead) {
            s.inRead = true;
            queueMicrotask(() => {
              s.inRead = false;
            });
            if (s.lastDeltaAt !== undefined && inWindow(t)) tally.gaps.push(t - s.lastDeltaAt);
            s.lastDeltaAt = t;
          }
          if (s.firstAt === t && inWindow(s.t0)) tally.ttfts.push(t - s.t0);
          if (s.firstAt !== undefined && (options.abortAfterFirstDelta || stopping)) {
            s.cut();
            return;
          }
        }
        if (options.readRate) {
          const due = s.t0 + (s.bytes / options.readRate) * 1_000;
          if (due > t + 1) {
            res.pause();
            setTimeout(() => res.resume(), due - t).unref();
          }
        }
      });
      res.on('end', () => {
        tally.bytes += s.bytes;
        if (s.done) {
          tally.completed++;
          if (inWindow(now())) tally.completedInWindow++;
          finish();
        } else finish(s.errorEvent ? 'sse-error-event' : 'ended-without-done');
      });
      res.on('error', () => finish(s.cutByUs ? undefined : 'response-error'));
      res.on('aborted', () => finish(s.cutByUs ? undefined : 'aborted'));
    });
    req.end(payload);
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cpuOf(pids) {
  return pids.map((pid) => {
    try {
      return cpuMs(pid);
    } catch {
      return Number.NaN;
    }
  });
}

/** Samples the servers' RSS every `everyMs` into `series` until stopped. */
function sampleRss(everyMs, series, t0) {
  const timer = setInterval(() => {
    const rss = serverPids.map((pid) => {
      try {
        return memory(pid).rss;
      } catch {
        return 0;
      }
    });
    series.push({ t: now() - t0, rss: rss.reduce((a, b) => a + b, 0) });
  }, everyMs);
  return () => clearInterval(timer);
}

function peakRss() {
  return serverPids.reduce((sum, pid) => {
    try {
      return sum + memory(pid).hwm;
    } catch {
      return sum;
    }
  }, 0);
}

function userFor(i) {
  return `${config.userPrefix ?? 'u'}${i % (config.users ?? 100)}`;
}

/** Closed loop: `concurrency` workers, each opening the next stream when one ends. */
async function closedLoop() {
  const { concurrency, warmupMs, measureMs } = config;
  const rampMs = config.rampMs ?? Math.min(warmupMs / 2, concurrency);
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const t0 = now();
  for (const pid of serverPids) resetPeakRss(pid);
  const series = [];
  const stopSampling = sampleRss(100, series, t0);
  win.start = t0 + warmupMs;
  win.end = win.start + measureMs;
  let cpuStart;
  let cpuEnd;
  // The window on CLOCK_MONOTONIC, in µs: the clock of V8's .cpuprofile timestamps.
  const monotonicUs = [0, 0];
  const selfStart = { value: undefined };
  const windowTimers = [
    setTimeout(
      () => {
        cpuStart = cpuOf([...serverPids, upstreamPid, ...extraPids]);
        selfStart.value = process.cpuUsage();
        monotonicUs[0] = Number(process.hrtime.bigint() / 1_000n);
      },
      Math.max(0, win.start - now()),
    ),
    setTimeout(
      () => {
        cpuEnd = cpuOf([...serverPids, upstreamPid, ...extraPids]);
        monotonicUs[1] = Number(process.hrtime.bigint() / 1_000n);
        selfStart.delta = process.cpuUsage(selfStart.value);
        stopping = true;
        // Streams already past their first token leave now; the rest once they get it.
        for (const s of active) if (s.firstAt !== undefined) s.cut();
      },
      Math.max(0, win.end - now()),
    ),
  ];
  let counter = 0;
  const workers = [];
  for (let w = 0; w < concurrency; w++) {
    workers.push(
      (async () => {
        // Random start offsets: no two workers in step.
        await sleep(Math.random() * rampMs);
        const range = config.maxTokensRange;
        const step = config.tokensPerDelta ?? 1;
        // The first answer of each worker is cut anywhere up to the longest: as if the loop
        // had been running for a while, so the warm-up need not last an answer's life.
        let maxTokens = range ? randomTokens(step, range[1], step) : undefined;
        while (now() < win.end) {
          await runStream(agent, { port: config.port, user: userFor(counter++), maxTokens });
          maxTokens = range ? randomTokens(range[0], range[1], step) : undefined;
        }
      })(),
    );
  }
  const grace = setTimeout(
    () => {
      for (const s of active) s.cut();
    },
    warmupMs + measureMs + (config.graceMs ?? 10_000),
  );
  await Promise.all(workers);
  clearTimeout(grace);
  for (const timer of windowTimers) clearTimeout(timer);
  stopSampling();
  agent.destroy();
  const measuredMs = win.end - win.start;
  const serverCpu =
    cpuEnd.slice(0, serverPids.length).reduce((a, b) => a + b, 0) -
    cpuStart.slice(0, serverPids.length).reduce((a, b) => a + b, 0);
  const n = serverPids.length;
  const upstreamCpu = cpuEnd[n] - cpuStart[n];
  const extraCpuMs = extraPids.map((_, k) => cpuEnd[n + 1 + k] - cpuStart[n + 1 + k]);
  const loadgenCpuMs = selfStart.delta
    ? (selfStart.delta.user + selfStart.delta.system) / 1_000
    : undefined;
  return {
    measuredMs,
    started: totals.started,
    completed: totals.completed,
    completedInWindow: totals.completedInWindow,
    cut: totals.cut,
    errors: totals.errors,
    errorKinds: totals.errorKinds,
    streamsPerSec: (totals.completedInWindow * 1_000) / measuredMs,
    tokensPerSec: (totals.tokensInWindow * 1_000) / measuredMs,
    tokensInWindow: totals.tokensInWindow,
    ttftMs: summary(totals.ttfts),
    gapMs: summary(totals.gaps),
    serverCpuMs: serverCpu,
    serverCpuPerTokenUs:
      totals.tokensInWindow > 0 ? (serverCpu * 1_000) / totals.tokensInWindow : undefined,
    serverCpuCores: serverCpu / measuredMs,
    upstreamCpuMs: upstreamCpu,
    extraCpuMs,
    extraCpuPerTokenUs: extraCpuMs.map((ms) =>
      totals.tokensInWindow > 0 ? (ms * 1_000) / totals.tokensInWindow : undefined,
    ),
    windowMonotonicUs: monotonicUs,
    loadgenCpuMs,
    peakRss: Math.max(peakRss(), ...series.map((p) => p.rss)),
  };
}

/**
 * Interleaved latency: one stream at a time, rotating over `targets` (one server per variant,
 * all running), so whatever else the machine does at a given moment hits every variant
 * alike. The window is cut into `segments`; per segment and target: TTFT and gap samples,
 * tokens, and that server's CPU time (read at the segment's edges).
 */
async function latency() {
  const targets = config.targets;
  const segments = config.segments ?? 1;
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const warmTally = newTally();
  const tallies = Array.from({ length: segments }, () => targets.map(() => newTally()));
  const pooled = targets.map(() => ({ ttfts: [], gaps: [] }));
  const t0 = now();
  win.start = t0 + config.warmupMs;
  win.end = win.start + config.measureMs;
  const segmentMs = config.measureMs / segments;
  const cpuAt = [];
  const pids = targets.map((t) => t.pid);
  const timers = [];
  for (let k = 0; k <= segments; k++) {
    timers.push(
      setTimeout(() => cpuAt.push(cpuOf(pids)), Math.max(0, win.start + k * segmentMs - now())),
    );
  }
  timers.push(
    setTimeout(() => {
      for (const pid of pids) resetPeakRss(pid);
    }, config.warmupMs),
  );
  let i = 0;
  while (now() < win.end) {
    const k = i % targets.length;
    const t = now();
    const segment =
      t < win.start ? -1 : Math.min(segments - 1, Math.floor((t - win.start) / segmentMs));
    const tally = segment < 0 ? warmTally : tallies[segment][k];
    await runStream(agent, { port: targets[k].port, user: userFor(i), tally });
    i++;
  }
  // The last CPU reading may still be pending by a few ms.
  while (cpuAt.length < segments + 1) await sleep(5);
  for (const timer of timers) clearTimeout(timer);
  agent.destroy();
  const peak = pids.map((pid) => {
    try {
      return memory(pid).hwm;
    } catch {
      return 0;
    }
  });
  const cells = tallies.map((row, segment) =>
    row.map((tally, k) => {
      pooled[k].ttfts.push(...tally.ttfts);
      pooled[k].gaps.push(...tally.gaps);
      const cpuMsUsed = cpuAt[segment + 1][k] - cpuAt[segment][k];
      return {
        variant: targets[k].name,
        segment,
        measuredMs: segmentMs,
        started: tally.started,
        completed: tally.completed,
        errors: tally.errors,
        errorKinds: tally.errorKinds,
        tokensInWindow: tally.tokensInWindow,
        ttftMs: summary(tally.ttfts),
        gapMs: summary(tally.gaps),
        serverCpuMs: cpuMsUsed,
        serverCpuPerTokenUs:
          tally.tokensInWindow > 0 ? (cpuMsUsed * 1_000) / tally.tokensInWindow : undefined,
        peakRss: peak[k],
      };
    }),
  );
  return {
    segments: cells,
    pooled: targets.map((t, k) => ({
      variant: t.name,
      ttftMs: summary(pooled[k].ttfts),
      gapMs: summary(pooled[k].gaps),
      // Every TTFT sample (0.01 ms), in order: the report bootstraps its confidence intervals.
      ttftSamples: pooled[k].ttfts.map((x) => Math.round(x * 100) / 100),
    })),
    warmErrors: warmTally.errors,
  };
}

/** Slow readers: `concurrency` streams read at `readRate` bytes/s; server RSS over time. */
async function slowReaders() {
  const agent = new Agent({ keepAlive: false });
  const t0 = now();
  const series = [];
  const rssAt = () =>
    serverPids.reduce((sum, pid) => {
      try {
        return sum + memory(pid).rss;
      } catch {
        return sum;
      }
    }, 0);
  series.push({ t: 0, rss: rssAt() });
  const stopSampling = sampleRss(config.sampleEveryMs ?? 500, series, t0);
  const streams = [];
  for (let i = 0; i < config.concurrency; i++) {
    streams.push(
      runStream(agent, { port: config.port, user: userFor(i), readRate: config.readRate }),
    );
  }
  await sleep(config.durationMs);
  stopSampling();
  series.push({ t: now() - t0, rss: rssAt() });
  const receivedBytes = [...active].reduce((sum, s) => sum + s.bytes, 0);
  for (const s of active) s.cut();
  await Promise.all(streams);
  agent.destroy();
  return {
    durationMs: config.durationMs,
    streams: config.concurrency,
    receivedBytes,
    clientBytesPerSecPerStream: (receivedBytes * 1_000) / config.durationMs / config.concurrency,
    errors: totals.errors,
    errorKinds: totals.errorKinds,
    series,
  };
}

/**
 * Disconnect storm: `total` streams, each closed by the client right after its first text.
 * Either paced (`ratePerSec`: one new stream every 1/rate s, whatever the others do) or a
 * burst (`concurrency` at a time, each replaced as soon as it is closed).
 */
async function disconnectStorm() {
  const agent = new Agent({ keepAlive: false });
  let next = 0;
  let tokensReceived = 0;
  let aborted = 0;
  const cuts = [];
  const one = async (i) => {
    const s = await runStream(agent, {
      port: config.port,
      user: userFor(i),
      abortAfterFirstDelta: true,
      tag: i,
    });
    tokensReceived += s.deltas * (config.tokensPerDelta ?? 1);
    if (s.cutByUs) {
      aborted++;
      cuts.push({ stream: i, abortAt: s.cutAt, tokensReceived: s.deltas });
    }
  };
  const workers = [];
  if (config.ratePerSec) {
    const t0 = now();
    for (let i = 0; i < config.total; i++) {
      await sleep(Math.max(0, t0 + (i * 1_000) / config.ratePerSec - now()));
      workers.push(one(i));
    }
  } else {
    for (let w = 0; w < config.concurrency; w++) {
      workers.push(
        (async () => {
          while (next < config.total) await one(next++);
        })(),
      );
    }
  }
  await Promise.all(workers);
  agent.destroy();
  return {
    streams: config.total,
    aborted,
    tokensReceived,
    cuts,
    errors: totals.errors,
    errorKinds: totals.errorKinds,
  };
}

/**
 * The overspend race: `requests` streams fired at once, round-robin over `ports` (several
 * server processes sharing one Redis), all for one user on a tight budget, read to the end.
 */
async function race() {
  const agent = new Agent({ keepAlive: false });
  const statuses = {};
  let tokensReceived = 0;
  const all = [];
  for (let i = 0; i < config.requests; i++) {
    all.push(
      runStream(agent, {
        port: config.ports[i % config.ports.length],
        user: config.user,
        expectStatus: [402, 429],
      }).then((s) => {
        statuses[s.status] = (statuses[s.status] ?? 0) + 1;
        tokensReceived += s.deltas;
      }),
    );
  }
  await Promise.all(all);
  agent.destroy();
  return {
    requests: config.requests,
    statuses,
    completed: totals.completed,
    tokensReceived,
    errors: totals.errors,
    errorKinds: totals.errorKinds,
  };
}

/**
 * Idle streams: opens `streams` streams (`openConcurrency` being opened at a time), prints
 * `OPEN <n>` when every one has its response headers, holds them until `close` arrives on
 * stdin, then closes them all.
 */
async function hold() {
  const agent = new Agent({ keepAlive: false });
  let open = 0;
  let failed = 0;
  const held = [];
  let launched = 0;
  const openOne = () =>
    new Promise((resolveOpen) => {
      const i = launched++;
      held.push(
        runStream(agent, {
          port: config.port,
          user: userFor(i),
          onResponse: (s) => {
            if (s.status === 200) open++;
            resolveOpen();
          },
        }).then((s) => {
          if (s.status !== 200 || !s.cutByUs) failed++;
          resolveOpen();
        }),
      );
    });
  const openers = [];
  for (let w = 0; w < (config.openConcurrency ?? 200); w++) {
    openers.push(
      (async () => {
        while (launched < config.streams) await openOne();
      })(),
    );
  }
  await Promise.all(openers);
  process.stdout.write(`OPEN ${open} ${failed}\n`);
  await new Promise((resolve) => {
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (text) => {
      if (text.includes('close')) resolve();
    });
    process.stdin.on('end', resolve);
  });
  for (const s of active) s.cut();
  await Promise.all(held);
  agent.destroy();
  return {
    streams: config.streams,
    open,
    failed,
    errors: totals.errors,
    errorKinds: totals.errorKinds,
  };
}

const modes = {
  closed: closedLoop,
  latency,
  slow: slowReaders,
  abort: disconnectStorm,
  race,
  hold,
};
const run = modes[config.mode];
if (!run) throw new Error(`unknown mode ${config.mode}`);
const result = await run();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
