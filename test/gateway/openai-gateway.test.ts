/**
 * openaiGateway() as a user of the OpenAI SDK sees it: the official SDK pointed at the
 * mounted gateway (`baseURL: <host>/llm/v1`), the testkit's fake OpenAI behind it, on
 * Express 4 and 5. The gateway always asks the provider for usage (so the cost is exact)
 * and passes the usage chunk on only when the caller asked for it.
 */
import { type GatewayOptions, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXPRESS_VERSIONS, type ExpressFactory } from '../helpers/app.js';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

const SERVER_KEY = 'sk-openai-server-secret-0001';
const MODEL = 'gpt-4o-mini'; // $0.15 / $0.60 per million tokens: 150 / 600 nanos per token
const hand = (input: number, output: number) => input * 150 + output * 600;
const params = {
  model: MODEL,
  max_completion_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 50, chunk: 2, seed: 9 });
});
afterAll(() => fake.close());

function start(express: ExpressFactory, extra: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return startGateway(express, openaiGateway, {
    apiKey: SERVER_KEY,
    baseURL: `${fake.url}/v1`,
    store: createMemoryStore(),
    identify: (key) => (key === 'tm-alice' ? { user: 'alice' } : undefined),
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    forwardHeaders: ['x-fake-llm-*'],
    ...extra,
  });
}

const sdk = (gateway: Gateway, key = 'tm-alice', extra: Record<string, unknown> = {}) =>
  new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0, ...extra });

describe.each(EXPRESS_VERSIONS)('%s', (_name, express) => {
  let gateway: Gateway;
  afterEach(async () => {
    await gateway?.close();
    fake.reset();
  });

  it('streams without a usage chunk unless asked, yet settles the exact cost', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      chunks.push(chunk);
    }
    const record = fake.requests.at(-1)!;
    // The provider was asked for usage; the caller was not given it.
    expect((record.body as { stream_options?: unknown }).stream_options).toEqual({
      include_usage: true,
    });
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe(record.text);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.costNanos).toBe(
      hand(record.usage!.inputTokens, record.usage!.outputTokens),
    );
  });

  it('passes the usage chunk on when the caller asked for it', async () => {
    gateway = await start(express);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    const stream = await sdk(gateway).chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.completion_tokens).toBe(fake.requests.at(-1)!.usage!.outputTokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it('a non-streaming answer equals the streamed one, and costs exactly its usage', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const whole = await client.chat.completions.create(params);
    let text = '';
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(whole.choices[0]?.message.content).toBe(text);
    const settles = await waitForSettles(gateway, 2);
    expect(settles[0]!.final.costNanos).toBe(
      hand(whole.usage!.prompt_tokens, whole.usage!.completion_tokens),
    );
  });

  it('tool calls: streamed arguments accumulate into the same call as the non-streaming answer', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const ask = {
      ...params,
      tools: [
        {
          type: 'function' as const,
          function: {
            name: 'lookup',
            parameters: {
              type: 'object',
              properties: { query: { type: 'string' } },
              required: ['query'],
            },
          },
        },
      ],
      tool_choice: 'required' as const,
    };
    const whole = await client.chat.completions.create(ask);
    let args = '';
    for await (const chunk of await client.chat.completions.create({ ...ask, stream: true })) {
      args += chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '';
    }
    const call = whole.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    expect(args).toBe(call?.type === 'function' ? call.function.arguments : undefined);
    // Arguments valid for the tool's schema (the fake fills its one string).
    expect(typeof (JSON.parse(args) as { query?: unknown }).query).toBe('string');
  });

  it("the SDK's typed errors: unknown key, bad request, budget (not retried), unknown route", async () => {
    gateway = await start(express, {
      budgets: { user: { limitUsd: '0.00001', period: 'day' } },
    });
    const auth = await sdk(gateway, 'tm-nobody')
      .chat.completions.create(params)
      .catch((e) => e);
    expect(auth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(auth.code).toBe('invalid_api_key');
    const bad = await sdk(gateway)
      .chat.completions.create({ ...params, n: 3 })
      .catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.message).toMatch(/"n"/);
    const hitsBefore = gateway.hits;
    const budget = await sdk(gateway, 'tm-alice', { maxRetries: 5 })
      .chat.completions.create(params)
      .catch((e) => e);
    expect(budget).toBeInstanceOf(OpenAI.APIError);
    expect(budget.status).toBe(402);
    expect(budget.code).toBe('budget_exceeded');
    expect(gateway.hits - hitsBefore).toBe(1);
    const route = await sdk(gateway)
      .embeddings.create({ model: 'x', input: 'y' })
      .catch((e) => e);
    expect(route).toBeInstanceOf(OpenAI.NotFoundError);
    expect(fake.requests).toHaveLength(0);
  });

  it("the provider's errors pass through; a mid-stream error reaches the SDK", async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const limited = await client.chat.completions
      .create(params, { headers: { 'x-fake-llm-fault': '429' } })
      .catch((e) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    const midStream = async () => {
      for await (const _ of await client.chat.completions.create(
        { ...params, stream: true },
        { headers: { 'x-fake-llm-fault': 'error-mid-stream' } },
      )) {
        // read on
      }
    };
    await expect(midStream()).rejects.toBeInstanceOf(OpenAI.APIError);
    const settles = await waitForSettles(gateway, 2);
    expect(settles.map((s) => s.outcome)).toEqual(['upstream_error', 'upstream_error']);
    expect(settles[0]!.final.costNanos).toBe(0);
  });

  it('an abort closes the upstream within one chunk', async () => {
    gateway = await start(express);
    const controller = new AbortController();
    const stream = await sdk(gateway).chat.completions.create(
      { ...params, stream: true },
      {
        signal: controller.signal,
        headers: { 'x-fake-llm-tokens': '400', 'x-fake-llm-tps': '200' },
      },
    );
    await (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) controller.abort();
      }
    })().catch(() => undefined);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.outcome).toBe('client_disconnected');
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(2);
    expect(record.headers.authorization).toBe(`Bearer ${SERVER_KEY}`);
  });
});
