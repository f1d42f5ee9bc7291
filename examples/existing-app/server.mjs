// @ts-check
/**
 * Mounting tokenmeter in an app that already exists.
 *
 * The app below had API-key auth that sets `req.user`, JSON routes and a health check
 * before tokenmeter; none of that changes. One new route, POST /api/chat, streams Claude
 * through costTrackedSSE(): who pays comes from `req.user` (user and team), budgets come
 * from the user's plan and a monthly team budget, and the route handler hands its
 * provider stream to `res.locals.tokenmeter` (the non-terminal style, for apps that want
 * their own handler). GET /api/usage shows what the store knows.
 *
 *   npm run --workspace examples example:existing-app
 *   curl -N localhost:3000/api/chat -H 'x-api-key: key-ada' -H 'content-type: application/json' \
 *     -d '{"model":"claude-haiku-4-5","max_tokens":300,"messages":[{"role":"user","content":"Hi"}]}'
 *
 * With ANTHROPIC_API_KEY set it calls the Anthropic API (ANTHROPIC_BASE_URL is honoured);
 * without, a fake Claude from @tokenmeter/testkit runs in this process.
 */
import Anthropic from '@anthropic-ai/sdk';
import { usd } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';

// ---------------------------------------------------------------------------------------
// The app as it was: accounts, auth, routes. tokenmeter does not touch any of it.

/** @typedef {{ id: string, name: string, teamId: string, plan: 'free' | 'pro' }} Account */

/** @type {Map<string, Account>} API key → account (a real app looks up a hashed key). */
const ACCOUNTS = new Map([
  ['key-ada', { id: 'u-ada', name: 'Ada', teamId: 'team-research', plan: 'pro' }],
  ['key-linus', { id: 'u-linus', name: 'Linus', teamId: 'team-research', plan: 'free' }],
]);

/** @type {express.RequestHandler} */
function apiKeyAuth(req, res, next) {
  const account = ACCOUNTS.get(req.get('x-api-key') ?? '');
  if (!account) {
    res.status(401).json({ error: { code: 'unauthenticated', message: 'Send x-api-key.' } });
    return;
  }
  req.account = account;
  next();
}

const app = express();
const notes = /** @type {string[]} */ ([]);
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});
app.get('/api/me', apiKeyAuth, (req, res) => {
  res.json(req.account);
});
app.post('/api/notes', apiKeyAuth, express.json(), (req, res) => {
  notes.push(String(req.body?.text ?? ''));
  res.status(201).json({ count: notes.length });
});

// ---------------------------------------------------------------------------------------
// What tokenmeter adds: one store, one metered route, one usage route.

const anthropic = await anthropicClient();
const store = createMemoryStore(); // createRedisStore({ url: process.env.REDIS_URL }) for many instances

/** Daily budget per plan; the team shares a monthly one. */
const PLANS = {
  free: { limitUsd: '0.01', period: /** @type {const} */ ('day') },
  pro: { limitUsd: '5.00', period: /** @type {const} */ ('day') },
};
const TEAM_BUDGET = { limitUsd: '50.00', period: /** @type {const} */ ('month') };
const USER_LIMITS = [
  { kind: /** @type {const} */ ('requests'), limit: 20, windowMs: 60_000 },
  { kind: /** @type {const} */ ('tokens'), limit: 200_000, windowMs: 60_000 },
];

app.post(
  '/api/chat',
  apiKeyAuth, // the app's own auth, unchanged: 401 comes from here
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    store,
    // Who pays: the authenticated account and its team — never the request body.
    identify: (req) => {
      const account = /** @type {express.Request} */ (req).account;
      return account && { user: account.id, team: account.teamId };
    },
    budgets: {
      user: (_id, req) => PLANS[/** @type {express.Request} */ (req).account?.plan ?? 'free'],
      team: TEAM_BUDGET,
    },
    rateLimits: { user: USER_LIMITS },
    maxTokensLimit: 4_096,
    // The body is an Anthropic Messages request; the default `request` reads model,
    // max_tokens and messages from it. No `upstream`: the handler below streams.
  }),
  async (req, res) => {
    const meter = /** @type {import('@tokenmeter/express').MeteredStream} */ (
      res.locals.tokenmeter
    );
    const body = /** @type {{ messages: Anthropic.MessageParam[], system?: unknown }} */ (req.body);
    try {
      await meter.stream(
        anthropic.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: body.messages,
            ...(typeof body.system === 'string' ? { system: body.system } : {}),
            stream: true,
          },
          { signal: meter.signal },
        ),
      );
    } catch (error) {
      await meter.fail(error); // never leave a reservation open
    }
  },
);

app.get('/api/usage', apiKeyAuth, async (req, res) => {
  const account = /** @type {Account} */ (req.account);
  const toPolicy = (/** @type {{ limitUsd: string, period: 'day' | 'month' }} */ b) => ({
    budget: { limitNanos: usd(b.limitUsd), period: b.period },
  });
  const [user, team] = await Promise.all([
    store.getState({ kind: 'user', id: account.id }, toPolicy(PLANS[account.plan])),
    store.getState({ kind: 'team', id: account.teamId }, toPolicy(TEAM_BUDGET)),
  ]);
  res.json({
    user: { id: account.id, plan: account.plan, ...user.budget },
    team: { id: account.teamId, ...team.budget },
  });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`existing-app: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * The real API when ANTHROPIC_API_KEY is set; otherwise the testkit's fake Claude in this
 * process (a production app would not have this branch).
 */
async function anthropicClient() {
  if (process.env.ANTHROPIC_API_KEY) return new Anthropic();
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`existing-app: no ANTHROPIC_API_KEY, using the fake Claude at ${fake.url}`);
  return new Anthropic({ baseURL: fake.url, apiKey: 'fake-key' });
}
