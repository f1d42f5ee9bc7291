// @ts-check
/**
 * tokenmeter on Hono (Web-standard Request → Response), served on Node by
 * `@hono/node-server`: the route's callbacks receive Hono's Context, so what the auth
 * middleware set (`c.get('user')`) reaches identify(); `meter.body` is the request body
 * as admitted (tokenmeter reads it, after identify).
 *
 *   npm run --workspace examples example:hono
 *   curl -N localhost:3000/api/chat -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"model":"claude-haiku-4-5","max_tokens":300,"messages":[{"role":"user","content":"Hi"}]}'
 *
 * The Anthropic API itself is served at /llm (the gateway: the caller's key names who pays),
 * for the SDK and coding agents pointed there:
 *
 *   ANTHROPIC_BASE_URL=http://127.0.0.1:3000/llm ANTHROPIC_API_KEY=key-ada claude
 *
 * With ANTHROPIC_API_KEY set it calls Anthropic (ANTHROPIC_BASE_URL is honoured); without,
 * the fake provider from @tokenmeter/testkit runs in this process. The same route runs on
 * Bun or Deno with their own `serve` in place of `@hono/node-server`.
 */
import Anthropic from '@anthropic-ai/sdk';
import { serve } from '@hono/node-server';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { anthropicGateway } from '@tokenmeter/web';
import { honoSSE } from '@tokenmeter/web/hono';
import { Hono } from 'hono';

/** Bearer key → user id: stands in for your real auth. */
const KEYS = new Map([
  ['key-ada', 'u-ada'],
  ['key-grace', 'u-grace'],
]);

const anthropic = await anthropicClient();

/** @type {Hono<{ Variables: { user: string | undefined } }>} */
const app = new Hono();

// Your auth, as any Hono middleware: it sets the user on the context.
app.use('/api/*', async (c, next) => {
  const key = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1];
  c.set('user', key ? KEYS.get(key) : undefined);
  await next();
});

app.post(
  '/api/chat',
  honoSSE({
    store: createMemoryStore(),
    identify: (c) => {
      const user = c.get('user');
      return user ? { user } : undefined; // 401 when undefined
    },
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    rateLimits: { user: [{ kind: 'requests', limit: 30, windowMs: 60_000 }] },
    maxTokensLimit: 4_096,
    upstream: (_c, meter) =>
      anthropic.messages.create(
        { ...meter.body, ...meter.params, stream: true },
        { signal: meter.signal },
      ),
    onSettle: ({ scopes, model, outcome, final }) => {
      console.log(
        `hono: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
          `output=${final.usage.outputTokens} costNanos=${final.costNanos} ${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
      );
    },
  }),
);

// The Anthropic API at /llm: the caller's own key (one your app issued) names who pays.
const gateway = anthropicGateway({
  basePath: '/llm',
  apiKey: anthropic.apiKey ?? '',
  baseURL: anthropic.baseURL,
  store: createMemoryStore(),
  identify: (key) => {
    const user = key ? KEYS.get(key) : undefined;
    return user ? { user } : undefined; // 401 when undefined
  },
  budgets: { user: { limitUsd: '1.00', period: 'day' } },
  onSettle: ({ scopes, model, outcome, final }) => {
    console.log(
      `hono gateway: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
        `output=${final.usage.outputTokens} costNanos=${final.costNanos} ${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
    );
  },
});
app.all('/llm/*', (c) => gateway(c.req.raw));

const port = Number(process.env.PORT ?? 3000);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`hono: listening on http://127.0.0.1:${info.port}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}

/** Anthropic when ANTHROPIC_API_KEY is set; otherwise the testkit's fake in this process. */
async function anthropicClient() {
  if (process.env.ANTHROPIC_API_KEY) return new Anthropic();
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`hono: no ANTHROPIC_API_KEY, using the fake provider at ${fake.url}`);
  return new Anthropic({ baseURL: fake.url, apiKey: 'fake-key' });
}
