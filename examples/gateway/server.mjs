// @ts-check
/**
 * A metered gateway: the Anthropic Messages API and OpenAI Chat Completions behind
 * budgets, for tools that already speak the providers' APIs — the official SDKs, coding
 * agents (`ANTHROPIC_BASE_URL`), LangChain. The app issues its own keys and maps each to
 * who pays; the provider keys stay on the server.
 *
 *   npm run --workspace examples example:gateway
 *   ANTHROPIC_BASE_URL=http://127.0.0.1:3000/llm ANTHROPIC_API_KEY=tm-ada your-agent
 *   new Anthropic({ baseURL: 'http://127.0.0.1:3000/llm', apiKey: 'tm-ada' })
 *   new OpenAI({ baseURL: 'http://127.0.0.1:3000/llm/v1', apiKey: 'tm-ada' })
 *
 * With ANTHROPIC_API_KEY / OPENAI_API_KEY set it calls the real APIs (ANTHROPIC_BASE_URL
 * and OPENAI_BASE_URL are honoured); without, a fake from @tokenmeter/testkit answers both
 * in this process. REDIS_URL switches to the Redis store (many gateway instances, one
 * budget). GET /keys/:key/usage shows what a key has spent today.
 */
import { usd } from '@tokenmeter/core';
import { anthropicGateway, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { createRedisStore } from '@tokenmeter/store-redis';
import express from 'express';

/**
 * The keys this gateway issued (a real app stores hashes of them): each names the key
 * itself, its user and its team, the scopes budgets and limits apply to.
 * @type {Map<string, { key: string, user: string, team: string }>}
 */
const KEYS = new Map([
  ['tm-ada', { key: 'k-ada', user: 'ada', team: 'research' }],
  ['tm-linus', { key: 'k-linus', user: 'linus', team: 'research' }],
  ['tm-ci-bot', { key: 'k-ci-bot', user: 'ci-bot', team: 'platform' }],
]);

const KEY_BUDGET = { limitUsd: '2.00', period: /** @type {const} */ ('day') };
const TEAM_BUDGET = { limitUsd: '100.00', period: /** @type {const} */ ('month') };

const upstream = await providers();
const store = process.env.REDIS_URL
  ? createRedisStore({ url: process.env.REDIS_URL })
  : createMemoryStore();

/** @type {Omit<import('@tokenmeter/express').GatewayOptions, 'apiKey' | 'baseURL'>} */
const metering = {
  store,
  // The caller's own key (x-api-key, or Authorization: Bearer) names who pays.
  identify: (key) => (key ? KEYS.get(key) : undefined),
  budgets: { key: KEY_BUDGET, team: TEAM_BUDGET },
  rateLimits: { key: [{ kind: 'requests', limit: 60, windowMs: 60_000 }] },
  // No maxTokensLimit: each model's published maximum output (Claude Code asks for 128,000
  // on Opus). The default 'lease' reservation sends what the budget covers.
  onSettle: ({ scopes, model, outcome, final }) =>
    console.log(
      `gateway: ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} ${model} ${outcome} $${final.cost.usd}`,
    ),
};

const app = express();
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});
app.use(
  '/llm',
  anthropicGateway({
    ...metering,
    apiKey: upstream.anthropic.key,
    baseURL: upstream.anthropic.url,
    unknownRoutes: 'next', // the OpenAI gateway below shares the prefix
  }),
);
app.use(
  '/llm',
  openaiGateway({ ...metering, apiKey: upstream.openai.key, baseURL: upstream.openai.url }),
);
app.get('/keys/:key/usage', async (req, res) => {
  const owner = KEYS.get(req.params.key);
  if (!owner) {
    res.status(404).json({ error: { code: 'not_found', message: 'No such key.' } });
    return;
  }
  const state = await store.getState(
    { kind: 'key', id: owner.key },
    { budget: { limitNanos: usd(KEY_BUDGET.limitUsd), period: KEY_BUDGET.period } },
  );
  res.json({ key: owner.key, user: owner.user, team: owner.team, ...state.budget });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(
    `gateway: listening on http://127.0.0.1:${actual} (Anthropic at /llm, OpenAI at /llm/v1)`,
  );
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * The real APIs when their keys are set; otherwise the testkit's fake, for both (a
 * production gateway would not have this branch).
 */
async function providers() {
  const anthropicKey = process.env.ANTHROPIC_API_KEY;
  const openaiKey = process.env.OPENAI_API_KEY;
  let fakeUrl = '';
  if (!anthropicKey || !openaiKey) {
    const { startFakeLLM } = await import('@tokenmeter/testkit');
    const fake = await startFakeLLM({ tps: 60, ttftMs: 200, text: 'plain', tokens: 120 });
    fakeUrl = fake.url;
    console.log(`gateway: a provider key is missing; answering from the fake at ${fake.url}`);
  }
  return {
    anthropic: anthropicKey
      ? { key: anthropicKey, url: process.env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com' }
      : { key: 'fake-key', url: fakeUrl },
    openai: openaiKey
      ? { key: openaiKey, url: process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1' }
      : { key: 'fake-key', url: `${fakeUrl}/v1` },
  };
}
