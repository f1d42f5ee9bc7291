/**
 * Runs the store's Lua scripts: `EVALSHA` with the SHA-1 computed once here, and `EVAL`
 * when Redis answers `NOSCRIPT` — a restart, a failover or `SCRIPT FLUSH` empties the
 * script cache, and EVAL both runs the script and caches it again on that node (on a
 * Cluster, the node that owns the keys' slot), so the next call is an EVALSHA again.
 */
import { createHash } from 'node:crypto';
import type { LuaScript } from './scripts.js';
import type { RedisClient } from './types.js';

interface LoadedScript extends LuaScript {
  readonly sha: string;
}

const loaded = new WeakMap<LuaScript, LoadedScript>();

function load(script: LuaScript): LoadedScript {
  let entry = loaded.get(script);
  if (!entry) {
    entry = { ...script, sha: createHash('sha1').update(script.source).digest('hex') };
    loaded.set(script, entry);
  }
  return entry;
}

/** The SHA-1 Redis knows `script` by (what `SCRIPT LOAD` would return). */
export function scriptSha(script: LuaScript): string {
  return load(script).sha;
}

/**
 * Runs `script` on the node that owns `keys` (all of one hash tag) and resolves with its
 * raw reply. Errors other than NOSCRIPT reject as they came from ioredis.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const { sha, source } = load(script);
  try {
    return await client.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return client.eval(source, keys.length, ...keys, ...args);
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
