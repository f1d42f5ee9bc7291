/**
 * The pricing catalog: which model costs what, as data. The bundled catalog
 * (`catalog-2026-11-25.json`) holds published prices; users override or extend it, or
 * load LiteLLM's `model_prices_and_context_window.json`. Rates are exact decimal
 * strings in USD per million tokens and are compiled once into integers
 * (micro-dollars per million tokens, i.e. pico-dollars per token), so costs are exact.
 */
import { numberToPlainDecimal } from '../decimal.js';
import { TokenmeterError } from '../errors.js';
import bundled from './catalog-2026-11-25.json' with { type: 'json' };

/** The token kinds a price distinguishes. */
export type TokenKind = 'input' | 'output' | 'cacheWrite5m' | 'cacheWrite1h' | 'cacheRead';

/** USD per million tokens, as exact decimal strings (`"0.125"`) or numbers. */
export type RatesInput = Partial<Record<TokenKind, string | number>> & {
  input: string | number;
  output: string | number;
};

/** One model's price as written in a catalog file or passed as an override. */
export interface ModelPriceInput {
  /** Model id as the provider names it; dated ids (`-20251001`) resolve to it. */
  id: string;
  /** Provider, for telemetry and adapter choice. Defaults to one guessed from the id. */
  provider?: string;
  /** Base rates. Missing cache rates fall back: cache writes to input, cache read to input. */
  rates: RatesInput;
  /**
   * Prompt-size tiers: when the prompt (input + cache read + cache write) is above
   * `above` tokens, the whole request is priced at the tier's rates.
   */
  promptTiers?: Array<{ above: number; rates: Partial<Record<TokenKind, string | number>> }>;
  /** Multiplier for `speed: "fast"` on every token kind, where published. */
  fast?: string | number;
  /** Multipliers per `inference_geo` value (`{ us: "1.1" }`), where eligible. */
  dataResidency?: Record<string, string | number>;
  /**
   * The most output tokens one call may ask for (`max_tokens`), as the provider publishes
   * it: the default per-request limit of the middleware and the gateways. Omit when not
   * published.
   */
  maxOutputTokens?: number;
  /** Known conflicts, dates and caveats; shown, never used in maths. */
  notes?: string;
}

export interface ProviderPriceInput {
  /** Multiplier per reported service tier (`batch: "0.5"`). Unlisted tiers are not priced. */
  serviceTiers?: Record<string, string | number>;
  /** Per-request server-tool fees in USD (`web_search: { usdPerRequest: "0.01" }`). */
  serverTools?: Record<string, { usdPerRequest: string | number }>;
  notes?: string;
}

/** A whole catalog, as in the bundled JSON file. */
export interface CatalogInput {
  version: string;
  providers?: Record<string, ProviderPriceInput>;
  models: ModelPriceInput[];
  /** Models known to exist but with no published price: the unknown-model error says so. */
  unpriced?: Array<{ id: string; provider?: string; reason: string }>;
}

/** A rational multiplier num/den, exact. */
export interface Ratio {
  num: bigint;
  den: bigint;
}

/** Compiled rates: integer micro-USD per million tokens (= pico-USD per token). */
export type CompiledRates = Record<TokenKind, bigint>;

export interface ModelPrice {
  id: string;
  provider: string;
  rates: CompiledRates;
  promptTiers: Array<{ above: number; rates: CompiledRates }>;
  fast?: Ratio;
  dataResidency: Record<string, Ratio>;
  /** The published largest `max_tokens`, when known. */
  maxOutputTokens?: number;
  notes?: string;
  /** The original input, for display and re-export. */
  source: ModelPriceInput;
}

export interface ProviderPrice {
  serviceTiers: Record<string, Ratio>;
  /** Per-request fees in nano-dollars. */
  serverTools: Record<string, bigint>;
}

const DATE_SUFFIX = /-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$/;
const TOKEN_KINDS: readonly TokenKind[] = [
  'input',
  'output',
  'cacheWrite5m',
  'cacheWrite1h',
  'cacheRead',
];

/**
 * An immutable set of model prices. `PricingCatalog.bundled()` is the dated default;
 * `.extend()` and `.fromLiteLLM()` build new catalogs from it.
 *
 * @example
 * const catalog = PricingCatalog.bundled().extend([
 *   { id: 'my-finetune', provider: 'openai', rates: { input: '3', output: '12' } },
 * ]);
 */
export class PricingCatalog {
  readonly version: string;
  private readonly models = new Map<string, ModelPrice>();
  private readonly providers = new Map<string, ProviderPrice & { source: ProviderPriceInput }>();
  private readonly unpriced = new Map<string, string>();
  /** Each catalogued family's price for its unlisted snapshots, found once. */
  private readonly dearest = new Map<string, ModelPrice>();

  constructor(input: CatalogInput) {
    this.version = input.version;
    for (const [name, provider] of Object.entries(input.providers ?? {})) {
      this.providers.set(name, compileProvider(name, provider));
    }
    for (const entry of input.unpriced ?? []) this.unpriced.set(entry.id, entry.reason);
    for (const model of input.models) this.models.set(model.id, compileModel(model));
  }

  /** The catalog shipped with this version of tokenmeter (prices as of its `version`). */
  static bundled(): PricingCatalog {
    bundledCatalog ??= new PricingCatalog(bundled as CatalogInput);
    return bundledCatalog;
  }

  /**
   * A new catalog with models added or replaced (by id) and providers merged.
   * Overrides take precedence over the existing entries.
   */
  extend(
    models: ModelPriceInput[],
    providers: Record<string, ProviderPriceInput> = {},
  ): PricingCatalog {
    const base = this.toInput();
    const byId = new Map(base.models.map((m) => [m.id, m]));
    for (const model of models) byId.set(model.id, model);
    const mergedProviders = { ...base.providers };
    for (const [name, p] of Object.entries(providers)) {
      const prev = mergedProviders[name] ?? {};
      mergedProviders[name] = {
        serviceTiers: { ...prev.serviceTiers, ...p.serviceTiers },
        serverTools: { ...prev.serverTools, ...p.serverTools },
        ...((p.notes ?? prev.notes) ? { notes: p.notes ?? prev.notes } : {}),
      };
    }
    const overridden = new Set(models.map((m) => m.id));
    return new PricingCatalog({
      version: `${this.version}+custom`,
      providers: mergedProviders,
      models: [...byId.values()],
      unpriced: (base.unpriced ?? []).filter((u) => !overridden.has(u.id)),
    });
  }

  /**
   * The price of a model id: exact id first, then its family, the id without a date
   * suffix (`claude-haiku-4-5-20251001` → `claude-haiku-4-5`, `gpt-4o-2024-08-06` →
   * `gpt-4o`). Where the catalog lists dated snapshots of that family priced apart (say
   * `gpt-4o-2024-05-13`), a snapshot it does not list is priced at the dearest of the
   * family and those snapshots, rate by rate: never assumed cheaper than one of them. No
   * other fuzzy matching: a new model never silently takes an older model's price.
   */
  find(model: string): ModelPrice | undefined {
    const exact = this.models.get(model);
    if (exact) return exact;
    const family = model.replace(DATE_SUFFIX, '');
    if (family === model) return undefined;
    let dearest = this.dearest.get(family);
    if (dearest === undefined) {
      const base = this.models.get(family);
      // Not remembered when absent: callers choose the name, so misses are unbounded.
      if (!base) return undefined;
      const snapshots = [...this.models.values()].filter(
        (m) => m.id !== family && m.id.replace(DATE_SUFFIX, '') === family,
      );
      dearest = snapshots.length > 0 ? dearestOf(base, snapshots) : base;
      this.dearest.set(family, dearest);
    }
    return dearest;
  }

  /**
   * The catalog's own id for a model name, as `find()` resolves it
   * (`claude-haiku-4-5-20251001` → `claude-haiku-4-5`), or undefined when it has no price
   * here. Bounded by the catalog's size whatever names callers make up: for metric
   * attributes and other places a caller-chosen string must not reach.
   */
  canonicalId(model: string): string | undefined {
    return this.find(model)?.id;
  }

  /** Why a model is known but has no price, if the catalog says so. */
  unpricedReason(model: string): string | undefined {
    return this.unpriced.get(model) ?? this.unpriced.get(model.replace(DATE_SUFFIX, ''));
  }

  provider(name: string): ProviderPrice {
    return this.providers.get(name) ?? { serviceTiers: {}, serverTools: {} };
  }

  /** Every priced model id. */
  modelIds(): string[] {
    return [...this.models.keys()];
  }

  /** The catalog as plain data (the same shape as the JSON file). */
  toInput(): CatalogInput {
    const providers: Record<string, ProviderPriceInput> = {};
    for (const [name, p] of this.providers) providers[name] = p.source;
    return {
      version: this.version,
      providers,
      models: [...this.models.values()].map((m) => m.source),
      unpriced: [...this.unpriced].map(([id, reason]) => ({ id, reason })),
    };
  }
}

let bundledCatalog: PricingCatalog | undefined;

/**
 * Parses a decimal (string or number) exactly into integer micro-units:
 * `"0.125"` → 125000n. At most 6 decimals (a millionth of a dollar per million tokens).
 */
export function decimalToMicros(value: string | number, what: string): bigint {
  const text = typeof value === 'number' ? numberToPlainDecimal(value) : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) {
    throw new TokenmeterError(
      'invalid_catalog',
      `${what}: "${String(value)}" is not a non-negative decimal. Write prices as strings like "0.125".`,
    );
  }
  const [, whole = '0', frac = ''] = match;
  const trimmed = frac.replace(/0+$/, '');
  if (trimmed.length > 6) {
    throw new TokenmeterError(
      'invalid_catalog',
      `${what}: "${String(value)}" has more than 6 decimals; rates are kept to a millionth of a dollar per million tokens.`,
    );
  }
  return BigInt(whole) * 1_000_000n + BigInt(trimmed.padEnd(6, '0'));
}

/** An exact multiplier from a decimal: "1.1" → 11/10. */
export function decimalToRatio(value: string | number, what: string): Ratio {
  const text = typeof value === 'number' ? numberToPlainDecimal(value) : value.trim();
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) {
    throw new TokenmeterError(
      'invalid_catalog',
      `${what}: "${String(value)}" is not a decimal multiplier.`,
    );
  }
  const [, whole = '0', frac = ''] = match;
  return { num: BigInt(whole + frac), den: 10n ** BigInt(frac.length) };
}

function compileRates(
  rates: Partial<Record<TokenKind, string | number>>,
  fallback: CompiledRates | undefined,
  what: string,
): CompiledRates {
  const out = {} as CompiledRates;
  for (const kind of TOKEN_KINDS) {
    const value = rates[kind];
    if (value !== undefined) out[kind] = decimalToMicros(value, `${what}.${kind}`);
  }
  if (out.input === undefined) {
    if (!fallback)
      throw new TokenmeterError('invalid_catalog', `${what}: an input rate is required.`);
    out.input = fallback.input;
  }
  if (out.output === undefined) {
    if (!fallback)
      throw new TokenmeterError('invalid_catalog', `${what}: an output rate is required.`);
    out.output = fallback.output;
  }
  // Unpublished cache rates: a tier scales like its base (same ratio to input), and a
  // model without cache prices bills cached tokens as plain input (never as free).
  for (const kind of ['cacheWrite5m', 'cacheWrite1h', 'cacheRead'] as const) {
    if (out[kind] !== undefined) continue;
    if (fallback && fallback.input > 0n) out[kind] = (fallback[kind] * out.input) / fallback.input;
    else if (kind === 'cacheWrite1h' && out.cacheWrite5m !== undefined)
      out[kind] = out.cacheWrite5m;
    else out[kind] = out.input;
  }
  return out;
}

function compileModel(model: ModelPriceInput): ModelPrice {
  if (!model.id || typeof model.id !== 'string') {
    throw new TokenmeterError('invalid_catalog', 'Every catalog model needs a string "id".');
  }
  const what = `model "${model.id}"`;
  if (!model.rates) throw new TokenmeterError('invalid_catalog', `${what} has no "rates".`);
  const rates = compileRates(model.rates, undefined, `${what}.rates`);
  const promptTiers = (model.promptTiers ?? [])
    .map((tier, i) => {
      if (!Number.isSafeInteger(tier.above) || tier.above < 0) {
        throw new TokenmeterError(
          'invalid_catalog',
          `${what}.promptTiers[${i}].above must be a token count.`,
        );
      }
      return {
        above: tier.above,
        rates: compileRates(tier.rates, rates, `${what}.promptTiers[${i}]`),
      };
    })
    .sort((a, b) => a.above - b.above);
  const dataResidency: Record<string, Ratio> = {};
  for (const [geo, m] of Object.entries(model.dataResidency ?? {})) {
    dataResidency[geo] = decimalToRatio(m, `${what}.dataResidency.${geo}`);
  }
  const maxOutput = model.maxOutputTokens;
  if (maxOutput !== undefined && (!Number.isSafeInteger(maxOutput) || maxOutput < 1)) {
    throw new TokenmeterError(
      'invalid_catalog',
      `${what}.maxOutputTokens must be a whole number ≥ 1, got ${String(maxOutput)}.`,
    );
  }
  return {
    id: model.id,
    provider: model.provider ?? guessProvider(model.id),
    rates,
    promptTiers,
    ...(model.fast !== undefined ? { fast: decimalToRatio(model.fast, `${what}.fast`) } : {}),
    dataResidency,
    ...(maxOutput !== undefined ? { maxOutputTokens: maxOutput } : {}),
    ...(model.notes ? { notes: model.notes } : {}),
    source: model,
  };
}

/**
 * A family's price for a snapshot the catalog does not list, when some of its snapshots
 * are priced apart: at every prompt size, each rate is the dearest of the family's and the
 * snapshots' (and so are the fast and residency multipliers).
 */
function dearestOf(base: ModelPrice, snapshots: readonly ModelPrice[]): ModelPrice {
  const all = [base, ...snapshots];
  const ratesAt = (m: ModelPrice, prompt: number): CompiledRates => {
    let rates = m.rates;
    for (const tier of m.promptTiers) if (prompt > tier.above) rates = tier.rates;
    return rates;
  };
  const maxRates = (prompt: number): CompiledRates => {
    const out = {} as CompiledRates;
    for (const kind of TOKEN_KINDS) {
      out[kind] = all.reduce((top, m) => {
        const r = ratesAt(m, prompt)[kind];
        // biome-ignore lint/complexity/useMathMinMax: BigInts (Math.max takes numbers only).
        return r > top ? r : top;
      }, 0n);
    }
    return out;
  };
  const thresholds = [...new Set(all.flatMap((m) => m.promptTiers.map((t) => t.above)))].sort(
    (a, b) => a - b,
  );
  const larger = (a: Ratio | undefined, b: Ratio | undefined) =>
    !a ? b : !b ? a : a.num * b.den >= b.num * a.den ? a : b;
  let fast: Ratio | undefined;
  const dataResidency: Record<string, Ratio> = {};
  for (const m of all) {
    fast = larger(fast, m.fast);
    for (const [geo, r] of Object.entries(m.dataResidency)) {
      dataResidency[geo] = larger(dataResidency[geo], r) as Ratio;
    }
  }
  const outputs = all.map((m) => m.maxOutputTokens).filter((n): n is number => n !== undefined);
  return {
    id: base.id,
    provider: base.provider,
    rates: maxRates(0),
    promptTiers: thresholds.map((above) => ({ above, rates: maxRates(above + 1) })),
    ...(fast ? { fast } : {}),
    dataResidency,
    ...(outputs.length > 0 ? { maxOutputTokens: Math.max(...outputs) } : {}),
    notes: `An unlisted snapshot of ${base.id}: priced at the dearest of ${all.map((m) => m.id).join(', ')}.`,
    source: base.source,
  };
}

function compileProvider(
  name: string,
  input: ProviderPriceInput,
): ProviderPrice & { source: ProviderPriceInput } {
  const serviceTiers: Record<string, Ratio> = {};
  for (const [tier, m] of Object.entries(input.serviceTiers ?? {})) {
    serviceTiers[tier] = decimalToRatio(m, `provider "${name}".serviceTiers.${tier}`);
  }
  const serverTools: Record<string, bigint> = {};
  for (const [tool, fee] of Object.entries(input.serverTools ?? {})) {
    // USD per request → nano-dollars: micro-dollars of the decimal × 1000.
    serverTools[tool] =
      decimalToMicros(fee.usdPerRequest, `provider "${name}".serverTools.${tool}`) * 1000n;
  }
  return { serviceTiers, serverTools, source: input };
}

/** Best guess of the provider from a model id, for catalogs that omit it. */
export function guessProvider(model: string): string {
  if (model.startsWith('claude')) return 'anthropic';
  if (/^(gpt|o\d|chatgpt|text-|davinci|babbage)/.test(model)) return 'openai';
  return 'unknown';
}
