/**
 * anthropicGateway() as a user of the Anthropic SDK sees it: the official SDK pointed at
 * the mounted gateway (`baseURL: <host>/llm`), the testkit's fake Anthropic behind it, on
 * Express 4 and 5. Text, finalMessage() against the non-streaming answer, a tool-use round
 * trip, extended thinking with its signature, count_tokens, the SDK's typed error for each
 * rejection (and no retry storm on a budget), aborts, keys that never cross, the cost to
 * the nano-dollar.
 */
import Anthropic from '@anthropic-ai/sdk';
import type { Store } from '@tokenmeter/core';
import { anthropicGateway, type GatewayOptions } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXPRESS_VERSIONS, type ExpressFactory } from '../helpers/app.js';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

const SERVER_KEY = 'sk-ant-server-secret-0001';
const KEYS: Record<string, { key: string; user: string }> = {
  'tm-alice': { key: 'k-alice', user: 'alice' },
  'tm-bob': { key: 'k-bob', user: 'bob' },
  'tm-carol': { key: 'k-carol', user: 'carol' },
};
const MODEL = 'claude-haiku-4-5'; // $1 / $5 per million tokens: 1,000 / 5,000 nanos per token
const hand = (input: number, output: number) => input * 1_000 + output * 5_000;
const params = {
  model: MODEL,
  max_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 60, chunk: 3, seed: 5 });
});
afterAll(() => fake.close());

function start(express: ExpressFactory, extra: Partial<GatewayOptions> = {}): Promise<Gateway> {
  return startGateway(express, anthropicGateway, {
    apiKey: SERVER_KEY,
    baseURL: fake.url,
    store: createMemoryStore(),
    identify: (key) => (key ? KEYS[key] : undefined),
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    forwardHeaders: ['x-fake-llm-*'],
    ...extra,
  });
}

const sdk = (gateway: Gateway, key = 'tm-alice', extra: Record<string, unknown> = {}) =>
  new Anthropic({ baseURL: gateway.url, apiKey: key, maxRetries: 0, ...extra });

describe.each(EXPRESS_VERSIONS)('%s', (_name, express) => {
  let gateway: Gateway;
  afterEach(async () => {
    await gateway?.close();
    fake.reset();
  });

  it('streams text; finalMessage() equals the non-streaming answer; each costs exactly its usage', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    let text = '';
    const stream = client.messages.stream(params);
    stream.on('text', (delta) => {
      text += delta;
    });
    const streamed = await stream.finalMessage();
    const streamedRecord = fake.requests.at(-1)!;
    const whole = await client.messages.create(params);
    expect(text).toBe(streamedRecord.text);
    expect(streamed.content).toEqual(whole.content);
    expect(streamed.usage).toEqual(whole.usage);
    expect(streamed.stop_reason).toBe(whole.stop_reason);
    const settles = await waitForSettles(gateway, 2);
    const cost = hand(whole.usage.input_tokens, whole.usage.output_tokens);
    expect(settles.map((s) => [s.outcome, s.final.costNanos, s.final.estimated])).toEqual([
      ['completed', cost, false],
      ['completed', cost, false],
    ]);
  });

  it('passes every event through as the provider sent it, byte for byte', async () => {
    gateway = await start(express);
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'tm-alice',
        'anthropic-version': '2023-06-01',
        'x-fake-llm-fault': 'unknown-events',
      },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const relayed = await response.text();
    // The same request straight to the fake: the very same bytes, but for the ids.
    const direct = await (
      await fetch(`${fake.url}/v1/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-api-key': 'x',
          'anthropic-version': '2023-06-01',
          'x-fake-llm-fault': 'unknown-events',
        },
        body: JSON.stringify({ ...params, stream: true }),
      })
    ).text();
    const ids = (s: string) => s.replace(/(msg|req|toolu|srvtoolu)_[A-Za-z0-9]+/g, '$1_ID');
    expect(ids(relayed)).toBe(ids(direct));
    expect(relayed).toContain('event: fake_unknown_event');
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
  });

  it('a tool-use round trip: input_json_delta accumulates into the tool input, then the result comes back', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const tools = [
      {
        name: 'lookup',
        description: 'Look a word up.',
        input_schema: { type: 'object' as const, properties: { query: { type: 'string' } } },
      },
    ];
    const ask = { ...params, tools, tool_choice: { type: 'tool' as const, name: 'lookup' } };
    const streamed = await client.messages.stream(ask).finalMessage();
    const whole = await client.messages.create(ask);
    const toolUse = streamed.content.find((b) => b.type === 'tool_use');
    expect(toolUse?.type === 'tool_use' && toolUse.name).toBe('lookup');
    expect(toolUse?.type === 'tool_use' && toolUse.input).toEqual(
      whole.content.find((b) => b.type === 'tool_use')?.type === 'tool_use'
        ? (whole.content.find((b) => b.type === 'tool_use') as { input: unknown }).input
        : undefined,
    );
    expect(streamed.stop_reason).toBe('tool_use');
    const answer = await client.messages.create({
      ...params,
      tools,
      messages: [
        ...params.messages,
        { role: 'assistant', content: streamed.content },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: (toolUse as { id: string }).id,
              content: 'A pool of sea water left by the tide.',
            },
          ],
        },
      ],
    });
    expect(answer.content[0]?.type).toBe('text');
    expect(answer.stop_reason).toBe('end_turn');
  });

  it('extended thinking arrives with its signature, the same streamed or not', async () => {
    gateway = await start(express);
    const client = sdk(gateway);
    const ask = {
      ...params,
      max_tokens: 2_000,
      thinking: { type: 'enabled' as const, budget_tokens: 1_024 },
    };
    const streamed = await client.messages.stream(ask).finalMessage();
    const whole = await client.messages.create(ask);
    const thinking = streamed.content[0];
    expect(thinking?.type).toBe('thinking');
    expect(thinking?.type === 'thinking' && thinking.signature.length).toBeGreaterThan(10);
    // The same blocks; each answer signs its own thinking.
    const unsigned = (content: typeof whole.content) =>
      content.map((b) => (b.type === 'thinking' ? { ...b, signature: 'signed' } : b));
    expect(unsigned(streamed.content)).toEqual(unsigned(whole.content));
    expect(
      whole.content[0]?.type === 'thinking' && whole.content[0].signature.length,
    ).toBeGreaterThan(10);
  });

  it('counts tokens through the gateway, charging nothing', async () => {
    gateway = await start(express);
    const counted = await sdk(gateway).messages.countTokens({
      model: MODEL,
      messages: params.messages,
    });
    expect(counted.input_tokens).toBe(fake.requests.at(-1)!.inputTokens);
    expect(fake.requests.at(-1)!.path).toBe('/v1/messages/count_tokens');
    expect(gateway.settles).toHaveLength(0);
  });

  describe("the SDK's typed errors", () => {
    it('an unknown key: AuthenticationError, and the provider is never called', async () => {
      gateway = await start(express);
      const error = await sdk(gateway, 'tm-nobody')
        .messages.create(params)
        .catch((e) => e);
      expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(error.status).toBe(401);
      expect(error.type).toBe('authentication_error');
      const missing = await sdk(gateway, '')
        .messages.create(params)
        .catch((e) => e);
      expect(missing).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(fake.requests).toHaveLength(0);
    });

    it('an invalid request: BadRequestError saying what is wrong', async () => {
      gateway = await start(express);
      const client = sdk(gateway);
      const noMax = await client.messages.create({ ...params, max_tokens: 0 }).catch((e) => e);
      expect(noMax).toBeInstanceOf(Anthropic.BadRequestError);
      expect(noMax.message).toMatch(/max_tokens/);
      const unknown = await client.messages
        .create({ ...params, model: 'claude-nonexistent-9' })
        .catch((e) => e);
      expect(unknown).toBeInstanceOf(Anthropic.BadRequestError);
      expect(unknown.message).toMatch(/claude-nonexistent-9/);
      expect(fake.requests).toHaveLength(0);
    });

    it('rate limited: RateLimitError with retry-after', async () => {
      gateway = await start(express, {
        rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] },
      });
      const client = sdk(gateway);
      await client.messages.create(params);
      const error = await client.messages.create(params).catch((e) => e);
      expect(error).toBeInstanceOf(Anthropic.RateLimitError);
      expect(Number(error.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    });

    it('budget exhausted: an error the SDK does not retry (x-should-retry: false)', async () => {
      gateway = await start(express, {
        budgets: { user: { limitUsd: '0.0001', period: 'day' } },
      });
      const client = sdk(gateway, 'tm-bob', { maxRetries: 5 });
      const error = await client.messages.create(params).catch((e) => e);
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(error.status).toBe(402);
      expect(error.type).toBe('billing_error');
      expect(error.headers.get('x-should-retry')).toBe('false');
      expect(gateway.hits).toBe(1); // one call, however many retries the client allows
      expect(fake.requests).toHaveLength(0);
    });

    it('the store down (fail closed): InternalServerError 503', async () => {
      const inner = createMemoryStore();
      const down: Store = {
        admit: () => Promise.reject(new Error('store down')),
        settle: (id, actual) => inner.settle(id, actual),
        extend: (id, request) => inner.extend(id, request),
        release: (id) => inner.release(id),
        getState: (scope, policy) => inner.getState(scope, policy),
        now: () => inner.now(),
      };
      gateway = await start(express, { store: down });
      const error = await sdk(gateway)
        .messages.create(params)
        .catch((e) => e);
      expect(error).toBeInstanceOf(Anthropic.InternalServerError);
      expect(error.status).toBe(503);
      expect(fake.requests).toHaveLength(0);
    });

    it("the provider's own errors pass through with their status and type; nothing is charged", async () => {
      gateway = await start(express);
      const client = sdk(gateway);
      for (const [status, cls, type] of [
        [529, Anthropic.InternalServerError, 'overloaded_error'],
        [400, Anthropic.BadRequestError, 'invalid_request_error'],
        [429, Anthropic.RateLimitError, 'rate_limit_error'],
      ] as const) {
        const error = await client.messages
          .create(params, { headers: { 'x-fake-llm-fault': String(status) } })
          .catch((e) => e);
        expect(error).toBeInstanceOf(cls);
        expect(error.status).toBe(status);
        expect(error.type).toBe(type);
        expect(error.requestID).toMatch(/^req_/);
      }
      const settles = await waitForSettles(gateway, 3);
      expect(settles.map((s) => s.final.costNanos)).toEqual([0, 0, 0]);
    });

    it('a budget that runs out mid-stream ends it with an error event the SDK raises', async () => {
      gateway = await start(express, {
        budgets: { user: { limitUsd: '0.0008', period: 'day' } },
        reservation: { mode: 'lease', initialOutputTokens: 50, stepOutputTokens: 50 },
      });
      // Each call is sent with the most output the budget had left when it was admitted;
      // two at once cannot both have it: the lease of one cannot grow.
      const streams = [0, 1].map(() =>
        sdk(gateway, 'tm-carol')
          .messages.stream(
            { ...params, max_tokens: 4_000 },
            {
              headers: {
                'x-fake-llm-tokens': '2000',
                'x-fake-llm-tps': '2000',
                'x-fake-llm-chunk': '1',
              },
            },
          )
          .finalMessage()
          .then(
            () => undefined,
            (e: unknown) => e,
          ),
      );
      const errors = (await Promise.all(streams)).filter((e) => e !== undefined);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      for (const error of errors) {
        expect(error).toBeInstanceOf(Anthropic.APIError);
        expect(String((error as Error).message)).toMatch(/billing_error|budget/);
      }
      const settles = await waitForSettles(gateway, 2);
      const cut = settles.filter((s) => s.outcome === 'budget_exceeded');
      expect(cut.length).toBe(errors.length);
      for (const settle of cut) expect(settle.limit).toBe('lease_denied');
    });

    it('a whole-body call is sent with the most output the budget has left, its prompt counted exactly', async () => {
      gateway = await start(express, { budgets: { user: { limitUsd: '0.002', period: 'day' } } });
      const message = await sdk(gateway, 'tm-carol').messages.create(
        { ...params, max_tokens: 4_000 },
        { headers: { 'x-fake-llm-tokens': '2000' } },
      );
      // Its worst case did not fit: the gateway asked count_tokens (free) before trimming it.
      const counted = fake.requests.filter((r) => r.path.endsWith('/count_tokens'));
      expect(counted).toHaveLength(1);
      const record = fake.requests.at(-1)!;
      // $0.002 less the exact prompt at $1/M, at $5/M of output.
      expect((record.body as { max_tokens?: number }).max_tokens).toBe(
        Math.floor((2_000_000 - message.usage.input_tokens * 1_000) / 5_000),
      );
      expect(message.stop_reason).toBe('max_tokens');
      expect(message.usage.output_tokens).toBe((record.body as { max_tokens?: number }).max_tokens);
      const [settle] = await waitForSettles(gateway, 1);
      expect(settle!.final.costNanos).toBe(
        hand(message.usage.input_tokens, message.usage.output_tokens),
      );
      expect(settle!.final.costNanos).toBeLessThanOrEqual(2_000_000);
    });
  });

  it("an abort through the SDK's AbortController closes the upstream within one chunk", async () => {
    gateway = await start(express);
    const controller = new AbortController();
    const stream = sdk(gateway).messages.stream(params, {
      signal: controller.signal,
      headers: { 'x-fake-llm-tokens': '400', 'x-fake-llm-tps': '200', 'x-fake-llm-chunk': '2' },
    });
    stream.on('text', () => controller.abort());
    await stream.finalMessage().catch(() => undefined);
    const [settle] = await waitForSettles(gateway, 1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(2);
    expect(record.tokensGenerated).toBeLessThan(400);
  });

  it("keys never cross: the provider sees the server's key, the caller never sees it", async () => {
    gateway = await start(express);
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'tm-alice',
        authorization: 'Bearer tm-alice',
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'some-beta-2026-01-01',
        cookie: 'session=secret',
        'x-other': 'not forwarded',
      },
      body: JSON.stringify(params),
    });
    const body = await response.text();
    const seen = fake.requests.at(-1)!.headers;
    expect(seen['x-api-key']).toBe(SERVER_KEY);
    expect(seen.authorization).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen['x-other']).toBeUndefined();
    expect(seen['anthropic-beta']).toBe('some-beta-2026-01-01');
    expect(JSON.stringify(seen)).not.toContain('tm-alice');
    expect(body).not.toContain(SERVER_KEY);
    expect(JSON.stringify([...response.headers])).not.toContain(SERVER_KEY);
  });
});
