import { describe, expect, it } from 'vitest';
import { StreamMeter } from './meter.js';
import { costOf } from './pricing/cost.js';
import {
  aiSdkParts,
  createAiSdkTranslator,
  createLangChainTranslator,
  fromAiSdkUsage,
  isAiSdkResult,
} from './sources.js';
import { createEventTranslator, type MeterEvent } from './stream-events.js';
import { emptyUsage } from './usage.js';

const usageEvents = (events: MeterEvent[]) =>
  events.filter((e): e is Extract<MeterEvent, { type: 'usage' }> => e.type === 'usage');

describe('AI SDK usage', () => {
  it("reads Anthropic's raw usage: the 1 h cache writes, tier, speed and region survive", () => {
    const usage = fromAiSdkUsage({
      inputTokens: 16,
      inputTokenDetails: { noCacheTokens: 4, cacheReadTokens: 7, cacheWriteTokens: 5 },
      outputTokens: 28,
      raw: {
        input_tokens: 4,
        output_tokens: 28,
        cache_read_input_tokens: 7,
        cache_creation_input_tokens: 5,
        cache_creation: { ephemeral_5m_input_tokens: 2, ephemeral_1h_input_tokens: 3 },
        service_tier: 'standard',
        speed: 'fast',
        inference_geo: 'us',
      },
    });
    expect(usage).toEqual({
      ...emptyUsage(),
      inputTokens: 4,
      outputTokens: 28,
      cacheReadTokens: 7,
      cacheWrite5mTokens: 2,
      cacheWrite1hTokens: 3,
      serviceTier: 'standard',
      speed: 'fast',
      inferenceGeo: 'us',
    });
  });

  it("reads OpenAI's raw chat usage (cached tokens are part of the prompt)", () => {
    const usage = fromAiSdkUsage({
      inputTokens: 10,
      outputTokens: 21,
      raw: {
        prompt_tokens: 10,
        completion_tokens: 21,
        prompt_tokens_details: { cached_tokens: 7 },
        completion_tokens_details: { reasoning_tokens: 9 },
      },
    });
    expect(usage).toMatchObject({
      inputTokens: 3,
      cacheReadTokens: 7,
      outputTokens: 21,
      reasoningTokens: 9,
    });
  });

  it("reads OpenAI's Responses API raw usage", () => {
    const usage = fromAiSdkUsage({
      raw: {
        input_tokens: 100,
        output_tokens: 40,
        input_tokens_details: { cached_tokens: 60 },
        output_tokens_details: { reasoning_tokens: 12 },
      },
    });
    expect(usage).toMatchObject({
      inputTokens: 40,
      cacheReadTokens: 60,
      outputTokens: 40,
      reasoningTokens: 12,
    });
  });

  it('without raw usage (AI SDK 5), uses the normalised fields, cache writes at the 5 min TTL', () => {
    expect(
      fromAiSdkUsage({
        inputTokens: 50,
        outputTokens: 9,
        cachedInputTokens: 20,
        reasoningTokens: 4,
      }),
    ).toEqual({
      ...emptyUsage(),
      inputTokens: 30,
      cacheReadTokens: 20,
      outputTokens: 9,
      reasoningTokens: 4,
    });
    expect(
      fromAiSdkUsage({
        inputTokens: 50,
        outputTokens: 9,
        inputTokenDetails: { noCacheTokens: 20, cacheReadTokens: 10, cacheWriteTokens: 20 },
        outputTokenDetails: { reasoningTokens: 3 },
      }),
    ).toMatchObject({ inputTokens: 20, cacheReadTokens: 10, cacheWrite5mTokens: 20 });
  });
});

describe('AI SDK fullStream parts', () => {
  it('maps text, reasoning, tool input and provider-executed tools; each step is a request', () => {
    const translate = createAiSdkTranslator();
    const step = (input: number, output: number) => ({
      type: 'finish-step',
      response: { id: 'msg_1', modelId: 'claude-sonnet-4-6' },
      usage: { raw: { input_tokens: input, output_tokens: output } },
      finishReason: 'tool-calls',
    });
    const body = {
      model: 'claude-sonnet-4-6',
      max_tokens: 1_124,
      messages: [{ role: 'user', content: 'Hallo' }],
    };
    const events = [
      { type: 'start' },
      { type: 'start-step', request: { body } },
      { type: 'reasoning-delta', id: '0', text: 'hmm' },
      { type: 'text-delta', id: '1', text: 'Hallo 👋' },
      { type: 'text-delta', id: '1', text: '' },
      { type: 'tool-input-start', id: 't', toolName: 'web_search', providerExecuted: true },
      { type: 'tool-input-delta', id: 't', delta: '{"q":' },
      { type: 'tool-input-start', id: 'u', toolName: 'lookup' },
      step(100, 20),
      { type: 'start-step', request: { body: JSON.stringify({ ...body, max_tokens: 300 }) } },
      { type: 'text-delta', id: '2', textDelta: 'v4 shape' },
      step(150, 30),
      { type: 'finish', finishReason: 'stop', rawFinishReason: 'end_turn' },
    ].flatMap((part) => translate(part));
    expect(events.filter((e) => !['usage', 'start', 'request'].includes(e.type))).toEqual([
      { type: 'thinking', text: 'hmm' },
      { type: 'text', text: 'Hallo 👋' },
      { type: 'server_tool', name: 'web_search' },
      { type: 'tool_input', json: '{"q":' },
      // Each step's own finish reason ends its call; the finish part's ends the stream.
      { type: 'stop', reason: 'tool-calls' },
      { type: 'text', text: 'v4 shape' },
      { type: 'stop', reason: 'tool-calls' },
      { type: 'stop', reason: 'end_turn' },
    ]);
    const requests = events.filter((e) => e.type === 'request');
    expect(requests.map((r) => r.maxTokens)).toEqual([1_124, 300]);
    expect(requests[0]!.inputTokens).toBeGreaterThan(0);
    expect(events.find((e) => e.type === 'start')).toEqual({
      type: 'start',
      provider: 'ai-sdk',
      model: 'claude-sonnet-4-6',
    });
    // Usage per step; the meter adds the steps up.
    const usages = usageEvents(events);
    expect(usages.map((u) => [u.usage.inputTokens, u.usage.outputTokens])).toEqual([
      [100, 20],
      [150, 30],
    ]);
    const meter = new StreamMeter({
      model: 'claude-sonnet-4-6',
      inputTokensEstimate: 5,
      maxOutputTokens: 100,
    });
    for (const e of events) meter.observe(e);
    const final = meter.finish('completed');
    expect(final.estimated).toBe(false);
    expect([final.usage.inputTokens, final.usage.outputTokens]).toEqual([250, 50]);
    expect(final.costNanos).toBe(250 * 3_000 + 50 * 15_000);
  });

  it('a stream cut during a later step charges the finished steps and the one in flight', () => {
    const translate = createAiSdkTranslator();
    const meter = new StreamMeter({
      model: 'claude-sonnet-4-6',
      inputTokensEstimate: 5,
      maxOutputTokens: 100,
      estimates: 'bound',
    });
    const body = {
      model: 'claude-sonnet-4-6',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'x' }],
    };
    const parts = [
      { type: 'start-step', request: { body } },
      { type: 'text-delta', id: '1', text: 'first' },
      { type: 'finish-step', usage: { raw: { input_tokens: 40, output_tokens: 10 } } },
      {
        type: 'start-step',
        request: { body: { ...body, messages: [{ role: 'user', content: 'y'.repeat(400) }] } },
      },
      { type: 'text-delta', id: '2', text: 'second step text' },
    ];
    const events = parts.flatMap((p) => translate(p));
    for (const e of events) meter.observe(e);
    const final = meter.finish('client_disconnected');
    const secondInput = events.filter((e) => e.type === 'request')[1]!.inputTokens!;
    expect(secondInput).toBeGreaterThan(40);
    expect(final.estimated).toBe(true);
    expect(final.usage.inputTokens).toBe(40 + secondInput);
    expect(final.usage.outputTokens).toBeGreaterThan(10);
  });

  it('a larger max_tokens than admitted lifts the clamp of the estimate', () => {
    const meter = new StreamMeter({
      model: 'claude-sonnet-4-6',
      inputTokensEstimate: 5,
      maxOutputTokens: 2,
    });
    meter.observe({ type: 'request', maxTokens: 1_000 });
    meter.observe({ type: 'text', text: 'many many words of thinking and answer text here' });
    expect(meter.outputTokensBound).toBeGreaterThan(2);
  });

  it('a tool the app runs is a tool_call; a provider-executed one is not', () => {
    const translate = createAiSdkTranslator();
    expect(
      translate({
        type: 'tool-call',
        toolCallId: 'c1',
        toolName: 'get_weather',
        input: { city: 'Oslo' },
      }),
    ).toEqual([{ type: 'tool_call', id: 'c1', name: 'get_weather', input: { city: 'Oslo' } }]);
    expect(
      translate({
        type: 'tool-call',
        toolCallId: 'c2',
        toolName: 'web_search',
        input: {},
        providerExecuted: true,
      }),
    ).toEqual([]);
  });

  it('takes the service tier from raw OpenAI chunks when the app asks for them', () => {
    const translate = createAiSdkTranslator();
    translate({ type: 'raw', rawValue: { object: 'chat.completion.chunk', service_tier: 'flex' } });
    const [usage] = usageEvents(
      translate({
        type: 'finish-step',
        usage: { raw: { prompt_tokens: 10, completion_tokens: 5 } },
      }),
    );
    expect(usage!.usage.serviceTier).toBe('flex');
    // Flex is half price: the tier changes the bill.
    expect(costOf(usage!.usage, 'o4-mini').nanos).toBe(
      costOf({ ...usage!.usage, serviceTier: undefined }, 'o4-mini').nanos / 2,
    );
  });

  it('uses finish.totalUsage only when no step reported usage', () => {
    const translate = createAiSdkTranslator();
    const events = translate({
      type: 'finish',
      finishReason: 'stop',
      totalUsage: { inputTokens: 5, outputTokens: 6 },
    });
    expect(usageEvents(events)[0]!.usage).toMatchObject({ inputTokens: 5, outputTokens: 6 });
  });

  it('the generic translator recognises the parts; the AI SDK start part is no event', () => {
    const translate = createEventTranslator();
    expect(translate({ type: 'start' })).toEqual([]);
    expect(translate({ type: 'text-delta', id: '0', text: 'x' })).toEqual([
      { type: 'text', text: 'x' },
    ]);
  });

  it('aiSdkParts throws an error part (so a refusal ends the stream as a thrown SDK error)', async () => {
    const failure = Object.assign(new Error('Overloaded'), { statusCode: 529 });
    async function* fullStream() {
      yield { type: 'start' };
      yield { type: 'error', error: failure };
      yield { type: 'text-delta', text: 'never read' };
    }
    const result = { fullStream: fullStream() };
    expect(isAiSdkResult(result)).toBe(true);
    expect(isAiSdkResult({ fullStream: 'no' })).toBe(false);
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const part of aiSdkParts(result)) seen.push(part);
      })(),
    ).rejects.toBe(failure);
    expect(seen).toEqual([{ type: 'start' }]);
  });
});

describe('LangChain.js chunks', () => {
  it('Anthropic: input and cache detail from the first chunk, cumulative output from the last', () => {
    const translate = createEventTranslator();
    const chunks = [
      {
        id: 'msg_1',
        content: '',
        usage_metadata: {
          input_tokens: 15,
          output_tokens: 1,
          input_token_details: { cache_creation: 5, cache_read: 7 },
        },
        response_metadata: {
          model_provider: 'anthropic',
          usage: {
            cache_creation_input_tokens: 5,
            cache_read_input_tokens: 7,
            cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 5 },
            service_tier: 'standard',
            speed: 'fast',
          },
        },
      },
      { content: [{ type: 'thinking', thinking: 'let me see', index: 0 }], response_metadata: {} },
      { content: [{ type: 'text', text: 'Xin chào', index: 1 }], response_metadata: {} },
      { content: 'plain', response_metadata: {}, tool_call_chunks: [{ args: '{"a":1}' }] },
      {
        content: '',
        usage_metadata: { input_tokens: 0, output_tokens: 12 },
        response_metadata: {},
        additional_kwargs: { stop_reason: 'end_turn' },
      },
    ];
    const events = chunks.flatMap((c) => translate(c));
    const start = events.find((e) => e.type === 'start' && e.usage) as Extract<
      MeterEvent,
      { type: 'start' }
    >;
    expect(start).toMatchObject({ provider: 'anthropic', id: 'msg_1' });
    expect(start.usage).toMatchObject({
      inputTokens: 3,
      cacheReadTokens: 7,
      cacheWrite1hTokens: 5,
      cacheWrite5mTokens: 0,
      outputTokens: 1,
    });
    const finals = usageEvents(events);
    expect(finals).toHaveLength(1);
    expect(finals[0]!.usage).toMatchObject({
      inputTokens: 3,
      outputTokens: 12,
      cacheWrite1hTokens: 5,
      speed: 'fast',
    });
    expect(events.filter((e) => e.type === 'text' || e.type === 'thinking')).toEqual([
      { type: 'thinking', text: 'let me see' },
      { type: 'text', text: 'Xin chào' },
      { type: 'text', text: 'plain' },
    ]);
    expect(events).toContainEqual({ type: 'tool_input', json: '{"a":1}' });
    expect(events).toContainEqual({ type: 'stop', reason: 'end_turn' });
  });

  it('other providers: usage_metadata is additive, cache reads are part of the input', () => {
    const translate = createLangChainTranslator();
    const events = [
      { content: 'a', response_metadata: { model_provider: 'google' } },
      {
        content: '',
        usage_metadata: {
          input_tokens: 10,
          output_tokens: 4,
          input_token_details: { cache_read: 6 },
          output_token_details: { reasoning: 2 },
        },
        response_metadata: { finish_reason: 'STOP' },
      },
      { content: '', usage_metadata: { input_tokens: 0, output_tokens: 3 }, response_metadata: {} },
    ].flatMap((c) => translate(c));
    const finals = usageEvents(events);
    expect(finals.at(-1)!.usage).toMatchObject({
      inputTokens: 4,
      cacheReadTokens: 6,
      outputTokens: 7,
      reasoningTokens: 2,
    });
    expect(events).toContainEqual({ type: 'stop', reason: 'STOP' });
  });

  it("OpenAI: the provider's own usage object in response_metadata wins", () => {
    const translate = createLangChainTranslator();
    const [usage] = usageEvents(
      translate({
        content: '',
        usage_metadata: { input_tokens: 10, output_tokens: 21 },
        response_metadata: {
          model_provider: 'openai',
          service_tier: 'priority',
          usage: {
            prompt_tokens: 10,
            completion_tokens: 21,
            prompt_tokens_details: { cached_tokens: 7 },
            completion_tokens_details: { reasoning_tokens: 9 },
          },
        },
      }),
    );
    expect(usage!.usage).toMatchObject({
      inputTokens: 3,
      cacheReadTokens: 7,
      outputTokens: 21,
      reasoningTokens: 9,
      serviceTier: 'priority',
    });
  });
});
