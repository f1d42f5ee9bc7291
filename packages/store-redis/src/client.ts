/**
 * The ioredis client side of the failure policy: the options that make a client fail fast
 * instead of queueing (for the client the store creates, and recommended for yours), a
 * check that warns about a user's client that would queue or re-send, and the connection
 * watch that decides, per call, whether to send now, wait for the first connection, or
 * fail at once.
 */
import { type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisClient, RedisStoreLogger } from './types.js';

export interface RecommendedOptionsInput {
  /** The store's `timeoutMs` (it scales the connect timeout). Defaults to 500. */
  timeoutMs?: number;
}

/**
 * ioredis options for a store client: never queue a command while disconnected
 * (`enableOfflineQueue: false`), never re-send one that was in flight when the connection
 * dropped (`maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`: a script
 * that may already have run must not run twice), and reconnect forever with a capped
 * backoff. The store bounds every call with its own `timeoutMs` timer rather than ioredis
 * `commandTimeout`, which rejects the promise but leaves the command in flight: a script
 * that then runs would have its reply thrown away, and an admission that landed late could
 * not be released. The store's timer answers the caller on time and still sees that reply.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL, { ...recommendedRedisOptions(), enableAutoPipelining: true });
 */
export function recommendedRedisOptions(input: RecommendedOptionsInput = {}): RedisOptions {
  const timeoutMs = input.timeoutMs ?? 500;
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(1_000, timeoutMs * 4),
    retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 6), 2_000),
  };
}

/**
 * ioredis `Cluster` options for a store client: the same per-node policy as
 * `recommendedRedisOptions()`, no cluster-level offline queue, and short waits on
 * failover and CLUSTERDOWN (the store's timer bounds them anyway).
 *
 * @example
 * const cluster = new Cluster([{ host: 'redis-0', port: 6379 }], recommendedClusterOptions());
 */
export function recommendedClusterOptions(input: RecommendedOptionsInput = {}): ClusterOptions {
  const { retryStrategy: _perNode, ...redisOptions } = recommendedRedisOptions(input);
  return {
    enableOfflineQueue: false,
    redisOptions,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 2_000),
  };
}

/** A client for `url` with the recommended options (and the caller's over them). */
export function createClient(url: string, timeoutMs: number, extra: RedisOptions = {}): Redis {
  return new Redis(url, { ...recommendedRedisOptions({ timeoutMs }), ...extra });
}

/**
 * Names the options of a user's client that break the failure policy: an offline queue
 * (commands wait for a Redis that is down, then run late), and re-sent in-flight commands
 * (an admission could run twice). Empty when the client is configured as recommended.
 */
export function riskyClientOptions(client: RedisClient): string[] {
  const candidate = client as unknown as {
    isCluster?: boolean;
    options?: RedisOptions & Pick<ClusterOptions, 'redisOptions'>;
  };
  const options = candidate.options;
  if (!options) return [];
  const node: RedisOptions = candidate.isCluster ? (options.redisOptions ?? {}) : options;
  const risky: string[] = [];
  if (options.enableOfflineQueue !== false) risky.push('enableOfflineQueue: false');
  if (node.maxRetriesPerRequest !== 0) risky.push('maxRetriesPerRequest: 0');
  if (node.autoResendUnfulfilledCommands !== false)
    risky.push('autoResendUnfulfilledCommands: false');
  return risky;
}

/** A call waiting for the first connection: `cancel` when it stops waiting (timed out). */
export interface ConnectionGate {
  readonly ready: Promise<void>;
  cancel(): void;
}

/**
 * Tracks the client's connection for the store. Until the first connection is ready a
 * call waits for it (bounded by the call's timeout: startup should not fail the first
 * requests); once the client has been ready, a call made while it is not fails at once —
 * no queue builds up behind a Redis that is down.
 */
export class ConnectionWatch {
  private everReady: boolean;
  // Calls waiting for the first connection; a call that times out removes itself, so a
  // Redis that stays down at startup holds nothing beyond the calls still in their timeout.
  private readonly waiters = new Set<() => void>();
  private reportedOutage = false;
  private readonly onReady = () => {
    this.everReady = true;
    this.reportedOutage = false;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  };
  private readonly onError = (...args: unknown[]) => {
    // One line per outage, not one per reconnect attempt.
    if (this.reportedOutage) return;
    this.reportedOutage = true;
    const error = args[0];
    this.logger.warn(
      'tokenmeter Redis store: the Redis connection failed; calls fail with store_unavailable until it is back.',
      { error: error instanceof Error ? error.message : String(error) },
    );
  };

  constructor(
    private readonly client: RedisClient,
    private readonly logger: RedisStoreLogger,
    /** Listen to 'error' too: only for a client the store owns (yours reports its own). */
    ownsClient: boolean,
  ) {
    this.everReady = client.status === 'ready';
    client.on('ready', this.onReady);
    if (ownsClient) client.on('error', this.onError);
  }

  /**
   * `undefined` when a command may be sent now; otherwise a gate that opens when it may,
   * or rejects at once when it may not. The caller bounds the wait with its own timeout.
   */
  usable(): ConnectionGate | undefined {
    const { status } = this.client;
    if (status === 'ready') return undefined;
    if (status === 'end') {
      return refused('the Redis connection has ended (quit, or reconnecting gave up)');
    }
    if (this.everReady)
      return refused(`the Redis connection is ${status}; not queueing the command`);
    if (status === 'wait') this.client.connect().catch(() => {});
    let wake: () => void = () => {};
    const ready = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.waiters.add(wake);
    return { ready, cancel: () => this.waiters.delete(wake) };
  }

  dispose(): void {
    this.client.off('ready', this.onReady);
    this.client.off('error', this.onError);
    this.waiters.clear();
  }
}

function refused(reason: string): ConnectionGate {
  return { ready: Promise.reject(new Error(reason)), cancel: () => {} };
}
