/**
 * The one-call entry of the conformance suite: registers every case as a vitest test
 * under `describe('store conformance: <name>')`, grouped by rule family. Any store —
 * ours or a user's — runs it from its own test file.
 */
import { describe, it } from 'vitest';
import { storeConformanceCases } from './conformance-cases.js';
import type { ConformanceGroup, StoreFactory } from './types.js';

export interface StoreConformanceOptions {
  /**
   * Per-case timeout in ms, for stores behind a network. Defaults to 10,000.
   *
   * @example
   * runStoreConformance('redis', factory, { timeoutMs: 30_000 })
   */
  timeoutMs?: number;
  /**
   * Groups to leave out, for a store that deliberately does not offer a rule (say so in
   * its docs). Defaults to none: the full contract.
   *
   * @example
   * runStoreConformance('my-store', factory, { exclude: ['periods'] })
   */
  exclude?: readonly ConformanceGroup[];
}

/**
 * Runs the store conformance suite against the stores `factory` makes. Call it at the top
 * level of a vitest test file.
 *
 * @example
 * import { runStoreConformance } from '@tokenmeter/core/testing';
 * import { createMemoryStore } from '@tokenmeter/store-memory';
 *
 * runStoreConformance('memory', (ctx) =>
 *   createMemoryStore({ clock: ctx.clock, onExpiry: ctx.onExpiry }),
 * );
 */
export function runStoreConformance(
  name: string,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const excluded = new Set(options.exclude ?? []);
  const groups = [...new Set(storeConformanceCases.map((c) => c.group))];
  describe(`store conformance: ${name}`, () => {
    for (const group of groups) {
      if (excluded.has(group)) continue;
      describe(group, () => {
        for (const conformanceCase of storeConformanceCases) {
          if (conformanceCase.group !== group) continue;
          it(conformanceCase.name, () => conformanceCase.run(factory), timeoutMs);
        }
      });
    }
  });
}
