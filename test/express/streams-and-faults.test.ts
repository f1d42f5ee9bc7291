/**
 * costTrackedSSE with every kind of source and every upstream fault: the SDK's
 * MessageStream helper, the raw Anthropic stream, OpenAI chat completions, a slow
 * reader, mid-stream errors, stalls, resets, malformed SSE, handler bugs, caps.
 */
import { usd } from '@tokenmeter/core';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import compression from 'compression';
import express5 from 'express';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient,
  EXPRESS_VERSIONS,
  type ExpressFactory,
  identifyByHeader,
  startApp,
  type TestApp,
} from '../helpers/app.js';
import { slowRead as slowReadFrom } from '../helpers/slow-read.js';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { knobHeaders } from '../helpers/upstream.js';

const MODEL = 'claude-haiku-4-5'; // $1 input, $5 output per million tokens
const handCost = (input: number, output: number) => input * 1_000 + output * 5_000;
const prompt = {
  model: MODEL,
  max_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Hello there.' }],
};
const budget = { limitNanos: usd('1.00'), period: 'day' as const };

let fake: FakeLLM;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 90, seed: 3 });
});
afterAll(() => fake.close());

let app: TestApp;
let store: MemoryStore;
/** The Express major under test (the whole file runs once per major). */
let express: ExpressFactory = express5;
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  fake.reset();
});

type Upstream = NonNullable<Parameters<typeof startApp>[0]['middleware']['upstream']>;

async function start(
  upstream: Upstream | undefined,
  extra: Record<string, unknown> = {},
  more: Partial<Parameters<typeof startApp>[0]> = {},
) {
  store = createMemoryStore();
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      ...(upstream ? { upstream } : {}),
      ...extra,
    },
    ...more,
  });
}

const rawAnthropic: Upstream = (req, meter) =>
  anthropicClient(fake.url).messages.create(
    { model: meter.model, max_tokens: meter.maxTokens, messages: prompt.messages, stream: true },
    { signal: meter.signal, headers: knobHeaders(req) },
  );

async function spent(user: string) {
  const state = await store.getState({ kind: 'user', id: user }, { budget });
  return { spent: state.budget!.spentNanos, reserved: state.budget!.reservedNanos };
}

/** Opens a stream for `planned` tokens as `user` and reads it at ~10 KB/s (helpers/slow-read). */
function slowRead(planned: number, user: string, deadlineMs?: number) {
  return slowReadFrom(
    fake,
    app.url,
    { ...prompt, max_tokens: planned },
    planned,
    { 'x-user': user },
    deadlineMs,
  );
}

describe.each(EXPRESS_VERSIONS)('%s', (_name, major) => {
  beforeAll(() => {
    express = major;
  });

  describe('sources', () => {
    it("accepts the SDK's MessageStream helper as it is", async () => {
      await start((req, meter) =>
        anthropicClient(fake.url).messages.stream(
          { model: meter.model, max_tokens: meter.maxTokens, messages: prompt.messages },
          { signal: meter.signal, headers: knobHeaders(req) },
        ),
      );
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'u1' } });
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(result.text).toBe(record.text);
      expect(eventData<{ costNanos: number }>(result, 'done').costNanos).toBe(
        handCost(record.usage!.inputTokens, 90),
      );
    });

    it('accepts OpenAI chat completions with include_usage, cached tokens priced as cached', async () => {
      // gpt-4o-mini per million: $0.15 input, $0.075 cached input, $0.60 output.
      const openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
      await start((req, meter) =>
        openai.chat.completions.create(
          {
            model: meter.model,
            max_completion_tokens: meter.maxTokens,
            messages: [{ role: 'user' as const, content: 'Hello there.' }],
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal: meter.signal, headers: knobHeaders(req) },
        ),
      );
      const result = await postSSE(
        app.url,
        {
          model: 'gpt-4o-mini',
          max_completion_tokens: 200,
          messages: [{ role: 'user' as const, content: 'Hello there.' }],
        },
        { headers: { 'x-user': 'u2', 'x-fake-llm-cache-read': '8' } },
      );
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(result.text).toBe(record.text);
      const done = eventData<{
        costNanos: number;
        estimated: boolean;
        usage: { inputTokens: number; cacheReadTokens: number };
      }>(result, 'done');
      const prompt_ = record.usage!.inputTokens; // OpenAI prompt_tokens includes the cached ones
      expect(done.usage).toMatchObject({ inputTokens: prompt_, cacheReadTokens: 8 });
      expect(done.estimated).toBe(false);
      expect(done.costNanos).toBe((prompt_ - 8) * 150 + 8 * 75 + 90 * 600);
    });

    it('accepts a plain async iterable of normalised events', async () => {
      await start(async function* () {
        yield { type: 'start', provider: 'custom', id: 'x1' };
        yield { type: 'text', text: 'line one\n\ndata: [DONE]\n\n' };
        yield { type: 'text', text: 'line two 🎉' };
        yield {
          type: 'usage',
          final: true,
          usage: {
            inputTokens: 10,
            outputTokens: 7,
            cacheReadTokens: 0,
            cacheWrite5mTokens: 0,
            cacheWrite1hTokens: 0,
            reasoningTokens: 0,
            webSearchRequests: 0,
            webFetchRequests: 0,
          },
        };
        yield { type: 'stop', reason: 'end_turn' };
      });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'u3' } });
      expect(result.text).toBe('line one\n\ndata: [DONE]\n\nline two 🎉');
      expect(result.events.filter((e) => e.event === 'done')).toHaveLength(1);
      expect(eventData<{ costNanos: number }>(result, 'done').costNanos).toBe(handCost(10, 7));
    });
  });

  /** Opens a stream for `planned` tokens and reads it at ~10 KB/s until the fake stalls or ends. */
  describe('backpressure', () => {
    it('a slow reader stops the middleware pulling from the provider (raw stream)', async () => {
      const planned = 1_000_000;
      await start(rawAnthropic, {
        maxTokensLimit: planned,
        budgets: { user: { limitUsd: '10', period: 'day' } },
      });
      // Up to 60 s for the buffers between the fake and the reader to fill: seconds when the
      // machine is quiet, far longer beside other test suites (the read stops once held).
      const { res, received, record } = await slowRead(planned, 'slow', 60_000);
      // The fake is held back: generation stalled far below the planned answer (~60 MB of
      // SSE), so nothing piles up in our process.
      expect(record.writesBlocked).toBeGreaterThan(0);
      expect(record.tokensGenerated).toBeLessThan(planned / 2);
      expect(received).toBeGreaterThan(0);
      res.destroy();
      const [settle] = await app.waitForSettles(1);
      expect(settle!.outcome).toBe('client_disconnected');
      expect(settle!.backpressureWaits).toBeGreaterThan(0);
      const done = await fake.waitForRequest(record.id);
      expect(done.stopCause).toBe('client-closed');
    }, 90_000);

    it("the SDK's MessageStream helper reads the whole answer whatever the client does", async () => {
      // Why the docs recommend the raw stream: MessageStream drains the HTTP response into
      // its own queue, so a slow client no longer slows the provider (memory grows instead).
      const planned = 150_000;
      await start(
        (req, meter) =>
          anthropicClient(fake.url).messages.stream(
            { model: meter.model, max_tokens: meter.maxTokens, messages: prompt.messages },
            { signal: meter.signal, headers: knobHeaders(req) },
          ),
        { maxTokensLimit: planned, budgets: { user: { limitUsd: '10', period: 'day' } } },
      );
      // Generating and parsing 150,000 events takes a while on a loaded 2-core machine: the
      // read waits for the whole answer (it stops as soon as generation stops moving).
      const { res, record } = await slowRead(planned, 'slow-helper', 50_000);
      expect(record.tokensGenerated).toBe(planned);
      expect(record.writesBlocked).toBe(0);
      res.destroy();
      await app.waitForSettles(1);
    }, 60_000);
  });

  describe('upstream faults end with an error event and a settled ledger', () => {
    it.each([
      [500, 'api_error'],
      [529, 'overloaded_error'],
      [429, 'rate_limit_error'],
    ])('HTTP %i before the stream: upstream_error, nothing charged', async (status, type) => {
      await start(rawAnthropic);
      const result = await postSSE(app.url, prompt, {
        headers: { 'x-user': 'f1', 'x-fake-llm-fault': String(status) },
      });
      const error = eventData<{
        code: string;
        upstreamStatus: number;
        upstreamType: string;
        costNanos: number;
      }>(result, 'error');
      expect(error).toMatchObject({
        code: 'upstream_error',
        upstreamStatus: status,
        upstreamType: type,
        costNanos: 0,
      });
      await app.waitForSettles(1);
      expect(await spent('f1')).toEqual({ spent: 0, reserved: 0 });
    });

    it('error event mid-stream: upstream_error naming overloaded_error, charged the estimate', async () => {
      await start(rawAnthropic);
      const result = await postSSE(app.url, prompt, {
        headers: {
          'x-user': 'f2',
          'x-fake-llm-fault': 'error-mid-stream',
          'x-fake-llm-fault-after': '30',
        },
      });
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      const error = eventData<{
        code: string;
        upstreamType: string;
        costNanos: number;
        estimated: boolean;
      }>(result, 'error');
      expect(error).toMatchObject({
        code: 'upstream_error',
        upstreamType: 'overloaded_error',
        estimated: true,
      });
      expect(result.text).toBe(record.text);
      const [settle] = await app.waitForSettles(1);
      expect(error.costNanos).toBe(handCost(record.inputTokens, settle!.final.usage.outputTokens));
      expect(settle!.final.usage.outputTokens).toBeGreaterThan(5);
      expect(await spent('f2')).toEqual({ spent: error.costNanos, reserved: 0 });
    });

    it('headers then silence: the idle timeout ends it with upstream_idle and aborts the upstream', async () => {
      await start(rawAnthropic, { idleTimeoutMs: 300 });
      const result = await postSSE(app.url, prompt, {
        headers: {
          'x-user': 'f3',
          'x-fake-llm-fault': 'hang-mid-stream',
          'x-fake-llm-fault-after': '12',
        },
      });
      expect(eventData<{ code: string }>(result, 'error').code).toBe('upstream_idle');
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(record.clientClosedAt).toBeDefined();
      const [settle] = await app.waitForSettles(1);
      expect(await spent('f3')).toEqual({ spent: settle!.final.costNanos, reserved: 0 });
    });

    it('connection reset mid-stream: upstream_error, settled to what was received', async () => {
      await start(rawAnthropic);
      const result = await postSSE(app.url, prompt, {
        headers: {
          'x-user': 'f4',
          'x-fake-llm-fault': 'reset-mid-stream',
          'x-fake-llm-fault-after': '30',
        },
      });
      expect(eventData<{ code: string }>(result, 'error').code).toBe('upstream_error');
      const [settle] = await app.waitForSettles(1);
      expect(settle!.final.estimated).toBe(true);
      expect(await spent('f4')).toEqual({ spent: settle!.final.costNanos, reserved: 0 });
    });

    it('malformed SSE: upstream_error', async () => {
      await start(rawAnthropic);
      const result = await postSSE(app.url, prompt, {
        headers: {
          'x-user': 'f5',
          'x-fake-llm-fault': 'malformed-sse',
          'x-fake-llm-fault-after': '9',
        },
      });
      expect(eventData<{ code: string }>(result, 'error').code).toBe('upstream_error');
      await app.waitForSettles(1);
      expect((await spent('f5')).reserved).toBe(0);
    });
  });

  describe('handler bugs and caps', () => {
    it('a handler that throws before calling the provider: handler_error, nothing charged', async () => {
      await start(() => {
        throw new Error('boom: secret-api-key-123');
      });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'h1' } });
      const error = eventData<{ code: string; message: string; costNanos: number }>(
        result,
        'error',
      );
      expect(error).toMatchObject({ code: 'handler_error', costNanos: 0 });
      expect(result.events.map((e) => e.data).join()).not.toContain('secret-api-key');
      await app.waitForSettles(1);
      expect(await spent('h1')).toEqual({ spent: 0, reserved: 0 });
    });

    it('an async upstream function with a bug: handler_error, logged for the developer, nothing charged', async () => {
      await start(async () => {
        await new Promise((r) => setTimeout(r, 5));
        const config = undefined as unknown as { model: string };
        return config.model; // TypeError, before the provider is called
      });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'h3' } });
      const error = eventData<{ code: string; message: string; costNanos: number }>(
        result,
        'error',
      );
      expect(error).toMatchObject({ code: 'handler_error', costNanos: 0 });
      const [settle] = await app.waitForSettles(1);
      expect(settle!.outcome).toBe('handler_error');
      expect(await spent('h3')).toEqual({ spent: 0, reserved: 0 });
      expect(app.errors.join('\n')).toMatch(/upstream function failed/);
      expect(fake.requests).toHaveLength(0);
    });

    it('a provider that cannot be reached (fetch failed, no SDK wrapper) stays upstream_error', async () => {
      await start(async () => {
        const response = await fetch('http://127.0.0.1:1/v1/messages', { method: 'POST' });
        return response.body as unknown as AsyncIterable<unknown>;
      });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'h4' } });
      expect(eventData<{ code: string }>(result, 'error').code).toBe('upstream_error');
    });

    it('a route handler that never hands a stream over: settled by the handover timeout', async () => {
      await start(undefined, { handoverTimeoutMs: 200 }, { handler: () => {} });
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'h2' } });
      expect(eventData<{ code: string }>(result, 'error').code).toBe('handler_error');
      const [settle] = await app.waitForSettles(1);
      expect(settle!.outcome).toBe('handler_error');
      expect(await spent('h2')).toEqual({ spent: 0, reserved: 0 });
    });

    it('non-terminal mode: the route handler hands the SDK stream to res.locals.tokenmeter', async () => {
      await start(
        undefined,
        {},
        {
          handler: (req, _res, meter) =>
            meter.stream(
              anthropicClient(fake.url).messages.create(
                {
                  model: meter.model,
                  max_tokens: meter.maxTokens,
                  messages: prompt.messages,
                  stream: true,
                },
                { signal: meter.signal, headers: knobHeaders(req) },
              ),
            ),
        },
      );
      const result = await postSSE(app.url, prompt, { headers: { 'x-user': 'h3' } });
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(result.text).toBe(record.text);
      expect(eventData<{ costNanos: number }>(result, 'done').costNanos).toBe(
        handCost(record.usage!.inputTokens, 90),
      );
    });

    it('a per-request cost cap lowers max_tokens to what it covers: the provider stops there, within the cap', async () => {
      // $0.0005 cap: input ~ tens of tokens at $1/M, so roughly 90+ output tokens at $5/M.
      await start(rawAnthropic, { maxCostPerRequestUsd: '0.0005' });
      const result = await postSSE(
        app.url,
        { ...prompt, max_tokens: 3000 },
        { headers: { 'x-user': 'c1', 'x-fake-llm-tokens': '3000', 'x-fake-llm-tps': '2000' } },
      );
      const meta = eventData<{
        maxTokens: number;
        requestedMaxTokens: number;
        fittedTo: string;
        reservedUsd: number;
      }>(result, 'meta');
      expect(meta).toMatchObject({ requestedMaxTokens: 3000, fittedTo: 'max_cost_per_request' });
      const done = eventData<{ stopReason: string; costNanos: number; estimated: boolean }>(
        result,
        'done',
      );
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      // Sent with the lowered max_tokens: the provider stopped at it, billed exactly.
      expect((record.body as { max_tokens?: number }).max_tokens).toBe(meta.maxTokens);
      expect(record.tokensGenerated).toBe(meta.maxTokens);
      expect(done).toMatchObject({ stopReason: 'max_tokens', estimated: false });
      expect(done.costNanos).toBe(handCost(record.inputTokens, meta.maxTokens));
      expect(done.costNanos).toBeLessThanOrEqual(500_000);
      expect(Math.round(meta.reservedUsd * 1e9)).toBeLessThanOrEqual(500_000);
    });

    it('a route whose own request() forwards meter.maxTokens: the provider stops there, no early cut on the bound', async () => {
      // Emoji: the estimator's conservative bound counts far more than the provider does, so
      // a stream watched on it would be cut well before the money ran out.
      await start(rawAnthropic, {
        budgets: { user: { limitUsd: '0.008', period: 'day' } },
        request: () => ({ model: MODEL, maxTokens: 3000, input: { messages: prompt.messages } }),
      });
      const result = await postSSE(
        app.url,
        { ...prompt, max_tokens: 3000 },
        { headers: { 'x-user': 'c3', 'x-fake-llm-tokens': '3000', 'x-fake-llm-text': 'emoji' } },
      );
      const meta = eventData<{ maxTokens: number; fittedTo: string }>(result, 'meta');
      expect(meta.fittedTo).toBe('budget');
      const done = eventData<{ stopReason: string; costNanos: number; estimated: boolean }>(
        result,
        'done',
      );
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(done).toMatchObject({ stopReason: 'max_tokens', estimated: false });
      expect(record.tokensGenerated).toBe(meta.maxTokens);
      expect(done.costNanos).toBe(handCost(record.inputTokens, meta.maxTokens));
      expect(done.costNanos).toBeLessThanOrEqual(8_000_000);
    });

    it('a route whose own request() sends more than meter.maxTokens: the stream stops at the cap itself', async () => {
      const ignoring: Upstream = (req, meter) =>
        anthropicClient(fake.url).messages.create(
          { model: meter.model, max_tokens: 3000, messages: prompt.messages, stream: true },
          { signal: meter.signal, headers: knobHeaders(req) },
        );
      await start(ignoring, {
        maxCostPerRequestUsd: '0.0005',
        request: () => ({ model: MODEL, maxTokens: 3000, input: { messages: prompt.messages } }),
      });
      const result = await postSSE(
        app.url,
        { ...prompt, max_tokens: 3000 },
        { headers: { 'x-user': 'c2', 'x-fake-llm-tokens': '3000', 'x-fake-llm-tps': '2000' } },
      );
      const error = eventData<{ code: string; limit: string; costNanos: number }>(result, 'error');
      expect(error).toMatchObject({ code: 'budget_exceeded', limit: 'max_cost_per_request' });
      expect(error.costNanos).toBeLessThanOrEqual(500_000 + 5_000 * 3);
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      expect(record.stopCause).toBe('client-closed');
      expect(record.tokensGenerated).toBeLessThan(400);
    });

    it('incremental leases admit more streams than worst-case on a tight budget, and never overspend', async () => {
      // Worst case for max_tokens 4000 at $5/M would be $0.02 each: none fit $0.015.
      await start(rawAnthropic, {
        budgets: { user: { limitUsd: '0.015', period: 'day' } },
        reservation: { incremental: { initialOutputTokens: 100, stepOutputTokens: 100 } },
      });
      const results = await Promise.all(
        Array.from({ length: 4 }, () =>
          postSSE(
            app.url,
            { ...prompt, max_tokens: 4000 },
            { headers: { 'x-user': 'l1', 'x-fake-llm-tokens': '300', 'x-fake-llm-tps': '3000' } },
          ),
        ),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      for (const r of results) expect(r.events.at(-1)!.event).toBe('done');
      const settles = await app.waitForSettles(4);
      const total = settles.reduce((s, x) => s + x.final.costNanos, 0);
      const state = await store.getState(
        { kind: 'user', id: 'l1' },
        { budget: { limitNanos: usd('0.015'), period: 'day' } },
      );
      expect(state.budget!.spentNanos).toBe(total);
      expect(state.budget!.reservedNanos).toBe(0);
    });

    it('a lease one stream cannot grow, because another took the budget, ends it with budget_exceeded', async () => {
      await start(rawAnthropic, {
        budgets: { user: { limitUsd: '0.0008', period: 'day' } },
        reservation: { incremental: { initialOutputTokens: 50, stepOutputTokens: 50 } },
      });
      // Each is sent with the most output the budget had left when it was admitted (about
      // 150 tokens, $0.0008 at $5/M); together they cannot have it all.
      const results = await Promise.all(
        [0, 1].map(() =>
          postSSE(
            app.url,
            { ...prompt, max_tokens: 4000 },
            { headers: { 'x-user': 'l2', 'x-fake-llm-tokens': '2000', 'x-fake-llm-tps': '2000' } },
          ),
        ),
      );
      const ends = results.map((r) => r.events.at(-1)!);
      const cut = ends.filter((e) => e.event === 'error');
      expect(cut.length).toBeGreaterThanOrEqual(1);
      for (const e of cut)
        expect(e.json).toMatchObject({ code: 'budget_exceeded', limit: 'lease_denied' });
      await app.waitForSettles(2);
      const { spent: s, reserved } = await spent('l2');
      expect(reserved).toBe(0);
      // Bounded overspend: at most one step's estimation error beyond the limit.
      expect(s).toBeLessThanOrEqual(800_000 + 50 * 5_000);
    });
  });

  describe('transport', () => {
    it('works behind compression(): no-transform keeps the stream unbuffered', async () => {
      await start(
        rawAnthropic,
        {},
        { before: [compression() as unknown as express5.RequestHandler] },
      );
      const result = await postSSE(app.url, prompt, {
        headers: {
          'x-user': 't1',
          'accept-encoding': 'gzip',
          'x-fake-llm-tps': '50',
          'x-fake-llm-tokens': '20',
          'x-fake-llm-chunk': '1',
        },
      });
      expect(result.headers.get('content-encoding')).toBeNull();
      const deltas = result.events.filter((e) => e.event === 'delta');
      // Deltas arrive spread over time (~20 ms apart at 50 tokens/s), not in one burst.
      expect(deltas.at(-1)!.at - deltas[0]!.at).toBeGreaterThan(200);
    });

    it('sends keep-alive comments while the upstream is slow to start', async () => {
      await start(rawAnthropic, { keepAliveMs: 100 });
      const result = await postSSE(app.url, prompt, {
        headers: { 'x-user': 't2', 'x-fake-llm-ttft-ms': '450', 'x-fake-llm-tokens': '3' },
      });
      expect(result.comments.filter((c) => c.trim() === 'ping').length).toBeGreaterThanOrEqual(2);
      expect(result.events.at(-1)!.event).toBe('done');
    });

    it('fails closed with 503 when the store is down, and open with a warning when asked', async () => {
      await start(rawAnthropic);
      await store.shutdown!();
      const closed = await postSSE(app.url, prompt, { headers: { 'x-user': 's1' } });
      expect(closed.status).toBe(503);
      expect(closed.body).toMatchObject({ error: { code: 'store_unavailable' } });
      await app.close();
      store = createMemoryStore();
      const dead = createMemoryStore();
      await dead.shutdown!();
      app = await startApp({
        express,
        middleware: {
          store: dead,
          storeFailure: 'open',
          identify: identifyByHeader,
          budgets: { user: { limitUsd: '1', period: 'day' } },
          upstream: rawAnthropic,
        },
      });
      const open = await postSSE(app.url, prompt, { headers: { 'x-user': 's1' } });
      expect(open.status).toBe(200);
      expect(open.events.at(-1)!.event).toBe('done');
      expect(app.warnings.join()).toMatch(/fail open/);
    });
  });
});
