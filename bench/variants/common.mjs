/**
 * What every variant process shares: its settings (from the environment the harness
 * sets), the Anthropic client every variant calls the fake upstream with, the admin
 * `GET /__stats` answer, the optional OpenTelemetry SDK, and a clean exit on SIGTERM (so
 * `--cpu-prof` gets to write its profile).
 *
 * The HTTP contract of every variant: `POST /chat` with an Anthropic Messages body
 * `{ model, max_tokens, messages }` and an `x-user` header; the answer is SSE with at least
 * `event: delta` / `data: {"text": "…"}` per text chunk and a final `event: done` (or
 * `event: error`). Prints `listening <port>` once ready.
 */
import Anthropic from '@anthropic-ai/sdk';

export const settings = {
  upstreamUrl: process.env.BENCH_UPSTREAM_URL ?? 'http://127.0.0.1:4010',
  port: Number(process.env.BENCH_PORT ?? 0),
  redisUrl: process.env.BENCH_REDIS_URL,
  /** Budget per user in nano-dollars (the race workload makes it tight). */
  budgetNanos: Number(process.env.BENCH_BUDGET_NANOS ?? 1e15),
  telemetry: process.env.BENCH_TELEMETRY === 'on',
  /** Key prefix in Redis, so processes of one run share state and runs do not. */
  prefix: process.env.BENCH_PREFIX ?? 'bench:',
};

/**
 * One client per process, as an app would hold it. No retries: a failure must show as an
 * error, not as a slow stream.
 */
export const anthropic = new Anthropic({
  baseURL: settings.upstreamUrl,
  apiKey: 'bench',
  maxRetries: 0,
});

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
};

/**
 * What a typical app configures on a metered route, shared by every metered variant: the
 * `x-user` header names the payer, a daily budget per user (tight only in the race) and
 * two sliding-window limits per minute, set high enough never to refuse. The slow-reader
 * workload asks for very long answers, hence the `maxTokensLimit`.
 */
export const METERED = {
  identify: (req) => {
    const user = req.headers['x-user'];
    return typeof user === 'string' ? { user } : undefined;
  },
  budgets: { user: { limitNanos: settings.budgetNanos, period: 'day' } },
  maxTokensLimit: 10_000_000,
  rateLimits: {
    user: [
      { kind: 'requests', limit: 1_000_000, windowMs: 60_000 },
      { kind: 'tokens', limit: 1_000_000_000, windowMs: 60_000 },
    ],
  },
};

/** The same bytes as tokenmeter's `jsonSseEncoder.delta()`, so clients parse all variants alike. */
export function deltaEvent(text) {
  return `event: delta\ndata: ${JSON.stringify({ text })}\n\n`;
}

const telemetryCounts = { spansExported: 0, metricExports: 0 };

/**
 * Registers the OTel SDK globally: a NodeTracerProvider (AsyncLocalStorage context) with a
 * BatchSpanProcessor, and a MeterProvider with a periodic reader, both exporting to
 * nowhere. Anything the middleware emits through `@opentelemetry/api` is then recorded,
 * batched and "exported" — the cost an app with telemetry pays, minus the network.
 */
export async function startTelemetry() {
  if (!settings.telemetry) return;
  const { metrics } = await import('@opentelemetry/api');
  const { BatchSpanProcessor, NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } = await import(
    '@opentelemetry/sdk-metrics'
  );
  const spanExporter = {
    export(spans, done) {
      telemetryCounts.spansExported += spans.length;
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const tracerProvider = new NodeTracerProvider({
    spanProcessors: [new BatchSpanProcessor(spanExporter, { scheduledDelayMillis: 1_000 })],
  });
  tracerProvider.register();
  const metricExporter = {
    export(_metrics, done) {
      telemetryCounts.metricExports++;
      done({ code: 0 });
    },
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: metricExporter,
        exportIntervalMillis: 5_000,
      }),
    ],
  });
  metrics.setGlobalMeterProvider(meterProvider);
}

/** Extra numbers a variant wants in its `/__stats` answer. */
const extraStats = [];
export function addStats(fn) {
  extraStats.push(fn);
}

/**
 * `GET /__stats[?gc=1]`: memory (after a full GC when asked and `--expose-gc` is on), CPU,
 * telemetry counts. Answered by a plain function so every framework can mount it.
 */
export function statsHandler(req, res) {
  if (req.url?.includes('gc=1') && typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const body = {
    pid: process.pid,
    memory: process.memoryUsage(),
    cpu: process.cpuUsage(),
    telemetry: settings.telemetry ? telemetryCounts : null,
  };
  for (const fn of extraStats) Object.assign(body, fn());
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * Open responses, so `/__stats` can say how many bytes the server holds for its clients:
 * `res.writableLength` counts what waits in the response and in its socket (Node's buffer
 * and libuv's write queue) — what a slow reader makes a server keep.
 */
const openResponses = new Set();
addStats(() => {
  let queuedBytes = 0;
  let largest = 0;
  for (const res of openResponses) {
    const n = res.writableLength;
    queuedBytes += n;
    if (n > largest) largest = n;
  }
  return { openResponses: openResponses.size, queuedBytes, largestQueuedBytes: largest };
});

/** Listens on loopback, prints `listening <port>`, exits cleanly on SIGTERM/SIGINT. */
export function listen(server, onStop = async () => {}) {
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/__stats')) return;
    openResponses.add(res);
    res.once('close', () => openResponses.delete(res));
  });
  // Thousands of streams at once: a deeper accept queue than Node's default 511.
  server.listen({ port: settings.port, host: '127.0.0.1', backlog: 4_096 }, () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  const stop = () => {
    server.closeAllConnections?.();
    server.close();
    Promise.race([onStop(), new Promise((resolve) => setTimeout(resolve, 1_000))]).finally(() =>
      process.exit(0),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Reads a JSON body (bare node:http variant only; the Express ones use express.json()). */
export function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(body));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

/**
 * The provider API a gateway variant and its passthrough baseline speak, chosen by
 * `BENCH_API` (`anthropic` by default, `chat`, `responses`): the path, the headers of the
 * server's call, and the loadgen's body (`{ model, max_tokens, messages }`) in the API's
 * shape. Both variants of a pair map it the same way, so both pay the same.
 */
export const PROVIDER_API = {
  anthropic: {
    path: '/v1/messages',
    keyHeader: 'x-api-key',
    headers: { 'x-api-key': 'bench', 'anthropic-version': '2023-06-01' },
    body: (b) => ({ ...b, stream: true }),
  },
  chat: {
    path: '/v1/chat/completions',
    keyHeader: 'authorization',
    headers: { authorization: 'Bearer bench' },
    body: (b) => ({
      model: 'gpt-4o-mini',
      max_completion_tokens: Math.max(16, b.max_tokens),
      messages: b.messages,
      stream: true,
      stream_options: { include_usage: true },
    }),
  },
  responses: {
    path: '/v1/responses',
    keyHeader: 'authorization',
    headers: { authorization: 'Bearer bench' },
    // The Responses API takes max_output_tokens of at least 16.
    body: (b) => ({
      model: 'gpt-4o-mini',
      max_output_tokens: Math.max(16, b.max_tokens),
      input: b.messages,
      stream: true,
    }),
  },
}[process.env.BENCH_API ?? 'anthropic'];
