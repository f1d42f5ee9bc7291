/**
 * examples/hono and examples/fastify: the same route on Hono (Web-standard, served by
 * @hono/node-server) and on Fastify, each run as a child process against the fake
 * provider started here (ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL): the answer streamed,
 * charged to the nano-dollar, and an unknown key refused without a provider call; and the
 * gateway each mounts at /llm, through the official Anthropic SDK.
 */
import Anthropic from '@anthropic-ai/sdk';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

// claude-haiku-4-5: $1 per million input tokens, $5 per million output tokens.
const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-ant-test', tokens: 60, seed: 5 });
});
afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe.each(['hono', 'fastify'])('examples/%s', (name) => {
  let app: Running;
  beforeAll(async () => {
    app = await startExample(`${name}/server.mjs`, {
      ANTHROPIC_API_KEY: 'sk-ant-test',
      ANTHROPIC_BASE_URL: fake.url,
    });
  });

  it('streams the answer and charges the usage the provider reported, to the nano-dollar', async () => {
    const result = await post(
      `${app.url}/api/chat`,
      {
        model: 'claude-haiku-4-5',
        max_tokens: 500,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'Name three tide-pool animals.' }],
      },
      { authorization: 'Bearer key-ada' },
    );
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    // The body as sent, with the bounds admission reserved: nothing dropped.
    expect(record.body).toMatchObject({ system: 'Be brief.', max_tokens: 500, stream: true });
    expect(textOf(result.events)).toBe(record.text);
    const done = eventOf(result.events, 'done') as {
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
    };
    expect(done.estimated).toBe(false);
    expect(done.usage).toMatchObject({ inputTokens: record.usage!.inputTokens, outputTokens: 60 });
    expect(done.costNanos).toBe(haikuNanos(record.usage!.inputTokens, 60));
    await app.waitFor(
      new RegExp(
        `settled user=u-ada model=claude-haiku-4-5 output=60 costNanos=${done.costNanos} exact outcome=completed`,
      ),
      5_000,
    );
  });

  it('answers 401 for an unknown key without calling the provider', async () => {
    const before = fake.requests.length;
    const result = await post(
      `${app.url}/api/chat`,
      { model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] },
      { authorization: 'Bearer nope' },
    );
    expect(result.status).toBe(401);
    expect(result.json).toMatchObject({ error: { code: 'unauthenticated' } });
    expect(fake.requests.length).toBe(before);
  });

  it("serves the Anthropic API at /llm to the official SDK, with the caller's key, charged exactly", async () => {
    const sdk = (key: string) =>
      new Anthropic({ baseURL: `${app.url}/llm`, apiKey: key, maxRetries: 0 });
    let text = '';
    const stream = sdk('key-grace').messages.stream({
      model: 'claude-haiku-4-5',
      max_tokens: 300,
      messages: [{ role: 'user', content: 'Name a tide-pool animal.' }],
    });
    stream.on('text', (delta) => {
      text += delta;
    });
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.headers['x-api-key']).toBe('sk-ant-test');
    expect(text).toBe(record.text);
    const cost = haikuNanos(message.usage.input_tokens, message.usage.output_tokens);
    await app.waitFor(
      new RegExp(
        `${name} gateway: settled user=u-grace model=claude-haiku-4-5 output=60 costNanos=${cost} exact outcome=completed`,
      ),
      5_000,
    );
    const before = fake.requests.length;
    const refused = await sdk('nope')
      .messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'Hi' }],
      })
      .catch((e) => e);
    expect(refused).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(fake.requests.length).toBe(before);
  });
});
