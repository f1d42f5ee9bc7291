/**
 * Hardening matrix — bad input and configuration. Each bad request gets a clear 4xx JSON
 * error with a stable code before anything is reserved or sent upstream; each broken
 * configuration throws at creation with a message that says what to do.
 */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { costTrackedSSE, jsonErrorHandler } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader } from '../helpers/app.js';
import { BUDGET, body } from '../helpers/harness.js';

let fake: FakeLLM;
let store: MemoryStore;
let server: Server;
let url: string;

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 10 });
  store = createMemoryStore();
  const client = anthropicClient(fake.url);
  const app = express();
  app.post(
    '/chat',
    express.json({ limit: '64kb' }),
    costTrackedSSE({
      store,
      identify: identifyByHeader,
      budgets: { user: { limitNanos: BUDGET.limitNanos, period: 'day' } },
      maxTokensLimit: 4_096,
      maxInputTokens: 2_000,
      upstream: (req, meter) =>
        client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: (req.body as { messages: never }).messages,
            stream: true,
          },
          { signal: meter.signal },
        ),
      logger: { warn() {}, error() {} },
    }),
  );
  app.use(jsonErrorHandler());
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/chat`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await store.shutdown();
  await fake.close();
});

async function send(payload: string, contentType = 'application/json') {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType, 'x-user': 'mallory' },
    body: payload,
  });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: (await response.json()) as { error: { code: string; message: string } },
  };
}

const deep = (depth: number) => {
  let content: unknown = 'x';
  for (let i = 0; i < depth; i++) content = [{ type: 'text', text: 'x', nested: content }];
  return content;
};

describe('bad input gets a 4xx JSON error with a stable code; nothing is charged', () => {
  it.each([
    ['body not JSON', '{"model": "claude-haiku-4-5", ', 'application/json', 400, 'invalid_json'],
    ['wrong content-type', JSON.stringify(body()), 'text/plain', 400, 'invalid_request'],
    [
      'body over the size limit',
      JSON.stringify(body({ messages: [{ role: 'user', content: 'y'.repeat(70_000) }] })),
      'application/json',
      413,
      'body_too_large',
    ],
    [
      'missing messages',
      JSON.stringify(body({ messages: undefined })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'empty messages',
      JSON.stringify(body({ messages: [] })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'max_tokens missing',
      JSON.stringify(body({ max_tokens: undefined })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'max_tokens zero',
      JSON.stringify(body({ max_tokens: 0 })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'max_tokens negative',
      JSON.stringify(body({ max_tokens: -5 })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'max_tokens fractional',
      JSON.stringify(body({ max_tokens: 10.5 })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'max_tokens above the route limit',
      JSON.stringify(body({ max_tokens: 100_000 })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'unknown model',
      JSON.stringify(body({ model: 'claude-unknown-7' })),
      'application/json',
      400,
      'unknown_model',
    ],
    [
      'temperature out of range',
      JSON.stringify(body({ temperature: 1.5 })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'temperature not a number',
      JSON.stringify(body({ temperature: 'hot' })),
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'prompt larger than the route accepts',
      JSON.stringify(body({ messages: [{ role: 'user', content: 'lorem ipsum '.repeat(2_000) }] })),
      'application/json',
      413,
      'input_too_large',
    ],
    [
      'lone surrogate',
      '{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"a\\ud800b"}]}',
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'NUL in text',
      '{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"a\\u0000b"}]}',
      'application/json',
      400,
      'invalid_request',
    ],
    [
      'deeply nested JSON',
      JSON.stringify(body({ messages: [{ role: 'user', content: deep(200) }] })),
      'application/json',
      400,
      'invalid_request',
    ],
  ])('%s → %i %s', async (_case, payload, contentType, status, code) => {
    const result = await send(payload, contentType);
    expect(result.status).toBe(status);
    expect(result.type).toMatch(/^application\/json/);
    expect(result.body.error.code).toBe(code);
    expect(result.body.error.message.length).toBeGreaterThan(10);
    expect(fake.requests).toHaveLength(0);
    const state = await store.getState({ kind: 'user', id: 'mallory' }, { budget: BUDGET });
    expect(state.budget).toMatchObject({ spentNanos: 0, reservedNanos: 0 });
  });

  it('a well-formed request through the same route still streams (the route is not just rejecting)', async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user': 'mallory' },
      body: JSON.stringify(body({ max_tokens: 50 })),
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('event: done');
  });
});

describe('configuration errors throw at creation, saying what to do', () => {
  it.each([
    [{ store: { admit() {} }, identify: identifyByHeader }, /store/i],
    [
      {
        store: createMemoryStore(),
        identify: identifyByHeader,
        budgets: { user: { limitUsd: '-5' } },
      },
      /non-negative limitUsd/,
    ],
    [
      {
        store: createMemoryStore(),
        identify: identifyByHeader,
        rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 0 }] },
      },
      /windowMs must be a positive/,
    ],
    [
      {
        store: createMemoryStore(),
        identify: identifyByHeader,
        totalTimeoutMs: 10_000,
        reservationTtlMs: 5_000,
      },
      /must be longer than totalTimeoutMs/,
    ],
    [{ store: createMemoryStore() }, /identify\(req\)/],
  ])('%#', (options, message) => {
    expect(() => costTrackedSSE(options as never)).toThrow(message);
  });
});
