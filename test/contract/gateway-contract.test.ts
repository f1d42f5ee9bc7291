/**
 * One gateway contract, every adapter: `anthropicGateway()` and `openaiGateway()` of
 * `@tokenmeter/express` (Express 4 and 5), `@tokenmeter/web` (on Hono, and as a bare fetch
 * handler) and `@tokenmeter/fastify`, mounted at `/llm` with the testkit's fake provider
 * behind them and the official SDKs in front, held to the same answers: the provider's
 * events relayed byte for byte and charged to the nano-dollar (the Anthropic Messages API,
 * OpenAI Chat Completions and the Responses API), count_tokens free, refusals
 * in the provider's own error shape (which the SDKs raise as their typed errors), unknown
 * paths and methods refused before the provider is called, a caller's abort closing the
 * upstream within one chunk, and the server's key never crossing to the caller.
 */
import Anthropic from '@anthropic-ai/sdk';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  GATEWAY_ADAPTERS,
  type GatewayKind,
  type GatewaySpec,
  type ServedGateway,
} from '../helpers/adapters.js';
import { askForWebSocket } from '../helpers/gateway.js';

const SERVER_KEY = 'sk-server-secret-0001';
const KEYS: Record<string, { key: string; user: string }> = {
  'tm-alice': { key: 'k-alice', user: 'alice' },
  'tm-bob': { key: 'k-bob', user: 'bob' },
};
const CLAUDE = 'claude-haiku-4-5'; // $1 / $5 per million tokens
const claudeCost = (input: number, output: number) => input * 1_000 + output * 5_000;
const GPT = 'gpt-4o-mini'; // $0.15 / $0.60 per million tokens
const gptCost = (input: number, output: number) => input * 150 + output * 600;
const ask = {
  model: CLAUDE,
  max_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 60, chunk: 3, seed: 5 });
});
afterAll(() => fake.close());

describe.each(GATEWAY_ADAPTERS)('%s', (_name, start) => {
  let gateway: ServedGateway;
  afterEach(async () => {
    await gateway?.close();
    fake.reset();
  });

  function serve(kind: GatewayKind, extra: Partial<GatewaySpec> = {}) {
    return start(kind, {
      apiKey: SERVER_KEY,
      baseURL: kind === 'anthropic' ? fake.url : `${fake.url}/v1`,
      store: createMemoryStore(),
      identify: (key) => (key ? KEYS[key] : undefined),
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      forwardHeaders: ['x-fake-llm-*'],
      ...extra,
    }).then((served) => {
      gateway = served;
      return served;
    });
  }

  const claude = (key = 'tm-alice') =>
    new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0 });

  it('Anthropic: streamed and whole answers relayed as sent, each charged exactly its usage', async () => {
    await serve('anthropic');
    let text = '';
    const stream = claude().messages.stream(ask);
    stream.on('text', (delta) => {
      text += delta;
    });
    const streamed = await stream.finalMessage();
    const streamedRecord = fake.requests.at(-1)!;
    const whole = await claude().messages.create(ask);
    expect(text).toBe(streamedRecord.text);
    expect(streamed.content).toEqual(whole.content);
    expect(streamed.usage).toEqual(whole.usage);
    const settles = await gateway.waitForSettles(2);
    const cost = claudeCost(whole.usage.input_tokens, whole.usage.output_tokens);
    expect(settles.map((s) => [s.outcome, s.final.costNanos, s.final.estimated])).toEqual([
      ['completed', cost, false],
      ['completed', cost, false],
    ]);
    expect(gateway.activeStreams()).toBe(0);
  });

  it("passes the provider's bytes through unchanged, with its request id", async () => {
    await serve('anthropic');
    const call = (url: string, key: string) =>
      fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-api-key': key,
          'anthropic-version': '2023-06-01',
          'x-fake-llm-fault': 'unknown-events',
        },
        body: JSON.stringify({ ...ask, stream: true }),
      });
    const response = await call(`${gateway.url}/v1/messages`, 'tm-alice');
    const relayed = await response.text();
    const direct = await (await call(`${fake.url}/v1/messages`, 'x')).text();
    const ids = (s: string) => s.replace(/(msg|req|toolu|srvtoolu)_[A-Za-z0-9]+/g, '$1_ID');
    expect(ids(relayed)).toBe(ids(direct));
    expect(relayed).toContain('event: fake_unknown_event');
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
  });

  it('count_tokens is answered by the provider and charged nothing', async () => {
    await serve('anthropic');
    const counted = await claude().messages.countTokens({ model: CLAUDE, messages: ask.messages });
    expect(counted.input_tokens).toBe(fake.requests.at(-1)!.inputTokens);
    expect(fake.requests.at(-1)!.path).toBe('/v1/messages/count_tokens');
    expect(gateway.settles).toEqual([]);
  });

  it("refusals in the provider's shape: the SDK's typed errors, the provider not called for them", async () => {
    await serve('anthropic', {
      budgets: { user: (id) => ({ limitUsd: id === 'bob' ? '0.0001' : '1.00', period: 'day' }) },
      rateLimits: { key: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] },
    });
    const unknown = await claude('tm-nobody')
      .messages.create(ask)
      .catch((e) => e);
    expect(unknown).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(unknown.headers.get('x-should-retry')).toBe('false');
    const broke = await claude('tm-bob')
      .messages.create(ask)
      .catch((e) => e);
    expect(broke).toBeInstanceOf(Anthropic.APIError);
    expect(broke.status).toBe(402);
    expect(broke.error).toEqual({
      type: 'error',
      error: { type: 'billing_error', message: expect.any(String) },
    });
    expect(broke.headers.get('x-should-retry')).toBe('false');
    expect(fake.requests).toEqual([]);
    await claude('tm-alice').messages.create(ask);
    const limited = await claude('tm-alice')
      .messages.create(ask)
      .catch((e) => e);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(limited.headers.get('ratelimit')).toMatch(/^"key-requests-60s";r=0;t=(59|60)\b/);
    expect(fake.requests).toHaveLength(1);
  });

  it('unknown paths get 404 and other methods 405, before the provider is called', async () => {
    await serve('openai');
    const headers = { authorization: 'Bearer tm-alice', 'content-type': 'application/json' };
    const missing = await fetch(`${gateway.url}/v1/embeddings`, {
      method: 'POST',
      headers,
      body: '{}',
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: {
        message: expect.any(String),
        type: 'invalid_request_error',
        param: null,
        code: 'unknown_url',
      },
    });
    const wrongMethod = await fetch(`${gateway.url}/v1/chat/completions`, { headers });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(fake.requests).toEqual([]);
  });

  it('OpenAI: usage asked of the provider, not relayed unless asked; charged exactly', async () => {
    await serve('openai');
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'tm-alice', maxRetries: 0 });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    const params = { model: GPT, max_completion_tokens: 300, messages: ask.messages };
    for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
      chunks.push(chunk);
    }
    const record = fake.requests.at(-1)!;
    expect((record.body as { stream_options?: unknown }).stream_options).toEqual({
      include_usage: true,
    });
    expect(chunks.every((c) => !('usage' in c))).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe(record.text);
    const [settle] = await gateway.waitForSettles(1);
    expect(settle!.final.estimated).toBe(false);
    expect(settle!.final.costNanos).toBe(
      gptCost(record.usage!.inputTokens, record.usage!.outputTokens),
    );
  });

  it('OpenAI Responses: finalResponse() and the whole answer as sent, each charged exactly; input_tokens free', async () => {
    await serve('openai');
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'tm-alice', maxRetries: 0 });
    const params = { model: GPT, max_output_tokens: 300, input: ask.messages };
    const streamed = await client.responses.stream(params).finalResponse();
    const record = fake.requests.at(-1)!;
    expect(record.path).toBe('/v1/responses');
    expect(streamed.output_text).toBe(record.text);
    const whole = await client.responses.create(params);
    expect(whole.output_text).toBe(streamed.output_text);
    const settles = await gateway.waitForSettles(2);
    const cost = gptCost(whole.usage!.input_tokens, whole.usage!.output_tokens);
    expect(settles.map((s) => [s.outcome, s.final.costNanos, s.final.estimated])).toEqual([
      ['completed', cost, false],
      ['completed', cost, false],
    ]);
    const counted = await client.responses.inputTokens.count({ model: GPT, input: ask.messages });
    expect(counted.input_tokens).toBe(fake.requests.at(-1)!.inputTokens);
    expect(gateway.settles).toHaveLength(2);
  });

  it("Codex's WebSocket attempt (GET /v1/responses, Upgrade: websocket) gets 426, so it POSTs at once", async () => {
    await serve('openai');
    const answer = await askForWebSocket(`${gateway.url}/v1/responses`, 'tm-alice');
    expect(answer.status).toBe(426);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'websocket_not_supported' } });
    expect(fake.requests).toHaveLength(0);
  });

  it("a caller's abort closes the upstream within one chunk, charged once as estimated", async () => {
    await serve('anthropic');
    const controller = new AbortController();
    const stream = claude().messages.stream(ask, {
      signal: controller.signal,
      headers: { 'x-fake-llm-tokens': '400', 'x-fake-llm-tps': '200', 'x-fake-llm-chunk': '2' },
    });
    stream.on('text', () => controller.abort());
    await stream.finalMessage().catch(() => undefined);
    const [settle] = await gateway.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(gateway.settles).toHaveLength(1);
    expect(gateway.activeStreams()).toBe(0);
  });

  it("the provider sees the server's key and only allowed headers; the caller never sees the key", async () => {
    await serve('anthropic');
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'tm-alice',
        'anthropic-version': '2023-06-01',
        cookie: 'session=secret',
        'x-other': 'no',
      },
      body: JSON.stringify(ask),
    });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).not.toContain(SERVER_KEY);
    const seen = fake.requests.at(-1)!.headers;
    expect(seen['x-api-key']).toBe(SERVER_KEY);
    expect(seen.cookie).toBeUndefined();
    expect(seen['x-other']).toBeUndefined();
    expect(seen['anthropic-version']).toBe('2023-06-01');
  });
});
