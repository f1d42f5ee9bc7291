/**
 * The Redis store against the full store conformance suite, unchanged, on a real
 * redis-server this file starts on a free port. Time comes from the suite's clock (the
 * `clock` option, sent to the scripts as an argument); everything else is production code.
 */
import { runStoreConformance } from '@tokenmeter/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recommendedRedisOptions } from './client.js';
import { type RedisProcess, startRedis } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';

let server: RedisProcess;
let client: Redis;
const warnings: string[] = [];
const logger = { warn: (message: string) => void warnings.push(message) };

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url, { ...recommendedRedisOptions(), lazyConnect: true });
  await client.connect();
}, 20_000);

afterAll(async () => {
  await client?.quit();
  await server?.stop();
});

runStoreConformance(
  'redis',
  (ctx) => createRedisStore({ redis: client, clock: ctx.clock, onExpiry: ctx.onExpiry, logger }),
  { timeoutMs: 30_000 },
);

it('ran the whole suite without a warning (no risky client option, no late admission)', () => {
  expect(warnings).toEqual([]);
});
