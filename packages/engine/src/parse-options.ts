/**
 * `parseOptions()`: the options of any adapter, checked once at creation and resolved into
 * the frozen `Config` the engine runs on (see `options.ts` for its groups and defaults,
 * `option-checks.ts` for the checks).
 */
import { jsonSseEncoder, TokenmeterError } from '@tokenmeter/core';
import { assertStore, guardStore } from '@tokenmeter/core/store';
import { heuristicTokenCounter } from '@tokenmeter/core/tokens';
import {
  CONSOLE_LOGGER,
  checkEntry,
  checkPricing,
  checkTokenCounter,
  hookGuard,
  logUnrecordedCharge,
  parseBodyLimits,
  parsePolicy,
  parseTiming,
  storeTimeoutOf,
} from './option-checks.js';
import { type Config, type ParseDefaults, SSE_DEFAULTS } from './options.js';
import { TOKENMETER_WIRE } from './protocols.js';
import { Telemetry } from './telemetry/index.js';
import type { MeteredOptions, RequestParams } from './types.js';

/**
 * Checks a route's options and resolves them into its frozen `Config`, each group by its
 * own named check. A broken contract throws here, saying what to write.
 */
export function parseOptions<R>(
  options: MeteredOptions<R>,
  defaults: ParseDefaults<R> = SSE_DEFAULTS,
): Config<R> {
  checkEntry(options, defaults);
  const logger = options.logger ?? CONSOLE_LOGGER;
  const rawStore = assertStore(options.store);
  const timing = parseTiming(options, storeTimeoutOf(rawStore, options.storeTimeoutMs));
  const pricing = checkPricing(options.pricing);
  // Model names on metrics are this catalog's ids: what pricing accepts, bounded.
  const telemetry = new Telemetry(options.telemetry ?? {}, pricing.catalog);
  return Object.freeze({
    services: Object.freeze({
      // Timed outside the guard: a timeout counts as a failure at the guard's limit.
      store: telemetry.instrumentStore(guardStore(rawStore, { timeoutMs: timing.storeTimeoutMs })),
      pricing,
      tokenCounter: checkTokenCounter(options.tokenCounter ?? heuristicTokenCounter),
      countExactly: defaults.countExactly,
      events: telemetry,
      logger,
      guard: hookGuard(logger),
    }),
    policy: parsePolicy(options, defaults),
    timing,
    hooks: Object.freeze({
      identify: options.identify,
      request: options.request ?? defaultRequest,
      upstream: options.upstream,
      onSettle: options.onSettle ?? (() => {}),
      onSettleFailure: options.onSettleFailure ?? logUnrecordedCharge(logger),
      onBudgetAlert: options.onBudgetAlert,
    }),
    protocol: Object.freeze({
      wire: defaults.wire?.(logger) ?? TOKENMETER_WIRE,
      encoder: options.encoder ?? jsonSseEncoder,
      body: parseBodyLimits(options, defaults),
      rewritesBody: defaults.rewritesBody ?? options.request === undefined,
    }),
  });
}

/** Reads an Anthropic Messages, OpenAI Chat Completions or Responses request body (parsed JSON). */
export function defaultRequest(_req: unknown, parsed: unknown): RequestParams {
  const body = parsed as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new TokenmeterError(
      'invalid_argument',
      'The request body must be a JSON object (sent as application/json).',
    );
  }
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    throw new TokenmeterError('invalid_argument', '"model" is required: a model id string.');
  }
  const messages = body.messages ?? body.input;
  if (!Array.isArray(messages) && typeof messages !== 'string') {
    throw new TokenmeterError(
      'invalid_argument',
      '"messages" is required: a non-empty array of messages.',
    );
  }
  if (messages.length === 0) {
    throw new TokenmeterError('invalid_argument', '"messages" must not be empty.');
  }
  const temperature = body.temperature;
  const maxTemperature = model.startsWith('claude') ? 1 : 2;
  if (
    temperature !== undefined &&
    (typeof temperature !== 'number' || !(temperature >= 0 && temperature <= maxTemperature))
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      `"temperature" must be a number from 0 to ${maxTemperature} for ${model}.`,
    );
  }
  // `input` without `messages` is an OpenAI Responses request: its limit is max_output_tokens.
  if (body.messages === undefined && !model.startsWith('claude')) {
    return {
      model,
      maxTokens: body.max_output_tokens as number | undefined,
      api: 'openai-responses',
      input: body,
    };
  }
  const maxTokens = body.max_tokens ?? body.max_completion_tokens;
  return { model, maxTokens: maxTokens as number, input: body };
}
