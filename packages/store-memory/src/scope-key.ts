/**
 * The memory store's key for a scope. Kinds and ids are arbitrary user strings, so the
 * key is length-prefixed rather than joined with a separator: `kind.length:kind:id` can
 * be read back one way only, so `{ kind: 'a:b', id: 'c' }` and `{ kind: 'a', id: 'b:c' }`
 * (which a plain `kind:id` join would merge) stay different subjects.
 */
import type { ScopeRef } from '@tokenmeter/core';

export function scopeKey(scope: ScopeRef): string {
  return `${scope.kind.length}:${scope.kind}:${scope.id}`;
}
