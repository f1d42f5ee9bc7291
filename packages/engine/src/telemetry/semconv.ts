/**
 * Every telemetry name tokenmeter emits, in one place: span, event, attribute and metric
 * names, units and histogram bucket boundaries.
 *
 * The `gen_ai.*` names come in two versions, as OpenTelemetry's migration plan for the GenAI
 * conventions asks of an instrumentation that already emitted them:
 *
 * - **previous** (the default): the names of **semantic-conventions v1.41.1**
 *   (docs/gen-ai/gen-ai-spans.md, gen-ai-metrics.md), the last release of the core
 *   repository that carried the GenAI conventions — what tokenmeter has emitted so far;
 * - **latest** (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`, or
 *   `telemetry: { conventions: 'latest' }`): the names of **semantic-conventions-genai
 *   v0.1.0** (docs/gen-ai/client-inference.md, model/gen-ai/spans.yaml), the first release of
 *   the conventions' own repository, and none of the previous ones: the
 *   `gen_ai.client.inference.*` metrics (per-kind token counters with `gen_ai.token.modality`,
 *   per-call token histograms) and `gen_ai.usage.cache_write.input_tokens`.
 *
 * Both are status "Development". There is no standard cost, budget or reservation attribute
 * yet: those are ours, under `tokenmeter.*`; the cost follows the shape proposed for
 * `gen_ai.usage.cost.*` (amount, currency, source) so that moving to the standard names,
 * once merged, is a rename.
 */

/** The semantic-conventions release the previous `gen_ai.*` names follow. */
export const GEN_AI_SEMCONV_VERSION = '1.41.1';
/** The semantic-conventions-genai release the latest `gen_ai.*` names follow. */
export const GEN_AI_LATEST_SEMCONV_VERSION = '0.1.0';

/** Which version of the GenAI names to emit (see the top of this file). */
export type GenAiConventions = 'previous' | 'latest';
/** The environment variable of OpenTelemetry's migration plans: a comma-separated list. */
export const SEMCONV_OPT_IN_ENV = 'OTEL_SEMCONV_STABILITY_OPT_IN';
/** The value of `OTEL_SEMCONV_STABILITY_OPT_IN` that asks for the latest GenAI names. */
export const GEN_AI_LATEST_OPT_IN = 'gen_ai_latest_experimental';

/**
 * The conventions an `OTEL_SEMCONV_STABILITY_OPT_IN` value asks for: `'latest'` when its
 * list holds `gen_ai_latest_experimental`, else `'previous'`. Reads the process's
 * environment when it has one (Node.js, Bun, Deno with env access).
 */
export function conventionsFromEnv(
  value: string | undefined = readEnv(SEMCONV_OPT_IN_ENV),
): GenAiConventions {
  if (!value) return 'previous';
  return value.split(',').some((v) => v.trim() === GEN_AI_LATEST_OPT_IN) ? 'latest' : 'previous';
}

function readEnv(name: string): string | undefined {
  try {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
      ?.env;
    return env?.[name];
  } catch {
    // Deno without --allow-env throws: the default applies.
    return undefined;
  }
}

/** Instrumentation scope of our tracer and meter. Keep the version in step with package.json. */
export const INSTRUMENTATION_SCOPE = { name: '@tokenmeter/core', version: '0.1.0' } as const;

// ---- GenAI conventions: names both versions share ---------------------------------------

export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = 'gen_ai.request.max_tokens';
export const ATTR_GEN_AI_REQUEST_STREAM = 'gen_ai.request.stream';
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const ATTR_GEN_AI_RESPONSE_ID = 'gen_ai.response.id';
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = 'gen_ai.response.finish_reasons';
/** Seconds from the request to the first chunk of a streamed response. */
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = 'gen_ai.response.time_to_first_chunk';
/** All input tokens, cached included (for Anthropic: input + cache read + cache creation). */
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = 'gen_ai.usage.cache_read.input_tokens';
/** Cache writes (previous name; latest: `gen_ai.usage.cache_write.input_tokens`). */
export const ATTR_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS =
  'gen_ai.usage.cache_creation.input_tokens';
/** Cache writes (latest name). */
export const ATTR_GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = 'gen_ai.usage.cache_write.input_tokens';
/** Reasoning / thinking tokens, already inside the output tokens. */
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = 'gen_ai.usage.reasoning.output_tokens';
export const ATTR_GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';
/** Opt-in content (`recordContent`): JSON strings following the conventions' schemas. */
export const ATTR_GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages';
export const ATTR_GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages';
export const ATTR_GEN_AI_SYSTEM_INSTRUCTIONS = 'gen_ai.system_instructions';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';

export const GEN_AI_OPERATION_CHAT = 'chat';
/** The operation of a stream that made several provider calls: an agent's tool loop. */
export const GEN_AI_OPERATION_INVOKE_AGENT = 'invoke_agent';
export const GEN_AI_TOKEN_TYPE_INPUT = 'input';
export const GEN_AI_TOKEN_TYPE_OUTPUT = 'output';

// ---- GenAI metrics, previous names (semantic-conventions v1.41.1) -----------------------

/** Histogram of input and output tokens per operation, by `gen_ai.token.type`. Unit `{token}`. */
export const METRIC_GEN_AI_CLIENT_TOKEN_USAGE = 'gen_ai.client.token.usage';
/** Histogram of operation duration. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_OPERATION_DURATION = 'gen_ai.client.operation.duration';
/** Histogram of time to the first chunk of a streamed response. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK =
  'gen_ai.client.operation.time_to_first_chunk';
/** Histogram of the time between output chunks, one point per chunk after the first. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK =
  'gen_ai.client.operation.time_per_output_chunk';

// ---- GenAI metrics, latest names (semantic-conventions-genai v0.1.0) --------------------

/** Histogram of each inference call's duration, failed ones with `error.type`. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_INFERENCE_DURATION = 'gen_ai.client.inference.duration';
/** Histogram of time to the first chunk of a streamed call. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK =
  'gen_ai.client.inference.time_to_first_chunk';
/** Histogram of the time between output chunks, one point per chunk after the first. Unit `s`. */
export const METRIC_GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK =
  'gen_ai.client.inference.time_per_output_chunk';
/**
 * Counters of tokens, one per kind, each with `gen_ai.token.modality`. Input includes cache
 * reads and writes; output includes reasoning. Unit `{token}`.
 */
export const METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS =
  'gen_ai.client.inference.usage.input_tokens';
export const METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS =
  'gen_ai.client.inference.usage.output_tokens';
export const METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS =
  'gen_ai.client.inference.usage.cache_read.input_tokens';
export const METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS =
  'gen_ai.client.inference.usage.cache_write.input_tokens';
export const METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS =
  'gen_ai.client.inference.usage.reasoning.output_tokens';
/** Histograms of each call's input and output tokens (no modality). Unit `{token}`. */
export const METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS =
  'gen_ai.client.inference.operation.input_tokens';
export const METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS =
  'gen_ai.client.inference.operation.output_tokens';
/**
 * On the usage counters. Anthropic and OpenAI report no per-modality split of a chat call's
 * tokens (a prompt may hold images and PDFs), so every count is `unknown`, as the conventions
 * ask when the modality cannot be told.
 */
export const ATTR_GEN_AI_TOKEN_MODALITY = 'gen_ai.token.modality';
export const GEN_AI_TOKEN_MODALITY_UNKNOWN = 'unknown';

/** The ExplicitBucketBoundaries the conventions give for token histograms. */
export const GEN_AI_TOKEN_USAGE_BUCKETS: readonly number[] = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
/** The ExplicitBucketBoundaries the conventions give for operation duration and time to first chunk. */
export const GEN_AI_DURATION_BUCKETS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/**
 * Boundaries for the time between output chunks (ours: the conventions give none). Chunks
 * come every few to a few hundred milliseconds; a stall shows in the top buckets.
 */
export const TIME_PER_OUTPUT_CHUNK_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5,
];

// ---- Ours ------------------------------------------------------------------------------

/** Names of our spans. The stream span is `chat {model}` (GenAI convention). */
export const SPAN_ADMISSION = 'admit';

/** The stream's request id (also the `X-Request-Id` header). */
export const ATTR_TOKENMETER_REQUEST_ID = 'tokenmeter.request.id';
/** How the stream ended (or why it was refused): one of `OUTCOMES`. */
export const ATTR_TOKENMETER_OUTCOME = 'tokenmeter.outcome';
/** Final cost in USD (a double: display precision). Previous conventions only: latest has `tokenmeter.cost.amount`. */
export const ATTR_TOKENMETER_COST_USD = 'tokenmeter.cost.usd';
/**
 * The cost in the shape proposed for `gen_ai.usage.cost.*` (open-telemetry/
 * semantic-conventions-genai PR #443, not merged): the amount (a double), its ISO 4217
 * currency, and its source (`local`: computed here from the pricing catalog, not read from
 * the provider's response). Under `tokenmeter.*` until the proposal is part of a release.
 */
export const ATTR_TOKENMETER_COST_AMOUNT = 'tokenmeter.cost.amount';
export const ATTR_TOKENMETER_COST_CURRENCY = 'tokenmeter.cost.currency';
export const ATTR_TOKENMETER_COST_SOURCE = 'tokenmeter.cost.source';
export const TOKENMETER_COST_CURRENCY_USD = 'USD';
export const TOKENMETER_COST_SOURCE_LOCAL = 'local';
/** Final cost in integer nano-dollars: the exact figure that was charged. */
export const ATTR_TOKENMETER_COST_NANOS = 'tokenmeter.cost.nanos';
/** True unless every count came from the provider's final usage report. */
export const ATTR_TOKENMETER_COST_ESTIMATED = 'tokenmeter.cost.estimated';
/** What admission reserved (per scope), in USD. */
export const ATTR_TOKENMETER_RESERVED_USD = 'tokenmeter.reserved.usd';
/** The tightest remaining budget after settlement (or at a budget rejection), in USD. */
export const ATTR_TOKENMETER_BUDGET_REMAINING_USD = 'tokenmeter.budget.remaining.usd';
/** Milliseconds from admission to the first text or thinking chunk. */
export const ATTR_TOKENMETER_TIME_TO_FIRST_TOKEN_MS = 'tokenmeter.time_to_first_token_ms';
/** Times the stream paused because the client's socket was full, and the total pause. */
export const ATTR_TOKENMETER_BACKPRESSURE_WAITS = 'tokenmeter.backpressure.waits';
export const ATTR_TOKENMETER_BACKPRESSURE_WAIT_MS = 'tokenmeter.backpressure.wait_ms';
/** Whether the store recorded the settlement (false: the reservation will expire). */
export const ATTR_TOKENMETER_SETTLEMENT_RECORDED = 'tokenmeter.settlement.recorded';
/** Why the upstream call was aborted: an outcome name. */
export const ATTR_TOKENMETER_ABORT_REASON = 'tokenmeter.abort.reason';
/** Why admission refused the request: the JSON error `code` of the response. */
export const ATTR_TOKENMETER_REJECTION_REASON = 'tokenmeter.rejection.reason';
/** The scope kind that refused the request (`user`, `team`, …). */
export const ATTR_TOKENMETER_REJECTION_SCOPE = 'tokenmeter.rejection.scope';
/** Milliseconds until a retry can succeed, as sent in `Retry-After`. */
export const ATTR_TOKENMETER_RETRY_AFTER_MS = 'tokenmeter.retry_after_ms';
/** Prefix of opt-in subject attributes: `tokenmeter.subject.user = "alice"`. */
export const ATTR_TOKENMETER_SUBJECT_PREFIX = 'tokenmeter.subject.';
/** Store operation (`admit`, `settle`, `extend`, `release`, `getState`, `now`). */
export const ATTR_TOKENMETER_STORE_OPERATION = 'tokenmeter.store.operation';
/** How a reservation ended, as the middleware saw it. */
export const ATTR_TOKENMETER_RESERVATION_END = 'tokenmeter.reservation.end';
/** Scope of a store-side reservation gauge. */
export const ATTR_TOKENMETER_SCOPE_KIND = 'tokenmeter.scope.kind';
export const ATTR_TOKENMETER_SCOPE_ID = 'tokenmeter.scope.id';

export const EVENT_TOKENMETER_ADMITTED = 'tokenmeter.admitted';
export const EVENT_TOKENMETER_FIRST_TOKEN = 'tokenmeter.first_token';
export const EVENT_TOKENMETER_BACKPRESSURE = 'tokenmeter.backpressure';
export const EVENT_TOKENMETER_ABORT = 'tokenmeter.abort';

/**
 * Spend, in USD, by model, provider and outcome. A counter of doubles: fine for rates and
 * dashboards, not for accounting — the exact figure is the span's `tokenmeter.cost.nanos`
 * and `onSettle`'s `final.costNanos`.
 */
export const METRIC_TOKENMETER_COST = 'tokenmeter.cost';
/**
 * Latest conventions: the cost of each call, a histogram in the shape proposed for
 * `gen_ai.client.operation.cost` (its `_sum` is the spend), with `tokenmeter.cost.currency`
 * and `tokenmeter.cost.source`. Unit `USD`.
 */
export const METRIC_TOKENMETER_CLIENT_OPERATION_COST = 'tokenmeter.client.operation.cost';
/** Cost buckets, USD: from a hundredth of a cent to $10 for one call. */
export const COST_BUCKETS: readonly number[] = [
  0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10,
];
/** Settled streams, by outcome. Unit `{stream}`. */
export const METRIC_TOKENMETER_STREAMS = 'tokenmeter.streams';
/** Streams open right now (up-down counter). Unit `{stream}`. */
export const METRIC_TOKENMETER_STREAMS_ACTIVE = 'tokenmeter.streams.active';
/** Requests refused before streaming, by `tokenmeter.rejection.reason`. Unit `{request}`. */
export const METRIC_TOKENMETER_ADMISSION_REJECTIONS = 'tokenmeter.admission.rejections';
/** Reservations this process opened. Unit `{reservation}`. */
export const METRIC_TOKENMETER_RESERVATIONS_OPENED = 'tokenmeter.reservations.opened';
/** Reservations this process ended, by `tokenmeter.reservation.end`. Unit `{reservation}`. */
export const METRIC_TOKENMETER_RESERVATIONS_ENDED = 'tokenmeter.reservations.ended';
/** Store-side open reservations of each observed scope (gauge). Unit `{reservation}`. */
export const METRIC_TOKENMETER_STORE_RESERVATIONS_OPEN = 'tokenmeter.store.reservations.open';
/** Store-side expired reservations of each observed scope (gauge). Unit `{reservation}`. */
export const METRIC_TOKENMETER_STORE_RESERVATIONS_EXPIRED = 'tokenmeter.store.reservations.expired';
/** Total time one stream waited for the client's socket to drain. Unit `s`. */
export const METRIC_TOKENMETER_BACKPRESSURE_DURATION = 'tokenmeter.backpressure.duration';
/** Latency of each store call; failed calls carry `error.type`. Unit `s`. */
export const METRIC_TOKENMETER_STORE_OPERATION_DURATION = 'tokenmeter.store.operation.duration';

/** Backpressure waits range from a millisecond (a busy socket) to minutes (a stalled reader). */
export const BACKPRESSURE_BUCKETS: readonly number[] = [
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300,
];
/** Store calls: sub-millisecond in memory, a few ms on Redis, the guard's timeout at worst. */
export const STORE_LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
