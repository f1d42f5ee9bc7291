import { describe, expect, it } from 'vitest';
import { PricingCatalog } from './catalog.js';

describe('PricingCatalog.canonicalId', () => {
  const catalog = PricingCatalog.bundled();

  it('is the id find() resolves to: exact, dated alias, listed snapshot', () => {
    expect(catalog.canonicalId('claude-haiku-4-5')).toBe('claude-haiku-4-5');
    expect(catalog.canonicalId('claude-haiku-4-5-20251001')).toBe('claude-haiku-4-5');
    expect(catalog.canonicalId('claude-sonnet-4-5-latest')).toBe('claude-sonnet-4-5');
    expect(catalog.canonicalId('gpt-4o-2024-05-13')).toBe('gpt-4o-2024-05-13');
    // An unlisted snapshot of a family with snapshots priced apart: the family.
    expect(catalog.canonicalId('gpt-4o-2025-01-01')).toBe('gpt-4o');
    expect(catalog.canonicalId('gpt-4o-2025-01-01')).toBe(catalog.find('gpt-4o-2025-01-01')?.id);
  });

  it('is undefined for a name the catalog cannot price', () => {
    expect(catalog.canonicalId('not-a-model')).toBeUndefined();
    expect(catalog.canonicalId('not-a-model-20250101')).toBeUndefined();
    expect(catalog.canonicalId('')).toBeUndefined();
  });

  it('remembers nothing for made-up families (callers choose them)', () => {
    const fresh = new PricingCatalog(PricingCatalog.bundled().toInput());
    const memo = (fresh as unknown as { dearest: Map<string, unknown> }).dearest;
    for (let i = 0; i < 500; i++) expect(fresh.find(`made-up-${i}-20250101`)).toBeUndefined();
    expect(memo.size).toBe(0);
    fresh.find('gpt-4o-2025-01-01');
    fresh.find('claude-haiku-4-5-20251001');
    expect([...memo.keys()].sort()).toEqual(['claude-haiku-4-5', 'gpt-4o']);
  });
});
