/**
 * What a gateway shows a caller it does not trust, and what it reads from one:
 * - an unknown key is refused from the headers, before a byte of the body is read (and
 *   `costTrackedSSE()` does the same when it reads the body itself);
 * - bodies are bounded while reading: size, JSON nesting, uploads in progress per address;
 * - every error carries the retry hint the official SDKs read (`x-should-retry`), so an
 *   unknown key fails at once however many retries the client allows;
 * - the provider refusing the server's own key is a fixed 502 that quotes no part of it
 *   (the log has the provider's answer whole);
 * - the provider's error event mid-stream reaches the client once, as the provider sent it.
 */
import { connect } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import {
  anthropicGateway,
  costTrackedSSE,
  type GatewayOptions,
  openaiGateway,
} from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

const SERVER_KEY = 'sk-proj-server-secret-key-9999';
const KEYS: Record<string, { key: string }> = { 'tm-alice': { key: 'k-alice' } };
const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 200,
  messages: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 40, chunk: 4, seed: 3 });
});
afterAll(() => fake.close());

const errors: { message: string; fields: Record<string, unknown> | undefined }[] = [];
let gateway: Gateway;
afterEach(async () => {
  await gateway?.close();
  fake.reset();
  errors.length = 0;
});

function start(
  create: typeof anthropicGateway | typeof openaiGateway,
  extra: Partial<GatewayOptions> = {},
): Promise<Gateway> {
  return startGateway(express5, create, {
    apiKey: SERVER_KEY,
    baseURL: create === openaiGateway ? `${fake.url}/v1` : fake.url,
    store: createMemoryStore(),
    identify: (key) => (key ? KEYS[key] : undefined),
    forwardHeaders: ['x-fake-llm-*'],
    logger: { warn() {}, error: (message, fields) => errors.push({ message, fields }) },
    ...extra,
  });
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends the request line and headers, then `body` (which may be less than the
 * Content-Length promised), and waits for the answer — that it arrives at all proves the
 * server did not wait for the rest.
 */
function rawRequest(url: string, headers: Record<string, string>, body = ''): Promise<RawAnswer> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${pathname} while the body was withheld; got: ${data}`));
    }, 10_000);
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end).split('\r\n');
      const answerHeaders: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        answerHeaders[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(answerHeaders['content-length'] ?? 0);
      if (Buffer.byteLength(data.slice(end + 4)) < length) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        status: Number(head[0]!.split(' ')[1]),
        headers: answerHeaders,
        body: data.slice(end + 4),
      });
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    const lines = Object.entries({ host: `${hostname}:${port}`, ...headers })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(`POST ${pathname} HTTP/1.1\r\n${lines}\r\n${body}`);
  });
}

/** A JSON value nested `depth` arrays deep. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('identify before reading', () => {
  it.each([
    ['Messages', '/v1/messages'],
    ['count_tokens', '/v1/messages/count_tokens'],
  ])(
    '%s: an unknown key gets 401 while its body is still on the way, and the connection is closed',
    async (_name, path) => {
      gateway = await start(anthropicGateway);
      for (const key of [undefined, 'tm-stolen']) {
        const answer = await rawRequest(
          `${gateway.url}${path}`,
          {
            'content-type': 'application/json',
            'content-length': String(19 * 1024 * 1024),
            ...(key ? { 'x-api-key': key } : {}),
          },
          '{"model":"claude-haiku-4-5","messages":[',
        );
        expect(answer.status).toBe(401);
        expect(answer.headers.connection).toBe('close');
        expect(answer.headers['x-should-retry']).toBe('false');
        expect(JSON.parse(answer.body)).toMatchObject({
          type: 'error',
          error: { type: 'authentication_error' },
        });
      }
      expect(fake.requests).toHaveLength(0);
    },
  );

  it('a known key past the body limit: 413 from Content-Length alone, or while reading a chunked body', async () => {
    gateway = await start(anthropicGateway, { maxBodyBytes: 10_000 });
    const declared = await rawRequest(`${gateway.url}/v1/messages`, {
      'content-type': 'application/json',
      'content-length': '10001',
      'x-api-key': 'tm-alice',
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error.message).toBe(
      'The request body is larger than 10000 bytes.',
    );
    // Chunked: no length up front; refused once 10,000 bytes were read, the rest withheld.
    const chunk = 'x'.repeat(12_000);
    const chunked = await rawRequest(
      `${gateway.url}/v1/messages`,
      {
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        'x-api-key': 'tm-alice',
      },
      `${chunk.length.toString(16)}\r\n${chunk}\r\n`,
    );
    expect(chunked.status).toBe(413);
    expect(chunked.headers.connection).toBe('close');
    expect(fake.requests).toHaveLength(0);
  });

  it('JSON nested deeper than 32 levels is refused before it is parsed; 32 levels pass', async () => {
    gateway = await start(anthropicGateway);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: 'tm-alice', maxRetries: 0 });
    const withDefault = (depth: number) => ({
      ...params,
      tools: [
        {
          name: 'lookup',
          description: 'Looks a thing up.',
          // The body's own nesting adds 6 levels (body, tools, tool, schema, properties, x).
          input_schema: {
            type: 'object' as const,
            properties: { x: { type: 'array', default: JSON.parse(nested(depth - 6)) } },
          },
        },
      ],
    });
    const deep = await client.messages.create(withDefault(33)).catch((e) => e);
    expect(deep).toBeInstanceOf(Anthropic.BadRequestError);
    expect(deep.message).toContain('nested more than 32 levels deep');
    expect(fake.requests).toHaveLength(0);
    const fine = await client.messages.create(withDefault(32));
    expect(fine.type).toBe('message');
    // Brackets and quotes inside strings are text, not nesting.
    const text = await client.messages.create({
      ...params,
      messages: [{ role: 'user', content: `${nested(500)} "\\"[[[" \\\\` }],
    });
    expect(text.type).toBe('message');
    // Refused while reading: the answer comes with most of the body still withheld.
    const head = {
      'content-type': 'application/json',
      'content-length': '1000000',
      'x-api-key': 'tm-alice',
    };
    const early = await rawRequest(`${gateway.url}/v1/messages`, head, `{"x":${'['.repeat(40)}`);
    expect([early.status, JSON.parse(early.body).error.message]).toEqual([
      400,
      'The request is nested more than 32 levels deep.',
    ]);
    const many = await rawRequest(
      `${gateway.url}/v1/messages`,
      head,
      `{"x":[${'0,'.repeat(100_000)}`,
    );
    expect([many.status, JSON.parse(many.body).error.message]).toEqual([
      400,
      'The request has more than 100000 values.',
    ]);
  });

  it('uploads in progress per address are bounded (429, Retry-After: 1); a slot frees when an upload ends', async () => {
    gateway = await start(anthropicGateway, { uploadsPerAddress: 2 });
    const body = JSON.stringify(params);
    const held = [0, 1].map(() => {
      const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1');
      socket.write(
        `POST /llm/v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
          `x-api-key: tm-alice\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
      );
      let answer = '';
      socket.on('data', (chunk) => {
        answer += chunk.toString();
      });
      return { socket, answer: () => answer };
    });
    // The two uploads are being read: wait until the gateway saw them.
    await expect.poll(() => gateway.hits, { timeout: 10_000 }).toBe(2);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: 'tm-alice', maxRetries: 0 });
    const third = await client.messages.create(params).catch((e) => e);
    expect(third).toBeInstanceOf(Anthropic.RateLimitError);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(third.message).toContain('Too many uploads in progress');
    // One upload completes: its answer comes, and a new request is read again.
    held[0]!.socket.write(body.slice(10));
    await expect.poll(() => held[0]!.answer(), { timeout: 10_000 }).toContain('HTTP/1.1 200');
    expect((await client.messages.create(params)).type).toBe('message');
    for (const h of held) h.socket.destroy();
  });

  it('costTrackedSSE() with no body parser: identify first, then reads the JSON body itself within 1 MiB', async () => {
    const app = express5();
    app.post(
      '/chat',
      costTrackedSSE({
        store: createMemoryStore(),
        identify: (req) => (req.headers['x-user'] === 'alice' ? { user: 'alice' } : undefined),
        upstream: (req, meter) =>
          new Anthropic({ baseURL: fake.url, apiKey: 'k', maxRetries: 0 }).messages.create(
            { ...(req.body as typeof params), ...meter.params, stream: true },
            { signal: meter.signal },
          ),
      }),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/chat`;
    try {
      const unknown = await rawRequest(
        url,
        { 'content-type': 'application/json', 'content-length': '5000000' },
        '{"model":',
      );
      expect(unknown.status).toBe(401);
      expect(unknown.headers.connection).toBe('close');
      const tooLarge = await rawRequest(url, {
        'content-type': 'application/json',
        'content-length': String(1024 * 1024 + 1),
        'x-user': 'alice',
      });
      expect(tooLarge.status).toBe(413);
      expect(JSON.parse(tooLarge.body)).toMatchObject({ error: { code: 'body_too_large' } });
      const answered = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': 'alice' },
        body: JSON.stringify(params),
      });
      expect(answered.status).toBe(200);
      expect(await answered.text()).toContain('event: done');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('retry hints the official SDKs read', () => {
  it('an unknown key fails at once, with a readable message, however many retries the client allows', async () => {
    gateway = await start(anthropicGateway);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: 'tm-nobody', maxRetries: 8 });
    const a = await anthropic.messages.create(params).catch((e) => e);
    expect(a).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(a.message).toContain('send a valid API key');
    expect(gateway.hits).toBe(1);
    await gateway.close();

    gateway = await start(openaiGateway);
    const openai = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'tm-nobody', maxRetries: 8 });
    const o = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', max_completion_tokens: 100, messages: params.messages })
      .catch((e) => e);
    expect(o).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(o.message).toContain('send a valid API key');
    expect(gateway.hits).toBe(1);
  });

  it('every answer says whether to retry: 4xx no (but 429), 5xx yes; the provider’s own errors too', async () => {
    gateway = await start(anthropicGateway, {
      rateLimits: { key: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] },
    });
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${gateway.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'tm-alice', ...headers },
        body: JSON.stringify(body),
      });
    const invalid = await post({ ...params, max_tokens: -1 });
    expect([invalid.status, invalid.headers.get('x-should-retry')]).toEqual([400, 'false']);
    const notFound = await fetch(`${gateway.url}/v1/nothing`, { method: 'POST' });
    expect([notFound.status, notFound.headers.get('x-should-retry')]).toEqual([404, 'false']);
    // The provider's own 529, relayed: retry.
    const overloaded = await post(params, { 'x-fake-llm-fault': '529' });
    expect([overloaded.status, overloaded.headers.get('x-should-retry')]).toEqual([529, 'true']);
    const limited = await post(params);
    expect([limited.status, limited.headers.get('x-should-retry')]).toEqual([429, 'true']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe("the provider refusing the server's key", () => {
  it.each([
    ['Anthropic', anthropicGateway],
    ['OpenAI', openaiGateway],
  ] as const)(
    '%s: a fixed 502 quoting no part of the key, not retried; the log has the provider answer whole',
    async (name, create) => {
      // The fake insists on another key: it refuses the gateway's own.
      const strict = await startFakeLLM({ tps: 0, tokens: 10, apiKey: 'sk-the-right-one' });
      try {
        gateway = await start(create, {
          baseURL: name === 'OpenAI' ? `${strict.url}/v1` : strict.url,
        });
        const error =
          name === 'OpenAI'
            ? await new OpenAI({
                baseURL: `${gateway.url}/v1`,
                apiKey: 'tm-alice',
                maxRetries: 5,
              }).chat.completions
                .create({
                  model: 'gpt-4o-mini',
                  max_completion_tokens: 100,
                  messages: params.messages,
                  stream: true,
                })
                .catch((e) => e)
            : await new Anthropic({
                baseURL: gateway.url,
                apiKey: 'tm-alice',
                maxRetries: 5,
              }).messages
                .create({ ...params, stream: true })
                .catch((e) => e);
        expect(error.status).toBe(502);
        expect(error.message).toContain("refused this gateway's credentials");
        expect(JSON.stringify(error.error)).not.toMatch(/sk-proj|9999|\*\*\*\*/);
        expect(gateway.hits).toBe(1);
        const logged = errors.find((e) => e.message.includes("refused the gateway's API key"));
        expect(logged?.fields?.status).toBe(401);
        if (name === 'OpenAI') expect(String(logged?.fields?.body)).toContain('sk-proj-****9999');
        // Refused by the provider: nothing charged.
        const [settled] = await waitForSettles(gateway, 1);
        expect(settled?.final.costNanos).toBe(0);
      } finally {
        await strict.close();
      }
    },
  );

  it('count_tokens too', async () => {
    const strict = await startFakeLLM({ tps: 0, tokens: 10, apiKey: 'sk-the-right-one' });
    try {
      gateway = await start(anthropicGateway, { baseURL: strict.url });
      const client = new Anthropic({ baseURL: gateway.url, apiKey: 'tm-alice', maxRetries: 5 });
      const error = await client.messages.countTokens(params).catch((e) => e);
      expect(error.status).toBe(502);
      expect(error.headers.get('x-should-retry')).toBe('false');
      expect(gateway.hits).toBe(1);
    } finally {
      await strict.close();
    }
  });
});

describe('an upstream error mid-stream', () => {
  it('Anthropic: the provider’s error event reaches the client once, unchanged; the SDK raises it', async () => {
    gateway = await start(anthropicGateway);
    const response = await fetch(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'tm-alice',
        'x-fake-llm-fault': 'error-mid-stream',
      },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const text = await response.text();
    expect(text.match(/event: error/g)).toHaveLength(1);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    const error = await new Anthropic({
      baseURL: gateway.url,
      apiKey: 'tm-alice',
      maxRetries: 0,
    }).messages
      .create({ ...params, stream: true }, { headers: { 'x-fake-llm-fault': 'error-mid-stream' } })
      .then(async (stream) => {
        for await (const _ of stream);
      })
      .catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error.error?.error?.type).toBe('overloaded_error');
    const settles = await waitForSettles(gateway, 2);
    expect(settles.map((s) => s.outcome)).toEqual(['upstream_error', 'upstream_error']);
  });

  it('OpenAI: the provider’s error chunk reaches the client once, unchanged', async () => {
    gateway = await start(openaiGateway);
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer tm-alice',
        'x-fake-llm-fault': 'error-mid-stream',
      },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        max_completion_tokens: 100,
        messages: params.messages,
        stream: true,
      }),
    });
    const text = await response.text();
    expect(text.match(/"error"/g)).toHaveLength(1);
    const [settled] = await waitForSettles(gateway, 1);
    expect(settled?.outcome).toBe('upstream_error');
  });
});
