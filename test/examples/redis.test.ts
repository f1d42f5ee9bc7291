/**
 * examples/redis: two instances of the example on one private redis-server share one
 * budget — spend through one shows in the other, and concurrent requests spread over both
 * never reserve more than the budget. Also runs the demo with REDIS_URL. Fails loudly when
 * redis-server is not installed (Debian: apt-get install redis-server).
 */
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoKeys } from './helpers/demo-page.js';
import { freePort, type Running, start, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;
const chatBody = {
  model: 'claude-haiku-4-5',
  max_tokens: 300,
  messages: [{ role: 'user', content: 'One budget, two processes?' }],
};

interface Budget {
  instance: string;
  spentNanos: number;
  reservedNanos: number;
  remainingNanos: number;
  openReservations: number;
}
interface Done {
  costNanos: number;
  estimated: boolean;
  usage: { inputTokens: number; outputTokens: number };
}

let redisUrl: string;
let fake: FakeLLM;
let a: Running;
let b: Running;
/** What the example's alice spent in the first test. */
let aliceSpent = 0;

async function budget(instance: Running, key: string): Promise<Budget> {
  const response = await fetch(`${instance.url}/api/budget`, {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Budget;
}

beforeAll(async () => {
  const port = await freePort();
  await start({
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ready: /Ready to accept connections()/,
    timeoutMs: 10_000,
  });
  redisUrl = `redis://127.0.0.1:${port}`;
  // ~0.9 s per answer: concurrent requests are all admitted before any of them settles.
  fake = await startFakeLLM({ apiKey: 'sk-redis', tokens: 90, tps: 100, seed: 21 });
  const env = { REDIS_URL: redisUrl, ANTHROPIC_API_KEY: 'sk-redis', ANTHROPIC_BASE_URL: fake.url };
  [a, b] = await Promise.all([
    startExample('redis/server.mjs', { ...env, INSTANCE: 'A' }),
    startExample('redis/server.mjs', { ...env, INSTANCE: 'B' }),
  ]);
}, 30_000);

afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe('examples/redis: two instances, one Redis', () => {
  it('spend through one instance is the budget of the other', async () => {
    const first = await post(`${a.url}/api/chat`, chatBody, { authorization: 'Bearer alice' });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-instance')).toBe('A');
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(textOf(first.events)).toBe(record.text);
    const done1 = eventOf(first.events, 'done') as unknown as Done;
    expect(done1.estimated).toBe(false);
    expect(done1.costNanos).toBe(haikuNanos(record.usage!.inputTokens, 90));
    expect(await budget(b, 'alice')).toMatchObject({
      instance: 'B',
      spentNanos: done1.costNanos,
      reservedNanos: 0,
    });

    const second = await post(`${b.url}/api/chat`, chatBody, { authorization: 'Bearer alice' });
    expect(second.headers.get('x-instance')).toBe('B');
    const done2 = eventOf(second.events, 'done') as unknown as Done;
    aliceSpent = done1.costNanos + done2.costNanos;
    expect(await budget(a, 'alice')).toMatchObject({
      instance: 'A',
      spentNanos: aliceSpent,
      remainingNanos: 1_000_000_000 - done1.costNanos - done2.costNanos,
    });
  });

  it('concurrent requests over both instances never reserve more than the one budget', async () => {
    // bob has $0.005 a day; each request reserves ~$0.0015 (300 tokens at $5/M + input).
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(`${(i % 2 === 0 ? a : b).url}/api/chat`, chatBody, { authorization: 'Bearer bob' }),
      ),
    );
    const admitted = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status === 402);
    expect(admitted.length + rejected.length).toBe(10);
    const reserve = Math.round(
      (eventOf(admitted[0]!.events, 'meta') as { reservedUsd: number }).reservedUsd * 1e9,
    );
    expect(reserve).toBeGreaterThan(1_500_000);
    // Each instance served five of the ten. With a budget per instance each would admit
    // floor(budget / reserve) of its five (twice that in all); one budget admits that many
    // in all, whichever instance happened to win the race for them.
    const served = (id: string) => results.filter((r) => r.headers.get('x-instance') === id);
    expect(served('A')).toHaveLength(5);
    expect(served('B')).toHaveLength(5);
    const perInstanceAlone = Math.min(5, Math.floor(5_000_000 / reserve));
    expect(admitted).toHaveLength(Math.floor(5_000_000 / reserve));
    expect(admitted.length).toBeLessThan(2 * perInstanceAlone);
    const charged = admitted.reduce(
      (sum, r) => sum + (eventOf(r.events, 'done') as unknown as Done).costNanos,
      0,
    );
    for (const instance of [a, b]) {
      expect(await budget(instance, 'bob')).toMatchObject({
        spentNanos: charged,
        reservedNanos: 0,
        openReservations: 0,
      });
    }
    expect(charged).toBeLessThanOrEqual(5_000_000);
    // Each instance logged the settlement of the streams it admitted.
    for (const [instance, id] of [
      [a, 'A'],
      [b, 'B'],
    ] as const) {
      if (admitted.some((r) => r.headers.get('x-instance') === id)) {
        await instance.waitFor(
          new RegExp(`redis ${id}: settled user=bob costNanos=\\d+ outcome=completed`),
          5_000,
        );
      }
    }
  });

  it('the demo uses the Redis store when REDIS_URL is set', async () => {
    // Database 1: the demo's users must not share spend with the example's (same key names).
    const demo = await startExample('demo/server.mjs', {
      REDIS_URL: `${redisUrl}/1`,
      TOKENMETER_DEMO_FAKE_TPS: '5000',
      TOKENMETER_DEMO_FAKE_TTFT_MS: '0',
    });
    expect(demo.output()).toMatch(/budgets and rate limits Redis at redis:\/\/127\.0\.0\.1:\d+\/1/);
    const info = (await (await fetch(`${demo.url}/api/demo`)).json()) as { store: string };
    expect(info.store).toBe('redis');
    // The demo's keys are drawn at start and printed; its user ids are not keys.
    const demoAuth = { authorization: `Bearer ${demoKeys(demo.output()).alice}` };
    const result = await post(`${demo.url}/api/chat`, { prompt: 'hi' }, demoAuth);
    expect(result.status).toBe(200);
    const done = eventOf(result.events, 'done') as unknown as Done;
    const state = (await (await fetch(`${demo.url}/api/budget`, { headers: demoAuth })).json()) as {
      budget: { spentNanos: number };
    };
    expect(state.budget.spentNanos).toBe(done.costNanos);
    // And the example's alice (database 0) did not see it.
    expect((await budget(a, 'alice')).spentNanos).toBe(aliceSpent);
  });
});
