/**
 * Hardening matrix — the app process is killed mid-stream. Its reservation stays open
 * until its TTL, then the store expires it exactly once and charges the reserved amount
 * (the documented 'charge-reserved' policy); another instance keeps serving meanwhile.
 */
import { fileURLToPath } from 'node:url';
import { createRedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type AppProcess,
  type RedisServer,
  startNodeApp,
  startRedisServer,
} from '../helpers/processes.js';
import { postSSE } from '../helpers/sse-client.js';

const script = fileURLToPath(new URL('../fixtures/redis-app-instance.mjs', import.meta.url));
const body = {
  model: 'claude-haiku-4-5',
  max_tokens: 200,
  messages: [{ role: 'user', content: 'Write a poem.' }],
};
const budget = { limitNanos: 1_000_000_000, period: 'day' as const };

let redis: RedisServer;
let fake: FakeLLM;
const apps: AppProcess[] = [];
beforeAll(async () => {
  redis = await startRedisServer();
  fake = await startFakeLLM({ tps: 0 });
  for (const name of ['a', 'b']) {
    apps.push(
      await startNodeApp(script, {
        REDIS_URL: redis.url,
        UPSTREAM_URL: fake.url,
        BUDGET_NANOS: String(budget.limitNanos),
        PREFIX: 'kill:',
        TTFT_MS: name === 'a' ? '10000' : '0',
        TOTAL_TIMEOUT_MS: '1500',
        RESERVATION_TTL_MS: '2500',
      }),
    );
  }
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await fake?.close();
  await redis?.stop();
});

it('a killed instance’s reservation expires after its TTL, charged as reserved; the other instance serves', async () => {
  const [a, b] = apps as [AppProcess, AppProcess];
  const store = createRedisStore({ url: redis.url, prefix: 'kill:' });
  try {
    let reservedUsd = 0;
    const stream = postSSE(`http://127.0.0.1:${a.port}/chat`, body, {
      headers: { 'x-user': 'victim' },
      abortWhen: (event) => {
        if (event.event !== 'meta') return false;
        reservedUsd = (event.json as { reservedUsd: number }).reservedUsd;
        a.child.kill('SIGKILL'); // the process dies mid-stream, without settling
        return true;
      },
    });
    await stream.catch(() => undefined);
    await new Promise((r) => a.child.once('exit', r));
    const reserved = Math.round(reservedUsd * 1e9);
    expect(reserved).toBeGreaterThan(0);
    const during = await store.getState({ kind: 'user', id: 'victim' }, { budget });
    expect(during.reservations.open).toBe(1);
    expect(during.budget!.reservedNanos).toBe(reserved);

    // Another instance keeps serving the same user meanwhile.
    const other = await postSSE(`http://127.0.0.1:${b.port}/chat`, body, {
      headers: { 'x-user': 'victim' },
    });
    expect(other.status).toBe(200);
    const done = other.events.find((e) => e.event === 'done')!.json as { costNanos: number };

    await new Promise((r) => setTimeout(r, 2_700));
    const after = await store.getState({ kind: 'user', id: 'victim' }, { budget });
    expect(after.reservations).toMatchObject({ open: 0, expired: 1, expiredNanos: reserved });
    expect(after.budget!.reservedNanos).toBe(0);
    expect(after.budget!.spentNanos).toBe(reserved + done.costNanos);
  } finally {
    await store.shutdown();
  }
});
