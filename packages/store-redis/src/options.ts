/**
 * `parseOptions()`: checks the Redis store's options once, at creation, and merges the
 * defaults into one fully-required configuration. A broken option throws `invalid_config`
 * with a message that says what to write instead; the client is created (from `url`) only
 * after everything else is known to be valid, so a bad option never leaks a connection.
 */
import { TokenmeterError } from '@tokenmeter/core';
import type { Clock, ExpiryPolicy } from '@tokenmeter/core/store';
import { createClient, riskyClientOptions } from './client.js';
import type { RedisClient, RedisStoreLogger, RedisStoreOptions } from './types.js';

export const DEFAULT_PREFIX = 'tokenmeter:';
export const DEFAULT_TIMEOUT_MS = 500;
export const DEFAULT_ENDED_RETENTION_MS = 15 * 60_000;
/**
 * Added to every key's time to live. TTLs only collect garbage; this margin keeps a key
 * alive a little past the last moment it can count (clock jitter, a settle in flight at a
 * period's end, a test clock that moves slower than Redis's).
 */
export const KEY_GRACE_MS = 60_000;

export interface Config {
  readonly client: RedisClient;
  readonly ownsClient: boolean;
  readonly prefix: string;
  readonly onExpiry: ExpiryPolicy;
  readonly timeoutMs: number;
  readonly endedRetentionMs: number;
  readonly clock: Clock | undefined;
  readonly logger: RedisStoreLogger;
}

export function parseOptions(options: RedisStoreOptions): Config {
  if (typeof options !== 'object' || options === null) {
    throw invalid('createRedisStore() needs an options object: { url } or { redis }.');
  }
  const { redis, url } = options;
  if ((redis === undefined) === (url === undefined)) {
    throw invalid(
      'createRedisStore() needs exactly one of `url` (the store creates and owns the client) or `redis` (your ioredis Redis or Cluster instance).',
    );
  }
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw invalid(`url must be a redis:// or rediss:// URL, got ${describe(url)}.`);
  }
  if (
    redis !== undefined &&
    (typeof redis !== 'object' ||
      redis === null ||
      typeof redis.evalsha !== 'function' ||
      typeof redis.eval !== 'function')
  ) {
    throw invalid('redis must be an ioredis Redis or Cluster instance (new Redis(url)).');
  }
  if (options.redisOptions !== undefined && url === undefined) {
    throw invalid(
      'redisOptions applies only to the client created from `url`; configure your own client directly.',
    );
  }

  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw invalid(
      `prefix must be a string without '{' or '}' (they would change the Redis Cluster hash tag), got ${describe(prefix)}.`,
    );
  }
  const onExpiry = options.onExpiry ?? 'charge-reserved';
  if (onExpiry !== 'charge-reserved' && onExpiry !== 'release') {
    throw invalid(`onExpiry must be 'charge-reserved' or 'release', got ${describe(onExpiry)}.`);
  }
  const timeoutMs = positiveInteger(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
  const endedRetentionMs = positiveInteger(
    options.endedRetentionMs ?? DEFAULT_ENDED_RETENTION_MS,
    'endedRetentionMs',
  );
  const clock = options.clock;
  if (clock !== undefined && (typeof clock !== 'object' || typeof clock?.now !== 'function')) {
    throw invalid('clock must be { now(): number } (tests only; leave it unset in production).');
  }
  const logger = options.logger ?? console;
  if (typeof logger?.warn !== 'function') {
    throw invalid('logger must have a warn(message, details) method.');
  }

  let client: RedisClient;
  let ownsClient: boolean;
  if (url !== undefined) {
    client = createClient(url, timeoutMs, options.redisOptions);
    ownsClient = true;
  } else {
    client = redis as RedisClient;
    ownsClient = false;
    const risky = riskyClientOptions(client);
    if (risky.length > 0) {
      logger.warn(
        `tokenmeter Redis store: your ioredis client may queue or re-send commands while Redis is down. Set ${risky.join(', ')} (see recommendedRedisOptions() / recommendedClusterOptions()). The store still answers every call within timeoutMs, but queued commands may run late.`,
        { missing: risky },
      );
    }
  }
  return { client, ownsClient, prefix, onExpiry, timeoutMs, endedRetentionMs, clock, logger };
}

function positiveInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalid(
      `${what} must be a positive integer number of milliseconds, got ${describe(value)}.`,
    );
  }
  return value;
}

function invalid(message: string): TokenmeterError {
  return new TokenmeterError('invalid_config', message);
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
