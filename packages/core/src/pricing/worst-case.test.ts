import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyUsage, type Usage } from '../usage.js';
import { PricingCatalog } from './catalog.js';
import { costOf, Pricing } from './cost.js';
import { type RequestBound, worstCaseCost } from './worst-case.js';

const catalog = PricingCatalog.bundled();
const promptOf = (u: Usage) =>
  u.inputTokens + u.cacheReadTokens + u.cacheWrite5mTokens + u.cacheWrite1hTokens;
const models = catalog.modelIds();

describe('worstCaseCost: hand computations', () => {
  it('prices prompt + max_tokens at base rates when nothing else applies', () => {
    // haiku-4-5: $1 in, $5 out per million: 1,000 × 1,000 + 500 × 5,000 nano-dollars
    expect(
      worstCaseCost({ promptTokens: 1_000, outputTokens: 500 }, 'claude-haiku-4-5').nanos,
    ).toBe(3_500_000);
  });

  it('applies fast mode, data residency and the web search fee like settlement', () => {
    // opus-5: $5 / $25; fast 2×, us 1.1×: (1,000 × 5,000 + 500 × 25,000) × 2.2 = 38,500,000
    // plus 20 searches × $0.01 = 200,000,000
    const bound: RequestBound = {
      promptTokens: 1_000,
      outputTokens: 500,
      speed: 'fast',
      inferenceGeo: 'us',
      serverToolUses: { web_search: 20 },
    };
    const worst = worstCaseCost(bound, 'claude-opus-5');
    expect(worst.nanos).toBe(38_500_000 + 200_000_000);
    expect(worst.nanos).toBe(costOf(worst.usage, 'claude-opus-5').nanos);
    expect(worst.ceilings).toEqual({});
  });

  it('prices a caching prompt at the dearest cache-write rate it may be written at', () => {
    // sonnet-4-6: input $3, 5m write $3.75, 1h write $6, output $15
    const base = { promptTokens: 10_000, outputTokens: 100 };
    expect(worstCaseCost(base, 'claude-sonnet-4-6').nanos).toBe(30_000_000 + 1_500_000);
    expect(worstCaseCost({ ...base, cacheWrite: '5m' }, 'claude-sonnet-4-6').nanos).toBe(
      37_500_000 + 1_500_000,
    );
    expect(worstCaseCost({ ...base, cacheWrite: '1h' }, 'claude-sonnet-4-6').nanos).toBe(
      60_000_000 + 1_500_000,
    );
  });

  it('reprices the whole request when the prompt may pass a tier', () => {
    // haiku-5-5 above 100K: $0.50 in, $2.50 out (base $0.10 / $0.50)
    expect(
      worstCaseCost({ promptTokens: 100_000, outputTokens: 1_000 }, 'claude-haiku-5-5').nanos,
    ).toBe(100_000 * 100 + 1_000 * 500);
    expect(
      worstCaseCost({ promptTokens: 100_001, outputTokens: 1_000 }, 'claude-haiku-5-5').nanos,
    ).toBe(100_001 * 500 + 1_000 * 2_500);
  });

  it('reserves an unpublished fast or residency price at the largest multiplier in the catalog', () => {
    // haiku-4-5 has neither: 2× (the catalog's largest fast multiplier) × 1.1, rounded up
    const worst = worstCaseCost(
      { promptTokens: 1_000, outputTokens: 500, speed: 'fast', inferenceGeo: 'eu' },
      'claude-haiku-4-5',
    );
    expect(worst.nanos).toBe(7_700_000); // 3,500,000 × 2 × 11/10
    expect(worst.ceilings).toEqual({ fast: '2', dataResidency: '1.1' });
    // ...and settlement, which has no published price either, stays at or below it.
    expect(costOf({ ...worst.usage }, 'claude-haiku-4-5').nanos).toBeLessThanOrEqual(worst.nanos);
  });

  it('refuses counts that are not whole numbers', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => worstCaseCost({ promptTokens: bad, outputTokens: 1 }, 'gpt-4o')).toThrow(
        /promptTokens/,
      );
    }
    expect(() =>
      worstCaseCost(
        { promptTokens: 1, outputTokens: 1, serverToolUses: { web_search: -1 } },
        'gpt-4o',
      ),
    ).toThrow(/web_search/);
    expect(() => worstCaseCost({ promptTokens: 1, outputTokens: 1 }, 'no-such-model')).toThrow(
      /No price/,
    );
  });
});

/** A request's bound and a usage the provider could report for it. */
const requestAndUsage = fc
  .record({
    model: fc.constantFrom(...models),
    prompt: fc.oneof(
      fc.integer({ min: 0, max: 400_000 }),
      // either side of every tier boundary
      fc.constantFrom(
        99_999,
        100_000,
        100_001,
        199_999,
        200_000,
        200_001,
        271_999,
        272_000,
        272_001,
      ),
    ),
    output: fc.integer({ min: 1, max: 64_000 }),
    cacheWrite: fc.constantFrom(undefined, '5m' as const, '1h' as const),
    fast: fc.boolean(),
    geo: fc.constantFrom(undefined, 'global', 'us', 'eu'),
    searches: fc.integer({ min: 0, max: 20 }),
    // how much of each bound the provider used, and how it split the prompt
    usedPrompt: fc.double({ min: 0, max: 1, noNaN: true }),
    usedOutput: fc.double({ min: 0, max: 1, noNaN: true }),
    usedSearches: fc.double({ min: 0, max: 1, noNaN: true }),
    split: fc.tuple(fc.nat(100), fc.nat(100), fc.nat(100), fc.nat(100)),
    fastServed: fc.boolean(),
    tier: fc.constantFrom(undefined, 'standard', 'batch', 'priority', 'default', 'flex'),
  })
  .map((r) => {
    const bound: RequestBound = {
      promptTokens: r.prompt,
      outputTokens: r.output,
      ...(r.cacheWrite ? { cacheWrite: r.cacheWrite } : {}),
      ...(r.fast ? { speed: 'fast' } : {}),
      ...(r.geo ? { inferenceGeo: r.geo } : {}),
      ...(r.searches > 0 ? { serverToolUses: { web_search: r.searches } } : {}),
    };
    const prompt = Math.floor(r.prompt * r.usedPrompt);
    // The provider splits the prompt among the kinds the request allows.
    const [a, b, c, d] = r.split;
    const weights = [a + 1, b, r.cacheWrite ? c : 0, r.cacheWrite === '1h' ? d : 0];
    const total = weights.reduce((x, y) => x + y, 0);
    const parts = weights.map((w) => Math.floor((prompt * w) / total));
    parts[0] = (parts[0] ?? 0) + prompt - parts.reduce((x, y) => x + y, 0);
    const usage: Usage = {
      ...emptyUsage(),
      inputTokens: parts[0] ?? 0,
      cacheReadTokens: parts[1] ?? 0,
      cacheWrite5mTokens: parts[2] ?? 0,
      cacheWrite1hTokens: parts[3] ?? 0,
      outputTokens: Math.floor(r.output * r.usedOutput),
      webSearchRequests: Math.floor(r.searches * r.usedSearches),
    };
    if (r.fast && r.fastServed) usage.speed = 'fast';
    if (r.geo) usage.inferenceGeo = r.geo;
    if (r.tier) usage.serviceTier = r.tier;
    return { model: r.model, bound, usage };
  });

describe('worstCaseCost: properties over every catalogued model', () => {
  const pricing = new Pricing();

  it('is never below what a usage within the bound settles at', () => {
    fc.assert(
      fc.property(requestAndUsage, ({ model, bound, usage }) => {
        const reserved = worstCaseCost(bound, model, pricing).nanos;
        const settled = pricing.costOf(usage, model).nanos;
        expect(settled).toBeLessThanOrEqual(reserved);
      }),
      { numRuns: 5_000 },
    );
  });

  it('is reached: the usage it reports settles at exactly the worst case (when no ceiling applies)', () => {
    fc.assert(
      fc.property(requestAndUsage, ({ model, bound }) => {
        const worst = worstCaseCost(bound, model, pricing);
        if (Object.keys(worst.ceilings).length > 0) return;
        expect(pricing.costOf(worst.usage, model).nanos).toBe(worst.nanos);
      }),
      { numRuns: 2_000 },
    );
  });

  it('where the provider counts more prompt than the bound, overspends by at most the worst case of the difference', () => {
    // The documented bound: a prompt counted at T > B tokens costs at most
    // worstCaseCost(T) − worstCaseCost(B) more than was reserved.
    fc.assert(
      fc.property(requestAndUsage, fc.integer({ min: 1, max: 200_000 }), (r, excess) => {
        const usage = { ...r.usage, inputTokens: r.usage.inputTokens + excess };
        const counted = promptOf(usage);
        const reserved = worstCaseCost(r.bound, r.model, pricing).nanos;
        const settled = pricing.costOf(usage, r.model).nanos;
        const worstAtCount = worstCaseCost(
          { ...r.bound, promptTokens: Math.max(counted, r.bound.promptTokens) },
          r.model,
          pricing,
        ).nanos;
        expect(settled - reserved).toBeLessThanOrEqual(worstAtCount - reserved);
      }),
      { numRuns: 2_000 },
    );
  });
});
