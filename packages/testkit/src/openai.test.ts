// The fake driven by the official OpenAI SDK: chat.completion.chunk streams with and
// without the usage chunk, cached and reasoning tokens, tool calls, max tokens.

import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countInputTokens } from './input-tokens.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';
import { seededToolInput } from './tool-arguments.js';

let fake: FakeLLM;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 30, seed: 3 });
  client = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const messages: OpenAI.ChatCompletionMessageParam[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What is a token meter?' },
];
const promptTokens = countInputTokens({ messages }, 'openai');

describe('streaming', () => {
  it('streams the seeded text and ends with an empty-choices usage chunk, then [DONE]', async () => {
    const { data: stream, request_id } = await client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(seededText({ seed: 3, tokens: 30 }));
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.every((c) => c.id === chunks[0]?.id && c.id.startsWith('chatcmpl-'))).toBe(true);
    const finish = chunks[chunks.length - 2];
    expect(finish?.choices[0]?.finish_reason).toBe('stop');
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: 30,
      total_tokens: promptTokens + 30,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    });
    // Every other chunk carries "usage": null when include_usage is set.
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);

    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      provider: 'openai',
      path: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      stream: true,
      tokensSent: 30,
      tokensGenerated: 30,
      stopReason: 'stop',
      stopCause: 'completed',
      finishedNormally: true,
    });
    expect(record.usage?.outputTokens).toBe(record.tokensSent);
  });

  it('sends no usage at all without stream_options.include_usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.usage === undefined && c.choices.length === 1)).toBe(true);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
  });

  it('reports cached_tokens as a subset of prompt_tokens and reasoning_tokens in completion_tokens', async () => {
    const stream = await client.chat.completions.create(
      {
        model: 'o4-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      },
      { headers: { 'x-fake-llm-cache-read': '1024', 'x-fake-llm-reasoning-tokens': '50' } },
    );
    let usage: OpenAI.CompletionUsage | null | undefined;
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(seededText({ seed: 3, tokens: 30 }));
    expect(usage?.prompt_tokens).toBe(promptTokens + 1024);
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe(1024);
    expect(usage?.completion_tokens).toBe(30 + 50);
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(50);
    const record = fake.lastRequest!;
    expect(record.tokensSent).toBe(30);
    expect(record.reasoningTokens).toBe(50);
  });

  it('honours max_completion_tokens with finish_reason length', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      max_completion_tokens: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let completion: number | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) completion = chunk.usage.completion_tokens;
    }
    expect(text).toBe(seededText({ seed: 3, tokens: 7 }));
    expect(finish).toBe('length');
    expect(completion).toBe(7);
  });

  it('streams tool calls that the SDK stream helper assembles', async () => {
    const parameters = {
      type: 'object',
      properties: { query: { type: 'string' } },
      required: ['query'],
    };
    const stream = client.chat.completions.stream(
      {
        model: 'gpt-4o-mini',
        messages,
        tools: [{ type: 'function', function: { name: 'search', parameters } }],
        tool_choice: 'required',
        stream_options: { include_usage: true },
      },
      { headers: { 'x-fake-llm-tokens': '0' } },
    );
    const completion = await stream.finalChatCompletion();
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('search');
    expect(call?.type === 'function' && call.function.arguments).toBe(
      seededToolInput(3, 12, undefined, parameters),
    );
    expect(completion.usage?.completion_tokens).toBe(12);
  });
});

describe('non-streaming', () => {
  it('returns a chat.completion with the same text and usage', async () => {
    const { data: completion, request_id } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages }, { headers: { 'x-fake-llm-cache-read': '10' } })
      .withResponse();
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message.content).toBe(seededText({ seed: 3, tokens: 30 }));
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toMatchObject({
      prompt_tokens: promptTokens + 10,
      completion_tokens: 30,
      total_tokens: promptTokens + 10 + 30,
      prompt_tokens_details: { cached_tokens: 10 },
    });
    expect(request_id).toBe(fake.lastRequest?.id);
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ stream: false, tokensSent: 30, finishedNormally: true });
  });

  it('answers a base URL without /v1 as well', async () => {
    const bare = new OpenAI({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
    const completion = await bare.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(completion.choices[0]?.message.content).toBe(seededText({ seed: 3, tokens: 30 }));
    expect(fake.lastRequest?.path).toBe('/chat/completions');
  });
});
