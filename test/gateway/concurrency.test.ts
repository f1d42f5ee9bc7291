/**
 * Concurrency limits through the gateway (issue 26, item 2): one key holding 150
 * simultaneous streams with a limit of 10 — exactly 10 reach the provider, 140 get 429 with
 * `Retry-After` and the RateLimit headers — in one process (memory store) and across three
 * processes on one Redis; after the streams end the slots are free again. Then every way a
 * stream can end gives its slot back: completion, an upstream error before or during the
 * stream, a client that leaves, an admission refused by a later scope after an earlier one
 * took a slot, a route handler that never hands a stream over. And the gateway's default
 * (16 per caller), its override and its off switch.
 *
 * Streams are held open with the fake's `hang` fault (headers, then nothing), so no count
 * depends on timing: every request is either refused or waiting at the provider until the
 * test lets it go by aborting the client.
 */
import { fileURLToPath } from 'node:url';
import type { Store } from '@tokenmeter/core';
import { anthropicGateway, type GatewayOptions } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { createRedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp } from '../helpers/app.js';
import { type Gateway, startGateway } from '../helpers/gateway.js';
import {
  type AppProcess,
  type RedisServer,
  startNodeApp,
  startRedisServer,
} from '../helpers/processes.js';
import { postSSE } from '../helpers/sse-client.js';

const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 100,
  stream: true,
  messages: [{ role: 'user' as const, content: 'Count to ten.' }],
};
const HANG = { 'x-fake-llm-fault': 'hang' };
/** Generous: nothing here waits on a timer but the test's own, and it fails by count first. */
const PATIENCE_MS = 60_000;

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 20, chunk: 5 });
});
afterAll(() => fake.close());
afterEach(() => fake.reset());

interface Call {
  response: Promise<Response | undefined>;
  controller: AbortController;
}

/** A streaming Messages call; resolves with the response (undefined once aborted). */
function call(baseUrl: string, key: string, headers: Record<string, string> = {}): Call {
  const controller = new AbortController();
  const response = fetch(`${baseUrl}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-api-key': key,
      ...headers,
    },
    body: JSON.stringify(params),
    signal: controller.signal,
  }).catch(() => undefined);
  return { response, controller };
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + PATIENCE_MS;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Starts `count` held streams spread over `urls` and waits until every one is accounted
 * for: refused (any status but 200), or arrived at the fake provider. Returns the refusals.
 */
async function flood(urls: readonly string[], key: string, count: number) {
  const calls = Array.from({ length: count }, (_, i) => call(urls[i % urls.length]!, key, HANG));
  const refused: Response[] = [];
  for (const c of calls) {
    void c.response.then((r) => {
      if (r && r.status !== 200) refused.push(r);
    });
  }
  await until(
    `${count} calls refused or at the provider`,
    () => refused.length + fake.totals.requests >= count,
  );
  return { calls, refused };
}

async function expectConcurrencyRefusal(response: Response, limit: number): Promise<void> {
  expect(response.status).toBe(429);
  expect(response.headers.get('retry-after')).toBe('1');
  expect(response.headers.get('ratelimit-policy')).toContain(`"key-concurrency";q=${limit}`);
  expect(response.headers.get('ratelimit')).toMatch(/"key-concurrency";r=0;t=1/);
  const body = (await response.json()) as {
    type: string;
    error: { type: string; message: string };
  };
  expect(body.error.type).toBe('rate_limit_error');
  expect(body.error.message).toMatch(new RegExp(`limit is ${limit} at once`));
}

/** A normal stream runs to its end (message_stop), so a slot was free for it. */
async function expectAdmittedAndComplete(baseUrl: string, key: string): Promise<void> {
  const { response } = call(baseUrl, key);
  const r = await response;
  expect(r?.status).toBe(200);
  expect(await r!.text()).toContain('message_stop');
}

async function openReservations(store: Store, id: string): Promise<number> {
  return (await store.getState({ kind: 'key', id })).reservations.open;
}

describe('one process, memory store', () => {
  let gateway: Gateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  function start(store: Store, extra: Partial<GatewayOptions> = {}) {
    return startGateway(express5, anthropicGateway, {
      apiKey: 'server-key',
      baseURL: fake.url,
      store,
      identify: (key) => (key ? { key } : undefined),
      forwardHeaders: ['x-fake-llm-*'],
      idleTimeoutMs: 300_000,
      ...extra,
    });
  }

  it('150 simultaneous streams on one key, limit 10: 10 reach the provider, 140 get 429; then the slots are free', async () => {
    const store = createMemoryStore();
    gateway = await start(store, { rateLimits: { key: [{ kind: 'concurrency', limit: 10 }] } });
    const { calls, refused } = await flood([gateway.url], 'k-flood', 150);

    expect(fake.totals.requests).toBe(10);
    expect(refused).toHaveLength(140);
    for (const r of refused) await expectConcurrencyRefusal(r, 10);
    expect(await openReservations(store, 'k-flood')).toBe(10);

    // The clients leave: each stream ends, its slot comes back.
    for (const c of calls) c.controller.abort();
    await until(
      'every slot given back',
      async () => (await openReservations(store, 'k-flood')) === 0,
    );
    expect(gateway.settles).toHaveLength(10);
    expect(gateway.settles.every((s) => s.outcome === 'client_disconnected')).toBe(true);

    await expectAdmittedAndComplete(gateway.url, 'k-flood');
    expect(fake.totals.requests).toBe(11);
    expect(await openReservations(store, 'k-flood')).toBe(0);
  });

  it('the gateway limits each caller to 16 open streams by default; rateLimits overrides it, false turns it off', async () => {
    let store = createMemoryStore();
    gateway = await start(store);
    let flooded = await flood([gateway.url], 'k-default', 20);
    expect(fake.totals.requests).toBe(16);
    expect(flooded.refused).toHaveLength(4);
    for (const r of flooded.refused) await expectConcurrencyRefusal(r, 16);
    // Another caller has slots of its own.
    await expectAdmittedAndComplete(gateway.url, 'k-other');
    for (const c of flooded.calls) c.controller.abort();
    await until('slots back', async () => (await openReservations(store, 'k-default')) === 0);
    await gateway.close();
    fake.reset();

    store = createMemoryStore();
    gateway = await start(store, { rateLimits: { key: [{ kind: 'concurrency', limit: 3 }] } });
    flooded = await flood([gateway.url], 'k-own', 5);
    expect(fake.totals.requests).toBe(3);
    expect(flooded.refused).toHaveLength(2);
    for (const r of flooded.refused) await expectConcurrencyRefusal(r, 3);
    for (const c of flooded.calls) c.controller.abort();
    await until('slots back', async () => (await openReservations(store, 'k-own')) === 0);
    await gateway.close();
    fake.reset();

    store = createMemoryStore();
    gateway = await start(store, { callerConcurrency: false });
    flooded = await flood([gateway.url], 'k-free', 20);
    expect(fake.totals.requests).toBe(20);
    expect(flooded.refused).toHaveLength(0);
    for (const c of flooded.calls) c.controller.abort();
  });

  it('refuses a callerConcurrency that is not a positive whole number', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '16' as never, true as never]) {
      expect(() =>
        anthropicGateway({
          apiKey: 'k',
          store: createMemoryStore(),
          identify: () => undefined,
          callerConcurrency: bad,
        }),
      ).toThrow(/callerConcurrency must be a positive whole number/);
    }
  });

  it('an upstream error, before the stream or during it, gives the slot back', async () => {
    const store = createMemoryStore();
    gateway = await start(store, { rateLimits: { key: [{ kind: 'concurrency', limit: 1 }] } });
    const before = await call(gateway.url, 'k-err', { 'x-fake-llm-fault': '500' }).response;
    expect(before?.status).toBe(500);
    await before?.text();
    await until(
      'slot back after a provider 500',
      async () => (await openReservations(store, 'k-err')) === 0,
    );
    const during = await call(gateway.url, 'k-err', {
      'x-fake-llm-fault': 'reset-mid-stream',
      'x-fake-llm-fault-after': '5',
    }).response;
    expect(during?.status).toBe(200);
    await during?.text().catch(() => '');
    await until(
      'slot back after a reset mid-stream',
      async () => (await openReservations(store, 'k-err')) === 0,
    );
    await expectAdmittedAndComplete(gateway.url, 'k-err');
    expect(gateway.settles.map((s) => s.outcome)).toEqual(
      expect.arrayContaining(['upstream_error', 'completed']),
    );
  });

  it('a later scope that refuses gives back the slot an earlier scope took', async () => {
    const store = createMemoryStore();
    gateway = await start(store, {
      identify: (key) => (key ? { key, team: 'search' } : undefined),
      rateLimits: {
        key: [{ kind: 'concurrency', limit: 5 }],
        team: [{ kind: 'concurrency', limit: 1 }],
      },
    });
    const holder = call(gateway.url, 'k-a', HANG);
    await until('the team slot is taken', () => fake.totals.requests === 1);
    const refused = await call(gateway.url, 'k-b').response;
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get('ratelimit-policy')).toContain('"team-concurrency";q=1');
    // k-b's own slot was taken by admission, then given back when the team refused.
    expect(await openReservations(store, 'k-b')).toBe(0);
    holder.controller.abort();
    await until(
      'team slot back',
      async () => (await store.getState({ kind: 'team', id: 'search' })).reservations.open === 0,
    );
    await expectAdmittedAndComplete(gateway.url, 'k-b');
  });
});

describe('costTrackedSSE(): opt-in, and a handover timeout gives the slot back', () => {
  it('a route handler that never hands a stream over ends by the handover timeout and frees its slot', async () => {
    const store = createMemoryStore();
    const app = await startApp({
      express: express5,
      middleware: {
        store,
        identify: identifyByHeader,
        rateLimits: { user: [{ kind: 'concurrency', limit: 1 }] },
        handoverTimeoutMs: 200,
      },
      handler: () => {},
    });
    try {
      const body = { model: 'claude-haiku-4-5', max_tokens: 50, messages: params.messages };
      const first = postSSE(app.url, body, { headers: { 'x-user': 'u1' } });
      await until('the first stream is open', () => app.activeStreams() === 1);
      const refused = await postSSE(app.url, body, { headers: { 'x-user': 'u1' } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('ratelimit-policy')).toBe('"user-concurrency";q=1');
      expect(refused.body).toMatchObject({ error: { code: 'rate_limited', limit: 'concurrency' } });
      expect((await first).status).toBe(200);
      await app.waitForSettles(1, PATIENCE_MS);
      expect(app.settles[0]?.outcome).toBe('handler_error');
      const state = await store.getState({ kind: 'user', id: 'u1' });
      expect(state.reservations.open).toBe(0);
      const again = await postSSE(app.url, body, { headers: { 'x-user': 'u1' } });
      expect(again.status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('three processes on one Redis', () => {
  const script = fileURLToPath(
    new URL('../fixtures/gateway-concurrency-instance.mjs', import.meta.url),
  );
  const PREFIX = 'gw-conc:';
  let redis: RedisServer;
  let store: Store;
  const apps: AppProcess[] = [];
  beforeAll(async () => {
    redis = await startRedisServer();
    for (let i = 0; i < 3; i++) {
      apps.push(
        await startNodeApp(script, {
          REDIS_URL: redis.url,
          UPSTREAM_URL: fake.url,
          PREFIX,
          LIMIT: '10',
        }),
      );
    }
    store = createRedisStore({ url: redis.url, prefix: PREFIX });
  }, PATIENCE_MS);
  afterAll(async () => {
    await store?.shutdown?.();
    await Promise.all(apps.map((a) => a.stop()));
    await redis?.stop();
  });

  it('150 simultaneous streams on one key over 3 gateways, limit 10: 10 reach the provider, 140 get 429; then the slots are free', async () => {
    const urls = apps.map((a) => `http://127.0.0.1:${a.port}/llm`);
    // Each process connects to Redis and loads its scripts first, as a running server has.
    for (const url of urls) await expectAdmittedAndComplete(url, 'k-warm-up');
    fake.reset();
    const { calls, refused } = await flood(urls, 'k-shared', 150);

    expect(fake.totals.requests).toBe(10);
    expect(refused).toHaveLength(140);
    for (const r of refused) await expectConcurrencyRefusal(r, 10);
    expect(await openReservations(store, 'k-shared')).toBe(10);

    for (const c of calls) c.controller.abort();
    await until(
      'every slot given back',
      async () => (await openReservations(store, 'k-shared')) === 0,
    );
    // Each process admits a new stream again.
    for (const url of urls) await expectAdmittedAndComplete(url, 'k-shared');
    expect(fake.totals.requests).toBe(13);
    expect(await openReservations(store, 'k-shared')).toBe(0);
  });
});
