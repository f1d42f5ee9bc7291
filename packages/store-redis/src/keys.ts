/**
 * Redis key names and reservation ids. A scope's ids come from users and may hold any
 * character at any length, so they never appear in a key: each scope is named by a hash
 * tag, `{` + base64url(SHA-256(length-prefixed kind and id)) + `}`, and every key of the
 * scope starts with `<prefix>{tag}`. That makes keys fixed-size and injection-proof, keeps
 * two scopes from ever sharing a key, and puts all of one scope's keys in one Redis
 * Cluster slot so its Lua scripts run there.
 */
import { createHash } from 'node:crypto';
import type { ScopeRef } from '@tokenmeter/core';
import { assertScope } from '@tokenmeter/core/store';

/**
 * The part of a key between the braces: 43 characters of base64url, an alphabet without
 * `{`, `}`, `:` or `.`, so it can neither end the hash tag early nor be mistaken for a
 * separator.
 */
export type ScopeTag = string;

const RESERVATION_ID = /^([A-Za-z0-9_-]{43})\.([1-9][0-9]{0,15})$/;

/**
 * The hash tag of a scope. The input is `len(kind) ':' kind len(id) ':' id` in UTF-16
 * code units, hashed as UTF-16LE: lengths make the encoding injective (`a:b`/`c` and
 * `a`/`b:c` differ), and UTF-16 keeps lone surrogates distinct where UTF-8 would turn
 * them all into U+FFFD.
 */
export function scopeTag(scope: ScopeRef): ScopeTag {
  const encoded = `${scope.kind.length}:${scope.kind}${scope.id.length}:${scope.id}`;
  return createHash('sha256').update(Buffer.from(encoded, 'utf16le')).digest('base64url');
}

/**
 * The scope as stored beside its counters, so settle/extend/release can hand it back.
 * JSON escapes lone surrogates (`"\ud800"`), so the round trip through Redis's UTF-8
 * replies is exact for any string.
 */
export function encodeScope(scope: ScopeRef): string {
  return JSON.stringify([scope.kind, scope.id]);
}

export function decodeScope(blob: string): ScopeRef {
  const [kind, id] = JSON.parse(blob) as [string, string];
  return { kind, id };
}

/** The names a store builds its keys from; the Lua scripts derive the rest from `base`. */
export interface ScopeKeys {
  /** `<prefix>{tag}`: the scope's hash (reservation counter, open/expired counts, scope). */
  readonly base: string;
  /** `<base>:x`: open reservations by expiry time, swept at the start of every script. */
  readonly index: string;
}

export function scopeKeys(prefix: string, tag: ScopeTag): ScopeKeys {
  const base = `${prefix}{${tag}}`;
  return { base, index: `${base}:x` };
}

/** The sliding log of a `requests` rule: a ZSET of reservation numbers by admission time. */
export function requestWindowKey(base: string, windowMs: number): string {
  return `${base}:q:${windowMs}`;
}

/** The sliding log of a `tokens` rule, and the hash of its entries' token weights. */
export function tokenWindowKeys(base: string, windowMs: number): readonly [string, string] {
  return [`${base}:t:${windowMs}`, `${base}:w:${windowMs}`];
}

/** An open reservation's hash, or an ended one's tombstone. Must match the Lua scripts. */
export function reservationKey(base: string, sequence: string): string {
  return `${base}:r:${sequence}`;
}

/**
 * The part of an admission key's Redis key after `<base>:k:`: SHA-256 of the caller's
 * requestKey (hashed as UTF-16LE, like scope tags, so lone surrogates stay distinct), as
 * 64 hex characters. Caller text never reaches a key name or a script.
 */
export function requestKeyHash(requestKey: string): string {
  return createHash('sha256').update(Buffer.from(requestKey, 'utf16le')).digest('hex');
}

/** `<base>:once:<hash>`: a claimOnce() mark of a scope (the name hashed like admission keys). */
export function onceKey(base: string, name: string): string {
  return `${base}:once:${requestKeyHash(name)}`;
}

/** `<base>:k:<hash>`: the reservation number a scope admitted under an admission key. */
export function requestKeyKey(base: string, requestKey: string): string {
  return `${base}:k:${requestKeyHash(requestKey)}`;
}

/**
 * A reservation id: `<tag>.<n>`, where n numbers the scope's admissions (from the store
 * time × 1000 when the scope's hash is created, so numbers are never reused, and stay
 * below 2^53 until the year 2255). It carries the hash tag, so settle, extend and release
 * find every key of the reservation in the same slot without a lookup.
 */
export function reservationId(tag: ScopeTag, sequence: number): string {
  return `${tag}.${sequence}`;
}

/** The tag and number of a reservation id, or `undefined` for anything this store never issued. */
export function parseReservationId(
  id: string,
): { readonly tag: ScopeTag; readonly sequence: string } | undefined {
  const match = RESERVATION_ID.exec(id);
  if (!match) return undefined;
  return { tag: match[1] as string, sequence: match[2] as string };
}

/**
 * The Redis key every key of `scope` starts with, for operators: `redis-cli --scan
 * --pattern '<it>*'` lists the scope's keys. Defaults to the store's default prefix.
 *
 * @example
 * scopeRedisKey({ kind: 'user', id: 'u1' }) // 'tokenmeter:{2Xq…}' (43 characters between the braces)
 */
export function scopeRedisKey(scope: ScopeRef, prefix = 'tokenmeter:'): string {
  assertScope(scope);
  return scopeKeys(prefix, scopeTag(scope)).base;
}
