/**
 * What `npm run bench` runs (standard: ~24 min on 2 cores today, the sweep with its JIT
 * warm-ups about 9 of them) and what `--quick` runs (the
 * CI smoke version: ≤ 60 s, every variant started at least once, every workload once).
 */

const ALL = [
  'bare-node',
  'bare-express',
  'bare-express+otel',
  'naive',
  'tokenmeter-memory',
  'tokenmeter-memory+otel',
  'tokenmeter-redis',
  'tokenmeter-redis+otel',
];

const LATENCY = [
  'bare-express',
  'bare-express+otel',
  'tokenmeter-memory',
  'tokenmeter-redis',
  'tokenmeter-memory+otel',
  'tokenmeter-redis+otel',
];

/** The gateway and its baseline: both speak the provider's protocol (`/v1/messages`). */
const GATEWAY = ['bare-proxy', 'gateway-memory'];

/**
 * OpenAI's two APIs through the gateway, each beside its passthrough proxy: Chat Completions
 * and the Responses API (the provider's own events end to end).
 */
const OPENAI_APIS = [
  'bare-proxy-chat',
  'gateway-chat',
  'bare-proxy-responses',
  'gateway-responses',
];

/** The raw path and the AI SDK path, each beside its own bare relay (tokenmeter's `delta` events). */
const SOURCES = ['bare-express', 'tokenmeter-memory', 'bare-ai-sdk', 'ai-sdk-memory'];

/** The Web adapter on Hono beside a bare Hono SSE relay, and Express's pair in the same run. */
const ADAPTERS = [
  'bare-express',
  'tokenmeter-memory',
  'bare-hono',
  'web-memory',
  // With BENCH_BEFORE=<another checkout>: the Express adapter of that tree too, in the same
  // cells and the same interleaved latency run (a change beside the tree it started from).
  ...(process.env.BENCH_BEFORE ? ['tokenmeter-memory@before'] : []),
];

/** The ledger off and on (same middleware, same memory store). */
const LEDGER = ['tokenmeter-memory', 'tokenmeter-memory+ledger'];
export const LEDGER_PAIR = LEDGER;

/** The request every client sends (the fake answers `tokens` tokens whatever max_tokens says). */
export const BODY = {
  model: 'claude-haiku-4-5',
  max_tokens: 1_024,
  messages: [{ role: 'user', content: 'Tell me about streaming.' }],
};

/** 1,000 streams paced: CPU per token compares like for like (see the sweep's notes). */
const PACED_1000 = {
  load: 'paced',
  concurrency: 1_000,
  knobs: { tokens: 90, tps: 10, chunk: 5 },
  tokensPerDelta: 5,
  maxTokensRange: [30, 90],
  warmupMs: 2_000,
  measureMs: 3_000,
};

/** 1,000 streams with the upstream unthrottled: throughput. */
const MAX_1000 = {
  load: 'max',
  concurrency: 1_000,
  knobs: { tokens: 150, tps: 0, chunk: 1 },
  maxTokensRange: [50, 150],
  warmupMs: 2_000,
  measureMs: 2_500,
};

/**
 * Before anything is measured, each fresh process of the sweep serves ~5,000 short answers:
 * past the JIT's compiling phase (see jitWarm in workloads.mjs), so its windows measure a warm
 * server, as production runs one. (The gateway, sources and ledger pairs keep the short
 * warm-up: ~6 s per fresh process would take the standard set past its watchdog.)
 */
const JIT_WARMUP = { concurrency: 32, ms: 6_000, knobs: { tokens: 10 } };

/**
 * The variants of the interleaved measurement and the ratios it reports: tokenmeter beside
 * the bare relay with the same OpenTelemetry setup (none, or the SDK registered globally).
 */
const INTERLEAVED = [
  'bare-express',
  'tokenmeter-memory',
  'tokenmeter-redis',
  'bare-express+otel',
  'tokenmeter-memory+otel',
];
const INTERLEAVED_PAIRS = [
  ['tokenmeter-memory', 'bare-express'],
  ['tokenmeter-redis', 'bare-express'],
  ['tokenmeter-memory+otel', 'bare-express+otel'],
];

/** The quick run's 100-stream unthrottled level: every workload that has one shares it. */
const QUICK_MAX_100 = {
  load: 'max',
  concurrency: 100,
  knobs: { tokens: 75, tps: 0 },
  maxTokensRange: [25, 75],
  warmupMs: 200,
  measureMs: 400,
};

/** The quick run's fake-upstream knobs and per-process warm-up. */
const QUICK_PAIR_SETUP = {
  knobs: { tokens: 75, tps: 0, ttftMs: 0, chunk: 1 },
  warmup: { concurrency: 10, warmupMs: 0, measureMs: 200 },
};

export const PLANS = {
  standard: {
    reps: 3,
    /** Ordinary streams each fresh process serves before a workload measures it. */
    warmMs: 1_000,
    sweep: {
      // naive streams like the bare relays: it is measured where it differs (slow readers,
      // disconnects, the race). Telemetry overhead is read from the memory variant; the Redis
      // one with telemetry only joins the latency run (time).
      levelVariants: ALL.filter((v) => v !== 'naive' && v !== 'tokenmeter-redis+otel'),
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      jitWarmup: JIT_WARMUP,
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      // Concurrency 1: one stream at a time, rotating over these variants (short answers, so
      // many samples); the tail of the TTFT distribution is compared under the same noise.
      latency: {
        variants: LATENCY,
        knobs: { tokens: 10 },
        warmupMs: 1_000,
        measureMs: 90_000,
      },
      // Closed loops of N clients, each opening the next stream when one ends. Answers are cut
      // by a random max_tokens (the fake honours it), and each client's first answer anywhere
      // up to the longest, so streams do not march in step and the window sees as many
      // streams starting as ending.
      // - paced: the upstream at 10 tokens/s per stream in deltas of 5 tokens: every variant
      //   gets the same offered load (2,000 deltas/s at 1,000 streams, about half of what one
      //   core relays when every delta is read and written on its own), so CPU per token and
      //   TTFT compare like for like;
      // - max: one token per delta, as fast as the socket takes it: what the server can push.
      levels: [
        {
          load: 'paced',
          concurrency: 100,
          knobs: { tokens: 90, tps: 10, chunk: 5 },
          tokensPerDelta: 5,
          maxTokensRange: [30, 90],
          warmupMs: 1_000,
          measureMs: 1_500,
        },
        PACED_1000,
        MAX_1000,
      ],
    },
    // CPU per token and throughput at 1,000 streams, the way that resolves a few percent on a
    // shared machine: every variant's process up at once, then blocks in which each serves
    // the same load in turn (order reversed every other block); each block gives a ratio per
    // pair from cells seconds apart, so the machine's slow minutes hit both sides of it.
    interleaved: {
      variants: INTERLEAVED,
      pairs: INTERLEAVED_PAIRS,
      // Palindromes around each baseline: the pairs' cells are symmetric in time.
      sequence: [
        'bare-express',
        'tokenmeter-memory',
        'tokenmeter-redis',
        'tokenmeter-redis',
        'tokenmeter-memory',
        'bare-express',
        'bare-express+otel',
        'tokenmeter-memory+otel',
        'tokenmeter-memory+otel',
        'bare-express+otel',
      ],
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      jitWarmup: JIT_WARMUP,
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      blocks: 6,
      levels: [
        { ...PACED_1000, warmupMs: 1_500, measureMs: 2_000 },
        { ...MAX_1000, warmupMs: 1_500, measureMs: 2_000 },
      ],
    },
    slow: {
      variants: ['bare-express', 'naive', 'tokenmeter-memory'],
      streams: 30,
      readRate: 1_024,
      durationMs: 10_000,
      reps: 2,
      // A long answer as fast as the upstream can go: whoever does not wait for 'drain' buffers
      // it. Long enough (~22 MB) to outlast the kernel's socket buffers on loopback, which
      // take ~7 MB per connection before any backpressure reaches a relay; 200 tokens per delta
      // so the upstream passes them within the 10 s even on a slow day (at 20 per delta, on
      // 2026-12-03, it made ~2 MB per stream: all in the kernel, and the naive relay looked flat).
      knobs: { tokens: 3_000_000, tps: 0, ttftMs: 0, chunk: 200 },
    },
    disconnect: {
      // The abort path is the middleware's, whatever the store: the memory variant stands for both.
      variants: ['bare-express', 'naive', 'tokenmeter-memory'],
      // Paced: 100 new streams a second, each closed after its first delta (the relay is not
      // saturated, so what is measured is how fast it passes the close on). Burst: 100 at a
      // time, replaced at once — a saturated server, where every close waits its turn.
      scenarios: [
        { name: 'paced', streams: 200, ratePerSec: 100 },
        { name: 'burst', streams: 300, concurrency: 100, reps: 1 },
      ],
      // A realistic pace: after a disconnect, every 10 ms the upstream is not told costs a token.
      knobs: { tokens: 300, tps: 100, ttftMs: 0, chunk: 1 },
    },
    race: {
      variants: ['naive', 'tokenmeter-redis'],
      processes: 3,
      requests: 100,
      maxTokens: 200,
      // The budget covers about 10 worst-case answers; streams take ~0.5 s so they overlap.
      budgetAnswers: 10,
      knobs: { tokens: 200, tps: 400, ttftMs: 0, chunk: 1 },
    },
    idle: {
      // Per-stream state of the Redis store lives in Redis: the memory variant stands for both.
      variants: ['bare-express', 'tokenmeter-memory'],
      reps: 1,
      streams: 10_000,
      openConcurrency: 256,
    },
    // Unidentified 19 MiB uploads beside honest streams (issue figures: RSS, loop delay).
    abuse: { streams: 100, uploads: 200, reps: 3 },
    admission: {
      memory: ['--iterations=100000'],
      redis: ['--iterations=5000'],
    },
    /** Money bounds (not timed): seeds of the fake's text per request kind and text kind. */
    money: { seeds: [1, 2, 3, 4, 5] },
    // The gateway beside a bare passthrough proxy, both speaking the Anthropic Messages API
    // end to end: what metering the provider's own protocol adds (TTFT, CPU per token).
    gateway: {
      levelVariants: GATEWAY,
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      latency: { variants: GATEWAY, knobs: { tokens: 10 }, warmupMs: 1_000, measureMs: 20_000 },
      levels: [PACED_1000, MAX_1000],
    },
    // OpenAI's Chat Completions and Responses APIs through openaiGateway(), each beside a
    // bare passthrough proxy of the same API: what metering each adds (TTFT, CPU per token).
    openai: {
      levelVariants: OPENAI_APIS,
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      latency: { variants: OPENAI_APIS, knobs: { tokens: 10 }, warmupMs: 1_000, measureMs: 20_000 },
      levels: [PACED_1000, MAX_1000],
    },
    // The AI SDK path (streamText() handed to costTrackedSSE) beside the raw SDK path, each
    // against its bare relay: what tokenmeter adds to an AI SDK app (TTFT, CPU per token).
    sources: {
      levelVariants: SOURCES,
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      latency: { variants: SOURCES, knobs: { tokens: 10 }, warmupMs: 1_000, measureMs: 20_000 },
      levels: [PACED_1000],
    },
    // The Web adapter (honoSSE() on @hono/node-server) beside a bare Hono streamSSE() relay,
    // and costTrackedSSE() beside bare Express in the same run: what each adapter adds.
    adapters: {
      levelVariants: ADAPTERS,
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      latency: { variants: ADAPTERS, knobs: { tokens: 10 }, warmupMs: 1_000, measureMs: 20_000 },
      levels: [PACED_1000, MAX_1000],
    },
    // The PostgreSQL ledger on vs off at 1,000 streams, then rows per second sustained.
    ledger: {
      levelVariants: LEDGER,
      reps: 3,
      knobs: { tokens: 150, tps: 0, ttftMs: 0, chunk: 1 },
      warmup: { concurrency: 20, warmupMs: 0, measureMs: 1_500 },
      latency: { variants: LEDGER, knobs: { tokens: 10 }, warmupMs: 1_000, measureMs: 15_000 },
      levels: [PACED_1000, MAX_1000],
      // Postgres up, then stopped: both variants measured in each window.
      outage: {
        latency: { knobs: { tokens: 10 }, warmupMs: 500, measureMs: 8_000 },
        level: PACED_1000,
      },
      rows: 100_000,
    },
  },
  quick: {
    reps: 1,
    warmMs: 300,
    sweep: {
      levelVariants: ALL,
      ...QUICK_PAIR_SETUP,
      latency: { variants: LATENCY, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_500 },
      levels: [QUICK_MAX_100],
    },
    interleaved: {
      variants: ['bare-express', 'tokenmeter-memory'],
      pairs: [['tokenmeter-memory', 'bare-express']],
      sequence: ['bare-express', 'tokenmeter-memory', 'tokenmeter-memory', 'bare-express'],
      ...QUICK_PAIR_SETUP,
      blocks: 2,
      levels: [QUICK_MAX_100],
    },
    slow: {
      variants: ['naive', 'tokenmeter-memory'],
      streams: 10,
      readRate: 1_024,
      durationMs: 4_000,
      knobs: { tokens: 3_000_000, tps: 0, ttftMs: 0, chunk: 200 },
    },
    disconnect: {
      variants: ['bare-express', 'naive', 'tokenmeter-memory'],
      scenarios: [{ name: 'paced', streams: 40, ratePerSec: 100 }],
      knobs: { tokens: 60, tps: 100, ttftMs: 0, chunk: 1 },
    },
    race: {
      variants: ['naive', 'tokenmeter-redis'],
      processes: 3,
      requests: 30,
      maxTokens: 200,
      budgetAnswers: 5,
      knobs: { tokens: 200, tps: 1_000, ttftMs: 0, chunk: 1 },
    },
    idle: {
      variants: ['tokenmeter-memory'],
      reps: 1,
      streams: 300,
      openConcurrency: 100,
    },
    abuse: { streams: 100, uploads: 200, reps: 1 },
    admission: {
      memory: ['--iterations=5000'],
      redis: ['--iterations=1000'],
    },
    money: { seeds: [1] },
    gateway: {
      levelVariants: GATEWAY,
      ...QUICK_PAIR_SETUP,
      latency: { variants: GATEWAY, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_000 },
      levels: [QUICK_MAX_100],
    },
    openai: {
      levelVariants: OPENAI_APIS,
      ...QUICK_PAIR_SETUP,
      latency: { variants: OPENAI_APIS, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_000 },
      levels: [QUICK_MAX_100],
    },
    sources: {
      levelVariants: SOURCES,
      ...QUICK_PAIR_SETUP,
      latency: { variants: SOURCES, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_000 },
      levels: [
        {
          load: 'paced',
          concurrency: 100,
          knobs: { tokens: 30, tps: 20, chunk: 5 },
          tokensPerDelta: 5,
          maxTokensRange: [10, 30],
          warmupMs: 200,
          measureMs: 600,
        },
      ],
    },
    adapters: {
      levelVariants: ADAPTERS,
      ...QUICK_PAIR_SETUP,
      latency: { variants: ADAPTERS, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_000 },
      levels: [QUICK_MAX_100],
    },
    ledger: {
      levelVariants: LEDGER,
      ...QUICK_PAIR_SETUP,
      latency: { variants: LEDGER, knobs: { tokens: 10 }, warmupMs: 200, measureMs: 1_000 },
      levels: [QUICK_MAX_100],
      outage: {
        latency: { knobs: { tokens: 10 }, warmupMs: 100, measureMs: 600 },
        level: {
          load: 'max',
          concurrency: 50,
          knobs: { tokens: 30, tps: 0 },
          maxTokensRange: [10, 30],
          warmupMs: 100,
          measureMs: 300,
        },
      },
      rows: 5_000,
    },
  },
};
