// @ts-check
/**
 * Several instances of one app, one budget: the Redis store keeps budgets, rate limits and
 * reservations in Redis, and every admission is one atomic Lua script there, so concurrent
 * requests spread over any number of processes can never together overspend.
 *
 * Start Redis and two instances, then stream through either — the budget is the same:
 *
 *   redis-server --port 6379 --save '' --appendonly no
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3001 npm run --workspace examples example:redis
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3002 npm run --workspace examples example:redis
 *   curl -N localhost:3001/api/chat -H 'authorization: Bearer alice' -H 'content-type: application/json' \
 *     -d '{"model":"claude-haiku-4-5","max_tokens":300,"messages":[{"role":"user","content":"Hi"}]}'
 *   curl localhost:3002/api/budget -H 'authorization: Bearer alice'
 *
 * With ANTHROPIC_API_KEY set it calls the Anthropic API (ANTHROPIC_BASE_URL is honoured);
 * without, each instance runs a fake Claude from @tokenmeter/testkit in its process.
 */
import Anthropic from '@anthropic-ai/sdk';
import { nanosToUsd, TokenmeterError, usd } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createRedisStore } from '@tokenmeter/store-redis';
import express from 'express';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const port = Number(process.env.PORT ?? 3000);
const instance = process.env.INSTANCE ?? `:${port}`;

/** Bearer key → daily budget in USD: stands in for your real auth and plans. */
const USERS = new Map([
  ['alice', '1.00'],
  ['bob', '0.005'],
]);
/** @param {import('node:http').IncomingMessage} req */
const userOf = (req) => {
  const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  return key !== undefined && USERS.has(key) ? key : undefined;
};
/** @param {string} id */
const budgetOf = (id) => ({ limitUsd: USERS.get(id) ?? '0', period: /** @type {const} */ ('day') });

// One client per process; the store quits it in shutdown(). Commands fail fast (no
// offline queue), so a Redis outage answers 503 instead of hanging requests.
const store = createRedisStore({ url: REDIS_URL });
const anthropic = await anthropicClient();
const app = express();
app.use((_req, res, next) => {
  res.set('X-Instance', instance);
  next();
});

app.post(
  '/api/chat',
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    store,
    identify: (req) => {
      const user = userOf(req);
      return user === undefined ? undefined : { user };
    },
    budgets: { user: budgetOf },
    rateLimits: { user: [{ kind: 'requests', limit: 60, windowMs: 60_000 }] },
    maxTokensLimit: 4_096,
    upstream: (req, meter) =>
      anthropic.messages.create(
        {
          model: meter.model,
          max_tokens: meter.maxTokens,
          messages: /** @type {{ messages: Anthropic.MessageParam[] }} */ (req.body).messages,
          stream: true,
        },
        { signal: meter.signal },
      ),
    onSettle: ({ scopes, outcome, final }) => {
      console.log(
        `redis ${instance}: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} ` +
          `costNanos=${final.costNanos} outcome=${outcome}`,
      );
    },
  }),
);

app.get('/api/budget', async (req, res) => {
  const user = userOf(req);
  if (!user) {
    res.status(401).json({ error: { code: 'unauthenticated', message: 'Send a bearer key.' } });
    return;
  }
  try {
    const { limitUsd, period } = budgetOf(user);
    const state = await store.getState(
      { kind: 'user', id: user },
      { budget: { limitNanos: usd(limitUsd), period } },
    );
    const budget = /** @type {import('@tokenmeter/core').BudgetState} */ (state.budget);
    res.json({
      instance,
      user,
      limitNanos: budget.limitNanos,
      spentNanos: budget.spentNanos,
      reservedNanos: budget.reservedNanos,
      remainingNanos: budget.remainingNanos,
      remainingUsd: nanosToUsd(budget.remainingNanos),
      openReservations: state.reservations.open,
    });
  } catch (error) {
    if (!(TokenmeterError.isInstance(error) && error.code === 'store_unavailable')) throw error;
    res
      .status(503)
      .json({ error: { code: 'store_unavailable', message: 'Redis is unavailable.' } });
  }
});

const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`redis ${instance}: store at ${new URL(REDIS_URL).host}`);
  console.log(`redis ${instance}: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => {
      store.shutdown().finally(() => process.exit(0));
    });
  });
}

/** The real API when ANTHROPIC_API_KEY is set; otherwise the testkit's fake in this process. */
async function anthropicClient() {
  if (process.env.ANTHROPIC_API_KEY) return new Anthropic();
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`redis ${instance}: no ANTHROPIC_API_KEY, using the fake Claude at ${fake.url}`);
  return new Anthropic({ baseURL: fake.url, apiKey: 'fake-key' });
}
