/**
 * The single-process tokenmeter store. State lives in an `lru-cache` of scopes, bounded
 * by `max`. Every method does its whole read-check-write without an `await` in between,
 * so on Node's single thread each call is atomic: concurrent admissions can never
 * together pass a limit. Time comes only from the injected clock, made monotonic.
 *
 * Eviction: scopes are never evicted while they matter (spend in the current period,
 * open reservations, rate-limit entries), because evicting spend would silently reset a
 * budget within its period. When full, scopes that no longer matter are purged; if none
 * can go, admitting a new scope is refused with `store_unavailable` and counted.
 */
import { type RateLimitRule, type ScopeRef, type Store, TokenmeterError } from '@tokenmeter/core';
import { saturatingAddNanos } from '@tokenmeter/core/meter';
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
  type EndOutcome,
  type EndResult,
  type ExtendRequest,
  type ExtendResult,
  type RateLimitState,
  type ScopePolicy,
  type ScopeState,
  type SettleRequest,
} from '@tokenmeter/core/store';
import { LRUCache } from 'lru-cache';
import { type MemoryStoreConfig, type MemoryStoreOptions, parseOptions } from './options.js';
import {
  budgetState,
  currentBucket,
  emptyBudgetState,
  logFor,
  newScopeEntry,
  type OpenReservation,
  quietAt,
  rateLimitState,
  type ScopeEntry,
  scopeMatters,
  slotFreesIn,
  toReservation,
} from './scope-entry.js';
import { scopeKey } from './scope-key.js';

/** Counters for dashboards and alerts; all totals are since creation. */
export interface MemoryStoreStats {
  /** Scopes held now. */
  readonly scopes: number;
  /** The configured `max`. */
  readonly maxScopes: number;
  /** Reservations open now, across scopes. */
  readonly openReservations: number;
  /** Reservations that ended by expiry (leaks: a process crashed or forgot to settle). */
  readonly expiredReservations: number;
  /** Admissions refused because every held scope still mattered: raise `max`. */
  readonly refusedAdmissions: number;
  /** Scopes dropped because they no longer mattered (harmless). */
  readonly purgedScopes: number;
  /** Scopes evicted by the LRU while they still mattered. Always 0 by design; alert if not. */
  readonly evictedScopes: number;
}

/** A Store plus memory-store extras. */
export interface MemoryStore extends Store {
  stats(): MemoryStoreStats;
  releaseByKey(scope: ScopeRef, requestKey: string): Promise<EndResult>;
  claimOnce(scope: ScopeRef, name: string, expiresAt: number): Promise<boolean>;
  shutdown(): Promise<void>;
}

/**
 * A scope's admission key as one map key: the scope key's length, the scope key, then the
 * requestKey — unambiguous (the length says where the scope key ends), and no JSON per call.
 */
function keyedBy(scopeKeyOf: string, requestKey: string): string {
  return `${scopeKeyOf.length}:${scopeKeyOf}${requestKey}`;
}

/**
 * Creates an in-memory store for one process. For several processes sharing budgets, use
 * `@tokenmeter/store-redis`.
 *
 * @example
 * import { createMemoryStore } from '@tokenmeter/store-memory';
 * const store = createMemoryStore({ max: 50_000 });
 * const result = await store.admit({ scope: { kind: 'user', id: 'u1' }, reserveNanos: usd('0.05'), estimatedTokens: 1200, ttlMs: 120_000,
 *   budget: { limitNanos: usd('5'), period: 'day' }, rateLimits: [{ kind: 'requests', limit: 20, windowMs: 60_000 }] });
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new InMemoryStore(parseOptions(options));
}

class InMemoryStore implements MemoryStore {
  private readonly config: MemoryStoreConfig;
  private readonly scopes: LRUCache<string, ScopeEntry>;
  private readonly reservations = new Map<string, OpenReservation>();
  private readonly ended: LRUCache<string, EndOutcome>;
  /** Admission keys (scope + requestKey) of open reservations → reservation id. */
  private readonly openByKey = new Map<string, string>();
  /** Admission keys of ended reservations, remembered as long as their outcomes. */
  private readonly endedByKey: LRUCache<string, string>;
  /** claimOnce() marks: scope + name → until when (store time). Swept when past. */
  private readonly claims = new Map<string, number>();
  private readonly idPrefix = `m${Math.random().toString(36).slice(2, 8)}-`;
  private readonly timer: ReturnType<typeof setInterval>;
  private nextId = 0;
  private lastNow = Number.NEGATIVE_INFINITY;
  // When full, a purge scans every scope. It is repeated only once some scope may have
  // gone quiet (by time, or by a settle/release), so a store that is genuinely full
  // refuses in O(1) instead of scanning on every new scope.
  private purgeNotBefore = Number.NEGATIVE_INFINITY;
  private closed = false;
  private counters = { expired: 0, refused: 0, purged: 0, evicted: 0 };

  constructor(config: MemoryStoreConfig) {
    this.config = config;
    this.scopes = new LRUCache<string, ScopeEntry>({
      max: config.max,
      // Admission never inserts into a full cache (it purges or refuses first), so the
      // LRU never evicts on its own; counting makes a violation of that visible.
      dispose: (_entry, _key, reason) => {
        if (reason === 'evict') this.counters.evicted += 1;
      },
    });
    this.ended = new LRUCache<string, EndOutcome>({ max: config.rememberEnded });
    this.endedByKey = new LRUCache<string, string>({ max: config.rememberEnded });
    this.timer = setInterval(() => this.sweep(), config.sweepIntervalMs);
    // The sweep only tidies memory; it must not keep the process alive.
    this.timer.unref();
  }

  async now(): Promise<number> {
    this.assertOpen();
    return this.time();
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    this.assertOpen();
    assertAdmitRequest(request);
    const now = this.time();
    const key = scopeKey(request.scope);
    const existing = this.scopes.get(key);
    if (existing) this.expireDue(existing, now);
    const entry = existing ?? newScopeEntry(key, request.scope);
    const rules = request.rateLimits ?? [];
    const budget = request.budget ?? null;

    // Check everything before writing anything: a rejection records nothing.
    let failing: { rule: RateLimitRule; retryAfterMs: number | null } | undefined;
    let slotsFull: { rule: RateLimitRule; retryAfterMs: number | null } | undefined;
    for (const rule of rules) {
      if (rule.kind === 'concurrency') {
        // Open reservations are the open streams: expireDue() above ended the overdue ones.
        if (entry.open.size < rule.limit) continue;
        slotsFull = { rule, retryAfterMs: slotFreesIn(entry, rule.limit, now) };
        continue;
      }
      const log = entry.logs.get(`${rule.kind}/${rule.windowMs}`);
      const need = rule.kind === 'requests' ? 1 : request.estimatedTokens;
      const used = log ? log.used(now) : 0;
      if (used < rule.limit && used + need <= rule.limit) continue;
      const retryAfterMs = log ? log.retryAfter(now, need, rule.limit) : null;
      // The rule that clears last decides Retry-After; "never" (null) beats any wait.
      if (
        !failing ||
        (failing.retryAfterMs !== null &&
          (retryAfterMs === null || retryAfterMs > failing.retryAfterMs))
      ) {
        failing = { rule, retryAfterMs };
      }
    }
    // A window's wait is known; a slot's is not (streams end when they end): a failing
    // window rule names the rejection, the concurrency rule only when it fails alone.
    failing ??= slotsFull;
    const bucket = budget ? currentBucket(entry, budget, now) : null;
    const states = () => rules.map((rule) => rateLimitState(entry, rule, now));
    if (failing) {
      return {
        admitted: false,
        reason: 'rate_limit',
        scope: entry.scope,
        rateLimit: rateLimitState(entry, failing.rule, now),
        retryAfterMs: failing.retryAfterMs,
        budget: bucket && budget ? budgetState(bucket, budget) : null,
        rateLimits: states(),
        now,
      };
    }
    if (bucket && budget) {
      const held = bucket.spent + bucket.reserved;
      const limit = budget.limitNanos;
      if (!(held < limit && held + request.reserveNanos <= limit)) {
        const never = Math.max(request.reserveNanos, 1) > limit || bucket.end === null;
        return {
          admitted: false,
          reason: 'budget',
          scope: entry.scope,
          retryAfterMs: never ? null : (bucket.end as number) - now,
          budget: budgetState(bucket, budget),
          rateLimits: states(),
          now,
        };
      }
    }

    if (!existing) this.insert(entry, now); // may refuse: nothing shared was written yet
    const open: OpenReservation = {
      id: `${this.idPrefix}${(this.nextId++).toString(36)}`,
      entry,
      bucket,
      budget,
      createdAt: now,
      reserved: request.reserveNanos,
      tokens: request.estimatedTokens,
      expiresAt: now + request.ttlMs,
      keyed: request.requestKey === undefined ? undefined : keyedBy(key, request.requestKey),
      requestEntries: [],
      tokenEntries: [],
    };
    if (bucket) bucket.reserved += request.reserveNanos;
    for (const rule of rules) {
      // A concurrency slot is the reservation itself: nothing else to record.
      if (rule.kind === 'concurrency') continue;
      const log = logFor(entry, rule);
      if (rule.kind === 'requests') {
        open.requestEntries.push({ log, entry: log.add(now, 1) });
      } else {
        open.tokenEntries.push({ log, entry: log.add(now, request.estimatedTokens) });
      }
    }
    entry.open.set(open.id, open);
    entry.nextExpiry = Math.min(entry.nextExpiry, open.expiresAt);
    this.reservations.set(open.id, open);
    if (open.keyed !== undefined) this.openByKey.set(open.keyed, open.id);
    return {
      admitted: true,
      scope: entry.scope,
      reservation: toReservation(open),
      budget: bucket && budget ? budgetState(bucket, budget) : null,
      rateLimits: states(),
      now,
    };
  }

  async settle(reservationId: string, actual: SettleRequest): Promise<EndResult> {
    this.assertOpen();
    assertReservationId(reservationId);
    assertSettleRequest(actual);
    const now = this.time();
    const open = this.findOpen(reservationId, now);
    if (!open) return { ended: false, previously: this.previously(reservationId), now };
    const reservation = toReservation(open);
    if (open.bucket) {
      open.bucket.reserved -= open.reserved;
      open.bucket.spent = saturatingAddNanos(open.bucket.spent, actual.costNanos);
    }
    // Same timestamp, new amount: the actual replaces the estimate where it was counted.
    for (const { log, entry } of open.tokenEntries) log.set(entry, actual.tokens);
    this.end(open, 'settled', now);
    return {
      ended: true,
      outcome: 'settled',
      reservation,
      chargedNanos: actual.costNanos,
      releasedNanos: Math.max(0, open.reserved - actual.costNanos),
      overrunNanos: Math.max(0, actual.costNanos - open.reserved),
      budget: open.bucket && open.budget ? budgetState(open.bucket, open.budget) : null,
      now,
    };
  }

  async release(reservationId: string): Promise<EndResult> {
    this.assertOpen();
    assertReservationId(reservationId);
    const now = this.time();
    const open = this.findOpen(reservationId, now);
    if (!open) return { ended: false, previously: this.previously(reservationId), now };
    const reservation = toReservation(open);
    if (open.bucket) open.bucket.reserved -= open.reserved;
    // As if never admitted: the request and its tokens leave the windows too.
    for (const { log, entry } of [...open.requestEntries, ...open.tokenEntries]) log.set(entry, 0);
    this.end(open, 'released', now);
    return {
      ended: true,
      outcome: 'released',
      reservation,
      chargedNanos: 0,
      releasedNanos: open.reserved,
      overrunNanos: 0,
      budget: open.bucket && open.budget ? budgetState(open.bucket, open.budget) : null,
      now,
    };
  }

  /** One synchronous step, so no other call can interleave: atomic in one process. */
  async claimOnce(scope: ScopeRef, name: string, expiresAt: number): Promise<boolean> {
    this.assertOpen();
    assertScope(scope);
    assertClaim(name, expiresAt);
    const now = this.time();
    const key = keyedBy(scopeKey(scope), name);
    const held = this.claims.get(key);
    if (held !== undefined && held > now) return false;
    if (expiresAt > now) this.claims.set(key, expiresAt);
    else this.claims.delete(key);
    return true;
  }

  /**
   * Replies are never lost in one process, so this only serves callers written for any
   * store (and the conformance suite): the reservation a scope made for `requestKey`,
   * released as by `release()`, or how it ended, or 'unknown'.
   */
  async releaseByKey(scope: ScopeRef, requestKey: string): Promise<EndResult> {
    this.assertOpen();
    assertScope(scope);
    assertRequestKey(requestKey);
    const keyed = keyedBy(scopeKey(scope), requestKey);
    const open = this.openByKey.get(keyed);
    // release() runs to its end without an await, so this stays one atomic step.
    if (open !== undefined) return this.release(open);
    const ended = this.endedByKey.get(keyed);
    return {
      ended: false,
      previously: ended === undefined ? 'unknown' : this.previously(ended),
      now: this.time(),
    };
  }

  async extend(reservationId: string, request: ExtendRequest): Promise<ExtendResult> {
    this.assertOpen();
    assertReservationId(reservationId);
    assertExtendRequest(request);
    const now = this.time();
    const open = this.findOpen(reservationId, now);
    if (!open) {
      return { extended: false, reason: 'ended', previously: this.previously(reservationId), now };
    }
    const delta = Math.max(-open.reserved, request.addNanos);
    if (delta > 0 && open.bucket && open.budget) {
      // Checked against the reservation's own period, which may have ended: it settles there.
      if (open.bucket.spent + open.bucket.reserved + delta > open.budget.limitNanos) {
        return {
          extended: false,
          reason: 'budget',
          reservation: toReservation(open),
          budget: budgetState(open.bucket, open.budget),
          now,
        };
      }
    }
    open.reserved += delta;
    if (open.bucket) open.bucket.reserved += delta;
    const addTokens = request.addTokens ?? 0;
    if (addTokens !== 0) {
      open.tokens = Math.max(0, open.tokens + addTokens);
      for (const { log, entry } of open.tokenEntries) {
        const amount = log.amount(entry);
        if (amount !== undefined) log.set(entry, Math.max(0, amount + addTokens));
      }
    }
    if (request.ttlMs !== undefined) {
      open.expiresAt = now + request.ttlMs;
      open.entry.nextExpiry = Math.min(open.entry.nextExpiry, open.expiresAt);
    }
    return {
      extended: true,
      reservation: toReservation(open),
      budget: open.bucket && open.budget ? budgetState(open.bucket, open.budget) : null,
      now,
    };
  }

  async getState(scope: ScopeRef, policy: ScopePolicy = {}): Promise<ScopeState> {
    this.assertOpen();
    assertScope(scope);
    assertScopePolicy(policy);
    const now = this.time();
    const entry = this.scopes.get(scopeKey(scope));
    if (entry) this.expireDue(entry, now);
    const rateLimits: RateLimitState[] = (policy.rateLimits ?? []).map((rule) =>
      rateLimitState(entry, rule, now),
    );
    let openNanos = 0;
    for (const open of entry?.open.values() ?? []) {
      openNanos = saturatingAddNanos(openNanos, open.reserved);
    }
    return {
      scope: entry?.scope ?? { kind: scope.kind, id: scope.id },
      budget: policy.budget
        ? entry
          ? budgetState(currentBucket(entry, policy.budget, now), policy.budget)
          : emptyBudgetState(policy.budget, now)
        : null,
      rateLimits,
      reservations: {
        open: entry?.open.size ?? 0,
        openNanos,
        expired: entry?.expired ?? 0,
        expiredNanos: entry?.expiredNanos ?? 0,
      },
      now,
    };
  }

  stats(): MemoryStoreStats {
    return {
      scopes: this.scopes.size,
      maxScopes: this.config.max,
      openReservations: this.reservations.size,
      expiredReservations: this.counters.expired,
      refusedAdmissions: this.counters.refused,
      purgedScopes: this.counters.purged,
      evictedScopes: this.counters.evicted,
    };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.reservations.clear();
    this.scopes.clear();
    this.ended.clear();
    this.openByKey.clear();
    this.endedByKey.clear();
  }

  /** Store time: the clock, floored to whole ms and never allowed to run backwards. */
  private time(): number {
    const raw = this.config.clock.now();
    if (!Number.isFinite(raw)) {
      throw new TokenmeterError(
        'store_unavailable',
        `The memory store's clock returned ${String(raw)}; it must return epoch milliseconds.`,
      );
    }
    const now = Math.floor(raw);
    if (now > this.lastNow) this.lastNow = now;
    return this.lastNow;
  }

  private findOpen(id: string, now: number): OpenReservation | undefined {
    const open = this.reservations.get(id);
    if (!open) return undefined;
    if (open.expiresAt <= now) {
      this.expireDue(open.entry, now);
      return undefined;
    }
    return open;
  }

  private previously(id: string): EndOutcome | 'unknown' {
    return this.ended.get(id) ?? 'unknown';
  }

  private end(open: OpenReservation, outcome: EndOutcome, now: number): void {
    open.entry.open.delete(open.id);
    this.reservations.delete(open.id);
    this.ended.set(open.id, outcome);
    if (open.keyed !== undefined) {
      if (this.openByKey.get(open.keyed) === open.id) this.openByKey.delete(open.keyed);
      this.endedByKey.set(open.keyed, open.id);
    }
    // This scope may have just gone quiet: let the next full-store admission look again.
    if (open.entry.open.size === 0 && !scopeMatters(open.entry, now)) this.purgeNotBefore = now;
  }

  /** Ends every reservation of the scope whose TTL has passed, per the expiry policy. */
  private expireDue(entry: ScopeEntry, now: number): void {
    if (entry.nextExpiry > now) return;
    let next = Number.POSITIVE_INFINITY;
    for (const open of entry.open.values()) {
      if (open.expiresAt > now) {
        next = Math.min(next, open.expiresAt);
        continue;
      }
      if (open.bucket) {
        open.bucket.reserved -= open.reserved;
        if (this.config.onExpiry === 'charge-reserved')
          open.bucket.spent = saturatingAddNanos(open.bucket.spent, open.reserved);
      }
      entry.expired += 1;
      entry.expiredNanos = saturatingAddNanos(entry.expiredNanos, open.reserved);
      this.counters.expired += 1;
      this.end(open, 'expired', now);
    }
    entry.nextExpiry = next;
  }

  private insert(entry: ScopeEntry, now: number): void {
    if (this.scopes.size >= this.config.max) {
      if (now >= this.purgeNotBefore) this.purge(now);
      if (this.scopes.size >= this.config.max) {
        this.counters.refused += 1;
        throw new TokenmeterError(
          'store_unavailable',
          `The memory store is full: all ${this.config.max} scopes hold spend, open reservations or ` +
            'rate-limit entries that must not be forgotten. Raise `max` in createMemoryStore({ max }), ' +
            'or use @tokenmeter/store-redis.',
          { details: { maxScopes: this.config.max } },
        );
      }
    }
    this.scopes.set(entry.key, entry);
  }

  /** Drops every scope that no longer matters, least recently used first. */
  private purge(now: number): void {
    let nextQuiet = Number.POSITIVE_INFINITY;
    for (const key of [...this.scopes.rkeys()]) {
      const entry = this.scopes.peek(key);
      if (!entry) continue;
      this.expireDue(entry, now);
      if (scopeMatters(entry, now)) {
        nextQuiet = Math.min(nextQuiet, quietAt(entry, now));
        continue;
      }
      this.scopes.delete(key);
      this.counters.purged += 1;
    }
    this.purgeNotBefore = nextQuiet;
  }

  private sweep(): void {
    if (this.closed) return;
    try {
      const now = this.time();
      this.purge(now);
      for (const [key, until] of this.claims) if (until <= now) this.claims.delete(key);
    } catch {
      // A broken clock surfaces on the next call; a background sweep has no one to tell.
    }
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new TokenmeterError(
        'store_unavailable',
        'The memory store was shut down; create a new one with createMemoryStore().',
      );
    }
  }
}
