/**
 * The express README's options table names every option `costTrackedSSE()` takes, and
 * nothing else: the table and the options the code checks cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTION_NAMES } from '@tokenmeter/engine';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../examples/helpers/process.js';

describe('the express README', () => {
  it('lists every option of costTrackedSSE() in its options table, and only those', () => {
    const readme = readFileSync(join(REPO_ROOT, 'packages', 'express', 'README.md'), 'utf8');
    const section = readme.split(/^## /m).find((s) => s.startsWith('Options (defaults)'));
    expect(section, 'an "## Options (defaults)" section').toBeDefined();
    const named = new Set<string>();
    for (const line of section!.split('\n')) {
      const first = /^\| (.+?) \|/.exec(line)?.[1];
      if (!first) continue;
      for (const [, name] of first.matchAll(/`([a-zA-Z]+)[(`]/g)) named.add(name!);
    }
    expect([...named].sort()).toEqual(Object.keys(OPTION_NAMES).sort());
  });
});
