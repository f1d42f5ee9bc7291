// @ts-check
/**
 * Budget alerts to a webhook, and the spend ledger: a metered chat route whose budgets
 * alert at 50 %, 80 % and 100 % of the day's limit. Each alert is told once per user and
 * day (across instances, with the Redis store) and posted to ALERT_WEBHOOK_URL with
 * retries — off the request path: a slow or failing webhook never delays an answer. With
 * DATABASE_URL set, every stream is also written to the PostgreSQL ledger, and
 * GET /api/spend shows the caller's spend by day and by model.
 *
 *   ALERT_WEBHOOK_URL=https://hooks.example/tokenmeter npm run --workspace examples example:budget-alerts
 *   curl -N localhost:3000/api/chat -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"messages":[{"role":"user","content":"Hi"}]}'
 *
 * Environment: ANTHROPIC_API_KEY (else the testkit's fake Claude), REDIS_URL (else the
 * memory store), DATABASE_URL (else no ledger), ALERT_WEBHOOK_URL (else alerts are logged),
 * DAILY_BUDGET_USD (default 0.01), PORT (default 3000).
 */
import Anthropic from '@anthropic-ai/sdk';
import { TokenmeterError } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';

const MODEL = 'claude-haiku-4-5';
const KEYS = new Map([
  ['key-ada', 'u-ada'],
  ['key-grace', 'u-grace'],
]);

const anthropic = await anthropicClient();
const store = process.env.REDIS_URL
  ? (await import('@tokenmeter/store-redis')).createRedisStore({ url: process.env.REDIS_URL })
  : createMemoryStore();
const ledger = process.env.DATABASE_URL
  ? (await import('@tokenmeter/ledger-postgres')).createPostgresLedger({
      connectionString: process.env.DATABASE_URL,
    })
  : undefined;
const webhook = process.env.ALERT_WEBHOOK_URL;

/**
 * Posts `payload` to the webhook: up to 5 attempts, 5 s each, backing off 0.5, 1, 2, 4 s.
 * The Idempotency-Key names the alert, so a receiver that saw an attempt whose answer was
 * lost can ignore the retry. Resolves whatever happens (failures are logged).
 * @param {string} url
 * @param {{ scope: { kind: string, id: string }, percent: number, periodStart: number }} alert
 */
export async function postAlert(url, alert) {
  const key = `${alert.scope.kind}:${alert.scope.id}:${alert.periodStart}:${alert.percent}`;
  for (let attempt = 1; attempt <= 5; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ type: 'tokenmeter.budget_alert', ...alert }),
        signal: AbortSignal.timeout(5_000),
      });
      if (response.ok) return;
      // A 4xx other than 408 / 429 will not get better by retrying.
      if (response.status < 500 && response.status !== 408 && response.status !== 429) {
        console.error(`budget-alerts: webhook refused the alert (HTTP ${response.status})`);
        return;
      }
    } catch {
      // A timeout or a refused connection: retried.
    }
    if (attempt < 5) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
  }
  console.error(`budget-alerts: webhook failed 5 times; alert ${key} not delivered`);
}

const app = express();
app.post(
  '/api/chat',
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    store,
    identify: (req) => {
      const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const user = key && KEYS.get(key);
      return user ? { user } : undefined;
    },
    budgets: {
      user: {
        limitUsd: process.env.DAILY_BUDGET_USD ?? '0.01',
        period: 'day',
        alerts: [50, 80, 100],
      },
    },
    request: (req) => ({
      model: MODEL,
      maxTokens: 256,
      provider: 'anthropic',
      input: { messages: messagesOf(req.body) },
    }),
    upstream: (req, meter) =>
      anthropic.messages.create(
        {
          model: meter.model,
          max_tokens: meter.maxTokens,
          messages: messagesOf(req.body),
          stream: true,
        },
        { signal: meter.signal },
      ),
    onBudgetAlert: (alert) => {
      console.log(
        `budget-alerts: ${alert.scope.kind}=${alert.scope.id} reached ${alert.percent} % ` +
          `(${alert.spentNanos} of ${alert.limitNanos} nano-dollars)`,
      );
      // Not awaited by tokenmeter's streams either way; awaited here only to keep order.
      return webhook ? postAlert(webhook, alert) : undefined;
    },
    onSettle: (info) => ledger?.onSettle(info),
  }),
);

/**
 * The body's `messages`: user and assistant turns of text (400 otherwise).
 * @param {unknown} body
 * @returns {Array<{ role: 'user' | 'assistant', content: string }>}
 */
function messagesOf(body) {
  const messages = /** @type {{ messages?: unknown } | null | undefined} */ (body)?.messages;
  if (
    !Array.isArray(messages) ||
    messages.length === 0 ||
    !messages.every(
      (m) => (m?.role === 'user' || m?.role === 'assistant') && typeof m.content === 'string',
    )
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      'messages must be { role: "user" | "assistant", content: "…" } turns.',
    );
  }
  return messages;
}

// The caller's spend this month, by day and by model (needs DATABASE_URL).
app.get('/api/spend', async (req, res) => {
  const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  const user = key && KEYS.get(key);
  if (!user) return void res.status(401).json({ error: { code: 'unauthenticated' } });
  if (!ledger)
    return void res
      .status(404)
      .json({ error: { code: 'no_ledger', message: 'Set DATABASE_URL.' } });
  const { spendByModel, spendByPeriod } = await import('@tokenmeter/ledger-postgres');
  const now = new Date();
  const range = {
    from: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    to: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  };
  const scope = { kind: 'user', id: user };
  res.json({
    byDay: await spendByPeriod(ledger.pool, scope, 'day', range),
    byModel: await spendByModel(ledger.pool, scope, range),
  });
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`budget-alerts: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, async () => {
    server.closeAllConnections();
    // Write what the ledger still holds before leaving (see the ledger's README).
    await ledger?.close();
    await store.shutdown?.();
    server.close(() => process.exit(0));
  });
}

/** Claude with ANTHROPIC_API_KEY; otherwise the testkit's fake in this process. */
async function anthropicClient() {
  if (process.env.ANTHROPIC_API_KEY) {
    return new Anthropic({ maxRetries: 0 });
  }
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 200, text: 'plain', tokens: 120 });
  console.log(
    `budget-alerts: no ANTHROPIC_API_KEY, using the testkit's fake Claude at ${fake.url}`,
  );
  return new Anthropic({ baseURL: fake.url, apiKey: 'fake-key', maxRetries: 0 });
}
