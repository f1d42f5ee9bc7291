/**
 * Public types of the Redis store: its options, the narrow client shape it needs from
 * ioredis (a `Redis` or a `Cluster` both fit), and the store it returns.
 */
import type { ScopeRef, Store } from '@tokenmeter/core';
import type { Clock, EndResult, ExpiryPolicy } from '@tokenmeter/core/store';
import type { RedisOptions } from 'ioredis';

/**
 * What the store uses of an ioredis client. An ioredis `Redis` or `Cluster` instance has
 * all of it; nothing else is called.
 */
export interface RedisClient {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  time(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
  connect(): Promise<void>;
  /** ioredis connection status: 'wait', 'connecting', 'connect', 'ready', 'reconnecting', 'close', 'end'. */
  readonly status: string;
  on(event: 'ready' | 'error' | 'end', listener: (...args: unknown[]) => void): unknown;
  off(event: 'ready' | 'error' | 'end', listener: (...args: unknown[]) => void): unknown;
}

/** Where the store reports problems that only show at run time (once per kind of problem). */
export interface RedisStoreLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

export interface RedisStoreOptions {
  /**
   * Your ioredis client: a `Redis` or a `Cluster`. The store never quits it. Give it the
   * options of `recommendedRedisOptions()` / `recommendedClusterOptions()` (no offline
   * queue, no retry of in-flight commands): the store warns once at creation when it
   * differs. Exactly one of `redis` and `url` is required.
   *
   * @example
   * createRedisStore({ redis: new Redis(process.env.REDIS_URL, recommendedRedisOptions()) })
   */
  redis?: RedisClient;
  /**
   * A `redis://` or `rediss://` URL: the store creates its own client with
   * `recommendedRedisOptions({ timeoutMs })` (plus `redisOptions`) and quits it in
   * `shutdown()`. Exactly one of `redis` and `url` is required.
   *
   * @example
   * createRedisStore({ url: 'redis://localhost:6379/0' })
   */
  url?: string;
  /**
   * Extra ioredis options for the client created from `url`, applied over the recommended
   * ones. Defaults to none.
   *
   * @example
   * createRedisStore({ url, redisOptions: { tls: {}, username: 'app', password } })
   */
  redisOptions?: RedisOptions;
  /**
   * Prepended to every key, so several apps (or environments) can share one Redis. Must not
   * contain `{` or `}` (they would change the Cluster hash tag). Defaults to 'tokenmeter:'.
   *
   * @example
   * createRedisStore({ url, prefix: 'myapp:prod:tm:' })
   */
  prefix?: string;
  /**
   * What an expired reservation charges: its full reserved amount ('charge-reserved': a
   * crashed stream is never undercounted) or nothing ('release'). Defaults to
   * 'charge-reserved'.
   *
   * @example
   * createRedisStore({ url, onExpiry: 'release' })
   */
  onExpiry?: ExpiryPolicy;
  /**
   * The longest any store call may take, connection wait included; past it the call
   * rejects with `store_unavailable` (and an admission that lands later is released).
   * Defaults to 500 ms.
   *
   * @example
   * createRedisStore({ url, timeoutMs: 150 })
   */
  timeoutMs?: number;
  /**
   * How long an ended reservation is remembered, so a repeated settle/release/extend is
   * told how it ended instead of 'unknown'. Each costs ~150 bytes of Redis memory for this
   * long. Defaults to 900,000 ms (15 minutes).
   *
   * @example
   * createRedisStore({ url, endedRetentionMs: 60 * 60_000 })
   */
  endedRetentionMs?: number;
  /**
   * Tests only. When given, every script takes its time from this clock (sent as an
   * argument) instead of Redis `TIME`. Never set it in production: instances whose clocks
   * differ would then disagree about windows and periods. Defaults to none (Redis time).
   *
   * @example
   * createRedisStore({ redis, clock: createTestClock() }) // in a conformance test
   */
  clock?: Clock;
  /**
   * Told about problems that only show at run time: risky client options, connection
   * errors (once per outage), admissions that answered after their timeout and were
   * released. Defaults to `console`.
   *
   * @example
   * createRedisStore({ url, logger: { warn: (message, details) => pino.warn(details, message) } })
   */
  logger?: RedisStoreLogger;
}

/** A Redis-backed Store. `shutdown()` quits the client only if the store created it. */
export interface RedisStore extends Store {
  /** Always present: a dropped connection can lose an admission's reply. */
  releaseByKey(scope: ScopeRef, requestKey: string): Promise<EndResult>;
  claimOnce(scope: ScopeRef, name: string, expiresAt: number): Promise<boolean>;
  shutdown(): Promise<void>;
  /** `timeoutMs` as configured: the bound on every call. */
  readonly timeoutMs: number;
}
