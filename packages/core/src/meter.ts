/**
 * The per-stream meter: the state of one metered stream from reservation to settlement.
 * Fed normalised provider events, it keeps a running usage and cost estimate, and
 * produces the final usage exactly once, whatever way the stream ends:
 * - provider-reported totals where they arrived (cumulative: the last value wins);
 * - otherwise input from `message_start` (or the pre-call figure) and output estimated
 *   from the text actually received — the best guess, or with `estimates: 'bound'` an upper
 *   estimate — never above `max_tokens`, marked `estimated`;
 * - a request the provider refused before any output (HTTP error) costs nothing.
 */
import { TokenmeterError } from './errors.js';
import type { MeterEvent } from './meter-event.js';
import { type Nanos, nanosToUsd } from './money.js';
import type { StreamOutcome } from './outcome.js';
import { type Cost, costOf, defaultPricing, type Pricing } from './pricing/cost.js';
import { type RequestBound, worstCaseCost } from './pricing/worst-case.js';
import { createOutputEstimator, type TokenProvider } from './token-estimate.js';
import { addUsage, emptyUsage, type Usage } from './usage.js';

export interface StreamMeterOptions {
  /** The model requested (what the reservation priced). */
  model: string;
  /** Input tokens estimated (or counted) before the call. */
  inputTokensEstimate: number;
  /** Pricing to use. Defaults to the bundled catalog with the reject policy. */
  pricing?: Pricing;
  /** Clock for first-token timing. Defaults to `performance.now()`. */
  now?: () => number;
  /**
   * The request's `max_tokens`: the provider never bills more output, so no estimate goes
   * above it (a figure the provider reports is taken as it is). Defaults to no clamp.
   */
  maxOutputTokens?: number;
  /** Whose tokenizer the output bound allows for. Defaults to the larger margins of the two. */
  provider?: TokenProvider;
  /**
   * What an estimated charge counts when the provider's final usage never arrived:
   * - `'estimate'` (default): the best guess — input from `message_start` or
   *   `inputTokensEstimate`, output estimated from the text received;
   * - `'bound'`: an upper estimate, so a budget is not overrun by what the provider billed
   *   beyond a guess — input from `message_start` or `inputTokensBound`, output the
   *   estimator's upper bound of the text received (at most `maxOutputTokens`).
   */
  estimates?: 'estimate' | 'bound';
  /** The prompt's upper bound, for `estimates: 'bound'`. Defaults to `inputTokensEstimate`. */
  inputTokensBound?: number;
  /**
   * What the reservation priced, for `estimates: 'bound'`: a call whose usage never arrived
   * is then estimated on the same terms — a prompt nothing was reported for at its dearest
   * kind (cache writes, fast mode, residency, as `worstCaseCost` prices it), and each server
   * tool use that started adds the input its results may bring
   * (`serverToolInputTokens`), which only the final usage reports.
   */
  requestBound?: RequestBound;
}

/** Where a side of the final usage came from. */
export type UsageSource = 'provider' | 'estimate' | 'none';

export interface MeterSnapshot {
  usage: Usage;
  cost: Cost;
  /** True unless every count came from the provider's final report. */
  estimated: boolean;
}

/** What `estimate()` returns: the running usage and its exact cost, without the breakdown. */
export interface RunningEstimate {
  usage: Usage;
  costNanos: Nanos;
  estimated: boolean;
}

export interface FinalUsage extends MeterSnapshot {
  costNanos: Nanos;
  outcome: StreamOutcome;
  inputSource: UsageSource;
  outputSource: UsageSource;
  stopReason?: string;
  responseId?: string;
  responseModel?: string;
  /** The provider's error, when the stream ended on one. */
  upstreamError?: { type: string; message: string };
  /**
   * Each provider call, when the source made more than one (the AI SDK's steps: a tool loop
   * announces each call with a `request` event). The usage, cost and estimated flag above
   * are their sums: each call is priced on its own, as the provider bills it (a prompt-size
   * tier applies to one request's prompt, never to the calls' sum).
   */
  calls?: readonly CallUsage[];
}

/** One provider call of a stream that made several. */
export interface CallUsage {
  usage: Usage;
  costNanos: Nanos;
  estimated: boolean;
  inputSource: UsageSource;
  outputSource: UsageSource;
  stopReason?: string;
  responseId?: string;
  responseModel?: string;
  /** When the call began and ended, on the meter's clock (`now`; the first begins with the meter). */
  startedAt: number;
  endedAt: number;
}

export interface FinishOptions {
  /**
   * The provider refused the request before producing anything (an HTTP error status),
   * so it billed nothing. Defaults to false: a request that was sent and then abandoned
   * is charged its input estimate.
   */
  refused?: boolean;
}

/**
 * @example
 * const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 120 });
 * const translate = createEventTranslator();
 * for await (const raw of stream) for (const e of translate(raw)) meter.observe(e);
 * const final = meter.finish('completed');
 */
export class StreamMeter {
  readonly model: string;
  readonly inputTokensEstimate: number;
  private readonly upper: boolean;
  private readonly inputBound: number;
  /** The prompt at its bound, priced as the reservation priced it (first call only). */
  private readonly boundPromptUsage: Usage | undefined;
  /** Input one use of each server tool may add, as the reservation priced it. */
  private readonly resultTokensPerUse: Readonly<Record<string, number>>;
  private readonly pricing: Pricing | undefined;
  private readonly now: () => number;
  private output;
  /** `max_tokens` of the current provider call (a `request` event may raise it). */
  private maxOutput: number;
  private readonly firstMaxOutput: number;
  private readonly tokenProvider: TokenProvider | undefined;
  /** Provider calls the source announced (`request` events); 0 when it announces none. */
  private requests = 0;
  /** The calls before the current one (several calls: AI SDK steps), and their sums. */
  private earlier: { usage: Usage; estimated: boolean; cost: Cost } | undefined;
  private calls: CallUsage[] | undefined;
  /** When the current call began (the meter's clock). */
  private callStartedAt: number;
  /** The prompt of the current call, when it is not the first (announced by its `request`). */
  private callInput: number | undefined;
  private readonly startedAt: number;
  private startUsage: Usage | undefined;
  private providerUsage: Usage | undefined;
  private providerFinal = false;
  private events = 0;
  private webSearches = 0;
  private webFetches = 0;
  /** The current call wrote output it did not stream (reasoning): only max_tokens bounds it. */
  private unseenOutput = false;
  private result: FinalUsage | undefined;
  private finishCalls = 0;
  stopReason: string | undefined;
  responseId: string | undefined;
  responseModel: string | undefined;
  upstreamError: { type: string; message: string } | undefined;
  /** Milliseconds from construction to the first text or thinking chunk. */
  timeToFirstTokenMs: number | undefined;

  constructor(options: StreamMeterOptions) {
    if (!Number.isSafeInteger(options.inputTokensEstimate) || options.inputTokensEstimate < 0) {
      throw new TokenmeterError(
        'invalid_argument',
        `inputTokensEstimate must be a non-negative integer, got ${String(options.inputTokensEstimate)}.`,
      );
    }
    const max = options.maxOutputTokens ?? Number.POSITIVE_INFINITY;
    if (max !== Number.POSITIVE_INFINITY && (!Number.isSafeInteger(max) || max < 0)) {
      throw new TokenmeterError(
        'invalid_argument',
        `maxOutputTokens must be a non-negative integer, got ${String(options.maxOutputTokens)}.`,
      );
    }
    this.maxOutput = max;
    this.firstMaxOutput = max;
    this.tokenProvider = options.provider;
    this.output = createOutputEstimator(options.provider);
    this.model = options.model;
    this.inputTokensEstimate = options.inputTokensEstimate;
    this.upper = options.estimates === 'bound';
    const inputBound = options.inputTokensBound ?? options.inputTokensEstimate;
    if (!Number.isSafeInteger(inputBound) || inputBound < options.inputTokensEstimate) {
      throw new TokenmeterError(
        'invalid_argument',
        `inputTokensBound must be an integer at least inputTokensEstimate, got ${String(options.inputTokensBound)}.`,
      );
    }
    this.inputBound = inputBound;
    this.pricing = options.pricing;
    const bound = this.upper ? options.requestBound : undefined;
    this.resultTokensPerUse = bound?.serverToolInputTokens ?? {};
    this.boundPromptUsage = bound ? promptAtBound(bound, inputBound, options) : undefined;
    this.now = options.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.callStartedAt = this.startedAt;
  }

  /** Feeds one normalised event. Events after `finish()` are ignored. */
  observe(event: MeterEvent): void {
    if (this.result) return;
    this.events++;
    switch (event.type) {
      case 'start':
        if (event.id) this.responseId = event.id;
        if (event.model) this.responseModel = event.model;
        if (event.usage) this.startUsage = event.usage;
        return;
      case 'text':
      case 'thinking':
        if (this.timeToFirstTokenMs === undefined)
          this.timeToFirstTokenMs = this.now() - this.startedAt;
        this.output.push(event.text);
        return;
      case 'tool_input':
        this.output.push(event.json);
        return;
      case 'tool_call':
        return; // its input was counted as it streamed
      case 'request':
        this.requests++;
        if (this.requests > 1) this.nextCall(event.maxTokens, event.inputTokens);
        else if (event.maxTokens !== undefined && event.maxTokens > this.maxOutput)
          // The source sent a larger max_tokens than admitted: the provider may bill it.
          this.maxOutput = event.maxTokens;
        return;
      case 'unseen_output':
        this.unseenOutput = true;
        return;
      case 'server_tool':
        // Billed per use whether or not the answer completes: counted for the estimate.
        if (event.name === 'web_search') this.webSearches++;
        else if (event.name === 'web_fetch') this.webFetches++;
        return;
      case 'usage':
        // Cumulative: overwrite, never add.
        this.providerUsage = event.usage;
        if (event.final) this.providerFinal = true;
        return;
      case 'stop':
        this.stopReason = event.reason;
        return;
      case 'error':
        this.upstreamError = { type: event.errorType, message: event.message };
        return;
      default: {
        const unknown: never = event;
        void unknown; // future event types are tolerated
      }
    }
  }

  /**
   * Feeds one chunk of answer text: the same as `observe({ type: 'text', text })`, without
   * the event object (the per-token hot path of the middleware).
   */
  observeText(text: string): void {
    if (this.result) return;
    this.events++;
    if (this.timeToFirstTokenMs === undefined)
      this.timeToFirstTokenMs = this.now() - this.startedAt;
    this.output.push(text);
  }

  /** Number of events observed. */
  get eventCount(): number {
    return this.events;
  }

  /**
   * Output tokens estimated from the text, thinking and tool input received so far, never
   * above `maxOutputTokens`.
   */
  get outputTokensEstimate(): number {
    return Math.min(this.output.tokens, this.maxOutput);
  }

  /**
   * A conservative figure for the output so far: the estimator's upper bound (its margins
   * for the provider's tokenizer), never above `maxOutputTokens`. Limits that stop a stream
   * compare this, so an answer in a script the estimator undercounts cannot slip past them.
   */
  get outputTokensBound(): number {
    return Math.min(this.output.bound, this.maxOutput);
  }

  /** True once `finish()` has run. */
  get finished(): boolean {
    return this.result !== undefined;
  }

  /** How many times `finish()` was called (more than 1 means a caller settled twice). */
  get finishCallCount(): number {
    return this.finishCalls;
  }

  /** The running usage and cost, for throttled `usage` events and mid-stream caps. */
  snapshot(): MeterSnapshot {
    const { usage, estimated, cost } = this.currentCost(false);
    return { usage, cost, estimated };
  }

  /**
   * The running usage and its exact cost in nano-dollars, without the cost breakdown:
   * the same figures as `snapshot()`, cheap enough for every chunk.
   */
  estimate(): RunningEstimate {
    const current = this.callUsage(false);
    const pricing = this.pricing ?? defaultPricing();
    const nanos = pricing.nanosOf(current.usage, this.model);
    const earlier = this.earlier;
    if (!earlier) return { usage: current.usage, costNanos: nanos, estimated: current.estimated };
    return {
      usage: addUsage(earlier.usage, current.usage),
      costNanos: earlier.cost.nanos + nanos,
      estimated: current.estimated || earlier.estimated,
    };
  }

  /**
   * The final usage and cost. Runs once: later calls return the same object (and are
   * counted in `finishCallCount`), so a stream can never be settled at two figures.
   */
  finish(outcome: StreamOutcome, options: FinishOptions = {}): FinalUsage {
    this.finishCalls++;
    if (this.result) return this.result;
    const refused = options.refused === true && this.events === 0;
    const { usage, estimated, inputSource, outputSource, cost, call } = this.currentCost(refused);
    if (this.calls && call) this.calls.push(this.callRecord(call));
    const result: FinalUsage = {
      usage,
      cost,
      costNanos: cost.nanos,
      estimated,
      outcome,
      inputSource,
      outputSource,
    };
    if (this.stopReason !== undefined) result.stopReason = this.stopReason;
    if (this.responseId !== undefined) result.responseId = this.responseId;
    if (this.responseModel !== undefined) result.responseModel = this.responseModel;
    if (this.upstreamError !== undefined) result.upstreamError = this.upstreamError;
    if (this.calls) result.calls = Object.freeze(this.calls);
    this.result = Object.freeze(result) as FinalUsage;
    return this.result;
  }

  /**
   * Another provider call begins: the current one's usage and cost are kept (priced on its
   * own, as the provider bills each request), the new one counted afresh.
   */
  private nextCall(maxTokens: number | undefined, inputTokens: number | undefined): void {
    const call = this.callUsage(false);
    const cost = costOf(call.usage, this.model, this.pricing);
    this.calls ??= [];
    this.calls.push(this.callRecord({ ...call, cost }));
    this.earlier = this.earlier
      ? {
          usage: addUsage(this.earlier.usage, call.usage),
          estimated: this.earlier.estimated || call.estimated,
          cost: sumCosts(this.earlier.cost, cost),
        }
      : { usage: call.usage, estimated: call.estimated, cost };
    this.callStartedAt = this.now();
    this.stopReason = undefined;
    this.responseId = undefined;
    this.responseModel = undefined;
    this.startUsage = undefined;
    this.providerUsage = undefined;
    this.providerFinal = false;
    this.webSearches = 0;
    this.webFetches = 0;
    this.unseenOutput = false;
    this.output = createOutputEstimator(this.tokenProvider);
    this.maxOutput = maxTokens ?? this.firstMaxOutput;
    this.callInput = inputTokens ?? 0;
  }

  /**
   * The usage and cost of every call so far: earlier calls' added to the current one's,
   * each call priced on its own. `call` is the current call's own figures.
   */
  private currentCost(refused: boolean): {
    usage: Usage;
    estimated: boolean;
    inputSource: UsageSource;
    outputSource: UsageSource;
    cost: Cost;
    call: CallFigures;
  } {
    const current = this.callUsage(refused);
    const cost = costOf(current.usage, this.model, this.pricing);
    const call = { ...current, cost };
    if (!this.earlier) return { ...call, call };
    return {
      ...current,
      usage: addUsage(this.earlier.usage, current.usage),
      estimated: current.estimated || this.earlier.estimated,
      cost: sumCosts(this.earlier.cost, cost),
      call,
    };
  }

  /** The record of the call that is ending now. */
  private callRecord(call: CallFigures): CallUsage {
    const record: CallUsage = {
      usage: call.usage,
      costNanos: call.cost.nanos,
      estimated: call.estimated,
      inputSource: call.inputSource,
      outputSource: call.outputSource,
      startedAt: this.callStartedAt,
      endedAt: this.now(),
    };
    if (this.stopReason !== undefined) record.stopReason = this.stopReason;
    if (this.responseId !== undefined) record.responseId = this.responseId;
    if (this.responseModel !== undefined) record.responseModel = this.responseModel;
    return Object.freeze(record);
  }

  private callUsage(refused: boolean): {
    usage: Usage;
    estimated: boolean;
    inputSource: UsageSource;
    outputSource: UsageSource;
  } {
    if (this.providerFinal && this.providerUsage) {
      // The provider's final cumulative report; if it ever under-reports output we
      // still trust it: it is what the bill says.
      return {
        usage: this.providerUsage,
        estimated: false,
        inputSource: 'provider',
        outputSource: 'provider',
      };
    }
    if (refused) {
      return { usage: emptyUsage(), estimated: false, inputSource: 'none', outputSource: 'none' };
    }
    const reported = this.providerUsage ?? this.startUsage;
    const input = this.callInput ?? (this.upper ? this.inputBound : this.inputTokensEstimate);
    const usage: Usage = reported
      ? { ...reported }
      : this.callInput === undefined && this.boundPromptUsage
        ? { ...this.boundPromptUsage }
        : { ...emptyUsage(), inputTokens: input };
    // message_start's output_tokens is a placeholder (1), not a count: only a cumulative
    // message_delta figure is, and otherwise what was received is the estimate (at most
    // max_tokens: the provider bills no more). A stream stopped before any text costs no
    // output, never the placeholder's "1 output token".
    // Output written but never streamed (reasoning) has no estimate: what the call may
    // have billed is all its max_tokens allowed.
    usage.outputTokens =
      this.unseenOutput && Number.isFinite(this.maxOutput)
        ? this.maxOutput
        : Math.max(
            this.providerUsage?.outputTokens ?? 0,
            this.upper ? this.outputTokensBound : this.outputTokensEstimate,
          );
    // Server tools that started are billed; their results' input tokens only the final
    // usage can tell, so each use is charged what the reservation priced for it.
    if (!this.providerUsage && this.callInput === undefined) {
      usage.inputTokens +=
        this.webSearches * (this.resultTokensPerUse.web_search ?? 0) +
        this.webFetches * (this.resultTokensPerUse.web_fetch ?? 0);
    }
    usage.webSearchRequests = Math.max(usage.webSearchRequests, this.webSearches);
    usage.webFetchRequests = Math.max(usage.webFetchRequests, this.webFetches);
    return {
      usage,
      estimated: true,
      inputSource: reported ? 'provider' : 'estimate',
      outputSource: 'estimate',
    };
  }
}

/** One call's usage, where it came from, and its cost. */
interface CallFigures {
  usage: Usage;
  estimated: boolean;
  inputSource: UsageSource;
  outputSource: UsageSource;
  cost: Cost;
}

/**
 * Two calls' costs as one: the totals add (each was rounded once, as each request is billed),
 * the lines follow each other; the prompt-size tier shown is the highest any call reached.
 */
function sumCosts(a: Cost, b: Cost): Cost {
  const nanos = a.nanos + b.nanos;
  const sum: Cost = {
    ...b,
    nanos,
    usd: nanosToUsd(nanos),
    lines: [...a.lines, ...b.lines],
    warnings: [...new Set([...a.warnings, ...b.warnings])],
  };
  const tier = Math.max(a.tierAbove ?? -1, b.tierAbove ?? -1);
  if (tier >= 0) sum.tierAbove = tier;
  else delete sum.tierAbove;
  return sum;
}

/**
 * The prompt's usage at its bound, priced at its dearest: the usage `worstCaseCost` finds
 * for the prompt alone (no output, no server tool), with the bound's fast mode, residency
 * and tier. Undefined when the model cannot be priced (the meter then counts plain input).
 */
function promptAtBound(
  bound: RequestBound,
  promptTokens: number,
  options: StreamMeterOptions,
): Usage | undefined {
  try {
    const { serverToolUses: _uses, serverToolInputTokens: _perUse, ...terms } = bound;
    const { usage } = worstCaseCost(
      { ...terms, promptTokens, outputTokens: 0 },
      options.model,
      options.pricing ?? defaultPricing(),
    );
    return { ...usage, outputTokens: 0 };
  } catch {
    return undefined;
  }
}
