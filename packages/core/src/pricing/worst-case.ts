/**
 * The worst case of a request: the most it can be billed, priced with the same terms as
 * settlement (`Pricing.nanosOf`: prompt-size tiers, service tier, data residency and fast
 * multipliers, server-tool fees), so a reservation of it is never below what the stream
 * settles at — as long as the bound's figures hold (the prompt's upper bound, `max_tokens`,
 * each server tool's uses).
 */
import { TokenmeterError } from '../errors.js';
import type { Nanos } from '../money.js';
import { emptyUsage, type Usage } from '../usage.js';
import type { PricingCatalog, Ratio } from './catalog.js';
import { defaultPricing, type Pricing } from './cost.js';

/** Everything about a request that can raise its bill, each with an upper bound. */
export interface RequestBound {
  /** Upper bound on prompt-side tokens billed (input + cache read + cache writes). */
  promptTokens: number;
  /** Upper bound on output tokens (thinking included): the request's `max_tokens`. */
  outputTokens: number;
  /**
   * The request asks for prompt caching: any prompt token may be billed as a cache write at
   * this lifetime (`'1h'` also allows 5-minute writes).
   */
  cacheWrite?: '5m' | '1h';
  /** `speed` as requested (`'fast'`). */
  speed?: string;
  /** `inference_geo` as requested (`'us'`, `'global'`). */
  inferenceGeo?: string;
  /** A service tier the request is billed at for sure (`'batch'`); omit when unsure. */
  serviceTier?: string;
  /** The most uses of each server tool (`{ web_search: 20 }`), priced at the catalog's fee. */
  serverToolUses?: Readonly<Record<string, number>>;
  /**
   * The input tokens one use of each server tool may add (its results, read back into the
   * context), already counted in `promptTokens`: for an estimate of a call cut before its
   * usage arrived.
   */
  serverToolInputTokens?: Readonly<Record<string, number>>;
}

/** The worst case and the usage it was priced at. */
export interface WorstCase {
  nanos: Nanos;
  /** The usage that costs the most within the bound. */
  usage: Usage;
  /**
   * Multipliers applied on top of the catalog because it publishes none for this model
   * (`speed: 'fast'` or an `inference_geo` with no published price reserve at the largest
   * such multiplier in the catalog; settlement prices them at standard rates, with a warning).
   */
  ceilings: { fast?: string; dataResidency?: string };
}

type PromptKind = 'inputTokens' | 'cacheReadTokens' | 'cacheWrite5mTokens' | 'cacheWrite1hTokens';

/**
 * The most a request within `bound` can cost on `model`, exact to the nano-dollar: the
 * maximum over how the prompt may be split between plain input, cache reads and cache
 * writes, and over prompt sizes up to the bound (a prompt-size tier reprices the whole
 * request), with output at its bound and every server tool used as often as allowed.
 *
 * @throws TokenmeterError `invalid_argument` for counts that are not whole numbers ≥ 0;
 *   `unknown_model` as `Pricing.priceFor`.
 *
 * @example
 * worstCaseCost({ promptTokens: 1_000, outputTokens: 500 }, 'claude-haiku-4-5').nanos;
 * // 1,000 × $1/M + 500 × $5/M = 3_500_000
 * worstCaseCost({ promptTokens: 1_000, outputTokens: 500, speed: 'fast' }, 'claude-opus-5').nanos;
 * // (1,000 × $5/M + 500 × $25/M) × 2 = 35_000_000
 */
export function worstCaseCost(
  bound: RequestBound,
  model: string,
  pricing: Pricing = defaultPricing(),
): WorstCase {
  checkCount(bound.promptTokens, 'promptTokens');
  checkCount(bound.outputTokens, 'outputTokens');
  const { price } = pricing.priceFor(model);
  const base: Usage = { ...emptyUsage(), outputTokens: bound.outputTokens };
  if (bound.speed !== undefined) base.speed = bound.speed;
  if (bound.inferenceGeo !== undefined) base.inferenceGeo = bound.inferenceGeo;
  if (bound.serviceTier !== undefined) base.serviceTier = bound.serviceTier;
  for (const [tool, uses] of Object.entries(bound.serverToolUses ?? {})) {
    checkCount(uses, `serverToolUses.${tool}`);
    if (tool === 'web_search') base.webSearchRequests = uses;
    else if (tool === 'web_fetch') base.webFetchRequests = uses;
  }
  const kinds: PromptKind[] = ['inputTokens', 'cacheReadTokens'];
  if (bound.cacheWrite !== undefined) kinds.push('cacheWrite5mTokens');
  if (bound.cacheWrite === '1h') kinds.push('cacheWrite1hTokens');
  // Within a tier the cost grows with the prompt; across a tier boundary it can only jump.
  // So the maximum is at the bound or at the top of a lower tier.
  const sizes = [bound.promptTokens];
  for (const tier of price.promptTiers) {
    if (tier.above < bound.promptTokens) sizes.push(tier.above);
  }
  let worst = -1;
  let worstUsage = base;
  for (const size of sizes) {
    for (const kind of kinds) {
      const usage: Usage = { ...base, [kind]: size };
      const nanos = pricing.nanosOf(usage, model);
      if (nanos > worst) {
        worst = nanos;
        worstUsage = usage;
      }
    }
  }
  const ceilings: WorstCase['ceilings'] = {};
  let ratio: Ratio = { num: 1n, den: 1n };
  const tops = catalogCeilings(pricing.catalog);
  if (bound.speed === 'fast' && !price.fast) {
    const top = tops.fast;
    if (top) {
      ratio = times(ratio, top);
      ceilings.fast = ratioText(top);
    }
  }
  const geo = bound.inferenceGeo;
  if (geo !== undefined && geo !== 'global' && !price.dataResidency[geo]) {
    const top = tops.dataResidency;
    if (top) {
      ratio = times(ratio, top);
      ceilings.dataResidency = ratioText(top);
    }
  }
  if (ratio.num !== ratio.den) {
    // Rounded up: a ceiling must never be a nano-dollar short.
    worst = Number((BigInt(worst) * ratio.num + ratio.den - 1n) / ratio.den);
    if (!Number.isSafeInteger(worst)) {
      throw new TokenmeterError(
        'money_out_of_range',
        `The worst case of this request on ${model} is beyond the largest amount tokenmeter keeps; lower max_tokens.`,
      );
    }
  }
  return { nanos: worst, usage: worstUsage, ceilings };
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `RequestBound.${what} must be a whole number ≥ 0, got ${String(value)}.`,
    );
  }
}

/** The largest fast-mode and data-residency multipliers of a catalog, found once per catalog. */
const CEILINGS = new WeakMap<PricingCatalog, { fast?: Ratio; dataResidency?: Ratio }>();

function catalogCeilings(catalog: PricingCatalog): { fast?: Ratio; dataResidency?: Ratio } {
  let found = CEILINGS.get(catalog);
  if (!found) {
    const prices = catalog.modelIds().map((id) => catalog.find(id));
    const fast = largest(prices.map((p) => p?.fast));
    const dataResidency = largest(prices.flatMap((p) => Object.values(p?.dataResidency ?? {})));
    found = { ...(fast ? { fast } : {}), ...(dataResidency ? { dataResidency } : {}) };
    CEILINGS.set(catalog, found);
  }
  return found;
}

function largest(ratios: ReadonlyArray<Ratio | undefined>): Ratio | undefined {
  let top: Ratio | undefined;
  for (const r of ratios) {
    if (r && r.num > r.den && (!top || r.num * top.den > top.num * r.den)) top = r;
  }
  return top;
}

function times(a: Ratio, b: Ratio): Ratio {
  return { num: a.num * b.num, den: a.den * b.den };
}

function ratioText(r: Ratio): string {
  return (Number(r.num) / Number(r.den)).toString();
}
