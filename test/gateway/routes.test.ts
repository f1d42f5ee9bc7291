/**
 * No route escapes metering: every method on every path a gateway answers is either
 * metered (admitted, streamed or answered, settled once), free but rate-limited
 * (count_tokens, the Responses API's input_tokens), or rejected before the provider is called — in the provider's own error
 * shape. Both gateways, mounted under a prefix.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { anthropicGateway, openaiGateway, type SettleInfo } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
const PATHS = [
  '',
  '/',
  '/v1',
  '/v1/',
  '/v1/messages',
  '/v1/messages?beta=true',
  '/v1/messages/',
  '/v1//messages',
  '/V1/MESSAGES',
  '/v1/messages/count_tokens',
  '/v1/messages/count_tokens?beta=true',
  '/v1/messages/batches',
  '/v1/messages/batches/msgbatch_1',
  '/v1/messages/msg_1',
  '/v1/complete',
  '/v1/models',
  '/v1/files',
  '/v1/chat/completions',
  '/v1/chat/completions/',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/responses?stream=true',
  '/v1/responses/',
  '/v1/responses/input_tokens',
  '/v1/responses/compact',
  '/v1/responses/resp_1',
  '/v1/responses/resp_1/cancel',
  '/v1/responses/resp_1/input_items',
  '/v1/conversations',
  '/v1/batches',
  '/v1/messages/../models',
  '/v1/messages%2Fcount_tokens',
];

let fake: FakeLLM;
let server: Server;
let base: string;
const settles: SettleInfo[] = [];

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 8 });
  const app = express();
  const common = {
    store: createMemoryStore(),
    budgets: { user: { limitUsd: '10', period: 'day' as const } },
    rateLimits: { user: [{ kind: 'requests' as const, limit: 10_000, windowMs: 60_000 }] },
    logger: { warn() {}, error() {} },
    onSettle: (info: SettleInfo) => void settles.push(info),
  };
  app.use(
    '/anthropic',
    anthropicGateway({
      ...common,
      apiKey: 'server-anthropic',
      baseURL: fake.url,
      identify: (key) => (key === 'tm-ok' ? { user: 'u' } : undefined),
    }) as never,
  );
  app.use(
    '/openai',
    openaiGateway({
      ...common,
      apiKey: 'server-openai',
      baseURL: `${fake.url}/v1`,
      identify: (key) => (key === 'tm-ok' ? { user: 'u' } : undefined),
    }) as never,
  );
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await fake.close();
});

const BODIES = {
  anthropic: {
    model: 'claude-haiku-4-5',
    max_tokens: 50,
    messages: [{ role: 'user', content: 'Hi' }],
  },
  openai: {
    model: 'gpt-4o-mini',
    max_completion_tokens: 50,
    messages: [{ role: 'user', content: 'Hi' }],
  },
  responses: { model: 'gpt-4o-mini', max_output_tokens: 50, input: 'Hi' },
} as const;

/** The body a caller of `path` would send: a Responses request under /v1/responses. */
const bodyFor = (provider: 'anthropic' | 'openai', path: string) =>
  provider === 'openai' && path.startsWith('/v1/responses') ? BODIES.responses : BODIES[provider];

/** What each gateway meters, and what it answers free (rate-limited): everything else is refused. */
const METERED = {
  anthropic: ['POST /v1/messages', 'POST /v1/messages?beta=true'],
  openai: ['POST /v1/chat/completions', 'POST /v1/responses', 'POST /v1/responses?stream=true'],
} as const;
const FREE = {
  anthropic: ['POST /v1/messages/count_tokens', 'POST /v1/messages/count_tokens?beta=true'],
  openai: ['POST /v1/responses/input_tokens'],
} as const;
const FREE_UPSTREAM = {
  anthropic: '/v1/messages/count_tokens',
  openai: '/v1/responses/input_tokens',
} as const;

describe.each(['anthropic', 'openai'] as const)('%s gateway', (provider) => {
  it('meters its routes, answers count_tokens free, and refuses every other method and path before calling the provider', async () => {
    const seen: Record<string, string[]> = { metered: [], free: [], rejected: [] };
    for (const method of METHODS) {
      for (const path of PATHS) {
        const calls = fake.requests.length;
        const settled = settles.length;
        const response = await fetch(`${base}/${provider}${path}`, {
          method,
          headers: {
            'content-type': 'application/json',
            authorization: 'Bearer tm-ok',
            'x-api-key': 'tm-ok',
          },
          ...(method === 'GET' || method === 'HEAD'
            ? {}
            : { body: JSON.stringify(bodyFor(provider, path)) }),
        });
        const text = await response.text();
        const route = `${method} ${path}`;
        // A settlement lands after the response: give it a moment.
        for (let i = 0; i < 50 && response.status === 200 && settles.length === settled; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        if (response.status === 200 && settles.length === settled + 1) {
          seen.metered!.push(route);
          expect(fake.requests.length, route).toBe(calls + 1);
        } else if (response.status === 200) {
          seen.free!.push(route);
          expect(fake.requests.length, route).toBe(calls + 1);
          expect(fake.requests.at(-1)!.path, route).toBe(FREE_UPSTREAM[provider]);
        } else {
          seen.rejected!.push(route);
          expect(response.status, route).toBeGreaterThanOrEqual(400);
          expect(fake.requests.length, `${route} reached the provider`).toBe(calls);
          expect(settles.length, route).toBe(settled);
          if (method !== 'HEAD') {
            const body = JSON.parse(text) as { error?: unknown; type?: unknown };
            if (provider === 'anthropic') expect(body.type, route).toBe('error');
            expect(body.error, route).toBeDefined();
          }
        }
      }
    }
    expect(seen.metered).toEqual([...METERED[provider]]);
    expect(seen.free).toEqual([...FREE[provider]]);
    expect(seen.rejected).toHaveLength(
      METHODS.length * PATHS.length - seen.metered!.length - seen.free!.length,
    );
  });
});

describe('count_tokens', () => {
  it('is rate-limited like any call, charged nothing, and refused without a key', async () => {
    const app = express();
    app.use(
      '/llm',
      anthropicGateway({
        apiKey: 'server-anthropic',
        baseURL: fake.url,
        store: createMemoryStore(),
        identify: (key) => (key === 'tm-ok' ? { user: 'counter' } : undefined),
        rateLimits: { user: [{ kind: 'requests', limit: 2, windowMs: 60_000 }] },
        logger: { warn() {}, error() {} },
      }) as never,
    );
    const s: Server = await new Promise((resolve) => {
      const x = app.listen(0, '127.0.0.1', () => resolve(x));
    });
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/llm/v1/messages/count_tokens`;
    const count = (key: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({
          model: 'claude-haiku-4-5',
          messages: [{ role: 'user', content: 'Hi' }],
        }),
      });
    try {
      expect((await count('tm-nope')).status).toBe(401);
      expect((await count('tm-ok')).status).toBe(200);
      expect((await count('tm-ok')).status).toBe(200);
      const third = await count('tm-ok');
      expect(third.status).toBe(429);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      // The same refusal as the Messages route gives: the standard headers and message.
      expect(third.headers.get('ratelimit-policy')).toBe('"user-requests-60s";q=2;w=60');
      expect(third.headers.get('ratelimit')).toMatch(/^"user-requests-60s";r=0;t=\d+$/);
      expect(third.headers.get('x-should-retry')).toBe('true');
      const refused = (await third.json()) as { error: { type: string; message: string } };
      expect(refused.error.type).toBe('rate_limit_error');
      expect(refused.error.message).toMatch(
        /^Too many requests for this user: the limit is 2 per 60 s/,
      );
    } finally {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
});
