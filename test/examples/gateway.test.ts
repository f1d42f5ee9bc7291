/**
 * examples/gateway: the metered gateway example as a child process, in front of a fake
 * provider started here (both providers' keys and base URLs set), called with the official
 * Anthropic and OpenAI SDKs the way its README says.
 */
import Anthropic from '@anthropic-ai/sdk';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';

let fake: FakeLLM;
let app: Running;
beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-provider', tokens: 40, seed: 3 });
  app = await startExample('gateway/server.mjs', {
    ANTHROPIC_API_KEY: 'sk-provider',
    ANTHROPIC_BASE_URL: fake.url,
    OPENAI_API_KEY: 'sk-provider',
    OPENAI_BASE_URL: `${fake.url}/v1`,
  });
});
afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe('examples/gateway', () => {
  it('serves both SDKs under /llm with the keys it issued, and books the cost per key', async () => {
    const anthropic = new Anthropic({ baseURL: `${app.url}/llm`, apiKey: 'tm-ada', maxRetries: 0 });
    const message = await anthropic.messages
      .stream({
        model: 'claude-haiku-4-5',
        max_tokens: 200,
        messages: [{ role: 'user', content: 'Hi' }],
      })
      .finalMessage();
    expect(message.usage.output_tokens).toBe(40);
    const openai = new OpenAI({ baseURL: `${app.url}/llm/v1`, apiKey: 'tm-ada', maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      max_completion_tokens: 200,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(completion.usage?.completion_tokens).toBe(40);
    // Both calls reached the fake with the provider key, never the caller's.
    expect(fake.requests.map((r) => r.headers['x-api-key'] ?? r.headers.authorization)).toEqual([
      'sk-provider',
      'Bearer sk-provider',
    ]);
    // haiku-4-5 at $1/$5 per M, gpt-4o-mini at $0.15/$0.60 per M, by hand.
    const [a, o] = fake.requests;
    const expected = a!.inputTokens * 1_000 + 40 * 5_000 + o!.inputTokens * 150 + 40 * 600;
    let usage: { spentNanos: number } = { spentNanos: 0 };
    for (let i = 0; i < 50 && usage.spentNanos !== expected; i++) {
      usage = (await (await fetch(`${app.url}/keys/tm-ada/usage`)).json()) as {
        spentNanos: number;
      };
      if (usage.spentNanos !== expected) await new Promise((r) => setTimeout(r, 20));
    }
    expect(usage).toMatchObject({
      key: 'k-ada',
      user: 'ada',
      team: 'research',
      spentNanos: expected,
    });
  });

  it('refuses an unknown key in the provider format, before the provider', async () => {
    const before = fake.requests.length;
    const anthropic = new Anthropic({
      baseURL: `${app.url}/llm`,
      apiKey: 'tm-stolen',
      maxRetries: 0,
    });
    await expect(
      anthropic.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    expect(fake.requests.length).toBe(before);
  });
});
