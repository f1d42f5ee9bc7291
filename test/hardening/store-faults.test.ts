/**
 * Hardening matrix — the store misbehaves: Redis down at admission, down at settlement,
 * slow beyond the store timeout, restarted with an empty script cache, connections
 * dropped. Every request is answered by policy within the store timeout; no settlement is
 * silently dropped.
 */
import type { Store } from '@tokenmeter/core';
import type { AdmitRequest } from '@tokenmeter/core/store';
import { costTrackedSSE, type SettleInfo } from '@tokenmeter/express';
import { createRedisStore, type RedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { BUDGET, body, startHarness } from '../helpers/harness.js';
import { type RedisServer, startRedisServer } from '../helpers/processes.js';
import { eventData, postSSE } from '../helpers/sse-client.js';

let fake: FakeLLM;
let redis: RedisServer;
let store: RedisStore;
let app: TestApp;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 30, seed: 9 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown();
  await redis?.stop();
  fake.reset();
});

/** The one store timeout: set on the store, used by the middleware as it is. */
const STORE_TIMEOUT_MS = 500;
/**
 * What a busy 2-core machine may add to it before the answer reaches the client: as much as
 * can be allowed while still telling one timeout from two in a row (a retry, or a second
 * store call waiting out its own), which would take at least 2 × STORE_TIMEOUT_MS.
 */
const SLACK_MS = 450;

async function setup(extra = {}) {
  // DEBUG SLEEP stands in for a Redis that is alive but too slow.
  redis = await startRedisServer(['--enable-debug-command', 'yes']);
  store = createRedisStore({ url: redis.url, timeoutMs: STORE_TIMEOUT_MS, logger: { warn() {} } });
  app = await startHarness(fake, store, extra);
}

describe('store faults', () => {
  it('Redis down at admission: 503 store_unavailable within the store timeout (fail closed)', async () => {
    await setup();
    expect((await postSSE(app.url, body(), { headers: { 'x-user': 's-down' } })).status).toBe(200);
    await redis.stop();
    const started = performance.now();
    const result = await postSSE(app.url, body(), { headers: { 'x-user': 's-down' } });
    expect(performance.now() - started).toBeLessThan(STORE_TIMEOUT_MS + SLACK_MS);
    expect(result.status).toBe(503);
    expect(result.body).toMatchObject({ error: { code: 'store_unavailable' } });
    expect(result.headers.get('retry-after')).toBe('1');
    expect(fake.requests).toHaveLength(1); // the refused request never reached the provider
  });

  it('Redis down at admission with fail open: admitted unmetered, with a logged warning', async () => {
    await setup({ storeFailure: 'open' });
    await redis.stop();
    const result = await postSSE(app.url, body(), { headers: { 'x-user': 's-open' } });
    expect(result.status).toBe(200);
    expect(result.events.at(-1)!.event).toBe('done');
    expect(app.warnings.join('\n')).toMatch(/fail open\); nothing is reserved/);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.recorded).toBe(false);
    expect(settle!.unmetered).toBe(true);
  });

  it('Redis down at settlement: retried, then reported for reconciliation, never dropped', async () => {
    const failures: Array<{ info: SettleInfo; error: unknown }> = [];
    await setup({
      onSettleFailure: (info: SettleInfo, error: unknown) => void failures.push({ info, error }),
    });
    const result = await postSSE(app.url, body(), { headers: { 'x-user': 's-settle' } });
    // Kill Redis during the next stream's time to first token.
    const pending = postSSE(app.url, body(), {
      headers: { 'x-user': 's-settle', 'x-fake-llm-ttft-ms': '600' },
    });
    await new Promise((r) => setTimeout(r, 200));
    await redis.stop();
    const second = await pending;
    expect(result.status).toBe(200);
    expect(second.events.at(-1)!.event).toBe('done'); // the user still gets the answer and its cost
    const settles = await app.waitForSettles(2, 15_000);
    expect(settles[1]!.recorded).toBe(false);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.info.final.costNanos).toBe(
      eventData<{ costNanos: number }>(second, 'done').costNanos,
    );
    expect(failures[0]!.info.final.costNanos).toBeGreaterThan(0);
  });

  it('Redis slower than the store timeout: 503 in bounded time, then normal service', async () => {
    await setup();
    const admin = new Redis(redis.url);
    try {
      const sleeping = admin.call('DEBUG', 'SLEEP', '1.5').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
      const started = performance.now();
      const slow = await postSSE(app.url, body(), { headers: { 'x-user': 's-slow' } });
      // Answered within the one store timeout: the failed admission's clean-up (release by
      // key) runs in the background, never before the 503.
      expect(performance.now() - started).toBeGreaterThanOrEqual(STORE_TIMEOUT_MS - 10);
      expect(performance.now() - started).toBeLessThan(STORE_TIMEOUT_MS + SLACK_MS);
      expect(slow.status).toBe(503);
      await sleeping;
      await new Promise((r) => setTimeout(r, 200));
      expect((await postSSE(app.url, body(), { headers: { 'x-user': 's-slow' } })).status).toBe(
        200,
      );
    } finally {
      admin.disconnect();
    }
    // The admission that answered late is released in the background: soon nothing is held.
    await expect
      .poll(
        async () =>
          (await store.getState({ kind: 'user', id: 's-slow' }, { budget: BUDGET })).budget!
            .reservedNanos,
        { timeout: 5_000, interval: 50 },
      )
      .toBe(0);
  });

  it('an admission whose reply was lost is released by its key in the background, not held to its TTL', async () => {
    redis = await startRedisServer();
    store = createRedisStore({ url: redis.url, timeoutMs: 300, logger: { warn() {} } });
    const inner = store;
    const admitted: AdmitRequest[] = [];
    const keyCalls: string[] = [];
    let loseNext = true;
    let failKeyReleases = 1; // admitAll's own attempt fails too: the store is "still down"
    const lossy: Store = {
      admit: async (request) => {
        admitted.push(request);
        const result = await inner.admit(request);
        if (loseNext) {
          loseNext = false;
          throw new Error('connection lost after the script ran');
        }
        return result;
      },
      settle: (id, actual) => inner.settle(id, actual),
      extend: (id, request) => inner.extend(id, request),
      release: (id) => inner.release(id),
      getState: (scope, policy) => inner.getState(scope, policy),
      now: () => inner.now(),
      releaseByKey: async (scope, key) => {
        keyCalls.push(key);
        if (failKeyReleases-- > 0) throw new Error('still down');
        return inner.releaseByKey(scope, key);
      },
    };
    app = await startHarness(fake, lossy, { storeTimeoutMs: 400 });
    const user = { kind: 'user', id: 's-lost' };
    const started = performance.now();
    const lost = await postSSE(app.url, body(), { headers: { 'x-user': 's-lost' } });
    expect(performance.now() - started).toBeLessThan(1_000); // the 503 waits for no retry
    expect(lost.status).toBe(503);
    const key = admitted[0]!.requestKey!;
    expect(typeof key).toBe('string');
    expect(keyCalls).toEqual([key]);
    // The admission ran: held for now, with nobody holding its id.
    expect((await inner.getState(user, { budget: BUDGET })).reservations.open).toBe(1);
    // The middleware's retry (after 1 s) releases it by key.
    let state = await inner.getState(user, { budget: BUDGET });
    for (let i = 0; i < 40 && state.reservations.open > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = await inner.getState(user, { budget: BUDGET });
    }
    expect(keyCalls).toEqual([key, key]);
    expect(state.reservations.open).toBe(0);
    expect(state.budget!.reservedNanos).toBe(0);
    expect(state.budget!.spentNanos).toBe(0);
    expect(state.reservations.expired).toBe(0);

    // An admitted request's key is its request id, in the header and the meta event.
    const ok = await postSSE(app.url, body(), { headers: { 'x-user': 's-lost' } });
    expect(ok.status).toBe(200);
    const requestKey = admitted.at(-1)!.requestKey;
    expect(requestKey).not.toBe(key);
    expect(ok.headers.get('x-request-id')).toBe(requestKey);
    const meta = ok.events.find((e) => e.event === 'meta');
    expect((meta!.json as { requestId: string }).requestId).toBe(requestKey);
  });

  it("one store timeout: a storeTimeoutMs that differs from the store's own is refused at creation", async () => {
    redis = await startRedisServer();
    store = createRedisStore({
      url: redis.url,
      timeoutMs: STORE_TIMEOUT_MS,
      logger: { warn() {} },
    });
    expect(() =>
      costTrackedSSE({ store, identify: () => ({ user: 'x' }), storeTimeoutMs: 400 }),
    ).toThrow(/set the store timeout once/);
    expect(() =>
      costTrackedSSE({ store, identify: () => ({ user: 'x' }), storeTimeoutMs: STORE_TIMEOUT_MS }),
    ).not.toThrow();
  });

  it('script cache emptied (restart/failover) and connections dropped: admissions work again', async () => {
    await setup();
    const admin = new Redis(redis.url);
    try {
      expect((await postSSE(app.url, body(), { headers: { 'x-user': 's-flush' } })).status).toBe(
        200,
      );
      await admin.script('FLUSH');
      expect((await postSSE(app.url, body(), { headers: { 'x-user': 's-flush' } })).status).toBe(
        200,
      );
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await new Promise((r) => setTimeout(r, 300));
      const after = await postSSE(app.url, body(), { headers: { 'x-user': 's-flush' } });
      expect(after.status).toBe(200);
      expect(after.events.at(-1)!.event).toBe('done');
    } finally {
      admin.disconnect();
    }
    const state = await store.getState({ kind: 'user', id: 's-flush' }, { budget: BUDGET });
    const settles = await app.waitForSettles(3);
    expect(state.budget!.spentNanos).toBe(settles.reduce((s, x) => s + x.final.costNanos, 0));
  });
});
