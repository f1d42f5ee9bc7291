import { describe, expect, it } from 'vitest';
import { readFixture } from './fixtures.test-helper.js';
import { StreamMeter } from './meter.js';
import { costOf } from './pricing/cost.js';
import { createEventTranslator } from './stream-events.js';
import { estimateTextTokens } from './token-estimate.js';
import { emptyUsage, type Usage } from './usage.js';

/** Feeds the first `count` payloads of a fixture (all by default) to a new meter. */
function meterFrom(fixture: string, model: string, count?: number, inputTokensEstimate = 999) {
  const meter = new StreamMeter({ model, inputTokensEstimate });
  const translate = createEventTranslator();
  const payloads = readFixture(fixture);
  for (const raw of payloads.slice(0, count ?? payloads.length)) {
    for (const event of translate(raw)) meter.observe(event);
  }
  return meter;
}

describe('StreamMeter final usage', () => {
  it('normal end: the provider totals, not estimated, with the exact cost', () => {
    const meter = meterFrom('anthropic-cache-thinking.sse', 'claude-sonnet-4-6');
    const final = meter.finish('completed');
    expect(final.estimated).toBe(false);
    expect(final.inputSource).toBe('provider');
    expect(final.outputSource).toBe('provider');
    expect(final.usage).toMatchObject({
      inputTokens: 472,
      outputTokens: 61,
      cacheReadTokens: 10_240,
      cacheWrite5mTokens: 512,
      cacheWrite1hTokens: 1_536,
    });
    expect(final.costNanos).toBe(16_539_000); // worked out in stream-events.test.ts
    expect(final.stopReason).toBe('end_turn');
    expect(final.responseId).toBe('msg_01XFDUDYJgAACzvnptvVoYEL');
    expect(final.responseModel).toBe('claude-sonnet-4-6');
  });

  it('cumulative message_delta usage is overwritten, never summed', () => {
    const final = meterFrom('anthropic-cumulative-usage.sse', 'claude-haiku-4-5').finish(
      'completed',
    );
    expect(final.usage.outputTokens).toBe(95);
    expect(final.usage.inputTokens).toBe(3_400);
    expect(final.costNanos).toBe(23_875_000);
  });

  it('abort before message_delta: input from message_start, output estimated from the text received', () => {
    const meter = meterFrom('anthropic-aborted.sse', 'claude-haiku-4-5');
    const received = 'The quick brown fox jumps over the lazy dog. It keeps running';
    const final = meter.finish('client_disconnected');
    expect(final.estimated).toBe(true);
    expect(final.inputSource).toBe('provider');
    expect(final.outputSource).toBe('estimate');
    expect(final.usage.inputTokens).toBe(850);
    const output = estimateTextTokens(received);
    expect(output).toBeGreaterThan(1); // never the "1 output token" of message_start
    expect(final.usage.outputTokens).toBe(output);
    // claude-haiku-4-5: 850 × $1/M + output × $5/M
    expect(final.costNanos).toBe(850 * 1000 + output * 5000);
  });

  it("abort before any text: no output charged, not message_start's placeholder token", () => {
    const meter = meterFrom('anthropic-aborted.sse', 'claude-haiku-4-5', 1);
    const final = meter.finish('client_disconnected');
    expect(final.usage).toMatchObject({ inputTokens: 850, outputTokens: 0 });
    expect(final.costNanos).toBe(850 * 1000);
  });

  it('error event mid-stream: estimated, and the upstream error is kept', () => {
    const final = meterFrom('anthropic-error-mid-stream.sse', 'claude-opus-4-6').finish(
      'upstream_error',
    );
    expect(final.estimated).toBe(true);
    expect(final.upstreamError).toEqual({ type: 'overloaded_error', message: 'Overloaded' });
    const output = estimateTextTokens('Once upon a time, there was a model');
    expect(final.usage).toMatchObject({
      inputTokens: 2_000,
      outputTokens: output,
      serviceTier: 'batch',
    });
    // claude-opus-4-6 in batch: (2000 × $5 + output × $25) / 2, per million
    expect(final.costNanos).toBe(Math.round((2_000 * 5_000 + output * 25_000) / 2));
  });

  it('OpenAI with include_usage: the final usage chunk is authoritative', () => {
    const final = meterFrom('openai-include-usage.sse', 'gpt-4o').finish('completed');
    expect(final.estimated).toBe(false);
    expect(final.costNanos).toBe(4_690_000);
  });

  it('OpenAI aborted before the usage chunk: input from the pre-call estimate, output from text', () => {
    const meter = meterFrom('openai-include-usage.sse', 'gpt-4o', 3, 1_500);
    const final = meter.finish('client_disconnected');
    expect(final.inputSource).toBe('estimate');
    expect(final.usage.inputTokens).toBe(1_500);
    expect(final.usage.outputTokens).toBe(estimateTextTokens('Cached prompt tokens'));
    expect(final.costNanos).toBe(
      costOf(
        { ...emptyUsage(), inputTokens: 1_500, outputTokens: final.usage.outputTokens },
        'gpt-4o',
      ).nanos,
    );
  });

  it('a refused request (HTTP error before any event) costs nothing', () => {
    const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 500 });
    const final = meter.finish('upstream_error', { refused: true });
    expect(final.costNanos).toBe(0);
    expect(final.inputSource).toBe('none');
  });

  it('a request sent and abandoned before any event is charged its input estimate', () => {
    const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 500 });
    const final = meter.finish('client_disconnected');
    expect(final).toMatchObject({ estimated: true, inputSource: 'estimate', costNanos: 500_000 });
  });

  it('finishes exactly once: later calls return the same figure and are counted', () => {
    const meter = meterFrom('anthropic-aborted.sse', 'claude-haiku-4-5');
    const first = meter.finish('client_disconnected');
    const again = meter.finish('completed');
    expect(again).toBe(first);
    expect(again.outcome).toBe('client_disconnected');
    expect(meter.finishCallCount).toBe(2);
    meter.observe({ type: 'text', text: 'late text' });
    expect(meter.finish('completed').costNanos).toBe(first.costNanos);
  });

  it('keeps a running estimate that grows with the text and is marked estimated', () => {
    const meter = meterFrom('anthropic-cache-thinking.sse', 'claude-sonnet-4-6', 5);
    const early = meter.snapshot();
    expect(early.estimated).toBe(true);
    meter.observe({
      type: 'text',
      text: ' and then a much longer continuation of the answer, word after word.',
    });
    const later = meter.snapshot();
    expect(later.usage.outputTokens).toBeGreaterThan(early.usage.outputTokens);
    expect(later.cost.nanos).toBeGreaterThan(early.cost.nanos);
    expect(meter.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);
    // estimate(): the same usage and the same exact nano-dollars, without the breakdown.
    const cheap = meter.estimate();
    expect(cheap).toEqual({
      usage: later.usage,
      costNanos: later.cost.nanos,
      estimated: true,
    });
  });

  it('rejects a nonsensical input estimate', () => {
    expect(() => new StreamMeter({ model: 'gpt-4o', inputTokensEstimate: -1 })).toThrow(
      /non-negative integer/,
    );
  });
});

describe('StreamMeter clamps estimates to what the provider can bill', () => {
  const emoji = '🎉😀🚀 '.repeat(200); // the heuristic runs high on emoji

  it('never estimates more output than max_tokens, however the text runs', () => {
    const meter = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 100,
      maxOutputTokens: 500,
      provider: 'anthropic',
    });
    meter.observeText(emoji);
    expect(estimateTextTokens(emoji)).toBeGreaterThan(500);
    expect(meter.outputTokensEstimate).toBe(500);
    expect(meter.outputTokensBound).toBe(500);
    const final = meter.finish('client_disconnected');
    expect(final.usage.outputTokens).toBe(500);
    expect(final.estimated).toBe(true);
    // 100 × $1/M + 500 × $5/M
    expect(final.costNanos).toBe(100_000 + 2_500_000);
  });

  it('gives a conservative bound above the estimate, and takes a provider figure as it is', () => {
    const meter = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 10,
      maxOutputTokens: 100_000,
    });
    const text = 'Tiếng Việt là ngôn ngữ chính thức của Việt Nam. '.repeat(20);
    meter.observeText(text);
    expect(meter.outputTokensEstimate).toBe(estimateTextTokens(text));
    expect(meter.outputTokensBound).toBeGreaterThan(meter.outputTokensEstimate);
    const capped = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 10,
      maxOutputTokens: 5,
    });
    capped.observe({
      type: 'usage',
      usage: { ...emptyUsage(), inputTokens: 10, outputTokens: 7 },
      final: true,
    });
    expect(capped.finish('completed').usage.outputTokens).toBe(7);
    expect(
      () =>
        new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 1, maxOutputTokens: -1 }),
    ).toThrow(/maxOutputTokens/);
  });
});

describe("StreamMeter with estimates: 'bound'", () => {
  it('charges an unreported answer at its upper estimate: input bound, output bound, at most max_tokens', () => {
    const text = '你好，今天的预算还剩多少？'.repeat(10);
    const upper = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 100,
      inputTokensBound: 130,
      maxOutputTokens: 10_000,
      provider: 'anthropic',
      estimates: 'bound',
    });
    upper.observeText(text);
    const final = upper.finish('client_disconnected');
    expect(final.estimated).toBe(true);
    expect(final.usage.inputTokens).toBe(130);
    expect(final.usage.outputTokens).toBe(upper.outputTokensBound);
    expect(upper.outputTokensBound).toBeGreaterThan(estimateTextTokens(text));
    // 130 × $1/M + bound × $5/M
    expect(final.costNanos).toBe(130 * 1_000 + upper.outputTokensBound * 5_000);
    expect(
      () => new StreamMeter({ model: 'x', inputTokensEstimate: 10, inputTokensBound: 9 }),
    ).toThrow(/inputTokensBound/);
  });

  it('still takes the input message_start reported', () => {
    const meter = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 100,
      inputTokensBound: 130,
      estimates: 'bound',
    });
    meter.observe({
      type: 'start',
      provider: 'anthropic',
      usage: { ...emptyUsage(), inputTokens: 90, outputTokens: 1 },
    });
    expect(meter.finish('client_disconnected').usage.inputTokens).toBe(90);
  });
});

describe('StreamMeter counts server tools that ran', () => {
  it('charges the fee of every web search that started when the final usage never came', () => {
    const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 100 });
    const translate = createEventTranslator();
    const events = [
      {
        type: 'message_start',
        message: { id: 'msg_1', usage: { input_tokens: 100, output_tokens: 1 } },
      },
      ...[0, 2].flatMap((index) => [
        {
          type: 'content_block_start',
          index,
          content_block: {
            type: 'server_tool_use',
            id: `srvtoolu_${index}`,
            name: 'web_search',
            input: {},
          },
        },
        { type: 'content_block_stop', index },
      ]),
    ];
    for (const raw of events) for (const e of translate(raw)) meter.observe(e);
    const final = meter.finish('client_disconnected');
    expect(final.usage.webSearchRequests).toBe(2);
    // 100 × $1/M + 2 searches × $0.01
    expect(final.costNanos).toBe(100_000 + 2 * 10_000_000);
  });
});

describe('StreamMeter: an estimate carries everything the reservation priced', () => {
  const searchStart = (index: number) => ({
    type: 'content_block_start',
    index,
    content_block: {
      type: 'server_tool_use',
      id: `srvtoolu_${index}`,
      name: 'web_search',
      input: {},
    },
  });

  it('a stream cut after web searches is charged their results, not only their fees', () => {
    const meter = new StreamMeter({
      model: 'claude-haiku-4-5',
      inputTokensEstimate: 17,
      inputTokensBound: 40,
      estimates: 'bound',
      requestBound: {
        promptTokens: 40 + 5 * 20_000,
        outputTokens: 1_000,
        serverToolUses: { web_search: 5 },
        serverToolInputTokens: { web_search: 20_000 },
      },
    });
    const translate = createEventTranslator();
    const start = {
      type: 'message_start',
      message: { id: 'm', usage: { input_tokens: 17, output_tokens: 1 } },
    };
    for (const raw of [start, searchStart(0), searchStart(2), searchStart(4)]) {
      for (const e of translate(raw)) meter.observe(e);
    }
    const final = meter.finish('client_disconnected');
    // message_start's prompt (17) + 3 searches × 20,000 result tokens, 3 search fees.
    expect(final.usage.inputTokens).toBe(17 + 3 * 20_000);
    expect(final.costNanos).toBe((17 + 60_000) * 1_000 + 3 * 10_000_000);
  });

  it('a prompt nothing was reported for is charged as reserved: cache writes, fast mode', () => {
    const meter = new StreamMeter({
      model: 'claude-opus-5',
      inputTokensEstimate: 800,
      inputTokensBound: 1_000,
      estimates: 'bound',
      requestBound: { promptTokens: 1_000, outputTokens: 500, cacheWrite: '1h', speed: 'fast' },
    });
    const final = meter.finish('client_disconnected');
    // 1,000 prompt tokens as 1-hour cache writes ($10/M) in fast mode (2×); no output seen.
    expect(final.usage).toMatchObject({ inputTokens: 0, cacheWrite1hTokens: 1_000, speed: 'fast' });
    expect(final.costNanos).toBe(1_000 * 10_000 * 2);
  });
});

describe('StreamMeter: a stream of several provider calls (AI SDK steps)', () => {
  const call = (input: number, output: number): Usage => ({
    ...emptyUsage(),
    inputTokens: input,
    outputTokens: output,
  });

  it('prices each call on its own: two 150,000-token prompts never reach the 200,000 tier', () => {
    let clock = 1_000;
    const meter = new StreamMeter({
      model: 'claude-sonnet-4-5',
      inputTokensEstimate: 150_000,
      now: () => clock,
    });
    meter.observe({ type: 'request', maxTokens: 2_000 });
    meter.observe({ type: 'start', provider: 'ai-sdk', id: 'msg_1', model: 'claude-sonnet-4-5' });
    meter.observe({ type: 'usage', usage: call(150_000, 1_000), final: true });
    meter.observe({ type: 'stop', reason: 'tool_use' });
    clock = 1_400;
    meter.observe({ type: 'request', maxTokens: 2_000, inputTokens: 150_500 });
    // Per call, at $3 / $15 per million: 150,000 × 3,000 + 1,000 × 15,000 = 465,000,000;
    // the next call so far: its announced prompt, 150,500 × 3,000 = 451,500,000.
    expect(meter.estimate().costNanos).toBe(465_000_000 + 451_500_000);
    meter.observe({ type: 'start', provider: 'ai-sdk', id: 'msg_2', model: 'claude-sonnet-4-5' });
    meter.observe({ type: 'usage', usage: call(150_000, 1_000), final: true });
    meter.observe({ type: 'stop', reason: 'end_turn' });
    clock = 2_000;
    expect(meter.estimate().costNanos).toBe(930_000_000);
    const final = meter.finish('completed');
    // The sum priced as one request would be 300,000 × 6,000 + 2,000 × 22,500 = 1,845,000,000.
    expect(final.costNanos).toBe(930_000_000);
    expect(final.cost.nanos).toBe(930_000_000);
    expect(final.cost.tierAbove).toBeUndefined();
    expect(final.cost.lines.reduce((sum, l) => sum + l.nanos, 0)).toBe(930_000_000);
    expect(final.usage.inputTokens).toBe(300_000);
    expect(final.estimated).toBe(false);
    expect(final.stopReason).toBe('end_turn');
    expect(final.responseId).toBe('msg_2');
    expect(final.calls).toEqual([
      {
        usage: call(150_000, 1_000),
        costNanos: 465_000_000,
        estimated: false,
        inputSource: 'provider',
        outputSource: 'provider',
        stopReason: 'tool_use',
        responseId: 'msg_1',
        responseModel: 'claude-sonnet-4-5',
        startedAt: 1_000,
        endedAt: 1_400,
      },
      {
        usage: call(150_000, 1_000),
        costNanos: 465_000_000,
        estimated: false,
        inputSource: 'provider',
        outputSource: 'provider',
        stopReason: 'end_turn',
        responseId: 'msg_2',
        responseModel: 'claude-sonnet-4-5',
        startedAt: 1_400,
        endedAt: 2_000,
      },
    ]);
  });

  it('a call cut before its usage is estimated on its own, with no stop or id of the call before', () => {
    const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 100 });
    meter.observe({ type: 'request', maxTokens: 500 });
    meter.observe({ type: 'start', provider: 'ai-sdk', id: 'msg_1' });
    meter.observe({ type: 'usage', usage: call(100, 20), final: true });
    meter.observe({ type: 'stop', reason: 'tool_use' });
    meter.observe({ type: 'request', maxTokens: 500, inputTokens: 130 });
    meter.observe({ type: 'text', text: 'The answer is' });
    const final = meter.finish('client_disconnected');
    const [first, second] = final.calls!;
    expect(first!.estimated).toBe(false);
    expect(second!.estimated).toBe(true);
    expect(second!.outputSource).toBe('estimate');
    expect(second!.stopReason).toBeUndefined();
    expect(second!.responseId).toBeUndefined();
    expect(final.stopReason).toBeUndefined();
    // $1 / $5 per million: call 1 exact, call 2 its announced prompt and estimated output.
    expect(first!.costNanos).toBe(100 * 1_000 + 20 * 5_000);
    expect(second!.costNanos).toBe(130 * 1_000 + second!.usage.outputTokens * 5_000);
    expect(final.costNanos).toBe(first!.costNanos + second!.costNanos);
  });

  it('a stream of one call has no calls list', () => {
    const meter = new StreamMeter({ model: 'claude-haiku-4-5', inputTokensEstimate: 10 });
    meter.observe({ type: 'request', maxTokens: 100 });
    meter.observe({ type: 'usage', usage: call(10, 5), final: true });
    expect(meter.finish('completed').calls).toBeUndefined();
  });
});
