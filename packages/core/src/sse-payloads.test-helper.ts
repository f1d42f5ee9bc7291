/** Test-only: whole event payloads of tokenmeter's protocol, with what a test changes. */
import type { SseDoneData, SseErrorData, SseMetaData, SseUsageData } from './sse-encoder.js';

const CHARGE = {
  usage: {
    inputTokens: 12,
    outputTokens: 3,
    uncachedInputTokens: 12,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  },
  costUsd: 0.000027,
  costNanos: 27_000,
  estimated: false,
  budget: null,
};

export const meta = (extra: Partial<SseMetaData> = {}): SseMetaData => ({
  requestId: 'r1',
  model: 'm',
  maxTokens: 100,
  inputTokens: 12,
  reservedUsd: 0.000512,
  reservedInputTokens: 12,
  reservedOutputTokens: 100,
  budget: null,
  ...extra,
});

export const usage = (extra: Partial<SseUsageData> = {}): SseUsageData => ({
  inputTokens: 12,
  outputTokens: 3,
  costUsd: 0.000027,
  estimated: true,
  ...extra,
});

export const done = (extra: Partial<SseDoneData> = {}): SseDoneData => ({
  ...CHARGE,
  stopReason: 'end_turn',
  ...extra,
});

export const error = (extra: Partial<SseErrorData> = {}): SseErrorData => ({
  ...CHARGE,
  code: 'timeout',
  message: 'The stream took too long.',
  estimated: true,
  ...extra,
});
