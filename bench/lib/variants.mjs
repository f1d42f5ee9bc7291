/**
 * The variants the harness compares, and how one is started: each its own Node process on
 * loopback, all calling the same fake upstream with the official Anthropic SDK.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnChild, waitForLine } from './processes.mjs';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Imports package `name` as the built checkout `tree` resolves it (that tree's packages, for
 * a probe's `BENCH_BEFORE` side), or as this tree does when `tree` is empty.
 */
export function importFrom(tree, name) {
  if (!tree) return import(name);
  return import(pathToFileURL(createRequire(`${tree}/bench/package.json`).resolve(name)).href);
}

export const VARIANTS = {
  'bare-node': {
    script: here('../variants/bare-node.mjs'),
    about: 'node:http relay: SDK raw stream → res.write with drain; nothing else',
  },
  'bare-express': {
    script: here('../variants/bare-express.mjs'),
    about: 'the same relay as an Express 5 route (the baseline of every ratio)',
  },
  'bare-express+otel': {
    script: here('../variants/bare-express.mjs'),
    env: { BENCH_TELEMETRY: 'on' },
    about:
      'bare-express with the same OTel SDK registration as the +otel variants (the baseline of their "÷ bare+otel" ratios)',
  },
  naive: {
    script: here('../variants/naive.mjs'),
    redis: true,
    about: 'write-and-forget, no abort on disconnect, GET-then-INCRBY budget on Redis',
  },
  'tokenmeter-memory': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'memory' },
    about: 'costTrackedSSE() + memory store, telemetry off',
  },
  'tokenmeter-memory+otel': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'memory', BENCH_TELEMETRY: 'on' },
    about: 'the same with the OTel SDK registered (batch span processor, no-op exporters)',
  },
  'tokenmeter-memory+otel+chunks': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'memory', BENCH_TELEMETRY: 'on', BENCH_CHUNK_TIMES: 'on' },
    about:
      'tokenmeter-memory+otel with `telemetry: { timePerOutputChunk: true }` (a histogram point per output chunk)',
  },
  'tokenmeter-redis': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'redis' },
    redis: true,
    about: 'costTrackedSSE() + Redis store on loopback, telemetry off',
  },
  'bare-proxy': {
    script: here('../variants/bare-proxy.mjs'),
    about:
      'Express 5 passthrough proxy: fetch to /v1/messages, the answer piped back (the gateway baseline)',
  },
  'gateway-memory': {
    script: here('../variants/gateway.mjs'),
    about: 'anthropicGateway() + memory store: the provider API relayed, metered',
  },
  'bare-proxy-chat': {
    script: here('../variants/bare-proxy.mjs'),
    env: { BENCH_API: 'chat' },
    about: 'the passthrough proxy on OpenAI Chat Completions (`/v1/chat/completions`)',
  },
  'gateway-chat': {
    script: here('../variants/gateway.mjs'),
    env: { BENCH_API: 'chat' },
    about: 'openaiGateway() + memory store on Chat Completions',
  },
  'bare-proxy-responses': {
    script: here('../variants/bare-proxy.mjs'),
    env: { BENCH_API: 'responses' },
    about: 'the passthrough proxy on the OpenAI Responses API (`/v1/responses`)',
  },
  'gateway-responses': {
    script: here('../variants/gateway.mjs'),
    env: { BENCH_API: 'responses' },
    about: 'openaiGateway() + memory store on the Responses API',
  },
  'tokenmeter-memory+ledger': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'memory', BENCH_LEDGER: 'on' },
    postgres: true,
    about: 'tokenmeter-memory with every settlement written to the PostgreSQL ledger',
  },
  'bare-ai-sdk': {
    script: here('../variants/ai-sdk.mjs'),
    env: { BENCH_AI_SDK: 'bare' },
    about:
      'the same relay through the AI SDK: streamText() fullStream text parts → res.write with drain',
  },
  'ai-sdk-memory': {
    script: here('../variants/ai-sdk.mjs'),
    env: { BENCH_AI_SDK: 'metered' },
    about: 'costTrackedSSE() + memory store with a streamText() result as the source',
  },
  'bare-hono': {
    script: here('../variants/hono.mjs'),
    env: { BENCH_HONO: 'bare' },
    about:
      "Hono on @hono/node-server: streamSSE() relay, each write awaited (the Web adapter's baseline)",
  },
  'web-memory': {
    script: here('../variants/hono.mjs'),
    env: { BENCH_HONO: 'metered' },
    about: 'honoSSE() from @tokenmeter/web + memory store on the same Hono server',
  },
  'tokenmeter-redis+otel': {
    script: here('../variants/tokenmeter.mjs'),
    env: { BENCH_STORE: 'redis', BENCH_TELEMETRY: 'on' },
    redis: true,
    about: 'the same with the OTel SDK registered',
  },
};

/**
 * `BENCH_BEFORE=/path/to/another/checkout` (installed and built): each variant also runs from
 * that tree as `<name>@before`, its own scripts and packages, so a change is measured beside
 * the tree it started from in one interleaved run (`probe-per-stream.mjs --interleave`).
 */
if (process.env.BENCH_BEFORE) {
  const before = process.env.BENCH_BEFORE.replace(/\/$/, '');
  for (const [name, variant] of Object.entries({ ...VARIANTS })) {
    const script = variant.script.replace(/^.*\/bench\/variants\//, `${before}/bench/variants/`);
    VARIANTS[`${name}@before`] = { ...variant, script, about: `${variant.about} (${before})` };
  }
}

/**
 * Starts one process of `name`. `nodeFlags` go before the script (`--cpu-prof`, …);
 * `env` adds to the variant's own settings. Resolves with `{ name, child, pid, port }`.
 */
export async function startVariant(
  name,
  { upstreamUrl, redisUrl, postgresUrl, env = {}, nodeFlags = [] },
) {
  const variant = VARIANTS[name];
  if (!variant) throw new Error(`unknown variant ${name}`);
  const child = spawnChild(process.execPath, ['--expose-gc', ...nodeFlags, variant.script], {
    name,
    env: {
      BENCH_UPSTREAM_URL: upstreamUrl,
      ...(redisUrl ? { BENCH_REDIS_URL: redisUrl } : {}),
      ...(postgresUrl ? { BENCH_POSTGRES_URL: postgresUrl } : {}),
      ...variant.env,
      ...env,
    },
  });
  const line = await waitForLine(child, /^listening \d+/, 20_000);
  const port = Number(line.split(' ')[1]);
  return { name, child, pid: child.pid, port };
}

/** GET /__stats of a variant (`gc` forces a full collection first). */
export async function variantStats(variant, { gc = false } = {}) {
  const response = await fetch(`http://127.0.0.1:${variant.port}/__stats${gc ? '?gc=1' : ''}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${variant.name} /__stats answered ${response.status}`);
  return response.json();
}
