/**
 * The failure policy against real faults: Redis killed mid-load, Redis hung (SIGSTOP),
 * Redis restarted with an empty script cache, `SCRIPT FLUSH`, a store started before
 * Redis, a user's client with an offline queue, and shutdown. Every call must answer
 * within the timeout — success, or `store_unavailable` — with no unhandled rejection, and
 * the store must work again as soon as Redis is back.
 */
import { type Store, TokenmeterError } from '@tokenmeter/core';
import type { AdmitRequest } from '@tokenmeter/core/store';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { recommendedRedisOptions } from './client.js';
import { freePort, type RedisProcess, redisCli, startRedis } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';

// A timer on a busy CI machine can fire late; the store itself adds nothing to timeoutMs.
const MARGIN_MS = 200;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
const servers: RedisProcess[] = [];
const stores: Store[] = [];

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  expect(unhandled).toEqual([]);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await Promise.all(stores.map((store) => store.shutdown?.().catch(() => {})));
  await Promise.all(servers.map((server) => server.stop()));
});

async function redis(port?: number): Promise<RedisProcess> {
  const server = await startRedis(port === undefined ? {} : { port });
  servers.push(server);
  return server;
}

function collectingLogger() {
  const messages: string[] = [];
  return { messages, warn: (message: string) => void messages.push(message) };
}

function track<T extends Store>(store: T): T {
  stores.push(store);
  return store;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function request(id: string, extra: Partial<AdmitRequest> = {}): AdmitRequest {
  return {
    scope: { kind: 'user', id },
    reserveNanos: 1_000,
    estimatedTokens: 10,
    ttlMs: 60_000,
    budget: { limitNanos: 1_000_000_000, period: 'day' },
    rateLimits: [{ kind: 'requests', limit: 1_000_000, windowMs: 60_000 }],
    ...extra,
  };
}

interface Sample {
  readonly ms: number;
  readonly at: number;
  readonly error?: unknown;
}

async function timed(samples: Sample[], call: () => Promise<unknown>): Promise<boolean> {
  const start = performance.now();
  try {
    await call();
    samples.push({ ms: performance.now() - start, at: start });
    return true;
  } catch (error) {
    samples.push({ ms: performance.now() - start, at: start, error });
    return false;
  }
}

function expectStoreUnavailable(error: unknown): void {
  expect(TokenmeterError.isInstance(error)).toBe(true);
  expect((error as TokenmeterError).code).toBe('store_unavailable');
}

async function evalCalls(port: number): Promise<number> {
  const stats = await redisCli(port, 'info', 'commandstats');
  return Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

async function until(condition: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await sleep(25);
  }
  return performance.now() - start;
}

describe('redis store faults', () => {
  it('Redis killed mid-load: every call answers within the timeout, then works again after a restart', async () => {
    const server = await redis();
    const timeoutMs = 300;
    const store = track(
      createRedisStore({ url: server.url, timeoutMs, logger: collectingLogger() }),
    );
    const samples: Sample[] = [];
    let running = true;
    let killedAt = Number.POSITIVE_INFINITY;
    const workers = Array.from({ length: 8 }, async (_, worker) => {
      while (running) {
        let admitted: string | undefined;
        const ok = await timed(samples, async () => {
          const result = await store.admit(request(`load-${worker}`));
          if (result.admitted) admitted = result.reservation.id;
        });
        const id = admitted;
        if (id !== undefined) {
          await timed(samples, () => store.settle(id, { costNanos: 500, tokens: 5 }));
        }
        if (!ok) await sleep(5);
      }
    });
    await sleep(300);
    killedAt = performance.now();
    await server.stop('SIGKILL');
    await sleep(1_000);
    running = false;
    await Promise.all(workers);

    const before = samples.filter((s) => s.at + s.ms < killedAt);
    const failed = samples.filter((s) => s.error !== undefined);
    expect(before.length).toBeGreaterThan(50);
    expect(before.every((s) => s.error === undefined)).toBe(true);
    expect(failed.length).toBeGreaterThan(8);
    for (const sample of failed) expectStoreUnavailable(sample.error);
    const slowest = Math.max(...samples.map((s) => s.ms));
    expect(slowest).toBeLessThan(timeoutMs + MARGIN_MS);
    if (process.env.TOKENMETER_DEBUG) {
      console.log({ calls: samples.length, failed: failed.length, slowest, before: before.length });
    }
    // Without Redis, one call answers within its timeout (and fails fast once the loss is known).
    const single: Sample[] = [];
    await timed(single, () => store.admit(request('while-down')));
    await timed(single, () => store.getState({ kind: 'user', id: 'while-down' }));
    await timed(single, () => store.now());
    for (const sample of single) {
      expectStoreUnavailable(sample.error);
      expect(sample.ms).toBeLessThan(timeoutMs + MARGIN_MS);
    }

    // A new redis-server on the same port: empty data, empty script cache.
    const restarted = await redis(server.port);
    const recoveredIn = await until(
      async () =>
        (await store.admit(request('after-restart')).catch(() => null))?.admitted === true,
      10_000,
    );
    expect(recoveredIn).toBeLessThan(5_000);
    if (process.env.TOKENMETER_DEBUG) console.log({ recoveredIn });
    expect(await evalCalls(restarted.port)).toBeGreaterThanOrEqual(1); // NOSCRIPT → EVAL
    const state = await store.getState(
      { kind: 'user', id: 'after-restart' },
      { budget: request('x').budget },
    );
    expect(state.reservations.open).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('a hung Redis (SIGSTOP): calls fail within the timeout; admissions that land late are released', async () => {
    const server = await redis();
    const timeoutMs = 200;
    const logger = collectingLogger();
    const store = track(createRedisStore({ url: server.url, timeoutMs, logger }));
    const policy = {
      budget: { limitNanos: 1_000_000, period: 'day' as const },
      rateLimits: [{ kind: 'requests' as const, limit: 100, windowMs: 60_000 }],
    };
    expect((await store.admit(request('warm'))).admitted).toBe(true); // scripts cached

    server.pause();
    const samples: Sample[] = [];
    await Promise.all(
      Array.from({ length: 5 }, () => timed(samples, () => store.admit(request('hung', policy)))),
    );
    for (const sample of samples) {
      expectStoreUnavailable(sample.error);
      expect((sample.error as Error).message).toContain(`within ${timeoutMs} ms`);
      expect(sample.ms).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(sample.ms).toBeLessThan(timeoutMs + MARGIN_MS);
    }
    await sleep(500);
    server.resume();

    // The five scripts ran when Redis woke up; the store releases what nobody will settle.
    await until(
      () => logger.messages.filter((m) => m.includes('was released')).length === 5,
      5_000,
    );
    const state = await store.getState({ kind: 'user', id: 'hung' }, policy);
    expect(state.budget?.reservedNanos).toBe(0);
    expect(state.rateLimits[0]?.used).toBe(0);
    expect(state.reservations.open).toBe(0);
  }, 20_000);

  it('SCRIPT FLUSH: the next call falls back to EVAL once, then EVALSHA works again', async () => {
    const server = await redis();
    const store = track(createRedisStore({ url: server.url, logger: collectingLogger() }));
    expect((await store.admit(request('flush'))).admitted).toBe(true);
    const loaded = await evalCalls(server.port);
    expect(await evalCalls(server.port)).toBe(loaded);
    await redisCli(server.port, 'script', 'flush');
    expect((await store.admit(request('flush'))).admitted).toBe(true);
    expect(await evalCalls(server.port)).toBe(loaded + 1);
    for (let i = 0; i < 5; i++) expect((await store.admit(request('flush'))).admitted).toBe(true);
    expect(await evalCalls(server.port)).toBe(loaded + 1);
  });

  it('a store created before Redis is up waits for the first connection (within its timeout), or fails', async () => {
    const port = await freePort();
    const store = track(
      createRedisStore({
        url: `redis://127.0.0.1:${port}`,
        timeoutMs: 3_000,
        logger: collectingLogger(),
      }),
    );
    const admitted = store.admit(request('early'));
    await sleep(150);
    await redis(port);
    expect((await admitted).admitted).toBe(true);

    const nowhere = await freePort();
    const orphan = track(
      createRedisStore({
        url: `redis://127.0.0.1:${nowhere}`,
        timeoutMs: 250,
        logger: collectingLogger(),
      }),
    );
    const samples: Sample[] = [];
    await timed(samples, () => orphan.admit(request('never')));
    expectStoreUnavailable(samples[0]?.error);
    expect(samples[0]?.ms).toBeLessThan(250 + MARGIN_MS);
  });

  it("a user's client with an offline queue: warned at creation, calls still bounded and typed", async () => {
    const server = await redis();
    const client = new Redis(server.url); // ioredis defaults: offline queue on, 20 retries
    await client.ping();
    const logger = collectingLogger();
    const store = track(createRedisStore({ redis: client, timeoutMs: 250, logger }));
    expect(logger.messages).toHaveLength(1);
    expect(logger.messages[0]).toContain('enableOfflineQueue: false');
    expect(logger.messages[0]).toContain('maxRetriesPerRequest: 0');
    expect((await store.admit(request('queue'))).admitted).toBe(true);
    await server.stop();
    await sleep(50);
    const samples: Sample[] = [];
    for (let i = 0; i < 3; i++) await timed(samples, () => store.admit(request('queue')));
    for (const sample of samples) {
      expectStoreUnavailable(sample.error);
      expect(sample.ms).toBeLessThan(250 + MARGIN_MS);
    }
    client.disconnect();
  });

  it('shutdown quits only a client the store created, and calls after it reject', async () => {
    const server = await redis();
    const owned = createRedisStore({ url: server.url, logger: collectingLogger() });
    expect((await owned.admit(request('bye'))).admitted).toBe(true);
    await owned.shutdown();
    await owned.shutdown(); // idempotent
    for (const call of [
      () => owned.admit(request('bye')),
      () => owned.getState({ kind: 'user', id: 'bye' }),
      () => owned.now(),
      () => owned.release('x'),
    ]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expectStoreUnavailable(error);
      expect((error as Error).message).toContain('shut down');
    }
    expect(
      Number(
        (await redisCli(server.port, 'info', 'clients')).match(/connected_clients:(\d+)/)?.[1],
      ),
    ).toBe(1); // redis-cli itself

    const client = new Redis(server.url, { ...recommendedRedisOptions(), lazyConnect: true });
    await client.connect();
    const borrowed = createRedisStore({ redis: client, logger: collectingLogger() });
    await borrowed.shutdown();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });
});
