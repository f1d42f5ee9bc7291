// @ts-check
/**
 * tokenmeter on Fastify: `fastifySSE()` registers one metered route as a plugin. Its
 * callbacks receive Fastify's request, so what an auth hook decorated (`request.user`)
 * reaches identify(); tokenmeter reads the body itself, after identify, so an unknown
 * caller is refused before its upload is read.
 *
 *   npm run --workspace examples example:fastify
 *   curl -N localhost:3000/api/chat -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"model":"claude-haiku-4-5","max_tokens":300,"messages":[{"role":"user","content":"Hi"}]}'
 *
 * The Anthropic API itself is served at /llm (the gateway: the caller's key names who pays),
 * for the SDK and coding agents pointed there:
 *
 *   ANTHROPIC_BASE_URL=http://127.0.0.1:3000/llm ANTHROPIC_API_KEY=key-ada claude
 *
 * With ANTHROPIC_API_KEY set it calls Anthropic (ANTHROPIC_BASE_URL is honoured); without,
 * the fake provider from @tokenmeter/testkit runs in this process.
 */
import Anthropic from '@anthropic-ai/sdk';
import { anthropicGateway, fastifySSE } from '@tokenmeter/fastify';
import { createMemoryStore } from '@tokenmeter/store-memory';
import Fastify from 'fastify';

/** Bearer key → user id: stands in for your real auth. */
const KEYS = new Map([
  ['key-ada', 'u-ada'],
  ['key-grace', 'u-grace'],
]);

const anthropic = await anthropicClient();
const app = Fastify();

// Your auth, as any Fastify hook: it decorates the request with the user.
app.decorateRequest('user', undefined);
app.addHook('onRequest', async (request) => {
  const key = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
  /** @type {{ user?: string }} */ (request).user = key ? KEYS.get(key) : undefined;
});

await app.register(
  fastifySSE({
    url: '/api/chat',
    store: createMemoryStore(),
    identify: (request) => {
      const user = /** @type {{ user?: string }} */ (request).user;
      return user ? { user } : undefined; // 401 when undefined
    },
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    rateLimits: { user: [{ kind: 'requests', limit: 30, windowMs: 60_000 }] },
    maxTokensLimit: 4_096,
    upstream: (_request, meter) =>
      anthropic.messages.create(
        { ...meter.body, ...meter.params, stream: true },
        { signal: meter.signal },
      ),
    onSettle: ({ scopes, model, outcome, final }) => {
      console.log(
        `fastify: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
          `output=${final.usage.outputTokens} costNanos=${final.costNanos} ${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
      );
    },
  }),
);

// The Anthropic API at /llm: the caller's own key (one your app issued) names who pays.
await app.register(
  anthropicGateway({
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
        `fastify gateway: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
          `output=${final.usage.outputTokens} costNanos=${final.costNanos} ${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
      );
    },
  }),
  { prefix: '/llm' },
);

const port = Number(process.env.PORT ?? 3000);
await app.listen({ port, host: '127.0.0.1' });
console.log(`fastify: listening on http://127.0.0.1:${port}`);
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    app.server.closeAllConnections();
    void app.close().then(() => process.exit(0));
  });
}

/** Anthropic when ANTHROPIC_API_KEY is set; otherwise the testkit's fake in this process. */
async function anthropicClient() {
  if (process.env.ANTHROPIC_API_KEY) return new Anthropic();
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`fastify: no ANTHROPIC_API_KEY, using the fake provider at ${fake.url}`);
  return new Anthropic({ baseURL: fake.url, apiKey: 'fake-key' });
}
