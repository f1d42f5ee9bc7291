/**
 * examples/langchain: the example as a child process in front of a fake Claude started
 * here (ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL), called the way its README's curl does.
 * The streamed text is the provider's exactly, the done event's cost is the hand
 * computation from the provider's usage, and a client that leaves ends the provider call.
 */
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

// claude-haiku-4-5 (the example's model): $1 per million input tokens, $5 per million output.
const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;

let fake: FakeLLM;
let app: Running;
beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-langchain-test', tokens: 50, seed: 4, text: 'mixed' });
  app = await startExample('langchain/server.mjs', {
    ANTHROPIC_API_KEY: 'sk-langchain-test',
    ANTHROPIC_BASE_URL: fake.url,
  });
});
afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe('examples/langchain', () => {
  it('streams the exact text and charges the provider usage, by hand', async () => {
    const result = await post(
      `${app.url}/api/chat`,
      { messages: [{ role: 'user', content: 'Name three prime numbers.' }], max_tokens: 300 },
      { authorization: 'Bearer key-ada' },
    );
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.headers['x-api-key']).toBe('sk-langchain-test');
    expect(record.model).toBe('claude-haiku-4-5');
    expect(record.maxTokens).toBe(300);
    expect(JSON.stringify(record.body)).toContain('You are a concise assistant.');
    expect(textOf(result.events)).toBe(record.text);

    const done = eventOf(result.events, 'done') as {
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
      budget: { remainingUsd: number };
    };
    const { inputTokens, outputTokens } = record.usage!;
    expect(outputTokens).toBe(50);
    const hand = haikuNanos(inputTokens, outputTokens);
    expect(done.estimated).toBe(false);
    expect(done.usage).toMatchObject({ inputTokens, outputTokens });
    expect(done.costNanos).toBe(hand);
    expect(done.budget.remainingUsd).toBe((1_000_000_000 - hand) / 1e9);
    await app.waitFor(
      new RegExp(
        `settled user=u-ada model=claude-haiku-4-5 output=50 costNanos=${hand} exact outcome=completed`,
      ),
      5_000,
    );
  });

  it('a client that leaves mid-stream ends the provider call', async () => {
    fake.configure({ tps: 50, tokens: 200 });
    const requests = fake.requests.length;
    const controller = new AbortController();
    const response = await fetch(`${app.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer key-grace' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'A long story, please.' }] }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    await expect.poll(() => fake.requests.length, { timeout: 5_000 }).toBe(requests + 1);
    const id = fake.lastRequest!.id;
    await expect
      .poll(() => fake.request(id)?.tokensSent ?? 0, { timeout: 5_000 })
      .toBeGreaterThan(5);
    controller.abort();
    const record = await fake.waitForRequest(id, { timeoutMs: 5_000 });
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensSent).toBeLessThan(200);
    await app.waitFor(/settled user=u-grace .* estimated outcome=client_disconnected/, 5_000);
    fake.configure({ tps: 0, tokens: 50 });
  });

  it('refuses a body it cannot estimate, before the provider', async () => {
    const requests = fake.requests.length;
    const result = await post(
      `${app.url}/api/chat`,
      { messages: [{ role: 'tool', content: 'x' }] },
      { authorization: 'Bearer key-ada' },
    );
    expect(result.status).toBe(400);
    expect(fake.requests.length).toBe(requests);
  });
});
