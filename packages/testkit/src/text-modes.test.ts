// The text modes end to end: whatever the mode, the SDKs receive exactly the seeded pieces,
// usage counts them, and `record.text` recomputes what was streamed.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText, seededTokens } from './text-generator.js';
import type { TextMode } from './types.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 45, seed: 21 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const modes: TextMode[] = ['emoji', 'vietnamese', 'cjk', 'base64', 'repeat'];

describe.each(modes)('text mode %s', (text) => {
  it('Anthropic stream: deltas are whole pieces, record.text equals the streamed text', async () => {
    const stream = anthropic.messages.stream(
      { model: 'claude-haiku-4-5', max_tokens: 1000, messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'x-fake-llm-text': text, 'x-fake-llm-chunk': '4' } },
    );
    const deltas: string[] = [];
    stream.on('text', (delta) => deltas.push(delta));
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(stream.request_id!);

    const expected = seededText({ seed: 21, tokens: 45, text });
    const streamed = deltas.join('');
    expect(streamed).toBe(expected);
    expect(record.text).toBe(streamed);
    expect(record.knobs?.text).toBe(text);
    const pieces = seededTokens({ seed: 21, tokens: 45, text });
    expect(deltas).toEqual(
      Array.from({ length: Math.ceil(45 / 4) }, (_, i) => pieces.slice(i * 4, i * 4 + 4).join('')),
    );
    expect(message.usage.output_tokens).toBe(45);
    expect(record.tokensSent).toBe(45);
  });

  it('OpenAI stream and a server-level text option give the same text', async () => {
    fake.configure({ text });
    const { data: stream, request_id } = await openai.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let streamed = '';
    let completionTokens: number | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
    const record = await fake.waitForRequest(request_id!);
    expect(streamed).toBe(seededText({ seed: 21, tokens: 45, text }));
    expect(record.text).toBe(streamed);
    expect(completionTokens).toBe(45);
  });
});

describe('text mode knobs on the wire', () => {
  it('a bad x-fake-llm-text header is a 400 naming the header and listing the modes', async () => {
    const error = await anthropic.messages
      .create(
        { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-fake-llm-text': 'klingon' } },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const body = (error as InstanceType<typeof Anthropic.BadRequestError>).error as {
      error: { type: string; message: string };
    };
    expect(body.error.type).toBe('invalid_request_error');
    const message = body.error.message;
    expect(message).toContain('x-fake-llm-text');
    expect(message).toContain('"base64"');
    expect(message).toContain('"klingon"');
  });

  it('bad searches / search-result-tokens headers are 400s naming the header', async () => {
    for (const [header, value] of [
      ['x-fake-llm-searches', '-1'],
      ['x-fake-llm-searches', 'lots'],
      ['x-fake-llm-search-result-tokens', '1.5'],
    ] as const) {
      const error = await anthropic.messages
        .create(
          { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
          { headers: { [header]: value } },
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      expect((error as Error).message).toContain(`${header}: expected a non-negative integer`);
    }
    expect(fake.requests.every((r) => r.status === 400 && r.tokensGenerated === 0)).toBe(true);
  });
});
