import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenmeterError } from '../errors.js';
import { emptyUsage, type Usage } from '../usage.js';
import { PricingCatalog } from './catalog.js';
import { costOf, Pricing } from './cost.js';

/**
 * The published figures, typed again by hand from pricing-2026-11.md (USD per million
 * tokens: input, cache write 5m, cache write 1h, cache read, output), so the test checks
 * the catalog data and the arithmetic against an independent source.
 */
const ANTHROPIC: Record<string, [string, string, string, string, string]> = {
  'claude-fable-5-2': ['8', '10', '16', '0.20', '40'],
  'claude-haiku-5-5': ['0.10', '0.125', '0.20', '0.01', '0.50'],
  'claude-sonnet-5-5': ['2', '2.50', '4', '0.10', '10'],
  'claude-fable-5-1': ['10', '12.50', '20', '0.25', '50'],
  'claude-mythos-5-1': ['10', '12.50', '20', '0.25', '50'],
  'claude-opus-5-5': ['4', '5', '8', '0.20', '20'],
  'claude-sonnet-5': ['2', '2.50', '4', '0.20', '10'],
  'claude-fable-5': ['10', '12.50', '20', '1.00', '50'],
  'claude-mythos-5': ['10', '12.50', '20', '1.00', '50'],
  'claude-opus-5': ['5', '6.25', '10', '0.50', '25'],
  'claude-opus-4-8': ['5', '6.25', '10', '0.50', '25'],
  'claude-opus-4-7': ['5', '6.25', '10', '0.50', '25'],
  'claude-opus-4-6': ['5', '6.25', '10', '0.50', '25'],
  'claude-sonnet-4-6': ['3', '3.75', '6', '0.30', '15'],
  'claude-haiku-4-5': ['1', '1.25', '2', '0.10', '5'],
  'claude-opus-4-5': ['5', '6.25', '10', '0.50', '25'],
  'claude-sonnet-4-5': ['3', '3.75', '6', '0.30', '15'],
  'claude-opus-4-1': ['15', '18.75', '30', '1.50', '75'],
  'claude-opus-4': ['15', '18.75', '30', '1.50', '75'],
  'claude-3-5-haiku': ['0.80', '1', '1.60', '0.08', '4'],
};

/** OpenAI: input, cached input, output, cache write (where published). */
const OPENAI: Record<string, [string, string, string, string?]> = {
  'gpt-6.2-astra': ['8', '0.40', '40', '10'],
  'gpt-6.2-sol': ['2', '0.10', '10', '2.50'],
  'gpt-6.1-sol': ['2', '0.10', '10'],
  'gpt-6-astra': ['10', '1', '50', '12.50'],
  'gpt-6-sol': ['2', '0.20', '10', '2.50'],
  'gpt-6-luna': ['0.10', '0.01', '0.50', '0.125'],
  'gpt-5.6-terra': ['2', '0.20', '12'],
  'gpt-5.6-luna': ['0.20', '0.02', '1.20'],
  'gpt-5.5': ['5', '0.50', '30'],
  'gpt-5.4': ['2.50', '0.25', '15'],
  'gpt-5.4-mini': ['0.75', '0.075', '4.50'],
  'gpt-5.4-nano': ['0.20', '0.02', '1.25'],
  'gpt-5.2': ['1.75', '0.175', '14'],
  'gpt-5': ['1.25', '0.125', '10'],
  'gpt-5.1': ['1.25', '0.125', '10'],
  'gpt-5-mini': ['0.25', '0.025', '2'],
  'gpt-5-nano': ['0.05', '0.005', '0.40'],
  'gpt-4.1': ['2', '0.50', '8'],
  'gpt-4.1-mini': ['0.40', '0.10', '1.60'],
  'gpt-4.1-nano': ['0.10', '0.025', '0.40'],
  'gpt-4o': ['2.50', '1.25', '10'],
  // The first snapshot is priced apart, with no prompt caching (cached input billed as input).
  'gpt-4o-2024-05-13': ['5', '5', '15'],
  'gpt-4o-2024-08-06': ['2.50', '1.25', '10'],
  'gpt-4o-2024-11-20': ['2.50', '1.25', '10'],
  'gpt-4o-mini': ['0.15', '0.075', '0.60'],
  o3: ['2', '0.50', '8'],
  'o4-mini': ['1.10', '0.275', '4.40'],
};

/**
 * Hand computation: tokens × (USD per million) → nano-dollars, i.e. tokens × rate × 1000,
 * done on the decimal digits with BigInt and rounded half up.
 */
function handNanos(tokens: number, usdPerMillion: string): number {
  const [whole, frac = ''] = usdPerMillion.split('.');
  const scale = 10n ** BigInt(frac.length);
  const rate = BigInt(`${whole}${frac}`); // rate × scale
  const times = BigInt(tokens) * rate * 1000n; // nanos × scale
  return Number((times * 2n + scale) / (2n * scale));
}

const N = 98_765; // below every prompt-size tier, odd so rounding matters

function usageOf(field: keyof Usage, tokens: number): Usage {
  return { ...emptyUsage(), [field]: tokens };
}

describe('costOf: every catalogued model, every token kind, equals the hand computation', () => {
  it('catalogs exactly the models of the published table', () => {
    const ids = PricingCatalog.bundled().modelIds().sort();
    expect(ids).toEqual([...Object.keys(ANTHROPIC), ...Object.keys(OPENAI)].sort());
  });

  for (const [model, [input, w5, w1, read, output]] of Object.entries(ANTHROPIC)) {
    it(model, () => {
      expect(costOf(usageOf('inputTokens', N), model).nanos).toBe(handNanos(N, input));
      expect(costOf(usageOf('cacheWrite5mTokens', N), model).nanos).toBe(handNanos(N, w5));
      expect(costOf(usageOf('cacheWrite1hTokens', N), model).nanos).toBe(handNanos(N, w1));
      expect(costOf(usageOf('cacheReadTokens', N), model).nanos).toBe(handNanos(N, read));
      expect(costOf(usageOf('outputTokens', N), model).nanos).toBe(handNanos(N, output));
      const all: Usage = {
        ...emptyUsage(),
        inputTokens: 1_001,
        cacheWrite5mTokens: 2_003,
        cacheWrite1hTokens: 3_005,
        cacheReadTokens: 40_007,
        outputTokens: 5_009,
      };
      // Exact sum first, rounded once: within 0.5 nano-dollar of the sum of the parts.
      const parts =
        handNanos(1_001, input) +
        handNanos(2_003, w5) +
        handNanos(3_005, w1) +
        handNanos(40_007, read) +
        handNanos(5_009, output);
      expect(Math.abs(costOf(all, model).nanos - parts)).toBeLessThanOrEqual(2);
    });
  }

  for (const [model, [input, cached, output, write]] of Object.entries(OPENAI)) {
    it(model, () => {
      expect(costOf(usageOf('inputTokens', N), model).nanos).toBe(handNanos(N, input));
      expect(costOf(usageOf('cacheReadTokens', N), model).nanos).toBe(handNanos(N, cached));
      expect(costOf(usageOf('outputTokens', N), model).nanos).toBe(handNanos(N, output));
      // Unpublished cache-write price: billed as plain input, never free.
      expect(costOf(usageOf('cacheWrite5mTokens', N), model).nanos).toBe(
        handNanos(N, write ?? input),
      );
    });
  }
});

describe('costOf: worked examples', () => {
  it('1,000 in + 500 out on claude-haiku-4-5 is $0.0035', () => {
    const cost = costOf(
      { ...emptyUsage(), inputTokens: 1000, outputTokens: 500 },
      'claude-haiku-4-5',
    );
    expect(cost.nanos).toBe(3_500_000);
    expect(cost.usd).toBe(0.0035);
    expect(cost.lines.map((l) => [l.kind, l.quantity, l.rateUsd, l.nanos])).toEqual([
      ['input', 1000, '1', 1_000_000],
      ['output', 500, '5', 2_500_000],
    ]);
  });

  it('sub-nano amounts are rounded once per request, half up, not per token', () => {
    // gpt-5-nano cached input: $0.005 per million = 5 nano-dollars per token; batch halves
    // it to 2.5 nano-dollars per token.
    const batch = (tokens: number) => ({
      ...usageOf('cacheReadTokens', tokens),
      serviceTier: 'batch',
    });
    expect(costOf(batch(1), 'gpt-5-nano').nanos).toBe(3); // 2.5 → 3
    expect(costOf(batch(3), 'gpt-5-nano').nanos).toBe(8); // 7.5 → 8, not 3 × 3
    expect(costOf(batch(4), 'gpt-5-nano').nanos).toBe(10);
  });

  it('dated model ids price as their family', () => {
    const u = { ...emptyUsage(), inputTokens: 10_000, outputTokens: 1_000 };
    expect(costOf(u, 'claude-haiku-4-5-20251001').nanos).toBe(costOf(u, 'claude-haiku-4-5').nanos);
    expect(costOf(u, 'claude-opus-4-5-20251101').pricedAs).toBe('claude-opus-4-5');
    expect(costOf(u, 'claude-sonnet-4-5-20250929').pricedAs).toBe('claude-sonnet-4-5');
    expect(costOf(u, 'gpt-4o-2024-08-06').nanos).toBe(costOf(u, 'gpt-4o').nanos);
  });

  it('a snapshot priced apart keeps its own price; an unlisted one of its family is priced at the dearest, never cheaper', () => {
    const u = { ...emptyUsage(), inputTokens: 10_000, cacheReadTokens: 2_000, outputTokens: 1_000 };
    // gpt-4o-2024-05-13: 12,000 × $5/M (no caching: cached input is input) + 1,000 × $15/M
    expect(costOf(u, 'gpt-4o-2024-05-13').nanos).toBe(60_000_000 + 15_000_000);
    // gpt-4o: 10,000 × $2.50/M + 2,000 × $1.25/M + 1,000 × $10/M
    expect(costOf(u, 'gpt-4o').nanos).toBe(25_000_000 + 2_500_000 + 10_000_000);
    // An unlisted snapshot: the dearest rate of each kind, $5 / $5 (cached) / $15.
    const unlisted = costOf(u, 'gpt-4o-2026-01-15');
    expect(unlisted.nanos).toBe(50_000_000 + 10_000_000 + 15_000_000);
    expect(unlisted.pricedAs).toBe('gpt-4o');
    // Families without snapshots priced apart are unchanged: the family's price.
    expect(costOf(u, 'gpt-5-2025-08-07').nanos).toBe(costOf(u, 'gpt-5').nanos);
  });

  it('the dearest of a family and its snapshots holds at every prompt size (tiers)', () => {
    const catalog = PricingCatalog.bundled().extend([
      {
        id: 'm',
        provider: 'openai',
        rates: { input: '1', output: '4' },
        promptTiers: [{ above: 1000, rates: { input: '2', output: '8' } }],
      },
      {
        id: 'm-2026-01-01',
        provider: 'openai',
        rates: { input: '1.5', output: '3' },
        maxOutputTokens: 9,
      },
    ]);
    const pricing = new Pricing({ catalog });
    const at = (input: number) =>
      pricing.costOf({ ...emptyUsage(), inputTokens: input, outputTokens: 1_000 }, 'm-2026-02-02')
        .nanos;
    expect(at(1_000)).toBe(1_500_000 + 4_000_000); // $1.5 input (snapshot), $4 output (family)
    expect(at(1_001)).toBe(2_002_000 + 8_000_000); // the family's tier: $2 / $8
    expect(catalog.find('m-2026-02-02')?.maxOutputTokens).toBe(9);
  });

  it('publishes the largest max_tokens where the provider does, and reads it from LiteLLM', () => {
    const catalog = PricingCatalog.bundled();
    expect(catalog.find('claude-opus-4-6')?.maxOutputTokens).toBe(128_000);
    expect(catalog.find('claude-haiku-4-5-20251001')?.maxOutputTokens).toBe(64_000);
    expect(catalog.find('gpt-4o')?.maxOutputTokens).toBe(16_384);
    expect(catalog.find('claude-opus-5')?.maxOutputTokens).toBeUndefined(); // not published
    expect(() =>
      catalog.extend([{ id: 'x', rates: { input: '1', output: '1' }, maxOutputTokens: 0 }]),
    ).toThrow(/maxOutputTokens/);
  });
});

describe('prompt-size tiers reprice the whole request', () => {
  it('claude-haiku-5-5: 100,000 prompt tokens is base price, 100,001 is the tier, output included', () => {
    // Prompt = input + cache read + cache write decides the tier.
    const at = {
      ...emptyUsage(),
      inputTokens: 60_000,
      cacheReadTokens: 30_000,
      cacheWrite5mTokens: 10_000,
      outputTokens: 2_000,
    };
    const above = { ...at, inputTokens: 60_001 };
    expect(costOf(at, 'claude-haiku-5-5').nanos).toBe(
      handNanos(60_000, '0.10') +
        handNanos(30_000, '0.01') +
        handNanos(10_000, '0.125') +
        handNanos(2_000, '0.50'),
    );
    const tiered = costOf(above, 'claude-haiku-5-5');
    expect(tiered.tierAbove).toBe(100_000);
    expect(tiered.nanos).toBe(
      handNanos(60_001, '0.50') +
        handNanos(30_000, '0.05') +
        handNanos(10_000, '0.625') +
        handNanos(2_000, '2.50'),
    );
  });

  it('claude-sonnet-4-5: the 200K boundary', () => {
    const at = { ...emptyUsage(), inputTokens: 200_000, outputTokens: 1_000 };
    const above = { ...at, cacheWrite1hTokens: 1 };
    expect(costOf(at, 'claude-sonnet-4-5').nanos).toBe(
      handNanos(200_000, '3') + handNanos(1_000, '15'),
    );
    expect(costOf(above, 'claude-sonnet-4-5').nanos).toBe(
      handNanos(200_000, '6') + handNanos(1, '12') + handNanos(1_000, '22.50'),
    );
  });

  it('gpt-5.4: over 272K input tokens (cached included) doubles input and 1.5× output', () => {
    const at = {
      ...emptyUsage(),
      inputTokens: 172_000,
      cacheReadTokens: 100_000,
      outputTokens: 3_000,
    };
    const above = { ...at, cacheReadTokens: 100_001 };
    expect(costOf(at, 'gpt-5.4').tierAbove).toBeUndefined();
    expect(costOf(above, 'gpt-5.4').nanos).toBe(
      handNanos(172_000, '5') + handNanos(100_001, '0.50') + handNanos(3_000, '22.50'),
    );
  });
});

describe('multipliers reported in the response', () => {
  const base = {
    ...emptyUsage(),
    inputTokens: 12_345,
    outputTokens: 6_789,
    cacheReadTokens: 1_111,
  };
  const plain = (rates: [string, string, string]) =>
    (12_345n * BigInt(Math.round(Number(rates[0]) * 1e6)) +
      6_789n * BigInt(Math.round(Number(rates[1]) * 1e6)) +
      1_111n * BigInt(Math.round(Number(rates[2]) * 1e6))) as bigint;

  it('batch halves every kind (Anthropic)', () => {
    const micros = plain(['5', '25', '0.50']); // µ$/M × tokens
    // nanos = micros / 1000 × 1/2, rounded half up
    const expected = Number((micros * 2n + 2000n) / 4000n);
    const cost = costOf({ ...base, serviceTier: 'batch' }, 'claude-opus-4-6');
    expect(cost.nanos).toBe(expected);
    expect(cost.multipliers).toEqual({ serviceTier: '0.5' });
  });

  it('data residency us is 1.1× on eligible models and stacks with batch', () => {
    const micros = plain(['3', '15', '0.30']);
    const residency = costOf({ ...base, inferenceGeo: 'us' }, 'claude-sonnet-4-6');
    expect(residency.nanos).toBe(Number((micros * 11n * 2n + 10_000n) / 20_000n));
    const both = costOf({ ...base, inferenceGeo: 'us', serviceTier: 'batch' }, 'claude-sonnet-4-6');
    expect(both.nanos).toBe(Number((micros * 11n * 2n + 20_000n) / 40_000n));
    expect(both.multipliers).toEqual({ serviceTier: '0.5', dataResidency: '1.1' });
    // global is the standard price; an ineligible older model is not multiplied
    expect(costOf({ ...base, inferenceGeo: 'global' }, 'claude-sonnet-4-6').nanos).toBe(
      costOf(base, 'claude-sonnet-4-6').nanos,
    );
  });

  it('fast mode doubles claude-opus-5-5 (8 / 40) and warns where unpublished', () => {
    const u = { ...emptyUsage(), inputTokens: 1_000_000, outputTokens: 1_000_000, speed: 'fast' };
    expect(costOf(u, 'claude-opus-5-5').nanos).toBe(
      handNanos(1_000_000, '8') + handNanos(1_000_000, '40'),
    );
    const unknown = costOf(u, 'claude-haiku-4-5');
    expect(unknown.warnings.join()).toMatch(/no fast-mode price/);
    expect(unknown.nanos).toBe(handNanos(1_000_000, '1') + handNanos(1_000_000, '5'));
  });

  it('OpenAI flex and batch are 0.5×; an unpublished tier is priced standard with a warning', () => {
    const u = { ...emptyUsage(), inputTokens: 1_000_000, outputTokens: 1_000_000 };
    expect(costOf({ ...u, serviceTier: 'flex' }, 'gpt-5').nanos).toBe(5_625_000_000);
    const priority = costOf({ ...u, serviceTier: 'priority' }, 'gpt-5');
    expect(priority.nanos).toBe(11_250_000_000);
    expect(priority.warnings[0]).toMatch(/priority/);
  });

  it('web search is $10 per 1,000 requests, plus tokens, not multiplied', () => {
    const u = { ...emptyUsage(), inputTokens: 3_400, outputTokens: 95, webSearchRequests: 2 };
    expect(costOf(u, 'claude-haiku-4-5').nanos).toBe(
      handNanos(3_400, '1') + handNanos(95, '5') + 20_000_000,
    );
    expect(costOf({ ...u, serviceTier: 'batch' }, 'claude-haiku-4-5').nanos).toBe(
      Math.round((handNanos(3_400, '1') + handNanos(95, '5')) / 2) + 20_000_000,
    );
  });
});

describe('unknown models are an explicit policy, never $0', () => {
  const u = { ...emptyUsage(), inputTokens: 1_000, outputTokens: 1_000 };

  it('rejects by default with a clear, coded error', () => {
    let error: unknown;
    try {
      costOf(u, 'claude-opus-4-9');
    } catch (e) {
      error = e;
    }
    expect(TokenmeterError.isInstance(error)).toBe(true);
    expect((error as TokenmeterError).code).toBe('unknown_model');
    expect((error as TokenmeterError).message).toMatch(
      /No price for model "claude-opus-4-9".*extend/,
    );
  });

  it('says why a known but unpriced model has no price', () => {
    expect(() => costOf(u, 'claude-mythos-5-2')).toThrow(/no published price/);
    expect(() => costOf(u, 'gpt-5.6-sol')).toThrow(/2026-11-21/);
  });

  it('prices unknown models as a fallback model, marked', () => {
    const pricing = new Pricing({ unknownModel: { fallbackModel: 'claude-opus-4-1' } });
    const cost = pricing.costOf(u, 'my-proxy-model');
    expect(cost.fallback).toBe(true);
    expect(cost.pricedAs).toBe('claude-opus-4-1');
    expect(cost.nanos).toBe(handNanos(1_000, '15') + handNanos(1_000, '75'));
    expect(cost.warnings.join()).toMatch(/unknown-model policy/);
    expect(pricing.costOf(u, 'claude-haiku-4-5').fallback).toBe(false);
  });

  it('prices unknown models at fallback rates, marked', () => {
    const pricing = new Pricing({
      unknownModel: { fallbackRates: { input: '20', output: '100' } },
    });
    expect(pricing.costOf(u, 'anything').nanos).toBe(120_000_000);
  });

  it('refuses a fallback model that is itself unknown, at creation', () => {
    expect(() => new Pricing({ unknownModel: { fallbackModel: 'nope' } })).toThrow(
      /not in the pricing catalog/,
    );
  });
});

describe('overrides and extensions', () => {
  it('replaces a price and adds a model', () => {
    const catalog = PricingCatalog.bundled().extend([
      { id: 'claude-sonnet-5', provider: 'anthropic', rates: { input: '3', output: '15' } },
      {
        id: 'my-finetune',
        provider: 'openai',
        rates: { input: '0.3', output: '1.2', cacheRead: '0.03' },
      },
    ]);
    const pricing = new Pricing({ catalog });
    const u = {
      ...emptyUsage(),
      inputTokens: 1_000_000,
      outputTokens: 1_000_000,
      cacheReadTokens: 1_000_000,
    };
    expect(pricing.costOf(u, 'claude-sonnet-5').nanos).toBe(
      3_000_000_000 + 15_000_000_000 + 3_000_000_000,
    );
    expect(pricing.costOf(u, 'my-finetune').nanos).toBe(1_530_000_000);
    expect(catalog.version).toBe('2026-11-25+custom');
    // the bundled catalog is unchanged
    expect(costOf(u, 'claude-sonnet-5').nanos).toBe(2_000_000_000 + 10_000_000_000 + 200_000_000);
  });

  it('rejects malformed prices with a message that says how to write them', () => {
    expect(() =>
      PricingCatalog.bundled().extend([{ id: 'x', rates: { input: 'cheap', output: '1' } }]),
    ).toThrow(/strings like "0.125"/);
    expect(() =>
      PricingCatalog.bundled().extend([{ id: 'x', rates: { input: '0.0000001', output: '1' } }]),
    ).toThrow(/more than 6 decimals/);
  });
});

describe('nanosOf: the total without the breakdown, always equal to costOf', () => {
  const catalog = PricingCatalog.bundled();
  const pricing = new Pricing({ catalog });
  const models = catalog.modelIds();
  const tokens = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 300_000 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  );
  const usage = fc.record({
    inputTokens: tokens,
    outputTokens: tokens,
    cacheWrite5mTokens: tokens,
    cacheWrite1hTokens: tokens,
    cacheReadTokens: tokens,
    webSearchRequests: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000 })),
    serviceTier: fc.option(fc.constantFrom('standard', 'batch', 'priority', 'flex', 'scale'), {
      nil: undefined,
    }),
    inferenceGeo: fc.option(fc.constantFrom('global', 'us', 'eu'), { nil: undefined }),
    speed: fc.option(fc.constantFrom('fast', 'standard'), { nil: undefined }),
  });

  it('for random usage on every catalogued model (tiers, multipliers, fees, huge counts)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...models), usage, (model, raw) => {
        const u = Object.fromEntries(
          Object.entries(raw).filter(([, v]) => v !== undefined),
        ) as unknown as Usage;
        let exact: number | undefined;
        try {
          exact = pricing.costOf(u, model).nanos;
        } catch (error) {
          // Totals past the largest safe nano-dollar figure are refused by both.
          expect(() => pricing.nanosOf(u, model)).toThrow((error as Error).message);
          return;
        }
        expect(pricing.nanosOf(u, model)).toBe(exact);
      }),
      { numRuns: 5_000 },
    );
  });

  it('matches hand computations, including where half-up rounding decides', () => {
    const model = 'claude-sonnet-4-5';
    // 3 cache reads × $0.30/M × batch 0.5 = 3 × 300 × 0.5 = 450 nano-dollars.
    expect(
      pricing.nanosOf({ ...emptyUsage(), cacheReadTokens: 3, serviceTier: 'batch' }, model),
    ).toBe(450);
    // 7 input × $3/M × 0.5 = 10,500 nano-dollars.
    expect(pricing.nanosOf({ ...emptyUsage(), inputTokens: 7, serviceTier: 'batch' }, model)).toBe(
      10_500,
    );
    // $0.0015/M is 1.5 nano-dollars a token: 1 → 1.5 → 2, 2 → 3, 3 → 4.5 → 5 (half up, once).
    const odd = new Pricing({ unknownModel: { fallbackRates: { input: '0.0015', output: '0' } } });
    for (const [n, nanos] of [
      [1, 2],
      [2, 3],
      [3, 5],
    ] as const) {
      const u = { ...emptyUsage(), inputTokens: n };
      expect(odd.nanosOf(u, 'odd-model')).toBe(nanos);
      expect(odd.costOf(u, 'odd-model').nanos).toBe(nanos);
    }
  });

  it('prices an unknown model by the fallback policy, or throws unknown_model', () => {
    const fallback = new Pricing({
      unknownModel: { fallbackRates: { input: '0.07', output: '0.3' } },
    });
    const u = { ...emptyUsage(), inputTokens: 1_234_567, outputTokens: 89 };
    // 1,234,567 × 70 nano-dollars ($0.07/M) + 89 × 300 ($0.30/M) = 86,419,690 + 26,700.
    expect(fallback.nanosOf(u, 'no-such-model')).toBe(86_446_390);
    expect(fallback.costOf(u, 'no-such-model').nanos).toBe(86_446_390);
    expect(() => pricing.nanosOf(u, 'no-such-model')).toThrow(/No price for model "no-such-model"/);
  });
});
