// The fake driven by the official Anthropic SDK: streamed and complete messages, usage,
// cache counters, thinking and tool_use blocks, max_tokens and count_tokens.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countInputTokens } from './input-tokens.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText, seededThinking, seededTokens } from './text-generator.js';
import { seededToolInput } from './tool-arguments.js';

let fake: FakeLLM;
let client: Anthropic;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 40, seed: 7 });
  client = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Tell me about meters.' }];

describe('streaming with client.messages.stream()', () => {
  it('accumulates exactly the seeded text and reports usage equal to the tokens sent', async () => {
    const stream = client.messages.stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 1024,
      messages,
    });
    const message = await stream.finalMessage();

    const record = await fake.waitForRequest(stream.request_id!);
    expect(message.content).toHaveLength(1);
    const block = message.content[0]!;
    expect(block.type).toBe('text');
    expect(block.type === 'text' && block.text).toBe(seededText({ seed: 7, tokens: 40 }));
    expect(record.text).toBe(seededText({ seed: 7, tokens: 40 }));
    expect(message.stop_reason).toBe('end_turn');
    expect(message.model).toBe('claude-sonnet-4-6');
    expect(message.id).toMatch(/^msg_/);
    expect(message.usage.output_tokens).toBe(40);
    expect(record.tokensSent).toBe(40);
    expect(record.tokensGenerated).toBe(40);
    expect(message.usage.input_tokens).toBe(countInputTokens({ messages }, 'anthropic'));
    expect(record.usage).toMatchObject({
      inputTokens: message.usage.input_tokens,
      outputTokens: 40,
    });
    expect(record).toMatchObject({
      provider: 'anthropic',
      path: '/v1/messages',
      model: 'claude-sonnet-4-6',
      stream: true,
      maxTokens: 1024,
      status: 200,
      stopCause: 'completed',
      stopReason: 'end_turn',
      finishedNormally: true,
    });
    expect(record.id).toMatch(/^req_/);
    expect(record.clientClosedAt).toBeUndefined();
  });

  it('reports cache read and cache write (5 min, 1 h) tokens set by request headers', async () => {
    const stream = client.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 1024, messages },
      {
        headers: {
          'x-fake-llm-cache-read': '1200',
          'x-fake-llm-cache-write-5m': '300',
          'x-fake-llm-cache-write-1h': '50',
        },
      },
    );
    const message = await stream.finalMessage();
    expect(message.usage.cache_read_input_tokens).toBe(1200);
    expect(message.usage.cache_creation_input_tokens).toBe(350);
    expect(message.usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: 300,
      ephemeral_1h_input_tokens: 50,
    });
    expect(message.usage.service_tier).toBe('standard');
    // input_tokens excludes cache tokens, as on the real API.
    expect(message.usage.input_tokens).toBe(countInputTokens({ messages }, 'anthropic'));
  });

  it('streams a thinking block and a tool_use block when the request asks for them', async () => {
    const tools: Anthropic.Tool[] = [
      {
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: { type: 'object', properties: { query: { type: 'string' } } },
      },
    ];
    const stream = client.messages.stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 4096,
      thinking: { type: 'enabled', budget_tokens: 2048 },
      tools,
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages,
    });
    const thinkingDeltas: string[] = [];
    stream.on('thinking', (delta) => thinkingDeltas.push(delta));
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(stream.request_id!);

    expect(message.content.map((b) => b.type)).toEqual(['thinking', 'text', 'tool_use']);
    const [thinking, text, toolUse] = message.content;
    expect(thinking?.type === 'thinking' && thinking.thinking).toBe(seededThinking(7, 16));
    expect(thinking?.type === 'thinking' && thinking.signature.length).toBeGreaterThan(10);
    expect(thinkingDeltas.join('')).toBe(seededThinking(7, 16));
    expect(text?.type === 'text' && text.text).toBe(seededText({ seed: 7, tokens: 40 }));
    expect(toolUse?.type === 'tool_use' && toolUse.name).toBe('get_weather');
    expect(toolUse?.type === 'tool_use' && toolUse.input).toEqual(
      JSON.parse(seededToolInput(7, 12)),
    );
    expect(record.toolInput).toBe(seededToolInput(7, 12));
    expect(message.stop_reason).toBe('tool_use');
    expect(message.usage.output_tokens).toBe(16 + 40 + 12);
    expect(record.tokensSent).toBe(16 + 40 + 12);
  });

  it('bills omitted thinking (display: "omitted") without sending its text', async () => {
    const stream = client.messages.stream(
      {
        model: 'claude-opus-4-6',
        max_tokens: 4096,
        thinking: {
          type: 'adaptive',
          display: 'omitted',
        } as unknown as Anthropic.ThinkingConfigParam,
        messages,
      },
      { headers: { 'x-fake-llm-thinking-tokens': '300' } },
    );
    const thinkingDeltas: string[] = [];
    stream.on('thinking', (delta) => thinkingDeltas.push(delta));
    const message = await stream.finalMessage();
    // The block and its signature arrive; not one thinking token of text.
    expect(thinkingDeltas).toEqual([]);
    expect(message.content[0]).toMatchObject({ type: 'thinking', thinking: '' });
    expect(message.usage.output_tokens).toBe(300 + 40);
    const whole = await client.messages.create(
      {
        model: 'claude-opus-4-6',
        max_tokens: 4096,
        thinking: {
          type: 'adaptive',
          display: 'omitted',
        } as unknown as Anthropic.ThinkingConfigParam,
        messages,
      },
      { headers: { 'x-fake-llm-thinking-tokens': '300' } },
    );
    expect(whole.content[0]).toMatchObject({ type: 'thinking', thinking: '' });
    expect(whole.usage.output_tokens).toBe(340);
  });

  it('honours max_tokens: stops at the cap with stop_reason max_tokens', async () => {
    const stream = client.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 9, messages },
      { headers: { 'x-fake-llm-tokens': '500' } },
    );
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(stream.request_id!);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(9);
    expect(message.content[0]?.type === 'text' && message.content[0].text).toBe(
      seededText({ seed: 7, tokens: 9 }),
    );
    expect(record.stopCause).toBe('max_tokens');
    expect(record.tokensPlanned).toBe(9);
  });
});

describe('streaming with raw client.messages.create({ stream: true })', () => {
  it('yields the real event sequence with deltas of `chunk` tokens', async () => {
    const { data: stream, request_id } = await client.messages
      .create(
        { model: 'claude-haiku-4-5', max_tokens: 100, messages, stream: true },
        { headers: { 'x-fake-llm-tokens': '10', 'x-fake-llm-chunk': '3' } },
      )
      .withResponse();
    const types: string[] = [];
    const deltas: string[] = [];
    let startUsage: Anthropic.Usage | undefined;
    let finalUsage: Anthropic.MessageDeltaUsage | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'message_start') startUsage = event.message.usage;
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        deltas.push(event.delta.text);
      }
      if (event.type === 'message_delta') finalUsage = event.usage;
    }
    expect(types).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    const tokens = seededTokens({ seed: 7, tokens: 10 });
    expect(deltas).toEqual([
      tokens.slice(0, 3).join(''),
      tokens.slice(3, 6).join(''),
      tokens.slice(6, 9).join(''),
      tokens.slice(9).join(''),
    ]);
    // Like the real API, message_start claims 1 output token; message_delta has the total.
    expect(startUsage?.output_tokens).toBe(1);
    expect(finalUsage).toMatchObject({
      output_tokens: 10,
      input_tokens: countInputTokens({ messages }, 'anthropic'),
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
    const record = await fake.waitForRequest(request_id!);
    expect(record.writes).toBe(1 + 4);
  });

  it('sends ping events and the exact wire format (checked on the raw bytes)', async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-llm-tokens': '2' },
      body: JSON.stringify({ model: 'm', max_tokens: 10, messages, stream: true }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    const raw = await response.text();
    const events = raw.split('\n\n').filter(Boolean);
    expect(events.map((e) => e.split('\n')[0])).toEqual([
      'event: message_start',
      'event: content_block_start',
      'event: ping',
      'event: content_block_delta',
      'event: content_block_delta',
      'event: content_block_stop',
      'event: message_delta',
      'event: message_stop',
    ]);
    expect(events[2]).toBe('event: ping\ndata: {"type": "ping"}');
    expect(events[1]).toBe(
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    );
    expect(raw.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
  });

  it('keeps adversarial text intact: every SSE event is one JSON line', async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-llm-tokens': '200' },
      body: JSON.stringify({ model: 'm', max_tokens: 1000, messages, stream: true }),
    });
    const raw = await response.text();
    let text = '';
    for (const event of raw.split('\n\n').filter(Boolean)) {
      const lines = event.split('\n');
      expect(lines).toHaveLength(2);
      const data = JSON.parse(lines[1]!.slice('data: '.length));
      if (data.type === 'content_block_delta') text += data.delta.text;
    }
    expect(text).toBe(seededText({ seed: 7, tokens: 200 }));
    expect(text).toContain('\n\ndata: [DONE]\n\n');
    expect(text).toContain('event: done');
  });
});

describe('non-streaming and count_tokens', () => {
  it('returns a complete Message with the same text and usage as a stream would', async () => {
    const { data: message, request_id } = await client.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 1024, messages })
      .withResponse();
    expect(message.type).toBe('message');
    expect(message.role).toBe('assistant');
    expect(message.content).toEqual([{ type: 'text', text: seededText({ seed: 7, tokens: 40 }) }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage).toMatchObject({
      input_tokens: countInputTokens({ messages }, 'anthropic'),
      output_tokens: 40,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ stream: false, tokensSent: 40, finishedNormally: true });
  });

  it('count_tokens agrees with the input_tokens the messages endpoint reports', async () => {
    const system = 'You are terse. Ünïcödé and emoji 🚀 count by UTF-8 bytes.';
    const tools: Anthropic.Tool[] = [
      { name: 'lookup', description: 'Look a word up', input_schema: { type: 'object' } },
    ];
    const counted = await client.messages.countTokens({
      model: 'claude-sonnet-4-6',
      system,
      tools,
      messages,
    });
    const message = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      system,
      tools,
      messages,
    });
    expect(counted.input_tokens).toBe(message.usage.input_tokens);
    expect(counted.input_tokens).toBe(countInputTokens({ system, tools, messages }, 'anthropic'));
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/messages/count_tokens', '/v1/messages']);
  });

  it('lets a header override the input token count for both endpoints', async () => {
    const headers = { 'x-fake-llm-input-tokens': '4321' };
    const counted = await client.messages.countTokens(
      { model: 'claude-sonnet-4-6', messages },
      { headers },
    );
    const message = await client.messages.create(
      { model: 'claude-sonnet-4-6', max_tokens: 64, messages },
      { headers },
    );
    expect(counted.input_tokens).toBe(4321);
    expect(message.usage.input_tokens).toBe(4321);
  });
});

describe('pacing', () => {
  it('waits ttft before the first token and paces tokens at tps', async () => {
    const started = performance.now();
    const stream = client.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 100, messages },
      {
        headers: { 'x-fake-llm-tokens': '11', 'x-fake-llm-tps': '200', 'x-fake-llm-ttft-ms': '80' },
      },
    );
    await stream.finalMessage();
    const done = performance.now();
    const record = await fake.waitForRequest(stream.request_id!);
    // Timers never fire early (give or take libuv's millisecond clock), so on a busy machine
    // these only grow: first token after 80 ms, the 10 others 5 ms apart (200 tokens/s).
    expect(record.firstTokenAt! - record.receivedAt).toBeGreaterThanOrEqual(78);
    expect(record.generationStoppedAt! - record.receivedAt).toBeGreaterThanOrEqual(128);
    expect(done - started).toBeGreaterThanOrEqual(128);
    expect(done - started).toBeLessThan(2000);
  });
});
