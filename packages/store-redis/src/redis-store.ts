/**
 * The multi-instance tokenmeter store on Redis. Each call for a scope is one Lua script
 * (scripts.ts) run atomically on the node that owns the scope's hash tag, in one round
 * trip; time comes from Redis `TIME` inside the script, so app instances with skewed
 * clocks agree. This module validates arguments, builds keys and arguments, and puts
 * every call behind the failure policy: a bounded wait, one error type
 * (`store_unavailable`), no queue behind a Redis that is down, and the release of an
 * admission that answered after its caller had been told it failed.
 */
import {
  type BudgetRule,
  type RateLimitRule,
  type ScopeRef,
  TokenmeterError,
} from '@tokenmeter/core';
import {
  type AdmitRequest,
  type AdmitResult,
  assertAdmitRequest,
  assertClaim,
  assertExtendRequest,
  assertRequestKey,
  assertReservationId,
  assertScope,
  assertScopePolicy,
  assertSettleRequest,
  type EndResult,
  type ExtendRequest,
  type ExtendResult,
  periodId,
  type ScopePolicy,
  type ScopeState,
  type SettleRequest,
} from '@tokenmeter/core/store';
import { ConnectionWatch } from './client.js';
import {
  encodeScope,
  onceKey,
  parseReservationId,
  requestKeyHash,
  requestKeyKey,
  requestWindowKey,
  reservationId,
  reservationKey,
  scopeKeys,
  scopeTag,
  tokenWindowKeys,
} from './keys.js';
import { type Config, KEY_GRACE_MS, parseOptions } from './options.js';
import { decodeAdmit, decodeEnd, decodeExtend, decodeState, periodJson } from './replies.js';
import { runScript } from './script-runner.js';
import {
  ADMIT,
  CLAIM_ONCE,
  EXTEND,
  GET_STATE,
  RELEASE,
  RELEASE_BY_KEY,
  SETTLE,
} from './scripts.js';
import {
  MalformedReplyError,
  type Operation,
  shutDown,
  timedOut,
  toStoreError,
} from './store-errors.js';
import type { RedisStore, RedisStoreOptions } from './types.js';

const DAY_MS = 86_400_000;

/**
 * Creates a Redis-backed store shared by every instance of the app. Give it a URL (it
 * creates, configures and owns the client) or your ioredis `Redis` / `Cluster`.
 *
 * @example
 * import { createRedisStore } from '@tokenmeter/store-redis';
 * const store = createRedisStore({ url: process.env.REDIS_URL, prefix: 'myapp:tm:' });
 * const result = await store.admit({ scope: { kind: 'user', id: userId }, reserveNanos: usd('0.05'),
 *   estimatedTokens: 1200, ttlMs: 120_000, budget: { limitNanos: usd('5'), period: 'day' },
 *   rateLimits: [{ kind: 'requests', limit: 20, windowMs: 60_000 }] });
 * // On SIGTERM: close the server, let open streams end, then quit the client and exit.
 * process.on('SIGTERM', () => server.close(() => void store.shutdown().finally(() => process.exit(0))));
 */
export function createRedisStore(options: RedisStoreOptions): RedisStore {
  return new RedisBackedStore(parseOptions(options));
}

/** A reservation id resolved to the keys its scripts declare. */
interface ReservationTarget {
  readonly keys: readonly string[];
  readonly sequence: string;
}

class RedisBackedStore implements RedisStore {
  private readonly watch: ConnectionWatch;
  private closed = false;
  private lastNow = 0;

  constructor(private readonly config: Config) {
    this.watch = new ConnectionWatch(config.client, config.logger, config.ownsClient);
  }

  get timeoutMs(): number {
    return this.config.timeoutMs;
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    assertAdmitRequest(request);
    // A copy: the caller's object may change after the call; results carry this one.
    const scope: ScopeRef = { kind: request.scope.kind, id: request.scope.id };
    const tag = scopeTag(scope);
    const { base, index } = scopeKeys(this.config.prefix, tag);
    const rules = request.rateLimits ?? [];
    const keys = [base, index, ...ruleKeys(base, rules)];
    const args = [
      ...this.commonArgs(),
      encodeScope(scope),
      request.reserveNanos,
      request.estimatedTokens,
      request.ttlMs,
      ...budgetArgs(request.budget),
      request.budget ? periodJson(request.budget.period) : '',
      request.requestKey === undefined ? '' : requestKeyHash(request.requestKey),
      ...ruleArgs(rules),
    ];
    return this.call(
      'admit',
      async () =>
        decodeAdmit(await runScript(this.config.client, ADMIT, keys, args), request, scope, (n) =>
          reservationId(tag, n),
        ),
      (late) => this.releaseLate(late),
    );
  }

  async settle(id: string, actual: SettleRequest): Promise<EndResult> {
    assertReservationId(id);
    assertSettleRequest(actual);
    const target = this.locate(id);
    if (!target) return { ended: false, previously: 'unknown', now: await this.now() };
    const args = [...this.commonArgs(), target.sequence, actual.costNanos, actual.tokens];
    return this.call('settle', async () =>
      decodeEnd(
        await runScript(this.config.client, SETTLE, target.keys, args),
        id,
        'settled',
        actual.costNanos,
      ),
    );
  }

  async release(id: string): Promise<EndResult> {
    assertReservationId(id);
    const target = this.locate(id);
    if (!target) return { ended: false, previously: 'unknown', now: await this.now() };
    const args = [...this.commonArgs(), target.sequence];
    return this.call('release', async () =>
      decodeEnd(await runScript(this.config.client, RELEASE, target.keys, args), id, 'released', 0),
    );
  }

  /**
   * Releases the reservation `scope` admitted under `requestKey`, for a caller whose admit
   * reply was lost with a dropped connection (the script ran; nobody holds the id).
   */
  async releaseByKey(scope: ScopeRef, requestKey: string): Promise<EndResult> {
    assertScope(scope);
    assertRequestKey(requestKey);
    const tag = scopeTag(scope);
    const { base, index } = scopeKeys(this.config.prefix, tag);
    const keys = [base, index, requestKeyKey(base, requestKey)];
    return this.call('releaseByKey', async () => {
      const raw = await runScript(this.config.client, RELEASE_BY_KEY, keys, this.commonArgs());
      // An ended reservation's reply carries its number last: it names the id.
      if (Array.isArray(raw) && raw.length === 14) {
        const sequence = Number(raw[13]);
        if (!Number.isSafeInteger(sequence) || sequence <= 0) {
          throw new MalformedReplyError('releaseByKey', raw);
        }
        return decodeEnd(raw.slice(0, 13), reservationId(tag, sequence), 'released', 0);
      }
      return decodeEnd(raw, '', 'released', 0);
    });
  }

  /** One script on the scope's node: atomic across every instance sharing this Redis. */
  async claimOnce(scope: ScopeRef, name: string, expiresAt: number): Promise<boolean> {
    assertScope(scope);
    assertClaim(name, expiresAt);
    const { base } = scopeKeys(this.config.prefix, scopeTag(scope));
    const clock = this.config.clock ? String(this.clockNow()) : '';
    return this.call('claimOnce', async () => {
      const raw = await runScript(
        this.config.client,
        CLAIM_ONCE,
        [onceKey(base, name)],
        [clock, expiresAt],
      );
      return Number(raw) === 1;
    });
  }

  async extend(id: string, request: ExtendRequest): Promise<ExtendResult> {
    assertReservationId(id);
    assertExtendRequest(request);
    const target = this.locate(id);
    if (!target) {
      return { extended: false, reason: 'ended', previously: 'unknown', now: await this.now() };
    }
    const args = [
      ...this.commonArgs(),
      target.sequence,
      request.addNanos,
      request.addTokens ?? 0,
      request.ttlMs ?? '',
    ];
    return this.call('extend', async () =>
      decodeExtend(await runScript(this.config.client, EXTEND, target.keys, args), id),
    );
  }

  async getState(scope: ScopeRef, policy: ScopePolicy = {}): Promise<ScopeState> {
    assertScope(scope);
    assertScopePolicy(policy);
    const copy: ScopeRef = { kind: scope.kind, id: scope.id };
    const { base, index } = scopeKeys(this.config.prefix, scopeTag(copy));
    const rules = policy.rateLimits ?? [];
    const keys = [base, index, ...ruleKeys(base, rules)];
    const args = [...this.commonArgs(), ...budgetArgs(policy.budget), ...ruleArgs(rules)];
    return this.call('getState', async () =>
      decodeState(await runScript(this.config.client, GET_STATE, keys, args), copy, policy),
    );
  }

  async now(): Promise<number> {
    if (this.closed) throw shutDown('now');
    const time = this.config.clock
      ? this.clockNow()
      : await this.call('now', async () => parseTime(await this.config.client.time()));
    // Redis TIME can step back (NTP, a failover to a node with another clock); now() may not.
    this.lastNow = Math.max(this.lastNow, time);
    return this.lastNow;
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watch.dispose();
    if (!this.config.ownsClient) return;
    const { client } = this.config;
    if (client.status !== 'ready') {
      client.disconnect();
      return;
    }
    // QUIT waits for Redis; a Redis that stopped answering must not hold shutdown up.
    const quit = client.quit().catch(() => client.disconnect());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        client.disconnect();
        resolve();
      }, this.config.timeoutMs);
      timer.unref?.();
    });
    await Promise.race([quit, limit]);
    clearTimeout(timer);
  }

  /** ARGV[1..4] of every script: clock, expiry policy, tombstone retention, key grace. */
  private commonArgs(): (string | number)[] {
    return [
      this.config.clock ? String(this.clockNow()) : '',
      this.config.onExpiry,
      this.config.endedRetentionMs,
      KEY_GRACE_MS,
    ];
  }

  private clockNow(): number {
    const time = this.config.clock?.now();
    if (typeof time !== 'number' || !Number.isSafeInteger(time) || time < 0) {
      throw new TokenmeterError(
        'invalid_config',
        `clock.now() must return a non-negative integer of epoch milliseconds, got ${String(time)}.`,
      );
    }
    return time;
  }

  /** The keys a reservation id names, or undefined for an id this store never issued. */
  private locate(id: string): ReservationTarget | undefined {
    const parsed = parseReservationId(id);
    if (!parsed) return undefined;
    const { base, index } = scopeKeys(this.config.prefix, parsed.tag);
    return {
      keys: [base, index, reservationKey(base, parsed.sequence)],
      sequence: parsed.sequence,
    };
  }

  /**
   * Runs one store call under the failure policy: it resolves or rejects within
   * `timeoutMs` (connection wait included), every failure is `store_unavailable`, and a
   * result that arrives after the timeout goes to `onLate` instead of being lost.
   */
  private call<T>(operation: Operation, run: () => Promise<T>, onLate?: (late: T) => void) {
    if (this.closed) return Promise.reject(shutDown(operation));
    const { timeoutMs } = this.config;
    return new Promise<T>((resolve, reject) => {
      let answered = false;
      const gate = this.watch.usable();
      const timer = setTimeout(() => {
        answered = true;
        gate?.cancel();
        reject(timedOut(operation, timeoutMs));
      }, timeoutMs);
      // A pending call must not keep the process alive on its own.
      timer.unref?.();
      const pending =
        gate === undefined
          ? run()
          : gate.ready.then(() => {
              // Timed out while waiting for the connection: never send it late.
              if (answered) throw new Error('timed out before sending');
              return run();
            });
      pending.then(
        (value) => {
          if (answered) {
            onLate?.(value);
            return;
          }
          answered = true;
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          if (answered) return;
          answered = true;
          clearTimeout(timer);
          reject(toStoreError(operation, error));
        },
      );
    });
  }

  /**
   * An admission that ran after its call had already failed holds budget nobody will
   * settle; release it now rather than let it expire (and be charged).
   */
  private releaseLate(result: AdmitResult): void {
    if (!result.admitted) return;
    const { id } = result.reservation;
    this.release(id).then(
      () =>
        this.config.logger.warn(
          'tokenmeter Redis store: an admission answered after its timeout and was released.',
          { reservationId: id },
        ),
      (error: unknown) =>
        this.config.logger.warn(
          'tokenmeter Redis store: an admission answered after its timeout and could not be released; it ends by expiry.',
          { reservationId: id, error: error instanceof Error ? error.message : String(error) },
        ),
    );
  }
}

/**
 * KEYS[3..] for a policy's rules: requests → its log; tokens → its log and weights;
 * concurrency → none (the scripts count the expiry index).
 */
function ruleKeys(base: string, rules: readonly RateLimitRule[]): string[] {
  return rules.flatMap((rule) => {
    switch (rule.kind) {
      case 'requests':
        return [requestWindowKey(base, rule.windowMs)];
      case 'tokens':
        return [...tokenWindowKeys(base, rule.windowMs)];
      case 'concurrency':
        return [];
      default:
        return rule satisfies never;
    }
  });
}

/** Rule count, then (kind 'q' | 't' | 'c', windowMs (0 for 'c'), limit) per rule. */
function ruleArgs(rules: readonly RateLimitRule[]): (string | number)[] {
  return [
    rules.length,
    ...rules.flatMap((rule) =>
      rule.kind === 'concurrency'
        ? ['c', 0, rule.limit]
        : [rule.kind === 'requests' ? 'q' : 't', rule.windowMs, rule.limit],
    ),
  ];
}

/**
 * Budget limit, period kind, window ms, offset ms and period id. A day is a window of
 * 86,400,000 ms from the epoch (UTC days have no leap seconds in epoch time); months need
 * the calendar, computed in the script from its own time.
 */
function budgetArgs(budget: BudgetRule | undefined): (string | number)[] {
  if (!budget) return ['', '', '', '', ''];
  const { limitNanos, period } = budget;
  const id = periodId(period);
  if (period === 'lifetime' || period === 'month') return [limitNanos, period, 0, 0, id];
  if (period === 'day') return [limitNanos, 'window', DAY_MS, 0, id];
  const { windowMs } = period;
  const offset = (((period.offsetMs ?? 0) % windowMs) + windowMs) % windowMs;
  return [limitNanos, 'window', windowMs, offset, id];
}

/** Redis TIME: [seconds, microseconds] as strings. */
function parseTime(reply: unknown): number {
  if (Array.isArray(reply) && reply.length === 2) {
    const seconds = Number(reply[0]);
    const micros = Number(reply[1]);
    if (Number.isSafeInteger(seconds) && Number.isSafeInteger(micros)) {
      return seconds * 1_000 + Math.floor(micros / 1_000);
    }
  }
  throw new MalformedReplyError('now', reply);
}
