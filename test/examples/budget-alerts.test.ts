/**
 * examples/budget-alerts: the example as a child process with a fake Claude, a private
 * PostgreSQL (DATABASE_URL) and a webhook receiver started here. The 50 % alert is posted
 * once, retried through two failures under one Idempotency-Key, without delaying any
 * answer; the ledger's spend by day and model equals the answers' costs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type PrivatePostgres, startPostgres } from '@tokenmeter/ledger-postgres/testing';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post } from './helpers/sse.js';

let fake: FakeLLM;
let db: PrivatePostgres;
let app: Running;
let hook: Server;
const received: Array<{ key: string | undefined; body: Record<string, unknown>; status: number }> =
  [];

beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-alerts', tokens: 120, seed: 8, text: 'plain' });
  db = await startPostgres();
  // Fails twice (503), then accepts: the example must retry.
  hook = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => {
      raw += c;
    });
    req.on('end', () => {
      const status = received.length < 2 ? 503 : 204;
      received.push({
        key: req.headers['idempotency-key'] as string | undefined,
        body: JSON.parse(raw),
        status,
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const { port } = hook.address() as AddressInfo;
  app = await startExample('budget-alerts/server.mjs', {
    ANTHROPIC_API_KEY: 'sk-alerts',
    ANTHROPIC_BASE_URL: fake.url,
    DATABASE_URL: db.url,
    ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
    DAILY_BUDGET_USD: '0.003',
  });
}, 60_000);
afterAll(async () => {
  await stopAll();
  await fake?.close();
  hook?.close();
  db?.destroy();
});

it('posts the 50 % alert once (retried through failures), never delaying an answer; the ledger agrees', async () => {
  const costs: number[] = [];
  const times: number[] = [];
  // claude-haiku-4-5 at $1 / $5 per million: each 120-token answer costs about $0.0006.
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const result = await post(
      `${app.url}/api/chat`,
      { messages: [{ role: 'user', content: `Frage ${i}` }] },
      { authorization: 'Bearer key-ada' },
    );
    times.push(performance.now() - t);
    expect(result.status).toBe(200);
    costs.push(eventOf(result.events, 'done').costNanos as number);
  }
  const byHand = fake.requests.reduce(
    (sum, r) => sum + r.usage!.inputTokens * 1_000 + r.usage!.outputTokens * 5_000,
    0,
  );
  expect(costs.reduce((a, b) => a + b, 0)).toBe(byHand);
  // The webhook's failures and backoff (0.5 s, then 1 s) never held an answer: an answer
  // that waited for them would take 1.5 s longer than the others (one alert, so at most one
  // answer could). Measured against the fastest answer, so a busy machine does not fail it.
  expect(Math.max(...times)).toBeLessThan(Math.min(...times) + 1_400);
  const deadline = Date.now() + 10_000;
  while (received.filter((r) => r.status === 204).length < 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(received.map((r) => r.status)).toEqual([503, 503, 204]);
  expect(new Set(received.map((r) => r.key)).size).toBe(1);
  expect(received[0]!.body).toMatchObject({
    type: 'tokenmeter.budget_alert',
    scope: { kind: 'user', id: 'u-ada' },
    percent: 50,
    limitNanos: 3_000_000,
  });
  expect(received[0]!.body.spentNanos as number).toBeGreaterThanOrEqual(1_500_000);

  const spend = (await (
    await fetch(`${app.url}/api/spend`, { headers: { authorization: 'Bearer key-ada' } })
  ).json()) as {
    byDay: Array<{ costNanos: number; streams: number }>;
    byModel: Array<{ model: string; costNanos: number }>;
  };
  expect(spend.byDay).toHaveLength(1);
  expect(spend.byDay[0]).toMatchObject({ costNanos: byHand, streams: 3 });
  expect(spend.byModel).toEqual([{ model: 'claude-haiku-4-5', costNanos: byHand, streams: 3 }]);
}, 60_000);
