import { describe, expect, it } from 'vitest';
import { readFixture } from './fixtures.test-helper.js';
import { costOf } from './pricing/cost.js';
import { createEventTranslator, type MeterEvent } from './stream-events.js';
import { fromAnthropicUsage, fromOpenAIUsage } from './usage.js';

function translateAll(name: string): MeterEvent[] {
  const translate = createEventTranslator();
  return readFixture(name).flatMap((raw) => translate(raw));
}

describe('Anthropic usage normalisation', () => {
  it('keeps input, cache read and the 5m / 1h cache-write split apart', () => {
    const events = translateAll('anthropic-cache-thinking.sse');
    const start = events.find((e) => e.type === 'start');
    expect(start).toMatchObject({
      type: 'start',
      provider: 'anthropic',
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      model: 'claude-sonnet-4-6',
      usage: {
        inputTokens: 472,
        cacheReadTokens: 10_240,
        cacheWrite5mTokens: 512,
        cacheWrite1hTokens: 1_536,
        outputTokens: 3,
        serviceTier: 'standard',
      },
    });
    const finals = events.filter((e) => e.type === 'usage');
    expect(finals).toHaveLength(1);
    const final = finals[0] as Extract<MeterEvent, { type: 'usage' }>;
    // message_delta omits the TTL split: it is kept from message_start.
    expect(final.usage).toMatchObject({
      inputTokens: 472,
      cacheReadTokens: 10_240,
      cacheWrite5mTokens: 512,
      cacheWrite1hTokens: 1_536,
      outputTokens: 61,
    });
    // claude-sonnet-4-6 per million: $3 in, $3.75 5m write, $6 1h write, $0.30 read, $15 out.
    // 472×3 + 512×3.75 + 1536×6 + 10240×0.30 + 61×15 = 1416 + 1920 + 9216 + 3072 + 915
    // = 16,539 $/M → $0.016539
    expect(costOf(final.usage, 'claude-sonnet-4-6').nanos).toBe(16_539_000);
  });

  it('overwrites cumulative message_delta usage, never adds it', () => {
    const usages = translateAll('anthropic-cumulative-usage.sse').filter((e) => e.type === 'usage');
    expect(usages).toHaveLength(2);
    const last = usages[1] as Extract<MeterEvent, { type: 'usage' }>;
    expect(last.usage.outputTokens).toBe(95); // not 40 + 95
    expect(last.usage.inputTokens).toBe(3_400); // not 1200 + 3400
    expect(last.usage.webSearchRequests).toBe(2); // not 1 + 2
    // claude-haiku-4-5: 3400 × $1/M + 95 × $5/M + 2 × $0.01 = 0.0034 + 0.000475 + 0.02
    expect(costOf(last.usage, 'claude-haiku-4-5-20251001').nanos).toBe(23_875_000);
  });

  it('treats a bare cache_creation_input_tokens total as the default 5m TTL', () => {
    const usage = fromAnthropicUsage({ input_tokens: 5, cache_creation_input_tokens: 100 });
    expect(usage).toMatchObject({ cacheWrite5mTokens: 100, cacheWrite1hTokens: 0 });
  });

  it('reads tier, geo and speed from message_start', () => {
    const start = translateAll('anthropic-unknown-events.sse').find((e) => e.type === 'start');
    expect(start).toMatchObject({
      usage: { inferenceGeo: 'us', speed: 'standard', cacheReadTokens: 0 },
    });
  });

  it('tolerates unknown event and delta types', () => {
    const events = translateAll('anthropic-unknown-events.sse');
    expect(events.map((e) => e.type)).toEqual(['start', 'text', 'usage', 'stop']);
  });

  it('maps thinking and text deltas, and the error event', () => {
    const events = translateAll('anthropic-cache-thinking.sse');
    expect(events.filter((e) => e.type === 'thinking')).toHaveLength(1);
    const text = events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join('');
    expect(text).toBe(
      'Prompt caching lets you reuse a long prefix.\n\nCached reads cost a tenth of input — とても安い 💸.',
    );
    const error = translateAll('anthropic-error-mid-stream.sse').at(-1);
    expect(error).toEqual({ type: 'error', errorType: 'overloaded_error', message: 'Overloaded' });
  });
});

describe('OpenAI usage normalisation', () => {
  it('takes cached_tokens out of prompt_tokens and keeps reasoning inside completion', () => {
    const events = translateAll('openai-include-usage.sse');
    expect(events[0]).toMatchObject({
      type: 'start',
      provider: 'openai',
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      model: 'gpt-4o-2024-08-06',
    });
    const usage = events.find((e) => e.type === 'usage') as Extract<MeterEvent, { type: 'usage' }>;
    expect(usage.usage).toMatchObject({
      inputTokens: 512,
      cacheReadTokens: 1_024,
      outputTokens: 213,
      reasoningTokens: 192,
      serviceTier: 'default',
    });
    // gpt-4o: 512 × $2.50/M + 1024 × $1.25/M + 213 × $10/M = 0.00128 + 0.00128 + 0.00213
    expect(costOf(usage.usage, 'gpt-4o-2024-08-06').nanos).toBe(4_690_000);
    expect(events.filter((e) => e.type === 'stop')).toEqual([{ type: 'stop', reason: 'stop' }]);
  });

  it('treats cache_write_tokens as a priced subset of prompt_tokens', () => {
    const usage = fromOpenAIUsage({
      prompt_tokens: 1000,
      completion_tokens: 10,
      prompt_tokens_details: { cached_tokens: 300, cache_write_tokens: 200 },
    });
    expect(usage).toMatchObject({
      inputTokens: 500,
      cacheReadTokens: 300,
      cacheWrite5mTokens: 200,
    });
    // gpt-6-sol per million: 500 × $2 + 300 × $0.20 + 200 × $2.50 + 10 × $10 = 1,660 $/M → $0.00166
    expect(costOf(usage, 'gpt-6-sol').nanos).toBe(1_660_000);
  });

  it('rejects usage whose subsets exceed the whole', () => {
    expect(() =>
      fromOpenAIUsage({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 11 } }),
    ).toThrow(/subsets of prompt_tokens/);
  });
});

describe('tool calls the app runs', () => {
  it('Anthropic: a tool_use block becomes one tool_call at its stop, input parsed', () => {
    const translate = createEventTranslator();
    const events = [
      { type: 'message_start', message: { id: 'msg_1', model: 'claude-sonnet-4-6' } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: '{"city":' },
      },
      {
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: '"Paris"}' },
      },
      { type: 'content_block_stop', index: 1 },
    ].flatMap((e) => translate(e));
    expect(events.filter((e) => e.type === 'tool_call')).toEqual([
      { type: 'tool_call', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
    ]);
    // The input was counted as it streamed.
    expect(events.filter((e) => e.type === 'tool_input')).toHaveLength(2);
  });

  it('OpenAI: tool_calls deltas by index become tool_calls at the finish, before the stop', () => {
    const translate = createEventTranslator();
    const chunk = (delta: object, finish: string | null = null) => ({
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason: finish }],
    });
    const events = [
      chunk({
        tool_calls: [{ index: 0, id: 'call_a', function: { name: 'a', arguments: '' } }],
      }),
      chunk({ tool_calls: [{ index: 1, id: 'call_b', function: { name: 'b', arguments: '[1' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"x":1}' } }] }),
      chunk({ tool_calls: [{ index: 1, function: { arguments: ',2]' } }] }),
      chunk({}, 'tool_calls'),
    ].flatMap((c) => translate(c));
    const tail = events.slice(-3);
    expect(tail).toEqual([
      { type: 'tool_call', id: 'call_a', name: 'a', input: { x: 1 } },
      { type: 'tool_call', id: 'call_b', name: 'b', input: [1, 2] },
      { type: 'stop', reason: 'tool_calls' },
    ]);
  });

  it('input that is not JSON is passed on as its text', () => {
    const translate = createEventTranslator();
    const events = [
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: 't', name: 'n' },
      },
      {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: '{"cut' },
      },
      { type: 'content_block_stop', index: 0 },
    ].flatMap((e) => translate(e));
    expect(events.at(-1)).toEqual({ type: 'tool_call', id: 't', name: 'n', input: '{"cut' });
  });
});

describe('createEventTranslator: a stream of no known format', () => {
  it('throws unrecognized_stream on a first chunk no format matches, naming its shape', () => {
    for (const [first, shape] of [
      [{ candidates: [], usageMetadata: {} }, 'keys candidates, usageMetadata'],
      [{ type: 'thread.created', thread: {} }, 'keys type, thread'],
      ['Hello', 'string'],
      [{}, '(none)'],
    ] as const) {
      const translate = createEventTranslator();
      let thrown: unknown;
      try {
        translate(first);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'unrecognized_stream' });
      expect((thrown as Error).message).toContain(shape);
    }
  });

  it('once a format is known, skips chunks it does not know (future event types)', () => {
    const translate = createEventTranslator();
    expect(translate({ type: 'ping' })).toEqual([]);
    expect(translate({ type: 'a_future_event' })).toEqual([]);
    expect(translate('stray')).toEqual([]);
    expect(translate({ candidates: [] })).toEqual([]);
  });
});
