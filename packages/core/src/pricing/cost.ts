/**
 * Usage → money, exact to the nano-dollar. The rules that change a real bill, in order:
 * 1. a prompt-size tier (decided on input + cache read + cache write) reprices the whole
 *    request, output included;
 * 2. multipliers reported in the response stack: service tier (batch 0.5×), data
 *    residency (`inference_geo: "us"` 1.1× on eligible models), fast mode;
 * 3. server-tool fees (web search) are added per request, unmultiplied.
 * The exact rational total is rounded once, half up, to a whole nano-dollar.
 */
import { TokenmeterError } from '../errors.js';
import { assertNanos, type Nanos, nanosToUsd } from '../money.js';
import { promptTokens, type Usage } from '../usage.js';
import {
  type CompiledRates,
  type ModelPrice,
  PricingCatalog,
  type RatesInput,
  type Ratio,
  type TokenKind,
} from './catalog.js';

/**
 * What to do with a model the catalog has no price for. Never a silent $0.
 * - `'reject'` (default): throw `unknown_model`; the middleware answers 400 before any
 *   upstream call.
 * - `{ fallbackModel }`: price it as another catalogued model, and mark costs `fallback`.
 * - `{ fallbackRates }`: price it at these rates (USD per million tokens), marked `fallback`.
 */
export type UnknownModelPolicy =
  | 'reject'
  | { fallbackModel: string }
  | { fallbackRates: RatesInput };

export interface PricingOptions {
  /** Defaults to `PricingCatalog.bundled()`. */
  catalog?: PricingCatalog;
  /** Defaults to `'reject'`. */
  unknownModel?: UnknownModelPolicy;
}

export interface CostLine {
  kind: TokenKind | 'web_search';
  /** Tokens (or requests, for server tools). */
  quantity: number;
  /** The rate applied before multipliers: USD per million tokens, or USD per request. */
  rateUsd: string;
  /** This line's share, after multipliers, rounded to the nano-dollar (display only). */
  nanos: Nanos;
}

export interface Cost {
  /** The total: exact, in nano-dollars. */
  nanos: Nanos;
  /** The total in USD, for JSON at the edges. */
  usd: number;
  /** The model asked about. */
  model: string;
  /** The catalog entry whose price was used. */
  pricedAs: string;
  /** True when the unknown-model policy supplied the price. */
  fallback: boolean;
  /** The prompt-size tier applied, if any (`above` tokens). */
  tierAbove?: number;
  /** The multipliers applied, as decimal strings (`{ serviceTier: "0.5" }`). */
  multipliers: { serviceTier?: string; dataResidency?: string; fast?: string };
  lines: CostLine[];
  /** Things that could make this figure differ from the bill (unpublished multipliers…). */
  warnings: string[];
}

const KINDS: ReadonlyArray<[TokenKind, keyof Usage]> = [
  ['input', 'inputTokens'],
  ['output', 'outputTokens'],
  ['cacheWrite5m', 'cacheWrite5mTokens'],
  ['cacheWrite1h', 'cacheWrite1hTokens'],
  ['cacheRead', 'cacheReadTokens'],
];

/**
 * Prices usage with a catalog and an unknown-model policy.
 *
 * @example
 * const pricing = new Pricing({ unknownModel: { fallbackModel: 'claude-opus-4-1' } });
 * pricing.costOf({ ...emptyUsage(), inputTokens: 1200, outputTokens: 350 }, 'claude-sonnet-4-6').nanos;
 */
export class Pricing {
  readonly catalog: PricingCatalog;
  readonly unknownModel: UnknownModelPolicy;
  private readonly fallbackPrice: ModelPrice | undefined;

  constructor(options: PricingOptions = {}) {
    this.catalog = options.catalog ?? PricingCatalog.bundled();
    this.unknownModel = options.unknownModel ?? 'reject';
    const policy = this.unknownModel;
    if (policy !== 'reject') {
      if (typeof policy !== 'object' || policy === null) {
        throw new TokenmeterError(
          'invalid_config',
          "unknownModel must be 'reject', { fallbackModel: 'model-id' } or { fallbackRates: { input, output } }.",
        );
      }
      if ('fallbackModel' in policy) {
        this.fallbackPrice = this.catalog.find(policy.fallbackModel);
        if (!this.fallbackPrice) {
          throw new TokenmeterError(
            'invalid_config',
            `unknownModel.fallbackModel "${policy.fallbackModel}" is not in the pricing catalog (${this.catalog.version}). Pick a catalogued model or use fallbackRates.`,
          );
        }
      } else {
        this.fallbackPrice = this.catalog
          .extend([{ id: '(fallback)', rates: policy.fallbackRates }])
          .find('(fallback)');
      }
    }
  }

  /** The price used for `model`, or throws `unknown_model` under the reject policy. */
  priceFor(model: string): { price: ModelPrice; fallback: boolean } {
    const price = this.catalog.find(model);
    if (price) return { price, fallback: false };
    if (this.fallbackPrice) return { price: this.fallbackPrice, fallback: true };
    const reason = this.catalog.unpricedReason(model);
    throw new TokenmeterError(
      'unknown_model',
      `No price for model "${model}" in pricing catalog ${this.catalog.version}` +
        (reason ? ` (${reason})` : '') +
        '. Add it with PricingCatalog.extend(), load a LiteLLM price file, or set unknownModel to a fallback.',
      { details: { model } },
    );
  }

  /** True when `model` can be priced (catalogued or covered by a fallback). */
  canPrice(model: string): boolean {
    return this.fallbackPrice !== undefined || this.catalog.find(model) !== undefined;
  }

  /**
   * The exact total of `costOf(usage, model)`, in nano-dollars, without the breakdown:
   * no lines or decimals. Integer arithmetic in plain numbers while every intermediate
   * stays a safe integer (any realistic usage), BigInt otherwise — always the same figure
   * as `costOf(...).nanos`. For per-chunk running estimates.
   */
  nanosOf(usage: Usage, model: string): Nanos {
    const { provider, rates, ratios } = this.terms(usage, model);
    let num = 1;
    let den = 1000;
    for (const r of ratios) {
      num *= Number(r.num);
      den *= Number(r.den);
    }
    const r = numberRates(rates);
    const exact =
      usage.inputTokens * r.input * num +
      usage.outputTokens * r.output * num +
      usage.cacheWrite5mTokens * r.cacheWrite5m * num +
      usage.cacheWrite1hTokens * r.cacheWrite1h * num +
      usage.cacheReadTokens * r.cacheRead * num;
    // Each product and the sum are exact while the sum is a safe integer (all terms ≥ 0).
    if (!Number.isSafeInteger(exact) || !Number.isSafeInteger(den)) {
      return this.costOf(usage, model).nanos;
    }
    // Half up, in integers: exact = q × den + rest.
    let q = Math.floor(exact / den);
    let rest = exact - q * den;
    if (rest < 0) {
      q -= 1;
      rest += den;
    } else if (rest >= den) {
      q += 1;
      rest -= den;
    }
    let total = rest * 2 >= den ? q + 1 : q;
    const searchFee = provider.serverTools.web_search;
    if (usage.webSearchRequests > 0 && searchFee !== undefined) {
      total += usage.webSearchRequests * Number(searchFee);
    }
    if (!Number.isSafeInteger(total)) return this.costOf(usage, model).nanos;
    return total as Nanos;
  }

  /** The exact cost of `usage` on `model`. */
  costOf(usage: Usage, model: string): Cost {
    const { price, provider, fallback, rates, tierAbove, ratios, multipliers, warnings } =
      this.terms(usage, model);
    let num = 1n;
    let den = 1000n; // micro-USD per million tokens × tokens / 1000 = nano-dollars
    for (const r of ratios) {
      num *= r.num;
      den *= r.den;
    }
    let exact = 0n;
    const lines: CostLine[] = [];
    for (const [kind, field] of KINDS) {
      const quantity = usage[field] as number;
      if (quantity === 0) continue;
      const line = BigInt(quantity) * rates[kind] * num;
      exact += line;
      lines.push({
        kind,
        quantity,
        rateUsd: microsToDecimal(rates[kind]),
        nanos: Number(roundHalfUp(line, den)),
      });
    }
    let total = roundHalfUp(exact, den);
    const searchFee = provider.serverTools.web_search;
    if (usage.webSearchRequests > 0) {
      if (searchFee === undefined) {
        warnings.push(
          `no web search fee is published for ${price.provider}; searches priced at $0`,
        );
      } else {
        const fee = BigInt(usage.webSearchRequests) * searchFee;
        total += fee;
        lines.push({
          kind: 'web_search',
          quantity: usage.webSearchRequests,
          rateUsd: microsToDecimal(searchFee / 1000n),
          nanos: Number(fee),
        });
      }
    }
    if (fallback)
      warnings.push(
        `"${model}" is not in the catalog; priced as ${price.id} by the unknown-model policy`,
      );
    const nanos = assertNanos(Number(total), 'cost');
    return {
      nanos,
      usd: nanosToUsd(nanos),
      model,
      pricedAs: price.id,
      fallback,
      ...(tierAbove !== undefined ? { tierAbove } : {}),
      multipliers,
      lines,
      warnings,
    };
  }

  /**
   * What prices `usage` on `model`, shared by `costOf` and `nanosOf`: the rates (after a
   * prompt-size tier), the multipliers that apply (service tier, data residency, fast
   * mode), and warnings for what was reported but has no published price.
   */
  private terms(usage: Usage, model: string) {
    const { price, fallback } = this.priceFor(model);
    const provider = this.catalog.provider(price.provider);
    const warnings: string[] = [];
    const prompt = promptTokens(usage);
    let rates: CompiledRates = price.rates;
    let tierAbove: number | undefined;
    for (const tier of price.promptTiers) {
      if (prompt > tier.above) {
        rates = tier.rates;
        tierAbove = tier.above;
      }
    }
    const ratios: Ratio[] = [];
    const multipliers: Cost['multipliers'] = {};
    if (usage.serviceTier) {
      const tier = provider.serviceTiers[usage.serviceTier];
      if (tier) {
        ratios.push(tier);
        if (tier.num !== tier.den) multipliers.serviceTier = ratioToDecimal(tier);
      } else {
        warnings.push(
          `service tier "${usage.serviceTier}" has no published multiplier for ${price.provider}; priced at standard rates`,
        );
      }
    }
    if (usage.inferenceGeo && usage.inferenceGeo !== 'global') {
      const geo = price.dataResidency[usage.inferenceGeo];
      if (geo) {
        ratios.push(geo);
        multipliers.dataResidency = ratioToDecimal(geo);
      } else if (Object.keys(price.dataResidency).length === 0 && price.provider === 'anthropic') {
        warnings.push(
          `no data-residency multiplier is published for "${usage.inferenceGeo}" on ${price.id}; priced at standard rates`,
        );
      }
    }
    if (usage.speed === 'fast') {
      if (price.fast) {
        ratios.push(price.fast);
        multipliers.fast = ratioToDecimal(price.fast);
      } else {
        warnings.push(`no fast-mode price is published for ${price.id}; priced at standard rates`);
      }
    }
    return { price, provider, fallback, rates, tierAbove, ratios, multipliers, warnings };
  }
}

let sharedPricing: Pricing | undefined;

/**
 * The exact cost of `usage` on `model`, with the bundled catalog and the reject policy
 * unless a `Pricing` is given.
 *
 * @example
 * costOf({ ...emptyUsage(), inputTokens: 1000, outputTokens: 500 }, 'claude-haiku-4-5').nanos
 * // 1000 × $1/M + 500 × $5/M = $0.0035 → 3_500_000
 */
export function costOf(usage: Usage, model: string, pricing?: Pricing): Cost {
  return (pricing ?? defaultPricing()).costOf(usage, model);
}

/** @internal The bundled catalog with the reject policy, made once. */
export function defaultPricing(): Pricing {
  sharedPricing ??= new Pricing();
  return sharedPricing;
}

/** Rates as plain numbers (micro-USD per million tokens), compiled once per rate table. */
const NUMBER_RATES = new WeakMap<CompiledRates, Record<TokenKind, number>>();

function numberRates(rates: CompiledRates): Record<TokenKind, number> {
  let r = NUMBER_RATES.get(rates);
  if (!r) {
    r = {
      input: Number(rates.input),
      output: Number(rates.output),
      cacheWrite5m: Number(rates.cacheWrite5m),
      cacheWrite1h: Number(rates.cacheWrite1h),
      cacheRead: Number(rates.cacheRead),
    };
    NUMBER_RATES.set(rates, r);
  }
  return r;
}

function roundHalfUp(value: bigint, den: bigint): bigint {
  return (value * 2n + den) / (2n * den);
}

function ratioToDecimal(r: Ratio): string {
  const digits = r.den.toString().length - 1; // den is a power of ten
  const s = r.num.toString().padStart(digits + 1, '0');
  const text = digits === 0 ? s : `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** Decimal text of rates: a catalog has a few dozen, and every settlement prints some. */
const DECIMALS = new Map<bigint, string>();

function microsToDecimal(micros: bigint): string {
  let text = DECIMALS.get(micros);
  if (text === undefined) {
    text = ratioToDecimal({ num: micros, den: 1_000_000n });
    // Bounded: a custom catalog could in principle hold any number of distinct rates.
    if (DECIMALS.size >= 4_096) DECIMALS.clear();
    DECIMALS.set(micros, text);
  }
  return text;
}
