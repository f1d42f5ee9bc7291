/**
 * Callers we don't control: every way a request body was found to overrun a budget (or be
 * refused while money remained), driven through `anthropicGateway()`, `openaiGateway()` and
 * `costTrackedSSE()` with the README's `{ ...req.body, … }` pattern, against the testkit
 * (and a stand-in upstream where the testkit cannot produce the case). Each ends with the
 * provider's bill within the reservation and the budget, or with a clear 4xx.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { usd } from '@tokenmeter/core';
import {
  anthropicGateway,
  type GatewayOptions,
  openaiGateway,
  type SettleInfo,
} from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, type RequestRecord, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { billedNanos } from '../helpers/billing.js';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';
import { postSSE } from '../helpers/sse-client.js';
import { readmeUpstream } from '../helpers/upstream.js';

const HAIKU = 'claude-haiku-4-5'; // $1 / $5 per million tokens
const MINI = 'gpt-4.1-mini'; // $0.40 / $1.60
const messages = [{ role: 'user' as const, content: 'Tell me about tide pools.' }];

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 4, tokens: 60, seed: 21 });
});
afterAll(() => fake.close());

let store: MemoryStore;
let gateways: Gateway[] = [];
let app: TestApp | undefined;
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  gateways = [];
  await app?.close();
  app = undefined;
  fake.reset();
});

type Provider = 'anthropic' | 'openai';

async function gateway(provider: Provider, extra: Partial<GatewayOptions> = {}) {
  store = createMemoryStore();
  const started = await startGateway(
    express5,
    provider === 'anthropic' ? anthropicGateway : openaiGateway,
    {
      apiKey: 'server-key',
      baseURL: provider === 'anthropic' ? fake.url : `${fake.url}/v1`,
      store,
      identify: (key) => (key ? { user: key } : undefined),
      budgets: { user: { limitUsd: '10', period: 'day' } },
      forwardHeaders: ['x-fake-llm-*'],
      ...extra,
    },
  );
  gateways.push(started);
  return started;
}

/** The README's mount pattern: the body as sent, with the admitted model and max_tokens. */
async function readmeRoute(extra: Record<string, unknown> = {}) {
  store = createMemoryStore();
  const client = anthropicClient(fake.url);
  app = await startApp({
    express: express5,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '10', period: 'day' } },
      upstream: readmeUpstream(client),
      ...extra,
    },
  });
  return app;
}

/** One call through a gateway, as a raw HTTP request (a hostile caller needs no SDK). */
async function call(
  g: Gateway,
  provider: Provider,
  body: Record<string, unknown>,
  knobs: Record<string, string> = {},
  user = 'mallory',
) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(knobs)) headers[`x-fake-llm-${k}`] = v;
  if (provider === 'anthropic') headers['x-api-key'] = user;
  else headers.authorization = `Bearer ${user}`;
  const url = `${g.url}${provider === 'anthropic' ? '/v1/messages' : '/v1/chat/completions'}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, text, json: safeJson(text) };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const spent = async (user: string, limitUsd = '10') =>
  (
    await store.getState(
      { kind: 'user', id: user },
      { budget: { limitNanos: usd(limitUsd), period: 'day' } },
    )
  ).budget!;

const messagesOf = () => fake.requests.filter((r) => !r.path.endsWith('/count_tokens'));
const sentMax = (r: RequestRecord) =>
  (r.body as { max_tokens?: number; max_completion_tokens?: number }).max_completion_tokens ??
  (r.body as { max_tokens?: number }).max_tokens;

function expectWithin(settle: SettleInfo, record: RequestRecord) {
  expect(settle.final.costNanos).toBeLessThanOrEqual(settle.reservedNanos);
  expect(billedNanos(record)).toBeLessThanOrEqual(settle.reservedNanos);
}

describe('1. a whole-body answer cannot escape a lease or a cap', () => {
  for (const provider of ['anthropic', 'openai'] as const) {
    const model = provider === 'anthropic' ? HAIKU : MINI;
    const ask = {
      model,
      [provider === 'anthropic' ? 'max_tokens' : 'max_completion_tokens']: 4_000,
      messages,
      stream: false,
    };

    it(`${provider}: leases on a $0.005 budget — sent with the max_tokens $0.005 covers, billed within it`, async () => {
      const g = await gateway(provider, {
        budgets: { user: { limitUsd: '0.005', period: 'day' } },
        reservation: { mode: 'lease', initialOutputTokens: 256, stepOutputTokens: 256 },
      });
      const answer = await call(g, provider, ask, { tokens: '4000' });
      expect(answer.status).toBe(200);
      const [record] = messagesOf();
      expect(sentMax(record!)).toBeLessThan(4_000);
      const [settle] = await waitForSettles(g, 1);
      expect(settle!.final.estimated).toBe(false);
      expect(settle!.final.costNanos).toBe(billedNanos(record!));
      expect(billedNanos(record!)).toBeLessThanOrEqual(usd('0.005'));
      expect((await spent('mallory', '0.005')).spentNanos).toBeLessThanOrEqual(usd('0.005'));
    });

    it(`${provider}: a $0.002 cap — sent with the max_tokens the cap covers, billed within it`, async () => {
      const g = await gateway(provider, { maxCostPerRequestUsd: '0.002' });
      const answer = await call(g, provider, ask, { tokens: '4000' });
      expect(answer.status).toBe(200);
      const [record] = messagesOf();
      const [settle] = await waitForSettles(g, 1);
      expect(sentMax(record!)).toBeLessThan(4_000);
      expect(billedNanos(record!)).toBe(settle!.final.costNanos);
      expect(billedNanos(record!)).toBeLessThanOrEqual(usd('0.002'));
    });
  }
});

describe('2. a stream cut after web searches is charged their results', () => {
  const body = {
    model: HAIKU,
    max_tokens: 4_000,
    messages,
    stream: true,
    tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }],
  };
  const knobs = {
    searches: '3',
    'search-result-tokens': '20000',
    tokens: '3000',
    tps: '400',
    chunk: '1',
  };

  /** Reads an SSE answer until `n` text deltas arrived, then leaves. */
  async function leaveAfter(url: string, init: RequestInit, n: number) {
    const controller = new AbortController();
    const response = await fetch(url, { ...init, signal: controller.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let seen = 0;
    let text = '';
    while (seen < n) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      seen = (text.match(/"text_delta"|event: delta/g) ?? []).length;
    }
    controller.abort();
  }

  it('through the Anthropic gateway', async () => {
    const g = await gateway('anthropic');
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-api-key': 'mallory',
    };
    for (const [k, v] of Object.entries(knobs)) headers[`x-fake-llm-${k}`] = v;
    await leaveAfter(
      `${g.url}/v1/messages`,
      { method: 'POST', headers, body: JSON.stringify(body) },
      20,
    );
    const [settle] = await waitForSettles(g, 1);
    const record = await fake.waitForRequest(messagesOf()[0]!.id);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(record.searches).toBe(3);
    // The provider billed 3 × 20,000 result tokens of input: the estimate charges them.
    expect(settle!.final.usage.inputTokens).toBeGreaterThanOrEqual(record.inputTokens + 60_000);
    expect(settle!.final.costNanos).toBeGreaterThanOrEqual(billedNanos(record));
    expectWithin(settle!, record);
  });

  it("through costTrackedSSE() with the README's pattern", async () => {
    const route = await readmeRoute();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-user': 'mallory',
    };
    for (const [k, v] of Object.entries(knobs)) headers[`x-fake-llm-${k}`] = v;
    await leaveAfter(route.url, { method: 'POST', headers, body: JSON.stringify(body) }, 20);
    const [settle] = await route.waitForSettles(1);
    const record = await fake.waitForRequest(fake.requests.at(-1)!.id);
    expect(record.searches).toBe(3);
    expect(settle!.final.costNanos).toBeGreaterThanOrEqual(billedNanos(record));
    expectWithin(settle!, record);
  });
});

describe('3. a document by URL or file id is counted exactly, or refused', () => {
  const doc = (source: Record<string, unknown>) => ({
    model: 'claude-opus-4-1', // $15 / $75 per million tokens
    max_tokens: 1_000,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'document', source },
          { type: 'text', text: 'Summarise it.' },
        ],
      },
    ],
  });
  const big = { 'input-tokens': '150000' }; // what the provider counts for the document

  it('Anthropic gateway: count_tokens says 150,000 tokens — 402 on $0.50, exact within $5', async () => {
    let g = await gateway('anthropic', { budgets: { user: { limitUsd: '0.50', period: 'day' } } });
    const refused = await call(
      g,
      'anthropic',
      doc({ type: 'url', url: 'https://x.example/big.pdf' }),
      big,
    );
    expect(refused.status).toBe(402);
    // 150,000 × $15/M = $2.25 of prompt alone: said in the message.
    expect(refused.text).toMatch(/prompt up to 150000 tokens/);
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/messages/count_tokens']);
    await g.close();
    g = await gateway('anthropic', { budgets: { user: { limitUsd: '5', period: 'day' } } });
    const answer = await call(g, 'anthropic', doc({ type: 'file', file_id: 'file_abc' }), big);
    expect(answer.status).toBe(200);
    const [settle] = await waitForSettles(g, 1);
    const record = messagesOf().at(-1)!;
    expect(settle!.final.usage.inputTokens).toBe(150_000);
    expect(settle!.final.costNanos).toBe(150_000 * 15_000 + record.tokensGenerated * 75_000);
    expectWithin(settle!, record);
  });

  it('OpenAI gateway: a file by id cannot be bounded or counted — 400 unbounded_request', async () => {
    const g = await gateway('openai');
    const answer = await call(g, 'openai', {
      model: MINI,
      max_completion_tokens: 100,
      messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }],
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ error: { code: 'unbounded_request' } });
    expect((answer.json as { error: { message: string } }).error.message).toMatch(/file by id/);
    expect(fake.requests).toHaveLength(0);
  });

  it('costTrackedSSE() without an exact counter: 400 saying how to count it', async () => {
    const route = await readmeRoute();
    const result = await postSSE(route.url, doc({ type: 'url', url: 'https://x.example/a.pdf' }), {
      headers: { 'x-user': 'mallory' },
    });
    expect(result.status).toBe(400);
    expect(result.body).toMatchObject({ error: { code: 'unbounded_request' } });
    expect(JSON.stringify(result.body)).toMatch(/anthropicTokenCounter/);
  });
});

describe('4. a server tool without max_uses is sent with the uses that were reserved', () => {
  const body = {
    model: HAIKU,
    max_tokens: 500,
    messages,
    stream: true,
    tools: [{ type: 'web_search_20250305', name: 'web_search' }],
  };
  const knobs = { searches: '20', 'search-result-tokens': '20000' };

  it('through the Anthropic gateway: max_uses 5 sent, 5 searches billed, within the reservation', async () => {
    const g = await gateway('anthropic', { budgets: { user: { limitUsd: '2', period: 'day' } } });
    expect((await call(g, 'anthropic', body, knobs)).status).toBe(200);
    const record = messagesOf()[0]!;
    expect((record.body as { tools: unknown[] }).tools[0]).toMatchObject({ max_uses: 5 });
    expect(record.searches).toBe(5);
    const [settle] = await waitForSettles(g, 1);
    expect(settle!.final.costNanos).toBe(billedNanos(record));
    expectWithin(settle!, record);
    expect((await spent('mallory', '2')).spentNanos).toBeLessThanOrEqual(usd('2'));
  });

  it("through costTrackedSSE() with the README's pattern (req.body carries max_uses)", async () => {
    const route = await readmeRoute({ budgets: { user: { limitUsd: '2', period: 'day' } } });
    const result = await postSSE(route.url, body, {
      headers: {
        'x-user': 'mallory',
        ...Object.fromEntries(Object.entries(knobs).map(([k, v]) => [`x-fake-llm-${k}`, v])),
      },
    });
    expect(result.status).toBe(200);
    const record = fake.requests.at(-1)!;
    expect((record.body as { tools: unknown[] }).tools[0]).toMatchObject({ max_uses: 5 });
    expect(record.searches).toBe(5);
    const [settle] = await route.waitForSettles(1);
    expectWithin(settle!, record);
  });
});

describe("4'. server tools allowed more uses than money can count are refused, never a 500", () => {
  it('Anthropic max_uses and Responses max_tool_calls in the billions: 400 unbounded_request', async () => {
    const anthropic = await gateway('anthropic');
    const opus = await call(anthropic, 'anthropic', {
      model: 'claude-opus-5',
      max_tokens: 500,
      messages,
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 1e12 }],
    });
    expect(opus.status).toBe(400);
    expect(opus.json).toMatchObject({ error: { message: expect.stringMatching(/max_uses/) } });
    const openai = await gateway('openai');
    const response = await fetch(`${openai.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer mallory' },
      // Found by the property test (seed 27): a worst case past $9,007,199 was a 500.
      body: JSON.stringify({
        model: 'gpt-5.6-terra',
        max_tool_calls: 150_119_962,
        input: [{ type: 'item_reference', id: 'msg_1' }],
        tools: [{ type: 'web_search' }],
      }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: 'unbounded_request', message: expect.stringMatching(/max_tool_calls/) },
    });
    // Only the free counts reached the provider (the stored item is counted first).
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/responses/input_tokens']);
  });
});

describe('5. text shaped to tokenize badly cannot shrink the bound', () => {
  /** 15,000 characters of random base64, rare ideographs and control characters. */
  function hostileText(seed: number): string {
    let s = seed;
    const rnd = () => {
      s = (s * 1_103_515_245 + 12_345) >>> 0;
      return s / 2 ** 32;
    };
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    let out = '';
    for (let i = 0; i < 5_000; i++) out += b64[Math.floor(rnd() * 64)];
    for (let i = 0; i < 5_000; i++) out += String.fromCodePoint(0x3400 + Math.floor(rnd() * 6_000));
    for (let i = 0; i < 5_000; i++) out += String.fromCharCode(1 + Math.floor(rnd() * 30));
    return out;
  }
  const hostile = (provider: Provider, seed: number) => {
    const blob = hostileText(seed);
    return provider === 'anthropic'
      ? {
          model: HAIKU,
          max_tokens: 200,
          system: blob.slice(0, 2_500),
          tools: [
            {
              name: 'lookup',
              description: blob.slice(2_500, 7_500),
              input_schema: { type: 'object' },
            },
          ],
          messages: [
            { role: 'user', content: 'Look it up.' },
            {
              role: 'assistant',
              content: [
                {
                  type: 'tool_use',
                  id: 't1',
                  name: 'lookup',
                  input: { q: blob.slice(7_500, 11_000) },
                },
              ],
            },
            {
              role: 'user',
              content: [{ type: 'tool_result', tool_use_id: 't1', content: blob.slice(11_000) }],
            },
          ],
          stream: true,
        }
      : {
          model: MINI,
          max_completion_tokens: 200,
          messages: [
            { role: 'system', content: blob.slice(0, 2_500) },
            { role: 'user', content: blob.slice(2_500, 7_500) },
          ],
          tools: [
            {
              type: 'function',
              function: {
                name: 'f',
                description: blob.slice(7_500, 11_000),
                parameters: { type: 'object' },
              },
            },
          ],
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'x', schema: { description: blob.slice(11_000) } },
          },
          stream: true,
        };
  };
  // The fake bills a token per byte of text: the most any byte-level tokenizer can.
  const worst = { 'input-counting': 'bytes', tokens: '50' };

  for (const provider of ['anthropic', 'openai'] as const) {
    it(`${provider}: one call, then 8 at once from a fresh key — $0.10 a day, maxInputTokens 50,000`, async () => {
      const g = await gateway(provider, {
        budgets: { user: { limitUsd: '0.10', period: 'day' } },
        maxInputTokens: 50_000,
      });
      const phases: Array<[user: string, count: number]> = [
        ['one', 1],
        ['fresh', 8],
      ];
      for (const [user, count] of phases) {
        fake.reset();
        const before = g.settles.length;
        const answers = await Promise.all(
          Array.from({ length: count }, (_, i) =>
            call(g, provider, hostile(provider, i + 1), worst, user),
          ),
        );
        for (const answer of answers) expect([200, 402, 413]).toContain(answer.status);
        const admitted = answers.filter((a) => a.status === 200).length;
        // Some are admitted (the money is there), the rest refused before the provider.
        expect(admitted).toBeGreaterThanOrEqual(1);
        const settled = (await waitForSettles(g, before + admitted)).slice(before);
        for (const settle of settled) {
          expect(settle.final.costNanos).toBeLessThanOrEqual(settle.reservedNanos);
        }
        // What the provider billed this key, at a token per byte, stays within its $0.10.
        const billed = messagesOf().reduce((sum, r) => sum + billedNanos(r), 0);
        expect(billed).toBeLessThanOrEqual(usd('0.10'));
        expect((await spent(user, '0.10')).spentNanos).toBeLessThanOrEqual(usd('0.10'));
      }
    });
  }
});

describe("5'. the same text through costTrackedSSE() with the README's pattern", () => {
  it('one call and 4 at once on $0.10, the prompt bounded by its bytes (no exact counter)', async () => {
    const route = await readmeRoute({
      budgets: { user: { limitUsd: '0.10', period: 'day' } },
      maxInputTokens: 50_000,
    });
    const blob =
      'Zq9+'.repeat(500) +
      String.fromCodePoint(
        ...Array.from({ length: 3_000 }, (_, i) => 0x3400 + ((i * 7919) % 6_000)),
      );
    const body = (i: number) => ({
      model: HAIKU,
      max_tokens: 200,
      system: `${i} ${blob}`,
      messages: [{ role: 'user', content: blob }],
    });
    const headers = {
      'x-user': 'mallory',
      'x-fake-llm-input-counting': 'bytes',
      'x-fake-llm-tokens': '50',
    };
    const results = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => postSSE(route.url, body(i), { headers })),
    );
    for (const r of results) expect([200, 402]).toContain(r.status);
    const admitted = results.filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(1);
    const settles = await route.waitForSettles(admitted);
    for (const settle of settles)
      expect(settle.final.costNanos).toBeLessThanOrEqual(settle.reservedNanos);
    const billed = fake.requests.reduce((sum, r) => sum + billedNanos(r), 0);
    expect(billed).toBeLessThanOrEqual(usd('0.10'));
    expect((await spent('mallory', '0.10')).spentNanos).toBeLessThanOrEqual(usd('0.10'));
  });
});

describe('6. type-confused fields are refused; an answer without usage is charged its reservation', () => {
  for (const stream of ['true', 1, 'yes'] as const) {
    it(`"stream": ${JSON.stringify(stream)} — 400 through both gateways and costTrackedSSE()`, async () => {
      const a = await gateway('anthropic');
      const o = await gateway('openai');
      const anthropic = await call(a, 'anthropic', {
        model: HAIKU,
        max_tokens: 100,
        messages,
        stream,
      });
      const openai = await call(o, 'openai', { model: MINI, max_tokens: 100, messages, stream });
      const route = await readmeRoute();
      const own = await postSSE(
        route.url,
        { model: HAIKU, max_tokens: 100, messages, stream },
        {
          headers: { 'x-user': 'mallory' },
        },
      );
      for (const status of [anthropic.status, openai.status, own.status]) expect(status).toBe(400);
      expect((anthropic.json as { error: { message: string } }).error.message).toMatch(
        /"stream" must be true or false/,
      );
      expect(own.body).toMatchObject({ error: { code: 'invalid_request' } });
      expect(fake.requests).toHaveLength(0);
    });
  }

  /** A stand-in provider: answers every call with `reply`, whatever it asked for. */
  async function standIn(reply: {
    type: string;
    body: string;
  }): Promise<{ url: string; close(): Promise<void> }> {
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': reply.type });
        res.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  const streamed = [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":20,"output_tokens":1}}}\n\n',
    ...Array.from(
      { length: 50 },
      () =>
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"word "}}\n\n',
    ),
    'event: message_stop\ndata: {"type":"message_stop"}\n\n',
  ].join('');
  const replies = {
    'a stream to a whole-body call': { type: 'text/event-stream', body: streamed },
    'a whole body without usage': {
      type: 'application/json',
      body: JSON.stringify({
        id: 'msg_2',
        type: 'message',
        role: 'assistant',
        model: HAIKU,
        content: [{ type: 'text', text: 'hi' }],
        stop_reason: 'end_turn',
      }),
    },
  };
  for (const [name, reply] of Object.entries(replies)) {
    it(`${name}: completed, charged its reservation (never $0)`, async () => {
      const upstream = await standIn(reply);
      try {
        const g = await gateway('anthropic', { baseURL: upstream.url });
        const answer = await call(g, 'anthropic', {
          model: HAIKU,
          max_tokens: 2_000,
          messages,
          stream: false,
        });
        expect(answer.status).toBe(200);
        const [settle] = await waitForSettles(g, 1);
        expect(settle!.outcome).toBe('completed');
        expect(settle!.final.estimated).toBe(true);
        expect(settle!.final.costNanos).toBe(settle!.reservedNanos);
        // The reservation covers max_tokens of output: 2,000 × $5/M at least.
        expect(settle!.final.costNanos).toBeGreaterThan(2_000 * 5_000);
      } finally {
        await upstream.close();
      }
    });
  }
});

describe('7. tiers and snapshots the catalog cannot price cheaper', () => {
  it('OpenAI service_tier "priority" (no published price) is refused; "flex" is reserved at the standard rate', async () => {
    const g = await gateway('openai');
    const priority = await call(g, 'openai', {
      model: MINI,
      max_tokens: 100,
      messages,
      service_tier: 'priority',
    });
    expect(priority.status).toBe(400);
    expect(priority.json).toMatchObject({ error: { code: 'unbounded_request' } });
    expect(fake.requests).toHaveLength(0);
    const flex = await call(g, 'openai', {
      model: MINI,
      max_tokens: 100,
      messages,
      service_tier: 'flex',
    });
    expect(flex.status).toBe(200);
    const [settle] = await waitForSettles(g, 1);
    expect(settle!.final.costNanos).toBeLessThanOrEqual(settle!.reservedNanos);
  });

  it("gpt-4o-2024-05-13 is reserved and settled at its own $5 / $15, not gpt-4o's $2.50 / $10", async () => {
    const g = await gateway('openai');
    const answer = await call(g, 'openai', {
      model: 'gpt-4o-2024-05-13',
      max_tokens: 100,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(answer.status).toBe(200);
    const [settle] = await waitForSettles(g, 1);
    const record = messagesOf()[0]!;
    expect(settle!.final.costNanos).toBe(
      record.inputTokens * 5_000 + record.tokensGenerated * 15_000,
    );
  });
});
