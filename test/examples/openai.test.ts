/**
 * examples/openai: the OpenAI SDK through costTrackedSSE, Chat Completions with
 * stream_options.include_usage and the Responses API,
 * run as a child process against the fake's OpenAI endpoint started here
 * (OPENAI_API_KEY + OPENAI_BASE_URL).
 */
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

// gpt-5-mini: $0.25 per million input tokens, $2 per million output tokens.
const gpt5MiniNanos = (input: number, output: number) => input * 250 + output * 2_000;

let fake: FakeLLM;
let app: Running;
beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-openai-test', tokens: 70, seed: 9 });
  app = await startExample('openai/server.mjs', {
    OPENAI_API_KEY: 'sk-openai-test',
    OPENAI_BASE_URL: `${fake.url}/v1`,
  });
});
afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe('examples/openai', () => {
  it('streams the text and charges the usage of the include_usage chunk', async () => {
    const result = await post(
      `${app.url}/api/chat`,
      {
        model: 'gpt-5-mini',
        max_completion_tokens: 500,
        messages: [{ role: 'user', content: 'Name three prime numbers.' }],
      },
      { authorization: 'Bearer key-ada' },
    );
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.provider).toBe('openai');
    expect(record.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(record.maxTokens).toBe(500);
    expect(textOf(result.events)).toBe(record.text);
    const done = eventOf(result.events, 'done') as {
      stopReason: string;
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
    };
    expect(done.estimated).toBe(false);
    expect(done.stopReason).toBe('stop');
    expect(done.usage).toMatchObject({ inputTokens: record.usage!.inputTokens, outputTokens: 70 });
    expect(done.costNanos).toBe(gpt5MiniNanos(record.usage!.inputTokens, 70));
    await app.waitFor(
      new RegExp(
        `settled user=u-ada model=gpt-5-mini output=70 costNanos=${done.costNanos} exact outcome=completed`,
      ),
      5_000,
    );
  });

  it('streams a Responses API answer and charges the usage of response.completed', async () => {
    const result = await post(
      `${app.url}/api/responses`,
      { model: 'gpt-5-mini', max_output_tokens: 400, input: 'Name three prime numbers.' },
      { authorization: 'Bearer key-grace' },
    );
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.path).toBe('/v1/responses');
    expect(record.body).toMatchObject({ stream: true, max_output_tokens: 400 });
    expect(textOf(result.events)).toBe(record.text);
    const done = eventOf(result.events, 'done') as {
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
    };
    expect(done.estimated).toBe(false);
    expect(done.usage).toMatchObject({ inputTokens: record.usage!.inputTokens, outputTokens: 70 });
    expect(done.costNanos).toBe(gpt5MiniNanos(record.usage!.inputTokens, 70));
    await app.waitFor(
      new RegExp(
        `settled user=u-grace model=gpt-5-mini output=70 costNanos=${done.costNanos} exact outcome=completed`,
      ),
      5_000,
    );
  });

  it('answers 401 for an unknown key without calling OpenAI', async () => {
    const before = fake.requests.length;
    const result = await post(
      `${app.url}/api/chat`,
      { model: 'gpt-5-mini', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
      { authorization: 'Bearer nope' },
    );
    expect(result.status).toBe(401);
    expect(result.json).toMatchObject({ error: { code: 'unauthenticated' } });
    expect(fake.requests.length).toBe(before);
  });
});
