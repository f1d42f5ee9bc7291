/**
 * The names of the OpenTelemetry GenAI conventions tokenmeter may emit, each list taken from
 * the conventions' repository at a named tag (the inference span's attribute table and the
 * client metrics), plus the general attributes they reference. The span and metric tests
 * check that every `gen_ai.*`, `error.*` and `server.*` name emitted is in the list of the
 * conventions in effect, and that no name of the other version appears.
 *
 * - previous: open-telemetry/semantic-conventions **v1.41.1**, docs/gen-ai/gen-ai-spans.md
 *   (Inference) and docs/gen-ai/gen-ai-metrics.md (client metrics);
 * - latest: open-telemetry/semantic-conventions-genai **v0.1.0**,
 *   docs/gen-ai/client-inference.md (span `gen_ai.client.inference` and its metrics) and
 *   docs/gen-ai/gen-ai-token-metrics.md.
 */

/** Attributes of the inference span both versions define, as tokenmeter uses them. */
const SHARED_SPAN_ATTRIBUTES = [
  'gen_ai.operation.name',
  'gen_ai.provider.name',
  'gen_ai.request.model',
  'gen_ai.request.max_tokens',
  'gen_ai.request.stream',
  'gen_ai.response.model',
  'gen_ai.response.id',
  'gen_ai.response.finish_reasons',
  'gen_ai.response.time_to_first_chunk',
  'gen_ai.usage.input_tokens',
  'gen_ai.usage.output_tokens',
  'gen_ai.usage.cache_read.input_tokens',
  'gen_ai.usage.reasoning.output_tokens',
  'gen_ai.input.messages',
  'gen_ai.output.messages',
  'gen_ai.system_instructions',
  'error.type',
  'server.address',
  'server.port',
  // On the admit span of a refused request: the HTTP status it was answered with (the
  // HTTP conventions, stable).
  'http.response.status_code',
];

/** The GenAI metrics' attributes both versions define alike. */
const SHARED_METRIC_ATTRIBUTES = [
  'gen_ai.operation.name',
  'gen_ai.provider.name',
  'gen_ai.request.model',
  'gen_ai.response.model',
  'server.address',
  'server.port',
  'error.type',
];

export const CONVENTIONS = {
  previous: {
    tag: 'open-telemetry/semantic-conventions v1.41.1',
    spanAttributes: [...SHARED_SPAN_ATTRIBUTES, 'gen_ai.usage.cache_creation.input_tokens'],
    /** Metric attributes beyond the span's: the token histogram's type. */
    metricAttributes: [...SHARED_METRIC_ATTRIBUTES, 'gen_ai.token.type'],
    metrics: {
      'gen_ai.client.token.usage': { type: 'histogram', unit: '{token}' },
      'gen_ai.client.operation.duration': { type: 'histogram', unit: 's' },
      'gen_ai.client.operation.time_to_first_chunk': { type: 'histogram', unit: 's' },
      'gen_ai.client.operation.time_per_output_chunk': { type: 'histogram', unit: 's' },
    },
  },
  latest: {
    tag: 'open-telemetry/semantic-conventions-genai v0.1.0',
    spanAttributes: [...SHARED_SPAN_ATTRIBUTES, 'gen_ai.usage.cache_write.input_tokens'],
    metricAttributes: [...SHARED_METRIC_ATTRIBUTES, 'gen_ai.token.modality'],
    metrics: {
      'gen_ai.client.inference.duration': { type: 'histogram', unit: 's' },
      'gen_ai.client.inference.time_to_first_chunk': { type: 'histogram', unit: 's' },
      'gen_ai.client.inference.time_per_output_chunk': { type: 'histogram', unit: 's' },
      'gen_ai.client.inference.usage.input_tokens': { type: 'counter', unit: '{token}' },
      'gen_ai.client.inference.usage.output_tokens': { type: 'counter', unit: '{token}' },
      'gen_ai.client.inference.usage.cache_read.input_tokens': { type: 'counter', unit: '{token}' },
      'gen_ai.client.inference.usage.cache_write.input_tokens': {
        type: 'counter',
        unit: '{token}',
      },
      'gen_ai.client.inference.usage.reasoning.output_tokens': {
        type: 'counter',
        unit: '{token}',
      },
      'gen_ai.client.inference.operation.input_tokens': { type: 'histogram', unit: '{token}' },
      'gen_ai.client.inference.operation.output_tokens': { type: 'histogram', unit: '{token}' },
    },
  },
} as const;

/** Names the conventions own: everything but tokenmeter's own. */
export const isConventionName = (name: string) => /^(gen_ai|error|server|http)\./.test(name);
