/**
 * Creation-time checks: a broken option throws `invalid_config` with a message that says
 * what to write; the recommended client options are the failure policy; a user's client
 * is checked for options that would queue or re-send commands (Redis and Cluster shapes).
 */
import { TokenmeterError } from '@tokenmeter/core';
import { describe, expect, it } from 'vitest';
import {
  recommendedClusterOptions,
  recommendedRedisOptions,
  riskyClientOptions,
} from './client.js';
import { createRedisStore } from './redis-store.js';
import type { RedisClient, RedisStoreOptions } from './types.js';

const fakeClient = (shape: object = {}) =>
  ({
    evalsha() {},
    eval() {},
    status: 'ready',
    on() {},
    off() {},
    ...shape,
  }) as unknown as RedisClient;

function configError(options: unknown): TokenmeterError {
  try {
    createRedisStore(options as RedisStoreOptions);
  } catch (error) {
    if (TokenmeterError.isInstance(error)) return error;
    throw error;
  }
  throw new Error(`createRedisStore(${JSON.stringify(options)}) did not throw`);
}

describe('createRedisStore options', () => {
  it('rejects broken options at creation with invalid_config and a fix', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /options object/],
      [{}, /exactly one of `url`/],
      [{ url: 'redis://x', redis: fakeClient() }, /exactly one of `url`/],
      [{ url: 'http://localhost:6379' }, /redis:\/\/ or rediss:\/\//],
      [{ redis: {} }, /ioredis Redis or Cluster/],
      [{ redis: fakeClient(), redisOptions: {} }, /only to the client created from `url`/],
      [{ redis: fakeClient(), prefix: 'app{1}:' }, /without '\{' or '\}'/],
      [{ redis: fakeClient(), onExpiry: 'refund' }, /'charge-reserved' or 'release'/],
      [{ redis: fakeClient(), timeoutMs: 0 }, /timeoutMs must be a positive integer/],
      [{ redis: fakeClient(), timeoutMs: 1.5 }, /timeoutMs must be a positive integer/],
      [{ redis: fakeClient(), endedRetentionMs: -1 }, /endedRetentionMs/],
      [{ redis: fakeClient(), clock: { now: 5 } }, /clock must be/],
      [{ redis: fakeClient(), logger: {} }, /logger must have a warn/],
    ];
    for (const [options, message] of cases) {
      const error = configError(options);
      expect(error.code).toBe('invalid_config');
      expect(error.message).toMatch(message);
    }
  });

  it('warns once about a client that would queue or re-send, and not about a recommended one', () => {
    const warnings: string[] = [];
    const logger = { warn: (message: string) => void warnings.push(message) };
    createRedisStore({ redis: fakeClient({ options: recommendedRedisOptions() }), logger });
    createRedisStore({
      redis: fakeClient({ isCluster: true, options: recommendedClusterOptions() }),
      logger,
    });
    expect(warnings).toEqual([]);
    createRedisStore({ redis: fakeClient({ options: {} }), logger });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      'enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false',
    );
  });

  it('recommends no offline queue, no retry or re-send of in-flight commands, endless reconnects', () => {
    const options = recommendedRedisOptions({ timeoutMs: 200 });
    expect(options).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
    const delays = Array.from({ length: 20 }, (_, i) => options.retryStrategy?.(i + 1));
    expect(delays.every((delay) => typeof delay === 'number' && delay > 0 && delay <= 2_000)).toBe(
      true,
    );
    const cluster = recommendedClusterOptions();
    expect(cluster.enableOfflineQueue).toBe(false);
    expect(riskyClientOptions(fakeClient({ isCluster: true, options: cluster }))).toEqual([]);
    expect(
      riskyClientOptions(fakeClient({ isCluster: true, options: { redisOptions: {} } })),
    ).toEqual([
      'enableOfflineQueue: false',
      'maxRetriesPerRequest: 0',
      'autoResendUnfulfilledCommands: false',
    ]);
  });

  it('rejects bad arguments as invalid_argument before touching Redis', async () => {
    const store = createRedisStore({ redis: fakeClient(), logger: { warn: () => {} } });
    const bad = [
      () => store.settle('', { costNanos: 1, tokens: 1 }),
      () => store.release(42 as unknown as string),
      () => store.extend('x', { addNanos: Number.NaN }),
      () => store.getState({ kind: '', id: 'x' }),
      () =>
        store.getState(
          { kind: 'u', id: 'x' },
          { rateLimits: [{ kind: 'requests', limit: -1, windowMs: 1 }] },
        ),
    ];
    for (const call of bad) {
      await expect(call()).rejects.toMatchObject({ code: 'invalid_argument' });
    }
    await store.shutdown();
  });
});
