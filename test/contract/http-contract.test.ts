/**
 * One HTTP contract, every adapter: the same route (the official Anthropic SDK against the
 * testkit's fake upstream, the memory store) served by `costTrackedSSE()` on Express 4 and
 * 5, `honoSSE()` on Hono, `fastifySSE()` on Fastify and `meteredSSE()` as a bare fetch handler, held to the same
 * answers: admission refusals and their headers, the SSE events and their money, a slow
 * client holding the provider back, a disconnect closing the upstream within one chunk,
 * and every way a stream ends settling exactly once.
 */
import { request as httpRequest } from 'node:http';
import { usd } from '@tokenmeter/core';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADAPTERS, knobs, type RouteSpec, type ServedRoute } from '../helpers/adapters.js';
import { anthropicClient } from '../helpers/app.js';
import { slowRead } from '../helpers/slow-read.js';
import { eventData, postSSE } from '../helpers/sse-client.js';

const MODEL = 'claude-haiku-4-5'; // $1 input, $5 output per million tokens
const handCost = (input: number, output: number) => input * 1_000 + output * 5_000;
const LIMIT = { limitNanos: usd('1.00'), period: 'day' as const };
const prompt = {
  model: MODEL,
  max_tokens: 400,
  messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
};

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 2, tokens: 120, seed: 7 });
});
afterAll(() => fake.close());

/** The raw SDK stream of the admitted request: the body as admitted, the fake's knobs forwarded. */
const rawStream: RouteSpec['upstream'] = (meter, header) =>
  anthropicClient(fake.url).messages.create(
    { ...(meter.body as typeof prompt), ...meter.params, stream: true },
    { signal: meter.signal, headers: knobs(header) },
  );

describe.each(ADAPTERS)('%s', (_name, start) => {
  let route: ServedRoute;
  let store: MemoryStore;
  afterEach(async () => {
    await route?.close();
    await store?.shutdown?.();
    fake.reset();
  });

  async function serve(extra: Partial<RouteSpec> = {}) {
    store = createMemoryStore();
    route = await start({
      store,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      upstream: rawStream,
      ...extra,
    });
    return route;
  }

  async function books(user: string) {
    const state = await store.getState({ kind: 'user', id: user }, { budget: LIMIT });
    return { spent: state.budget!.spentNanos, reserved: state.budget!.reservedNanos };
  }

  it('streams the exact text with meta first and done last, charged to the nano-dollar', async () => {
    await serve({ rateLimits: { user: [{ kind: 'requests', limit: 10, windowMs: 60_000 }] } });
    const result = await postSSE(route.url, prompt, { headers: { 'x-user': 'alice' } });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(result.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(result.headers.get('x-accel-buffering')).toBe('no');
    expect(result.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.headers.get('ratelimit')).toBe('"user-requests-60s";r=9;t=60');
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(result.text).toBe(record.text);
    expect(result.events[0]!.event).toBe('meta');
    expect(result.events.at(-1)!.event).toBe('done');
    const done = eventData<{
      costNanos: number;
      estimated: boolean;
      budget: { remainingUsd: number };
    }>(result, 'done');
    const cost = handCost(record.usage!.inputTokens, record.usage!.outputTokens);
    expect(record.usage!.outputTokens).toBe(120);
    expect(done.costNanos).toBe(cost);
    expect(done.estimated).toBe(false);
    expect(done.budget.remainingUsd).toBe((1_000_000_000 - cost) / 1e9);
    const [settle] = await route.waitForSettles(1);
    expect(settle!.outcome).toBe('completed');
    expect(await books('alice')).toEqual({ spent: cost, reserved: 0 });
  });

  it('refuses before any stream with a JSON body and a stable code', async () => {
    await serve({
      rateLimits: { user: [{ kind: 'requests', limit: 1, windowMs: 60_000 }] },
      maxBodyBytes: 4_096,
    });
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      postSSE(route.url, body, { headers: { 'x-user': 'bob', ...headers } });

    const unknown = await postSSE(route.url, prompt);
    expect(unknown.status).toBe(401);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/json/);
    expect(unknown.body).toMatchObject({ error: { code: 'unauthenticated' } });

    expect((await post('{"model": ')).body).toMatchObject({ error: { code: 'invalid_json' } });
    const tooLarge = await post({
      ...prompt,
      messages: [{ role: 'user', content: 'x'.repeat(5_000) }],
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({ error: { code: 'body_too_large' } });
    const model = await post({ ...prompt, model: 'no-such-model' });
    expect(model.status).toBe(400);
    expect(model.body).toMatchObject({ error: { code: 'unknown_model' } });
    const maxTokens = await post({ ...prompt, max_tokens: 0 });
    expect(maxTokens.status).toBe(400);
    expect(maxTokens.body).toMatchObject({ error: { code: 'invalid_request' } });

    // None of the refusals above counted against the rate limit: the first admission does.
    expect((await post(prompt)).status).toBe(200);
    const limited = await post(prompt);
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({
      error: { code: 'rate_limited', scope: 'user', limit: 'requests' },
    });
    expect(limited.headers.get('ratelimit-policy')).toBe('"user-requests-60s";q=1;w=60');
    expect(limited.headers.get('ratelimit')).toMatch(/^"user-requests-60s";r=0;t=\d+$/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    await route.waitForSettles(1);
    expect(route.settles).toHaveLength(1);
  });

  it('refuses with 402 what the budget cannot cover (strict), reserving nothing', async () => {
    await serve({ reservation: 'strict', budgets: { user: { limitUsd: '0.001', period: 'day' } } });
    const result = await postSSE(route.url, prompt, { headers: { 'x-user': 'carol' } });
    expect(result.status).toBe(402);
    expect(result.body).toMatchObject({ error: { code: 'budget_exceeded', scope: 'user' } });
    const state = await store.getState(
      { kind: 'user', id: 'carol' },
      { budget: { limitNanos: usd('0.001'), period: 'day' } },
    );
    expect(state.budget).toMatchObject({ spentNanos: 0, reservedNanos: 0 });
    expect(fake.lastRequest).toBeUndefined();
  });

  it('closes the upstream within one chunk of the client leaving, and charges once', async () => {
    await serve();
    const result = await postSSE(route.url, prompt, {
      headers: {
        'x-user': 'dave',
        'x-fake-llm-tokens': '2000',
        'x-fake-llm-tps': '400',
        'x-fake-llm-chunk': '1',
      },
      abortWhen: (event) => event.event === 'delta',
    });
    expect(result.events.filter((e) => e.event === 'delta')).toHaveLength(1);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(1);
    expect(record.tokensGenerated).toBeLessThan(200);
    const [settle] = await route.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.final.estimated).toBe(true);
    expect(settle!.final.costNanos).toBe(
      handCost(record.inputTokens, settle!.final.usage.outputTokens),
    );
    expect(await books('dave')).toEqual({ spent: settle!.final.costNanos, reserved: 0 });
    await new Promise((r) => setTimeout(r, 100));
    expect(route.settles).toHaveLength(1);
    expect(route.activeStreams()).toBe(0);
  });

  it('a slow reader holds the provider back: nothing piles up in the server', async () => {
    const planned = 1_000_000;
    await serve({ maxTokensLimit: planned, budgets: { user: { limitUsd: '10', period: 'day' } } });
    // Up to 60 s for the buffers between the fake and the reader to fill (the read stops
    // once the fake is held).
    const { res, received, record } = await slowRead(
      fake,
      route.url,
      { ...prompt, max_tokens: planned },
      planned,
      { 'x-user': 'slow' },
      60_000,
    );
    expect(record.writesBlocked).toBeGreaterThan(0);
    expect(record.tokensGenerated).toBeLessThan(planned / 2);
    expect(received).toBeGreaterThan(0);
    res.destroy();
    const [settle] = await route.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(settle!.backpressureWaits).toBeGreaterThan(0);
    expect((await fake.waitForRequest(record.id)).stopCause).toBe('client-closed');
  }, 90_000);

  it.each([
    ['the provider finishes', {}, 'done', 'completed'],
    [
      'the provider errors mid-stream',
      { 'x-fake-llm-fault': 'error-mid-stream', 'x-fake-llm-fault-after': '30' },
      'error',
      'upstream_error',
    ],
    [
      'the provider goes silent',
      { 'x-fake-llm-fault': 'hang-mid-stream', 'x-fake-llm-fault-after': '12' },
      'error',
      'upstream_idle',
    ],
    [
      'the provider resets the connection',
      { 'x-fake-llm-fault': 'reset-mid-stream', 'x-fake-llm-fault-after': '20' },
      'error',
      'upstream_error',
    ],
  ] as const)(
    'when %s: one final event, settled once, the books balanced',
    async (_case, knobHeaders, last, outcome) => {
      await serve({ idleTimeoutMs: 300 });
      const result = await postSSE(route.url, prompt, {
        headers: { 'x-user': 'erin', ...knobHeaders },
      });
      expect(result.status).toBe(200);
      const finals = result.events.filter((e) => e.event === 'done' || e.event === 'error');
      expect(finals.map((e) => e.event)).toEqual([last]);
      expect(result.events.at(-1)!.event).toBe(last);
      const [settle] = await route.waitForSettles(1);
      expect(settle!.outcome).toBe(outcome);
      const final = finals[0]!.json as { costNanos: number };
      expect(final.costNanos).toBe(settle!.final.costNanos);
      expect(await books('erin')).toEqual({ spent: settle!.final.costNanos, reserved: 0 });
      await new Promise((r) => setTimeout(r, 100));
      expect(route.settles).toHaveLength(1);
      expect(route.activeStreams()).toBe(0);
    },
  );

  it('a body past maxBodyBytes without a declared length is refused with 413 while it arrives', async () => {
    await serve({ maxBodyBytes: 4_096 });
    const url = new URL(route.url);
    // Chunked: no Content-Length to refuse it by; 6 KB sent, the rest withheld.
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-user': 'frank' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
            req.destroy();
          });
        },
      );
      req.on('error', reject);
      req.write(`{"model":"${MODEL}","pad":"${'x'.repeat(6_000)}`);
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'body_too_large' } });
    expect(fake.lastRequest).toBeUndefined();
  });

  it('an unknown caller is refused from its headers while its upload is still arriving', async () => {
    await serve();
    const url = new URL(route.url);
    // A body declared at 100 KB, of which 1 KB is sent: the 401 must not wait for the rest.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': '100000' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', reject);
      req.write(`{"model":"${MODEL}","pad":"${'x'.repeat(1_000)}`);
    });
    expect(status).toBe(401);
  });
});
