/**
 * Test helper: what the fake provider billed for one request — everything it generated
 * (sent or not), the input it counted, each web search's results and fee — priced with the
 * bundled catalog (whose rates `packages/core` checks against hand computations).
 */
import { costOf, emptyUsage, type Usage } from '@tokenmeter/core';
import type { RequestRecord } from '@tokenmeter/testkit';

export function billedUsage(record: RequestRecord): Usage {
  const knobs = record.knobs;
  const body = (record.body ?? {}) as { speed?: unknown; inference_geo?: unknown };
  const usage: Usage = {
    ...emptyUsage(),
    outputTokens: record.tokensGenerated + record.reasoningTokens,
    cacheReadTokens: knobs?.cacheReadTokens ?? 0,
  };
  if (record.provider === 'anthropic') {
    usage.inputTokens = record.inputTokens + record.searches * (knobs?.searchResultTokens ?? 0);
    usage.cacheWrite5mTokens = knobs?.cacheWrite5mTokens ?? 0;
    usage.cacheWrite1hTokens = knobs?.cacheWrite1hTokens ?? 0;
    usage.webSearchRequests = record.searches;
    if (body.speed === 'fast') usage.speed = 'fast';
    if (typeof body.inference_geo === 'string') usage.inferenceGeo = body.inference_geo;
  } else {
    // OpenAI prompt_tokens include the cached ones; Usage keeps them apart.
    usage.inputTokens = record.inputTokens;
  }
  return usage;
}

/** What the provider billed for `record`, in nano-dollars. */
export function billedNanos(record: RequestRecord): number {
  return costOf(billedUsage(record), record.model ?? '').nanos;
}
