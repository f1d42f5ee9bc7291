/**
 * The Responses API through openaiGateway(), as a user of the OpenAI SDK sees it: the
 * official SDK's `responses.stream()` (with `finalResponse()`), `responses.create()` streamed
 * and whole, pointed at the mounted gateway, the testkit's fake behind it. Every answer is
 * charged to the nano-dollar; what the gateway cannot bound is refused before the provider
 * is called; the WebSocket mode is refused so that clients fall back to HTTP at once.
 */
import { type GatewayOptions, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { askForWebSocket, type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

const SERVER_KEY = 'sk-openai-server-secret-0002';
const MODEL = 'gpt-4o-mini'; // $0.15 / $0.60 per million tokens: 150 / 600 nanos per token
const hand = (input: number, output: number) => input * 150 + output * 600;
const params = {
  model: MODEL,
  max_output_tokens: 300,
  input: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 50, chunk: 2, seed: 11 });
});
afterAll(() => fake.close());

let gateway: Gateway;
afterEach(async () => {
  await gateway?.close();
  fake.reset();
});

function start(extra: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return startGateway(express5, openaiGateway, {
    apiKey: SERVER_KEY,
    baseURL: `${fake.url}/v1`,
    store: createMemoryStore(),
    identify: (key) => (key === 'tm-alice' ? { user: 'alice' } : undefined),
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    forwardHeaders: ['x-fake-llm-*'],
    ...extra,
  });
}

const sdk = (key = 'tm-alice') =>
  new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });

describe('openaiGateway(): POST /v1/responses', () => {
  it('responses.stream(): the text and finalResponse() as the provider sent them, charged exactly', async () => {
    gateway = await start();
    const stream = sdk().responses.stream(params);
    let text = '';
    stream.on('response.output_text.delta', (event) => {
      text += event.delta;
    });
    const response = await stream.finalResponse();
    const record = fake.requests.at(-1)!;
    expect(record.path).toBe('/v1/responses');
    expect(text).toBe(record.text);
    expect(response.output_text).toBe(record.text);
    expect(response.status).toBe('completed');
    expect(response.usage!.output_tokens).toBe(record.usage!.outputTokens);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.provider).toBe('openai');
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.costNanos).toBe(
      hand(response.usage!.input_tokens, response.usage!.output_tokens),
    );
  });

  it('responses.create(): streamed events end in response.completed; the whole answer is the same text', async () => {
    gateway = await start();
    const types: string[] = [];
    let text = '';
    for await (const event of await sdk().responses.create({ ...params, stream: true })) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    const whole = await sdk().responses.create(params);
    expect(whole.output_text).toBe(text);
    const settles = await waitForSettles(gateway, 2);
    expect(settles.map((s) => s.final.estimated)).toEqual([false, false]);
    expect(settles[1]!.final.costNanos).toBe(
      hand(whole.usage!.input_tokens, whole.usage!.output_tokens),
    );
  });

  it('reasoning tokens the provider never streams are in the charge', async () => {
    gateway = await start();
    const response = await sdk().responses.create(params, {
      headers: { 'x-fake-llm-reasoning-tokens': '120' },
    });
    expect(response.usage!.output_tokens_details.reasoning_tokens).toBe(120);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.final.usage.reasoningTokens).toBe(120);
    expect(settle!.final.costNanos).toBe(
      hand(response.usage!.input_tokens, response.usage!.output_tokens),
    );
  });

  it('a request without max_output_tokens is sent with the most output the route allows', async () => {
    gateway = await start();
    const { max_output_tokens: _omitted, ...unbounded } = params;
    const response = await sdk().responses.create(unbounded);
    expect(response.status).toBe('completed');
    // gpt-4o-mini writes at most 16,384 tokens; $1 covers all of them.
    expect((fake.requests.at(-1)!.body as { max_output_tokens?: number }).max_output_tokens).toBe(
      16_384,
    );
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.final.costNanos).toBe(
      hand(response.usage!.input_tokens, response.usage!.output_tokens),
    );
  });

  it('a budget that runs out mid-stream ends it with error and response.failed events', async () => {
    gateway = await start({
      budgets: { user: { limitUsd: '0.0004', period: 'day' } },
      reservation: { mode: 'lease', initialOutputTokens: 50, stepOutputTokens: 50 },
    });
    const headers = {
      'x-fake-llm-tokens': '2000',
      'x-fake-llm-tps': '2000',
      'x-fake-llm-chunk': '1',
    };
    // Two at once cannot both have the budget's output: the lease of one cannot grow.
    const runs = [0, 1].map(async () => {
      const types: string[] = [];
      let failed: OpenAI.Responses.ResponseFailedEvent | undefined;
      for await (const event of await sdk().responses.create(
        { ...params, max_output_tokens: 4_000, stream: true },
        { headers },
      )) {
        types.push(event.type);
        if (event.type === 'response.failed') failed = event;
      }
      return { types, failed };
    });
    const results = await Promise.all(runs);
    const cut = results.filter((r) => r.failed !== undefined);
    expect(cut.length).toBeGreaterThanOrEqual(1);
    for (const { types, failed } of cut) {
      expect(types.slice(-2)).toEqual(['error', 'response.failed']);
      expect(failed!.response.error).toMatchObject({ code: 'insufficient_quota' });
    }
    const settles = await waitForSettles(gateway, 2);
    expect(settles.filter((s) => s.outcome === 'budget_exceeded')).toHaveLength(cut.length);
    for (const settle of settles) expect(settle.final.costNanos).toBeLessThanOrEqual(400_000);
  });

  it('an abort closes the upstream within one chunk, charged once', async () => {
    gateway = await start();
    const controller = new AbortController();
    const stream = await sdk().responses.create(
      { ...params, stream: true },
      {
        signal: controller.signal,
        headers: { 'x-fake-llm-tokens': '400', 'x-fake-llm-tps': '200' },
      },
    );
    await (async () => {
      for await (const event of stream) {
        if (event.type === 'response.output_text.delta') controller.abort();
      }
    })().catch(() => undefined);
    const settles = await waitForSettles(gateway, 1);
    expect(settles).toHaveLength(1);
    expect(settles[0]!.outcome).toBe('client_disconnected');
    expect(settles[0]!.final.estimated).toBe(true);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(2);
    expect(record.headers.authorization).toBe(`Bearer ${SERVER_KEY}`);
  });

  it('a stream cut after hidden reasoning is charged its output limit: never below what was billed', async () => {
    gateway = await start();
    const controller = new AbortController();
    const stream = await sdk().responses.create(
      { ...params, stream: true },
      {
        signal: controller.signal,
        headers: {
          'x-fake-llm-tokens': '400',
          'x-fake-llm-tps': '200',
          'x-fake-llm-reasoning-tokens': '250',
        },
      },
    );
    await (async () => {
      for await (const event of stream) {
        if (event.type === 'response.output_text.delta') controller.abort();
      }
    })().catch(() => undefined);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.final.estimated).toBe(true);
    expect(settle!.final.usage.outputTokens).toBe(300);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    // The provider billed the reasoning and what it sent; the charge covers both.
    expect(settle!.final.usage.outputTokens).toBeGreaterThanOrEqual(
      record.reasoningTokens + record.tokensSent,
    );
  });

  it('refuses what it cannot bound, before the provider is called, in the SDK’s typed error', async () => {
    gateway = await start();
    for (const tools of [[{ type: 'web_search_preview' }], [{ type: 'code_interpreter' }]]) {
      const error = await sdk()
        .responses.create({ ...params, tools } as never)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('unbounded_request');
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('web search is sent with at most the searches reserved', async () => {
    gateway = await start();
    await sdk().responses.create({ ...params, tools: [{ type: 'web_search' }] });
    expect(fake.requests.at(-1)!.body).toMatchObject({ max_tool_calls: 5, max_output_tokens: 300 });
  });

  it('the WebSocket mode is refused with 426, so clients POST at once; another GET is 405', async () => {
    gateway = await start();
    const upgrade = await askForWebSocket(`${gateway.url}/v1/responses`, 'tm-alice');
    expect(upgrade.status).toBe(426);
    expect(JSON.parse(upgrade.body)).toMatchObject({ error: { code: 'websocket_not_supported' } });
    const get = await fetch(`${gateway.url}/v1/responses`, {
      headers: { authorization: 'Bearer tm-alice' },
    });
    expect(get.status).toBe(405);
    expect(fake.requests).toHaveLength(0);
  });
});
