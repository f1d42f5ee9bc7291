/**
 * Import of LiteLLM's `model_prices_and_context_window.json` (USD per token, as
 * floats) into tokenmeter catalog entries (USD per million tokens, exact decimals).
 * Entries without both an input and an output token price (image, audio, embedding
 * models, the `sample_spec` entry) are skipped and reported.
 */

import { numberToPlainDecimal } from '../decimal.js';
import { TokenmeterError } from '../errors.js';
import { type ModelPriceInput, PricingCatalog, type TokenKind } from './catalog.js';

/** One LiteLLM entry: only the fields tokenmeter reads. */
export interface LiteLLMEntry {
  litellm_provider?: string;
  mode?: string;
  input_cost_per_token?: number;
  output_cost_per_token?: number;
  cache_creation_input_token_cost?: number;
  cache_creation_input_token_cost_above_1hr?: number;
  cache_read_input_token_cost?: number;
  max_input_tokens?: number;
  max_output_tokens?: number;
  [key: string]: unknown;
}

export interface LiteLLMImport {
  models: ModelPriceInput[];
  /** Keys that were not imported, with the reason. */
  skipped: Array<{ key: string; reason: string }>;
}

const BASE_FIELDS: Record<string, TokenKind> = {
  input_cost_per_token: 'input',
  output_cost_per_token: 'output',
  cache_creation_input_token_cost: 'cacheWrite5m',
  cache_creation_input_token_cost_above_1hr: 'cacheWrite1h',
  cache_read_input_token_cost: 'cacheRead',
};

const TIER_FIELD = /^(.*)_above_(\d+)k_tokens$/;

/**
 * Converts LiteLLM's JSON into catalog entries. Keys with a `provider/` prefix keep
 * the part after the slash as the id unless `keepPrefixedKeys` is set.
 *
 * @example
 * const json = JSON.parse(await readFile('model_prices_and_context_window.json', 'utf8'));
 * const catalog = PricingCatalog.bundled().extend(fromLiteLLM(json).models);
 */
export function fromLiteLLM(
  json: Record<string, unknown>,
  options: { keepPrefixedKeys?: boolean } = {},
): LiteLLMImport {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TokenmeterError(
      'invalid_catalog',
      'LiteLLM pricing must be the JSON object of model_prices_and_context_window.json (model id → entry).',
    );
  }
  const models: ModelPriceInput[] = [];
  const skipped: LiteLLMImport['skipped'] = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(json)) {
    if (typeof value !== 'object' || value === null) {
      skipped.push({ key, reason: 'not an object' });
      continue;
    }
    if (key === 'sample_spec') {
      skipped.push({ key, reason: 'the format description, not a model' });
      continue;
    }
    const entry = value as LiteLLMEntry;
    if (
      typeof entry.input_cost_per_token !== 'number' ||
      typeof entry.output_cost_per_token !== 'number'
    ) {
      skipped.push({ key, reason: 'no input_cost_per_token / output_cost_per_token' });
      continue;
    }
    const id =
      !options.keepPrefixedKeys && key.includes('/') ? key.slice(key.lastIndexOf('/') + 1) : key;
    if (seen.has(id)) {
      skipped.push({ key, reason: `duplicate of "${id}" once the provider prefix is dropped` });
      continue;
    }
    try {
      const rates: ModelPriceInput['rates'] = {
        input: perTokenToPerMillion(entry.input_cost_per_token),
        output: perTokenToPerMillion(entry.output_cost_per_token),
      };
      const tiers = new Map<number, Partial<Record<TokenKind, string>>>();
      for (const [field, raw] of Object.entries(entry)) {
        if (typeof raw !== 'number') continue;
        const base = BASE_FIELDS[field];
        if (base) {
          rates[base] = perTokenToPerMillion(raw);
          continue;
        }
        const tier = TIER_FIELD.exec(field);
        const kind = tier ? BASE_FIELDS[tier[1] ?? ''] : undefined;
        if (tier && kind) {
          const above = Number(tier[2]) * 1000;
          const rates = tiers.get(above) ?? {};
          rates[kind] = perTokenToPerMillion(raw);
          tiers.set(above, rates);
        }
      }
      const model: ModelPriceInput = {
        id,
        ...(entry.litellm_provider ? { provider: entry.litellm_provider } : {}),
        rates,
      };
      if (tiers.size > 0) {
        model.promptTiers = [...tiers].map(([above, r]) => ({ above, rates: r }));
      }
      const maxOutput = entry.max_output_tokens;
      if (typeof maxOutput === 'number' && Number.isSafeInteger(maxOutput) && maxOutput > 0) {
        model.maxOutputTokens = maxOutput;
      }
      models.push(model);
      seen.add(id);
    } catch (error) {
      skipped.push({ key, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { models, skipped };
}

/** A catalog of the bundled prices extended (overridden) by a LiteLLM JSON. */
export function catalogFromLiteLLM(
  json: Record<string, unknown>,
  base: PricingCatalog = PricingCatalog.bundled(),
): PricingCatalog {
  return base.extend(fromLiteLLM(json).models);
}

/**
 * USD per token (a float such as 3e-6 or 1.25e-7) → USD per million tokens as an
 * exact decimal string, rounded to 6 decimals to drop float noise (3.0000000000000004e-6).
 */
export function perTokenToPerMillion(perToken: number): string {
  if (!Number.isFinite(perToken) || perToken < 0) {
    throw new TokenmeterError(
      'invalid_catalog',
      `price per token must be a non-negative number, got ${perToken}`,
    );
  }
  const plain = numberToPlainDecimal(perToken);
  const [whole = '0', frac = ''] = plain.split('.');
  // Shift the decimal point 6 places right: per token → per million tokens.
  const digits = whole + frac.padEnd(6, '0');
  const pointAt = whole.length + 6;
  const intPart = digits.slice(0, pointAt).replace(/^0+(?=\d)/, '');
  let fracPart = digits.slice(pointAt);
  if (fracPart.length > 6) {
    // Round half up at 6 decimals.
    const scaled = BigInt(intPart + fracPart.slice(0, 6)) + (Number(fracPart[6]) >= 5 ? 1n : 0n);
    const s = scaled.toString().padStart(7, '0');
    return trimDecimal(`${s.slice(0, -6)}.${s.slice(-6)}`);
  }
  fracPart = fracPart.replace(/0+$/, '');
  return fracPart ? `${intPart}.${fracPart}` : intPart;
}

function trimDecimal(text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}
