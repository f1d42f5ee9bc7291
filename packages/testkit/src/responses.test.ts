// The Responses API (`POST /v1/responses`) driven by the official OpenAI SDK: the event
// sequence and its sequence numbers, the complete Response, usage (cached input, reasoning
// output), reasoning items with and without a summary, max_output_tokens, validation in
// OpenAI's error shape, and the WebSocket upgrade Codex tries first.

import { request } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countInputTokens } from './input-tokens.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText, seededThinking } from './text-generator.js';

let fake: FakeLLM;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 12, seed: 4 });
  client = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const input: OpenAI.Responses.ResponseInputItem[] = [
  { role: 'user', content: [{ type: 'input_text', text: 'What is a token meter?' }] },
];
const instructions = 'Be brief.';
const promptTokens = countInputTokens({ instructions, input }, 'openai');

async function collect(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe('streaming', () => {
  it('sends the real event sequence, numbered from 0, ending in response.completed with usage', async () => {
    const { data: stream, request_id } = await client.responses
      .create({ model: 'gpt-5-mini', instructions, input, stream: true })
      .withResponse();
    const events = await collect(stream);

    expect(events.map((e) => e.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(12).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const created = events[0]!.type === 'response.created' ? events[0]!.response : undefined;
    expect(created).toMatchObject({
      status: 'in_progress',
      usage: null,
      output: [],
      object: 'response',
    });
    const text = seededText({ seed: 4, tokens: 12 });
    const deltas = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e] : []));
    expect(deltas.map((e) => e.delta).join('')).toBe(text);
    expect(deltas[0]).toMatchObject({
      output_index: 0,
      content_index: 0,
      logprobs: [],
      item_id: expect.stringMatching(/^msg_/),
    });
    const done = events.find((e) => e.type === 'response.output_text.done');
    expect(done?.type === 'response.output_text.done' && done.text).toBe(text);

    const last = events.at(-1)!;
    const response = last.type === 'response.completed' ? last.response : undefined;
    expect(response).toMatchObject({
      status: 'completed',
      model: 'gpt-5-mini',
      instructions,
      incomplete_details: null,
      error: null,
    });
    expect(response?.id).toMatch(/^resp_/);
    expect(response?.output).toEqual([
      {
        id: deltas[0]!.item_id,
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
      },
    ]);
    expect(response?.usage).toEqual({
      input_tokens: promptTokens,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 12,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: promptTokens + 12,
    });

    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      provider: 'openai',
      path: '/v1/responses',
      stream: true,
      tokensSent: 12,
      stopReason: 'completed',
      stopCause: 'completed',
      finishedNormally: true,
      inputTokens: promptTokens,
    });
    expect(record.usage).toMatchObject({ inputTokens: promptTokens, outputTokens: 12 });
    expect(record.text).toBe(text);
  });

  it('writes event: lines matching each type, and no [DONE]', async () => {
    const response = await fetch(`${fake.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-llm-tokens': '3' },
      body: JSON.stringify({ model: 'gpt-5-mini', input: 'hi', stream: true }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    const raw = await response.text();
    expect(raw).not.toContain('[DONE]');
    const blocks = raw.split('\n\n').filter(Boolean);
    for (const block of blocks) {
      const [event, data, ...rest] = block.split('\n');
      expect(rest).toEqual([]);
      expect(event).toBe(`event: ${JSON.parse(data!.slice('data: '.length)).type}`);
    }
    expect(blocks.at(-1)).toMatch(/^event: response\.completed\n/);
  });

  it('stream helper: finalResponse() and output_text, with cached input and hidden reasoning', async () => {
    const stream = client.responses.stream(
      { model: 'o4-mini', input, reasoning: { effort: 'high' } },
      { headers: { 'x-fake-llm-cache-read': '512', 'x-fake-llm-reasoning-tokens': '40' } },
    );
    const types: string[] = [];
    stream.on('event', (event) => types.push(event.type));
    const response = await stream.finalResponse();
    const inputOnly = countInputTokens({ input }, 'openai');
    expect(response.output_text).toBe(seededText({ seed: 4, tokens: 12 }));
    // Hidden reasoning is an item with an empty summary, first; its tokens are billed unseen.
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(response.output[0]).toEqual({
      id: expect.stringMatching(/^rs_/),
      type: 'reasoning',
      summary: [],
    });
    expect(types).not.toContain('response.reasoning_summary_text.delta');
    expect(response.usage).toMatchObject({
      input_tokens: inputOnly + 512,
      input_tokens_details: { cached_tokens: 512 },
      output_tokens: 12 + 40,
      output_tokens_details: { reasoning_tokens: 40 },
      total_tokens: inputOnly + 512 + 52,
    });
    expect(response.reasoning).toEqual({ effort: 'high', summary: null });
    const record = fake.lastRequest!;
    expect(record).toMatchObject({ tokensSent: 12, reasoningTokens: 40 });
    expect(record.usage).toMatchObject({
      outputTokens: 52,
      reasoningTokens: 40,
      cacheReadTokens: 512,
    });
  });

  it('streams the reasoning as a summary when the request asks reasoning.summary', async () => {
    const { data: stream } = await client.responses
      .create(
        {
          model: 'o4-mini',
          input,
          stream: true,
          reasoning: { effort: 'low', summary: 'auto' },
          include: ['reasoning.encrypted_content'],
        },
        { headers: { 'x-fake-llm-reasoning-tokens': '7' } },
      )
      .withResponse();
    const events = await collect(stream);
    const summaryTypes = events
      .map((e) => e.type)
      .filter((type) => type.includes('reasoning_summary'));
    expect(summaryTypes).toEqual([
      'response.reasoning_summary_part.added',
      ...Array(7).fill('response.reasoning_summary_text.delta'),
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
    ]);
    const summary = events
      .flatMap((e) => (e.type === 'response.reasoning_summary_text.delta' ? [e.delta] : []))
      .join('');
    expect(summary).toBe(seededThinking(4, 7));
    const last = events.at(-1)!;
    const response = last.type === 'response.completed' ? last.response : undefined;
    expect(response?.output[0]).toEqual({
      id: expect.stringMatching(/^rs_/),
      type: 'reasoning',
      summary: [{ type: 'summary_text', text: summary }],
      encrypted_content: expect.any(String),
    });
    expect(response?.output[1]).toMatchObject({ type: 'message' });
    // The summary is streamed output; all of it counts as reasoning.
    expect(response?.usage).toMatchObject({
      output_tokens: 7 + 12,
      output_tokens_details: { reasoning_tokens: 7 },
    });
    expect(fake.lastRequest?.thinking).toBe(summary);
  });

  it('max_output_tokens: response.incomplete with reason max_output_tokens, usage at the cap', async () => {
    const { data: stream } = await client.responses
      .create(
        { model: 'o4-mini', input, stream: true, max_output_tokens: 16 },
        { headers: { 'x-fake-llm-reasoning-tokens': '10' } },
      )
      .withResponse();
    const events = await collect(stream);
    const last = events.at(-1)!;
    expect(last.type).toBe('response.incomplete');
    const response = last.type === 'response.incomplete' ? last.response : undefined;
    expect(response?.status).toBe('incomplete');
    expect(response?.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response?.max_output_tokens).toBe(16);
    expect(response?.output[1]).toMatchObject({
      type: 'message',
      status: 'incomplete',
      content: [{ text: seededText({ seed: 4, tokens: 6 }) }],
    });
    expect(response?.usage?.output_tokens).toBe(16);
    expect(fake.lastRequest).toMatchObject({
      stopCause: 'max_tokens',
      stopReason: 'incomplete',
      maxTokens: 16,
    });
  });
});

describe('non-streaming', () => {
  it('returns the Response object, echoing the request settings', async () => {
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'lookup',
        parameters: { type: 'object', properties: {} },
        strict: false,
      },
      { type: 'web_search' },
    ];
    const { data: response, request_id } = await client.responses
      .create({
        model: 'gpt-5-mini',
        instructions,
        input,
        tools,
        tool_choice: 'auto',
        temperature: 0.5,
        top_p: 0.9,
        store: false,
        parallel_tool_calls: false,
        metadata: { run: '7' },
        previous_response_id: 'resp_earlier',
        text: { verbosity: 'low' },
        service_tier: 'flex',
        truncation: 'auto',
      })
      .withResponse();
    expect(response).toMatchObject({
      object: 'response',
      status: 'completed',
      model: 'gpt-5-mini',
      instructions,
      tools,
      tool_choice: 'auto',
      temperature: 0.5,
      top_p: 0.9,
      store: false,
      parallel_tool_calls: false,
      metadata: { run: '7' },
      previous_response_id: 'resp_earlier',
      text: { format: { type: 'text' }, verbosity: 'low' },
      service_tier: 'flex',
      truncation: 'auto',
      max_output_tokens: null,
      error: null,
      incomplete_details: null,
      reasoning: { effort: null, summary: null },
    });
    expect(response.created_at).toBeGreaterThan(1_700_000_000);
    // output_text is the SDK's own convenience, computed from the message items.
    expect(response.output_text).toBe(seededText({ seed: 4, tokens: 12 }));
    const promptWithTools = countInputTokens(
      { instructions, input, tools, tool_choice: 'auto', text: { verbosity: 'low' } },
      'openai',
    );
    expect(response.usage?.input_tokens).toBe(promptWithTools);
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      stream: false,
      tokensSent: 12,
      finishedNormally: true,
      inputTokens: promptWithTools,
    });
  });

  it('takes a plain string input and answers the bare /responses path too', async () => {
    const bare = new OpenAI({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
    const response = await bare.responses.create({ model: 'gpt-5-mini', input: 'Hello there' });
    expect(response.output_text).toBe(seededText({ seed: 4, tokens: 12 }));
    expect(response.usage?.input_tokens).toBe(Math.ceil('Hello there'.length / 4));
    expect(fake.lastRequest?.path).toBe('/responses');
  });
});

describe('input tokens', () => {
  it('count instructions, every input item (function calls and outputs included) and tools', () => {
    const items = [
      { role: 'user', content: [{ type: 'input_text', text: 'abcd'.repeat(10) }] },
      { type: 'function_call', call_id: 'c', name: 'n', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c', output: 'x'.repeat(40) },
    ];
    const base = countInputTokens({ input: items }, 'openai');
    expect(countInputTokens({ input: items, instructions: 'y'.repeat(40) }, 'openai')).toBe(
      base + 10,
    );
    expect(
      countInputTokens(
        {
          input: items,
          max_output_tokens: 100,
          previous_response_id: 'resp_abcdefgh',
          reasoning: { effort: 'high' },
          store: false,
        },
        'openai',
      ),
    ).toBe(base);
    // An input image and a PDF file are billed by rule, not by their bytes.
    const pdf = Buffer.from('%PDF-1.4 << /Type /Page >> << /Type /Page >>').toString('base64');
    const attachments = {
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_image', image_url: `data:image/png;base64,${'A'.repeat(100_000)}` },
            {
              type: 'input_file',
              filename: 'a.pdf',
              file_data: `data:application/pdf;base64,${pdf}`,
            },
          ],
        },
      ],
    };
    expect(countInputTokens(attachments, 'openai')).toBe(1 + 1_600 + 2 * 1_500);
  });
});

describe('validation', () => {
  async function badRequest(body: Record<string, unknown>) {
    try {
      await client.responses.create(
        body as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming,
      );
    } catch (error) {
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
      expect(apiError.type).toBe('invalid_request_error');
      return { param: apiError.param, code: apiError.code, message: apiError.message };
    }
    throw new Error('expected a 400');
  }

  it.each([
    ['no model', 'model', 'missing_required_parameter', { input: 'hi' }],
    [
      'max_output_tokens below 16',
      'max_output_tokens',
      'integer_below_min_value',
      { model: 'm', input: 'hi', max_output_tokens: 5 },
    ],
    [
      'a decimal max_output_tokens',
      'max_output_tokens',
      'invalid_type',
      { model: 'm', input: 'hi', max_output_tokens: 20.5 },
    ],
    [
      'Chat Completions messages',
      'messages',
      'unknown_parameter',
      { model: 'm', messages: [{ role: 'user', content: 'hi' }] },
    ],
    [
      'Chat Completions max_tokens',
      'max_tokens',
      'unknown_parameter',
      { model: 'm', input: 'hi', max_tokens: 100 },
    ],
    [
      'a Chat Completions tool',
      'tools[0].name',
      'missing_required_parameter',
      { model: 'm', input: 'hi', tools: [{ type: 'function', function: { name: 'f' } }] },
    ],
    [
      'an unknown role',
      'input[0].role',
      'invalid_value',
      { model: 'm', input: [{ role: 'bot', content: 'hi' }] },
    ],
    [
      'a Chat Completions content part',
      'input[0].content[0].type',
      'invalid_value',
      { model: 'm', input: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
    ],
    [
      'input_text in an assistant message',
      'input[0].content[0].type',
      'invalid_value',
      { model: 'm', input: [{ role: 'assistant', content: [{ type: 'input_text', text: 'hi' }] }] },
    ],
    [
      'a function_call_output without call_id',
      'input[0].call_id',
      'missing_required_parameter',
      { model: 'm', input: [{ type: 'function_call_output', output: 'ok' }] },
    ],
    ['input that is an object', 'input', 'invalid_type', { model: 'm', input: { role: 'user' } }],
    [
      'an unknown tool_choice',
      'tool_choice',
      'invalid_value',
      { model: 'm', input: 'hi', tool_choice: 'any' },
    ],
    [
      'a reasoning effort that does not exist',
      'reasoning.effort',
      'invalid_value',
      { model: 'm', input: 'hi', reasoning: { effort: 'extreme' } },
    ],
    [
      'a temperature above 2',
      'temperature',
      'decimal_above_max_value',
      { model: 'm', input: 'hi', temperature: 3 },
    ],
    ['stream as a string', 'stream', 'invalid_type', { model: 'm', input: 'hi', stream: 'yes' }],
  ])('%s: 400 naming %s (%s)', async (_, param, code, body) => {
    await expect(badRequest(body)).resolves.toMatchObject({ param, code });
  });

  it('a tool_choice naming a function not offered', async () => {
    const error = await badRequest({
      model: 'm',
      input: 'hi',
      tools: [{ type: 'web_search' }],
      tool_choice: { type: 'function', name: 'f' },
    });
    expect(error).toMatchObject({
      param: 'tool_choice',
      message: expect.stringContaining("not found in 'tools'"),
    });
  });

  it('accepts what Codex sends: reasoning items, function calls and outputs, custom and built-in tools', async () => {
    const response = await client.responses.create({
      model: 'gpt-5-codex',
      instructions: 'You are Codex.',
      input: [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: '<env>' }] },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Fix it.' }] },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAA' },
        {
          type: 'function_call',
          call_id: 'call_1',
          name: 'shell',
          arguments: '{"command":["ls"]}',
        },
        { type: 'function_call_output', call_id: 'call_1', output: 'a.ts' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Done.' }] },
      ] as OpenAI.Responses.ResponseInput,
      tools: [
        {
          type: 'function',
          name: 'shell',
          parameters: { type: 'object', properties: {} },
          strict: false,
        },
        { type: 'custom', name: 'apply_patch', format: { type: 'text' } },
        { type: 'web_search' },
      ],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      reasoning: { effort: 'medium', summary: 'auto' },
      store: false,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'session-1',
    });
    expect(response.status).toBe('completed');
  });
});

describe('WebSocket mode', () => {
  it('answers an upgrade of GET /v1/responses with a 426 in OpenAI error shape, then POST works', async () => {
    const { status, body, headers } = await new Promise<{
      status: number;
      body: string;
      headers: Record<string, unknown>;
    }>((resolve, reject) => {
      const req = request(`${fake.url}/v1/responses`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'openai-beta': 'responses_websockets=2026-02-06',
        },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }),
        );
      });
      req.on('upgrade', () => reject(new Error('the fake must not switch protocols')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
    expect(headers['x-request-id']).toMatch(/^req_/);
    expect(JSON.parse(body)).toEqual({
      error: {
        message: expect.stringContaining('WebSocket'),
        type: 'invalid_request_error',
        param: null,
        code: 'websocket_not_supported',
      },
    });
    expect(fake.lastRequest).toMatchObject({ method: 'GET', status: 426, stopCause: 'rejected' });
    const response = await client.responses.create({ model: 'gpt-5-codex', input: 'hi' });
    expect(response.status).toBe('completed');
  });
});

describe('POST /v1/responses/input_tokens', () => {
  it('counts a request as the Responses route bills it, and generates nothing', async () => {
    const counted = await client.responses.inputTokens.count({
      model: 'gpt-5',
      instructions,
      input,
    });
    expect(counted).toMatchObject({ object: 'response.input_tokens', input_tokens: promptTokens });
    const record = fake.requests.at(-1)!;
    expect(record.path).toBe('/v1/responses/input_tokens');
    expect(record.inputTokens).toBe(promptTokens);
    expect(record.tokensGenerated).toBe(0);
    const billed = await client.responses.create({ model: 'gpt-5', instructions, input });
    expect(billed.usage!.input_tokens).toBe(counted.input_tokens);
  });
});
