// Anthropic usage that echoes the request (speed, inference_geo, server_tool_use) and web
// search: server_tool_use + web_search_tool_result blocks, consecutive wire indices, billed
// search results in the final input count, max_uses, max_tokens, and what the record says.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countInputTokens } from './input-tokens.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededSearchQuery, seededText, seededThinking } from './text-generator.js';
import { seededToolInput } from './tool-arguments.js';

let fake: FakeLLM;
let client: Anthropic;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 6, seed: 11 });
  client = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is new in metering?' }];
const webSearch: Anthropic.WebSearchTool20250305 = {
  type: 'web_search_20250305',
  name: 'web_search',
};
const tools = [webSearch];
const prompt = countInputTokens({ messages, tools }, 'anthropic');

/** A parsed SSE payload, with the fields these tests read. */
interface WireEvent {
  type: string;
  index?: number;
  content_block?: { type: string; id?: string; tool_use_id?: string; [key: string]: unknown };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string };
  message?: { usage: Record<string, unknown> };
  usage?: Record<string, unknown>;
}

/** A raw streamed request: the parsed `data:` payloads, in order. */
async function rawEvents(
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<WireEvent[]> {
  const response = await fetch(`${fake.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 1024, stream: true, ...body }),
  });
  expect(response.status).toBe(200);
  const raw = await response.text();
  return raw
    .split('\n\n')
    .filter(Boolean)
    .map((event) => {
      const [name, data] = event.split('\n');
      const parsed = JSON.parse(data!.slice('data: '.length)) as WireEvent;
      // Every event's name is its payload's type.
      expect(name).toBe(`event: ${parsed.type}`);
      return parsed;
    });
}

describe('usage echoes speed and inference_geo', () => {
  it('streaming: message_start and the final message carry them (defaults standard/global)', async () => {
    const stream = client.messages.stream({
      model: 'claude-opus-4-6',
      max_tokens: 100,
      messages,
      speed: 'fast',
      inference_geo: 'us',
    });
    let startUsage: Anthropic.Usage | undefined;
    stream.on('streamEvent', (event) => {
      if (event.type === 'message_start') startUsage = event.message.usage;
    });
    const message = await stream.finalMessage();
    expect(startUsage).toMatchObject({
      speed: 'fast',
      inference_geo: 'us',
      service_tier: 'standard',
      server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
    });
    expect(message.usage).toMatchObject({ speed: 'fast', inference_geo: 'us' });
    const record = await fake.waitForRequest(stream.request_id!);
    expect(record.usage).toMatchObject({ speed: 'fast', inferenceGeo: 'us', webSearchRequests: 0 });

    const plain = client.messages.stream({ model: 'claude-opus-4-6', max_tokens: 100, messages });
    const plainMessage = await plain.finalMessage();
    expect(plainMessage.usage).toMatchObject({ speed: 'standard', inference_geo: 'global' });
    const plainRecord = await fake.waitForRequest(plain.request_id!);
    expect(plainRecord.usage).toMatchObject({ speed: 'standard', inferenceGeo: 'global' });
  });

  it('non-streaming: the Message usage carries them; speed other than fast is standard', async () => {
    const message = await client.messages.create({
      model: 'claude-opus-4-6',
      max_tokens: 100,
      messages,
      speed: 'standard',
      inference_geo: 'eu',
    });
    expect(message.usage).toMatchObject({
      speed: 'standard',
      inference_geo: 'eu',
      service_tier: 'standard',
      server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
    });
    const fast = await client.messages.create({
      model: 'claude-opus-4-6',
      max_tokens: 100,
      messages,
      speed: 'fast',
    });
    expect(fast.usage).toMatchObject({ speed: 'fast', inference_geo: 'global' });
  });
});

describe('web search', () => {
  it('streams thinking → searches → text → tool_use with consecutive wire indices', async () => {
    const calc: Anthropic.Tool = {
      name: 'calc',
      input_schema: {
        type: 'object',
        properties: { expression: { type: 'string' } },
        required: ['expression'],
      },
    };
    const body = {
      messages,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [webSearch, calc],
      tool_choice: { type: 'any' },
    };
    const events = await rawEvents(body, { 'x-fake-llm-searches': '2', 'x-fake-llm-chunk': '3' });

    // [wire index, block type] of every content_block_start, and every event's index.
    const starts = events
      .filter((e) => e.type === 'content_block_start')
      .map((e) => [e.index, e.content_block?.type]);
    expect(starts).toEqual([
      [0, 'thinking'],
      [1, 'server_tool_use'],
      [2, 'web_search_tool_result'],
      [3, 'server_tool_use'],
      [4, 'web_search_tool_result'],
      [5, 'text'],
      [6, 'tool_use'],
    ]);
    const stops = events.filter((e) => e.type === 'content_block_stop').map((e) => e.index);
    expect(stops).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // A result block is started and stopped right after its query block stops: no deltas.
    for (const wire of [2, 4]) {
      const at = events.findIndex((e) => e.type === 'content_block_start' && e.index === wire);
      expect(events[at - 1]).toEqual({ type: 'content_block_stop', index: wire - 1 });
      expect(events[at + 1]).toEqual({ type: 'content_block_stop', index: wire });
    }

    const [, search0, result0, search1, result1] = events
      .filter((e) => e.type === 'content_block_start')
      .map((e) => e.content_block!);
    expect(search0).toEqual({
      type: 'server_tool_use',
      id: expect.stringMatching(/^srvtoolu_\w+$/),
      name: 'web_search',
      input: {},
    });
    expect(search1!.id).not.toBe(search0!.id);
    expect(result0).toEqual({
      type: 'web_search_tool_result',
      tool_use_id: search0!.id,
      content: [
        {
          type: 'web_search_result',
          url: expect.stringMatching(/^https:\/\/example\.com\//),
          title: expect.any(String),
          encrypted_content: expect.any(String),
          page_age: null,
        },
      ],
    });
    expect(result1!.tool_use_id).toBe(search1!.id);

    const deltasOf = (wire: number) =>
      events
        .filter((e) => e.type === 'content_block_delta' && e.index === wire)
        .map((e) => e.delta!);
    expect(deltasOf(1).every((d) => d.type === 'input_json_delta')).toBe(true);
    expect(deltasOf(1).map((d) => d.partial_json)).toHaveLength(3); // 8 tokens, 3 per delta
    expect(
      deltasOf(1)
        .map((d) => d.partial_json)
        .join(''),
    ).toBe(seededSearchQuery(11, 0));
    expect(
      deltasOf(3)
        .map((d) => d.partial_json)
        .join(''),
    ).toBe(seededSearchQuery(11, 1));
    expect(seededSearchQuery(11, 0)).not.toBe(seededSearchQuery(11, 1));
    expect(JSON.parse(seededSearchQuery(11, 1))).toEqual({ query: expect.any(String) });
    expect(deltasOf(2)).toEqual([]);
    expect(deltasOf(0).at(-1)?.type).toBe('signature_delta');
    expect(
      deltasOf(5)
        .map((d) => d.text)
        .join(''),
    ).toBe(seededText({ seed: 11, tokens: 6 }));
    expect(
      deltasOf(6)
        .map((d) => d.partial_json)
        .join(''),
    ).toBe(seededToolInput(11, 12, undefined, calc.input_schema));
    // The call is of the function tool, never of the server tool listed before it.
    const toolStart = events.find((e) => e.content_block?.type === 'tool_use');
    expect(toolStart?.content_block?.name).toBe('calc');

    // message_start's input excludes the search results; message_delta's includes them.
    const promptTokens = countInputTokens(body, 'anthropic');
    const start = events.find((e) => e.type === 'message_start')!;
    expect(start.message?.usage.input_tokens).toBe(promptTokens);
    expect(start.message?.usage.server_tool_use).toEqual({
      web_search_requests: 0,
      web_fetch_requests: 0,
    });
    const delta = events.find((e) => e.type === 'message_delta')!;
    expect(delta.usage).toEqual({
      input_tokens: promptTokens + 2 * 1000,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: 16 + 2 * 8 + 6 + 12,
      server_tool_use: { web_search_requests: 2, web_fetch_requests: 0 },
    });
    expect(delta.delta?.stop_reason).toBe('tool_use');
    expect(fake.lastRequest).toMatchObject({ searches: 2, tokensSent: 50 });
  });

  it('the SDK stream helper accumulates the search blocks, their inputs and the usage', async () => {
    const stream = client.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 1024, messages, tools },
      { headers: { 'x-fake-llm-searches': '2' } },
    );
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(stream.request_id!);

    expect(message.content.map((b) => b.type)).toEqual([
      'server_tool_use',
      'web_search_tool_result',
      'server_tool_use',
      'web_search_tool_result',
      'text',
    ]);
    const [s0, r0, s1, r1, text] = message.content;
    expect(s0).toMatchObject({ name: 'web_search', input: JSON.parse(seededSearchQuery(11, 0)) });
    expect(s1).toMatchObject({ name: 'web_search', input: JSON.parse(seededSearchQuery(11, 1)) });
    expect(s0?.type === 'server_tool_use' && s0.input).toEqual({ query: expect.any(String) });
    expect(r0?.type === 'web_search_tool_result' && r0.tool_use_id).toBe(
      s0?.type === 'server_tool_use' && s0.id,
    );
    expect(r1?.type === 'web_search_tool_result' && r1.tool_use_id).toBe(
      s1?.type === 'server_tool_use' && s1.id,
    );
    expect(text?.type === 'text' && text.text).toBe(seededText({ seed: 11, tokens: 6 }));
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.server_tool_use).toEqual({
      web_search_requests: 2,
      web_fetch_requests: 0,
    });
    expect(message.usage.input_tokens).toBe(prompt + 2000);
    expect(message.usage.output_tokens).toBe(2 * 8 + 6);

    expect(record.searches).toBe(2);
    expect(record.inputTokens).toBe(prompt);
    expect(record.blocks).toEqual([
      { kind: 'web_search', tokens: 8, tokensSent: 8 },
      { kind: 'web_search', tokens: 8, tokensSent: 8 },
      { kind: 'text', tokens: 6, tokensSent: 6 },
    ]);
    expect(record.usage).toMatchObject({
      inputTokens: prompt + 2000,
      outputTokens: 22,
      webSearchRequests: 2,
    });
    expect(record.text).toBe(seededText({ seed: 11, tokens: 6 }));
  });

  it('a complete Message has the same blocks in the same order, with parsed inputs', async () => {
    const { data: message, request_id } = await client.messages
      .create(
        { model: 'claude-sonnet-4-6', max_tokens: 1024, messages, tools },
        { headers: { 'x-fake-llm-searches': '2', 'x-fake-llm-search-result-tokens': '250' } },
      )
      .withResponse();
    expect(message.content).toEqual([
      {
        type: 'server_tool_use',
        id: expect.stringMatching(/^srvtoolu_/),
        name: 'web_search',
        input: JSON.parse(seededSearchQuery(11, 0)),
      },
      expect.objectContaining({ type: 'web_search_tool_result' }),
      {
        type: 'server_tool_use',
        id: expect.stringMatching(/^srvtoolu_/),
        name: 'web_search',
        input: JSON.parse(seededSearchQuery(11, 1)),
      },
      expect.objectContaining({ type: 'web_search_tool_result' }),
      { type: 'text', text: seededText({ seed: 11, tokens: 6 }) },
    ]);
    const ids = message.content.map((b) =>
      b.type === 'server_tool_use' ? b.id : b.type === 'web_search_tool_result' && b.tool_use_id,
    );
    expect(ids[1]).toBe(ids[0]);
    expect(ids[3]).toBe(ids[2]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(message.usage).toMatchObject({
      input_tokens: prompt + 2 * 250,
      output_tokens: 22,
      server_tool_use: { web_search_requests: 2, web_fetch_requests: 0 },
    });
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ stream: false, searches: 2, tokensSent: 22 });
    expect(record.usage?.inputTokens).toBe(prompt + 500);
  });

  it('searches once by default when the request has a web search tool', async () => {
    const message = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 1024,
      messages,
      tools,
    });
    expect(message.content.map((b) => b.type)).toEqual([
      'server_tool_use',
      'web_search_tool_result',
      'text',
    ]);
    expect(message.usage.server_tool_use?.web_search_requests).toBe(1);
    expect(message.usage.input_tokens).toBe(prompt + 1000);
    expect(fake.lastRequest?.searches).toBe(1);
  });

  it('max_uses caps the searches knob (max_uses 0: none)', async () => {
    const capped = [{ ...webSearch, max_uses: 2 }];
    const stream = client.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 1024, messages, tools: capped },
      { headers: { 'x-fake-llm-searches': '5' } },
    );
    const message = await stream.finalMessage();
    expect(message.content.filter((b) => b.type === 'server_tool_use')).toHaveLength(2);
    expect(message.usage.server_tool_use?.web_search_requests).toBe(2);
    expect((await fake.waitForRequest(stream.request_id!)).searches).toBe(2);

    const none = await client.messages.create(
      {
        model: 'claude-sonnet-4-6',
        max_tokens: 1024,
        messages,
        tools: [{ ...webSearch, max_uses: 0 }],
      },
      { headers: { 'x-fake-llm-searches': '5' } },
    );
    expect(none.content.map((b) => b.type)).toEqual(['text']);
    expect(none.usage.server_tool_use?.web_search_requests).toBe(0);
  });

  it('never searches without a web search tool, whatever the knob says', async () => {
    fake.configure({ searches: 3 });
    const custom: Anthropic.Tool = {
      name: 'web_search_lookalike',
      input_schema: { type: 'object' },
    };
    for (const body of [{}, { tools: [custom] }]) {
      const stream = client.messages.stream({
        model: 'claude-sonnet-4-6',
        max_tokens: 1024,
        messages,
        ...body,
      });
      const message = await stream.finalMessage();
      const record = await fake.waitForRequest(stream.request_id!);
      expect(message.content.map((b) => b.type)).toEqual(['text']);
      expect(message.usage.server_tool_use).toEqual({
        web_search_requests: 0,
        web_fetch_requests: 0,
      });
      expect(message.usage.input_tokens).toBe(countInputTokens({ messages, ...body }, 'anthropic'));
      expect(record.searches).toBe(0);
      expect(record.usage?.webSearchRequests).toBe(0);
    }
    // With the tool, the server-level knob applies.
    const searched = await client.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 1024,
      messages,
      tools,
    });
    expect(searched.usage.server_tool_use?.web_search_requests).toBe(3);
  });

  it('max_tokens cuts through a search query: no result for it, no text, not billed', async () => {
    const headers = { 'x-fake-llm-searches': '2' };
    const body = { model: 'claude-sonnet-4-6', max_tokens: 12, messages, tools };
    const events = await rawEvents(body, headers);
    const starts = events
      .filter((e) => e.type === 'content_block_start')
      .map((e) => [e.index, e.content_block?.type]);
    expect(starts).toEqual([
      [0, 'server_tool_use'],
      [1, 'web_search_tool_result'],
      [2, 'server_tool_use'],
    ]);
    const cut = events
      .filter((e) => e.type === 'content_block_delta' && e.index === 2)
      .map((e) => e.delta?.partial_json)
      .join('');
    expect(cut).toBe(seededSearchQuery(11, 1, 4));
    expect(() => JSON.parse(cut)).toThrow(SyntaxError);
    const delta = events.find((e) => e.type === 'message_delta')!;
    expect(delta.delta?.stop_reason).toBe('max_tokens');
    expect(delta.usage).toMatchObject({
      input_tokens: prompt + 1000,
      output_tokens: 12,
      server_tool_use: { web_search_requests: 1, web_fetch_requests: 0 },
    });
    expect(fake.lastRequest).toMatchObject({
      searches: 1,
      stopCause: 'max_tokens',
      blocks: [
        { kind: 'web_search', tokens: 8, tokensSent: 8 },
        { kind: 'web_search', tokens: 4, tokensSent: 4 },
      ],
    });

    // The SDK helper accepts the cut stream; not streaming, the cut input is reported empty.
    const stream = client.messages.stream(body, { headers });
    const streamed = await stream.finalMessage();
    expect(streamed.content.map((b) => b.type)).toEqual([
      'server_tool_use',
      'web_search_tool_result',
      'server_tool_use',
    ]);
    expect(streamed.stop_reason).toBe('max_tokens');
    const message = await client.messages.create(body, { headers });
    expect(message.content.map((b) => b.type)).toEqual([
      'server_tool_use',
      'web_search_tool_result',
      'server_tool_use',
    ]);
    expect(message.content[2]?.type === 'server_tool_use' && message.content[2].input).toEqual({});
    expect(message.usage).toMatchObject({
      output_tokens: 12,
      server_tool_use: { web_search_requests: 1, web_fetch_requests: 0 },
    });
  });

  it('max_tokens spent before the searches: none performed', async () => {
    const events = await rawEvents(
      { messages, tools, thinking: { type: 'enabled', budget_tokens: 1024 }, max_tokens: 16 },
      {},
    );
    const starts = events.filter((e) => e.type === 'content_block_start');
    expect(starts.map((e) => e.content_block?.type)).toEqual(['thinking']);
    const delta = events.find((e) => e.type === 'message_delta')!;
    expect(delta.delta?.stop_reason).toBe('max_tokens');
    expect(delta.usage).toMatchObject({
      output_tokens: 16,
      server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
    });
    expect(fake.lastRequest?.thinking).toBe(seededThinking(11, 16));
  });

  it('a search whose query was cut by a mid-stream fault is not performed', async () => {
    const events = await rawEvents(
      { messages, tools },
      { 'x-fake-llm-fault': 'error-mid-stream', 'x-fake-llm-fault-after': '5' },
    );
    expect(events.map((e) => e.type).at(-1)).toBe('error');
    expect(events.some((e) => e.content_block?.type === 'web_search_tool_result')).toBe(false);
    const record = fake.lastRequest!;
    await fake.waitForRequest(record.id);
    expect(record).toMatchObject({ searches: 0, tokensSent: 5, stopCause: 'fault' });
  });

  it('OpenAI never searches: the knob and web search tools are ignored', async () => {
    const openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
    const { data: completion, request_id } = await openai.chat.completions
      .create(
        {
          model: 'gpt-4o',
          messages: [{ role: 'user', content: 'hi' }],
          tools: [{ type: 'web_search_20250305', name: 'web_search' } as never],
        },
        { headers: { 'x-fake-llm-searches': '3' } },
      )
      .withResponse();
    expect(completion.choices[0]?.message.content).toBe(seededText({ seed: 11, tokens: 6 }));
    expect(completion.usage?.completion_tokens).toBe(6);
    const record = await fake.waitForRequest(request_id!);
    expect(record.searches).toBe(0);
    expect(record.blocks.map((b) => b.kind)).toEqual(['text']);
    expect(record.usage?.webSearchRequests).toBe(0);
    expect(record.usage).not.toHaveProperty('speed');
    expect(record.usage).not.toHaveProperty('inferenceGeo');
  });
});
