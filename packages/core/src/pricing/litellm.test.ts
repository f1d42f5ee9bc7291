import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emptyUsage } from '../usage.js';
import { PricingCatalog } from './catalog.js';
import { Pricing } from './cost.js';
import { catalogFromLiteLLM, fromLiteLLM, perTokenToPerMillion } from './litellm.js';

const sample = JSON.parse(
  readFileSync(new URL('../__fixtures__/litellm-sample.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('LiteLLM model_prices_and_context_window.json import', () => {
  it('converts per-token floats to exact per-million decimals', () => {
    expect(perTokenToPerMillion(3e-6)).toBe('3');
    expect(perTokenToPerMillion(3.75e-6)).toBe('3.75');
    expect(perTokenToPerMillion(1.25e-8)).toBe('0.0125');
    expect(perTokenToPerMillion(0.0000015)).toBe('1.5');
    expect(perTokenToPerMillion(3e-6 + 4e-22)).toBe('3'); // float noise dropped
    expect(perTokenToPerMillion(0)).toBe('0');
  });

  it('imports rates, cache rates, the 1h write, the 200k tier and max_output_tokens; skips what it cannot price', () => {
    const { models, skipped } = fromLiteLLM(sample);
    expect(models.map((m) => m.id)).toEqual(['claude-sonnet-4-5', 'claude-acme-9', 'gpt-noisy']);
    expect(skipped.map((s) => s.key)).toEqual(['sample_spec', 'dall-e-3']);
    const sonnet = models.find((m) => m.id === 'claude-sonnet-4-5');
    expect(sonnet).toEqual({
      id: 'claude-sonnet-4-5',
      provider: 'anthropic',
      rates: {
        input: '3',
        output: '15',
        cacheWrite5m: '3.75',
        cacheWrite1h: '6',
        cacheRead: '0.3',
      },
      promptTiers: [
        {
          above: 200_000,
          rates: { input: '6', output: '22.5', cacheWrite5m: '7.5', cacheRead: '0.6' },
        },
      ],
      maxOutputTokens: 64_000, // max_output_tokens
    });
  });

  it('prices like the bundled catalog for the same published figures, tier included', () => {
    const catalog = catalogFromLiteLLM(sample);
    const imported = new Pricing({ catalog });
    const bundled = new Pricing({ catalog: PricingCatalog.bundled() });
    const small = {
      ...emptyUsage(),
      inputTokens: 10_000,
      outputTokens: 2_000,
      cacheReadTokens: 5_000,
      cacheWrite1hTokens: 100,
    };
    const large = { ...small, inputTokens: 200_001 };
    expect(imported.costOf(small, 'claude-sonnet-4-5').nanos).toBe(
      bundled.costOf(small, 'claude-sonnet-4-5').nanos,
    );
    expect(imported.costOf(large, 'claude-sonnet-4-5').nanos).toBe(
      bundled.costOf(large, 'claude-sonnet-4-5').nanos,
    );
    // 200,001 × $6 + 5,000 × $0.60 + 100 × $12 (1h write, tier scales like input) + 2,000 × $22.50, per million
    expect(imported.costOf(large, 'claude-sonnet-4-5').nanos).toBe(
      1_200_006_000 + 3_000_000 + 1_200_000 + 45_000_000,
    );
  });

  it('adds models the bundled catalog does not have, provider prefix dropped', () => {
    const pricing = new Pricing({ catalog: catalogFromLiteLLM(sample) });
    const cost = pricing.costOf(
      {
        ...emptyUsage(),
        inputTokens: 1_000_000,
        outputTokens: 1_000_000,
        cacheReadTokens: 1_000_000,
      },
      'claude-acme-9',
    );
    expect(cost.nanos).toBe(125_000_000 + 1_500_000_000 + 12_500_000);
  });

  it('says what it expected when given something else', () => {
    expect(() => fromLiteLLM([] as unknown as Record<string, unknown>)).toThrow(
      /model_prices_and_context_window/,
    );
  });
});
