/**
 * The money promise on requests as users send them, through the README's own mount pattern
 * (`{ ...req.body, model: meter.model, max_tokens: meter.maxTokens, stream: true }`) and the
 * official Anthropic SDK against the testkit, which bills fast mode, data residency, web
 * searches (fee and result tokens) and prompt-size tiers as the published rules do:
 *
 * - the reservation is a true upper bound: a request settles at or below what it reserved,
 *   so a budget is never overrun, whatever the request asks for;
 * - an answer is never cut while money remains (no false `budget_exceeded`), and output is
 *   never charged above `max_tokens`;
 * - amounts near the largest tokenmeter keeps stay answerable (402, never 503).
 *
 * Every expected cost is computed by hand from the published rates below.
 */
import type Anthropic from '@anthropic-ai/sdk';
import { MAX_NANOS, usd } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, type RequestRecord, startFakeLLM } from '@tokenmeter/testkit';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient,
  EXPRESS_VERSIONS,
  identifyByHeader,
  startApp,
  type TestApp,
} from '../helpers/app.js';
import { eventData, postSSE, type SseResult } from '../helpers/sse-client.js';
import { knobHeaders, readmeUpstream } from '../helpers/upstream.js';

/** Published rates in nano-dollars per token (USD per million ÷ 1,000), typed by hand. */
const OPUS_5 = { input: 5_000, output: 25_000, fast: 2, us: 1.1 };
const HAIKU_5_5 = {
  input: 100,
  output: 500,
  tierInput: 500,
  tierOutput: 2_500,
  tierAbove: 100_000,
};
const SONNET_4_6 = { input: 3_000, output: 15_000 };
const HAIKU_4_5 = { input: 1_000, output: 5_000 };
const O4_MINI = { input: 1_100, output: 4_400 };
const SEARCH_FEE = 10_000_000; // $10 per 1,000 searches

let fake: FakeLLM;
let client: Anthropic;

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 4, tokens: 60, seed: 11 });
  client = anthropicClient(fake.url);
});
afterAll(() => fake.close());

type Meta = { reservedUsd: number; inputTokens: number; reservedInputTokens: number };
type Done = { costNanos: number; estimated: boolean; usage: { outputTokens: number } };

const nanos = (usdAmount: number) => Math.round(usdAmount * 1e9);
const userHeaders = (user: string, knobs: Record<string, string> = {}) => ({
  'x-user': user,
  ...Object.fromEntries(Object.entries(knobs).map(([k, v]) => [`x-fake-llm-${k}`, v])),
});

/** The fake's record of the request behind an SSE result (its request-id is in no header we relay). */
async function recordOf(result: SseResult): Promise<RequestRecord> {
  const meta = eventData<{ requestId: string }>(result, 'meta');
  void meta;
  const record = fake.lastRequest!;
  await fake.waitForRequest(record.id);
  return record;
}

describe.each(EXPRESS_VERSIONS)('%s', (_name, express) => {
  let app: TestApp;
  let store: MemoryStore;
  afterEach(async () => {
    await app?.close();
    await store?.shutdown?.();
    fake.reset();
  });

  /** The README's mount pattern, with the test's knob headers passed to the fake. */
  async function start(extra: Partial<Parameters<typeof startApp>[0]['middleware']> = {}) {
    store = createMemoryStore();
    app = await startApp({
      express,
      middleware: {
        store,
        identify: identifyByHeader,
        budgets: { user: { limitUsd: '5.00', period: 'day' } },
        maxTokensLimit: 64_000,
        upstream: readmeUpstream(client),
        ...extra,
      },
    });
    return app;
  }

  const spentBy = async (user: string, limitUsd: string) =>
    (
      await store.getState(
        { kind: 'user', id: user },
        { budget: { limitNanos: usd(limitUsd), period: 'day' } },
      )
    ).budget!;

  describe('the reservation is an upper bound on the bill', () => {
    const searchBody = {
      model: 'claude-opus-5',
      max_tokens: 200,
      speed: 'fast',
      inference_geo: 'us',
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 20 }],
      messages: [{ role: 'user', content: 'What changed in the tax rules this year?' }],
    };

    it('refuses fast + residency + 20 web searches that a $0.05 budget cannot cover (402, before any byte)', async () => {
      await start({ budgets: { user: { limitUsd: '0.05', period: 'day' } } });
      const result = await postSSE(app.url, searchBody, { headers: userHeaders('fast-1') });
      expect(result.status).toBe(402);
      const body = result.body as { error: { code: string; requiredUsd: number } };
      expect(body.error.code).toBe('budget_exceeded');
      // 20 searches alone cost $0.20; plus the result tokens at 2 × 1.1 × $5/M.
      expect(body.error.requiredUsd).toBeGreaterThan(0.2);
      expect(fake.requests.length).toBe(0);
      expect((await spentBy('fast-1', '0.05')).spentNanos).toBe(0);
    });

    it('settles fast + residency + 20 searches exactly as billed, within what it reserved', async () => {
      await start({ budgets: { user: { limitUsd: '20.00', period: 'day' } } });
      const result = await postSSE(app.url, searchBody, {
        headers: userHeaders('fast-2', {
          searches: '20',
          'search-result-tokens': '1500',
          tokens: '120',
        }),
      });
      expect(result.status).toBe(200);
      const meta = eventData<Meta>(result, 'meta');
      const done = eventData<Done>(result, 'done');
      const record = await recordOf(result);
      expect(record.searches).toBe(20);
      const input = record.inputTokens + 20 * 1_500;
      const output = record.usage!.outputTokens;
      expect(record.usage!.inputTokens).toBe(input);
      const multiplier = OPUS_5.fast * OPUS_5.us; // 2.2: exact in integers below
      const hand =
        Math.round((input * OPUS_5.input + output * OPUS_5.output) * multiplier) + 20 * SEARCH_FEE;
      expect(done.estimated).toBe(false);
      expect(done.costNanos).toBe(hand);
      expect(done.costNanos).toBeLessThanOrEqual(nanos(meta.reservedUsd));
      const budget = await spentBy('fast-2', '20.00');
      expect(budget.spentNanos).toBe(hand);
      expect(budget.reservedNanos).toBe(0);
    });

    it('a stream cut after three web searches is charged their fees (estimated)', async () => {
      await start({ budgets: { user: { limitUsd: '20.00', period: 'day' } } });
      await postSSE(app.url, searchBody, {
        headers: userHeaders('fast-3', { searches: '3', tokens: '200', tps: '200' }),
        // Searches come before the text: leave at the first text delta.
        abortWhen: (event) => event.event === 'delta',
      });
      const [settle] = await app.waitForSettles(1);
      expect(settle!.outcome).toBe('client_disconnected');
      expect(settle!.final.estimated).toBe(true);
      expect(settle!.final.usage.webSearchRequests).toBe(3);
      expect(settle!.final.cost.lines.find((l) => l.kind === 'web_search')?.nanos).toBe(
        3 * SEARCH_FEE,
      );
    });

    it('reserves a prompt near a prompt-size tier at the tier price, and settles within it', async () => {
      await start({ budgets: { user: { limitUsd: '1.00', period: 'day' } } });
      // ~80K estimated tokens of English: the bound passes 100K, so the tier's rates apply.
      const sentence = 'The committee reviewed the quarterly figures and approved the new budget. ';
      const prompt = sentence.repeat(6_000);
      const body = {
        model: 'claude-haiku-5-5',
        max_tokens: 1_000,
        messages: [{ role: 'user', content: prompt }],
      };
      // The provider counts 100,500 prompt tokens: more than the estimate, within the bound,
      // past the 100K tier, so the whole request is billed at the tier's rates.
      const result = await postSSE(app.url, body, {
        headers: userHeaders('tier-1', { 'input-tokens': '100500', tokens: '1000' }),
      });
      expect(result.status).toBe(200);
      const meta = eventData<Meta>(result, 'meta');
      expect(meta.inputTokens).toBeLessThan(HAIKU_5_5.tierAbove);
      expect(meta.reservedInputTokens).toBeGreaterThan(100_500);
      const done = eventData<Done>(result, 'done');
      expect(done.usage.outputTokens).toBe(1_000);
      const hand = 100_500 * HAIKU_5_5.tierInput + 1_000 * HAIKU_5_5.tierOutput;
      expect(done.costNanos).toBe(hand);
      expect(done.costNanos).toBeLessThanOrEqual(nanos(meta.reservedUsd));
      // Reserved at the tier's rates for the bound and max_tokens: checkable by hand.
      expect(nanos(meta.reservedUsd)).toBe(
        meta.reservedInputTokens * HAIKU_5_5.tierInput + 1_000 * HAIKU_5_5.tierOutput,
      );
    });

    it('a provider counting 10% more prompt than the estimate cannot overrun a budget filled by concurrent requests', async () => {
      const limit = '0.05';
      await start({ budgets: { user: { limitUsd: limit, period: 'day' } } });
      const body = {
        model: 'claude-sonnet-4-6',
        max_tokens: 300,
        messages: [{ role: 'user', content: 'Summarise the meeting notes below.\n'.repeat(300) }],
      };
      const probe = await postSSE(app.url, body, { headers: userHeaders('probe-10') });
      const estimate = eventData<Meta>(probe, 'meta').inputTokens;
      const counted = Math.ceil(estimate * 1.1);
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          postSSE(app.url, body, {
            headers: userHeaders('ten-percent', { 'input-tokens': String(counted), tokens: '300' }),
          }),
        ),
      );
      const admitted = results.filter((r) => r.status === 200);
      expect(admitted.length).toBeGreaterThan(0);
      expect(results.some((r) => r.status === 402)).toBe(true);
      for (const r of admitted) {
        const done = eventData<Done>(r, 'done');
        // 1.1 × the estimate is billed, and it fits in what was reserved.
        expect(done.costNanos).toBe(counted * SONNET_4_6.input + 300 * SONNET_4_6.output);
        expect(done.costNanos).toBeLessThanOrEqual(nanos(eventData<Meta>(r, 'meta').reservedUsd));
      }
      const budget = await spentBy('ten-percent', limit);
      expect(budget.spentNanos).toBe(
        admitted.length * (counted * SONNET_4_6.input + 300 * SONNET_4_6.output),
      );
      expect(budget.spentNanos).toBeLessThanOrEqual(usd(limit));
    });

    it('answers 400 unbounded_request for a field no bound can be put on, before reserving anything', async () => {
      await start();
      for (const extra of [
        { mcp_servers: [{ type: 'url', url: 'https://mcp.example.com', name: 'x' }] },
        { speed: 'turbo' },
        { tools: [{ type: 'code_execution_20250825', name: 'code_execution' }] },
      ]) {
        const result = await postSSE(
          app.url,
          { ...searchBody, tools: [], speed: undefined, ...extra },
          { headers: userHeaders('unbounded') },
        );
        expect(result.status).toBe(400);
        expect((result.body as { error: { code: string } }).error.code).toBe('unbounded_request');
      }
      expect(fake.requests.length).toBe(0);
    });
  });

  describe('no cut while money remains; output never charged past max_tokens', () => {
    for (const text of ['emoji', 'vietnamese', 'repeat', 'cjk'] as const) {
      it(`${text} text: an answer just under max_tokens completes with $5 left`, async () => {
        await start();
        const result = await postSSE(
          app.url,
          {
            model: 'claude-haiku-4-5',
            max_tokens: 500,
            messages: [{ role: 'user', content: 'Go.' }],
          },
          { headers: userHeaders(`cut-${text}`, { text, tokens: '481', chunk: '3' }) },
        );
        expect(result.status).toBe(200);
        expect(result.events.some((e) => e.event === 'error')).toBe(false);
        const done = eventData<Done>(result, 'done');
        expect(done.usage.outputTokens).toBe(481);
        const record = await recordOf(result);
        expect(result.text).toBe(record.text);
        expect(done.costNanos).toBe(record.inputTokens * HAIKU_4_5.input + 481 * HAIKU_4_5.output);
      });
    }

    it('an answer that completes without its usage is charged its reservation, never a guess below it', async () => {
      await start();
      const result = await postSSE(
        app.url,
        {
          model: 'claude-haiku-4-5',
          max_tokens: 500,
          messages: [{ role: 'user', content: 'Go.' }],
        },
        {
          headers: userHeaders('clamp', {
            text: 'emoji',
            tokens: '500',
            fault: 'no-message-delta',
          }),
        },
      );
      const meta = eventData<Meta>(result, 'meta');
      const done = eventData<Done>(result, 'done');
      const record = await recordOf(result);
      expect(done.estimated).toBe(true);
      // The provider may have billed more than it showed (nothing says): what was reserved
      // for it — the prompt's bound and max_tokens — which covers what it can bill.
      expect(done.costNanos).toBe(nanos(meta.reservedUsd));
      expect(done.costNanos).toBe(
        meta.reservedInputTokens * HAIKU_4_5.input + 500 * HAIKU_4_5.output,
      );
      expect(done.costNanos).toBeGreaterThanOrEqual(
        record.inputTokens * HAIKU_4_5.input + record.tokensGenerated * HAIKU_4_5.output,
      );
    });

    it('a per-request cap below the worst case lowers max_tokens to what it covers, and says so', async () => {
      // Worst case of max_tokens 4,000 on haiku-4-5 is $0.02; the cap allows about 1,000.
      await start({ maxCostPerRequestUsd: '0.005' });
      const result = await postSSE(
        app.url,
        {
          model: 'claude-haiku-4-5',
          max_tokens: 4_000,
          messages: [{ role: 'user', content: 'Go.' }],
        },
        { headers: userHeaders('cap', { text: 'base64', tokens: '3000', tps: '3000' }) },
      );
      const meta = eventData<
        Meta & { maxTokens: number; requestedMaxTokens: number; fittedTo: string }
      >(result, 'meta');
      expect(meta).toMatchObject({ requestedMaxTokens: 4_000, fittedTo: 'max_cost_per_request' });
      // The most output the cap covers after the prompt's bound, by hand.
      expect(meta.maxTokens).toBe(
        Math.floor((usd('0.005') - meta.reservedInputTokens * HAIKU_4_5.input) / HAIKU_4_5.output),
      );
      const done = eventData<Done & { stopReason: string }>(result, 'done');
      const record = await recordOf(result);
      // The provider stopped at it: exact, within the cap, and nothing generated past it.
      expect(done).toMatchObject({ stopReason: 'max_tokens', estimated: false });
      expect(record.tokensGenerated).toBe(meta.maxTokens);
      const billed =
        record.inputTokens * HAIKU_4_5.input + record.tokensGenerated * HAIKU_4_5.output;
      expect(done.costNanos).toBe(billed);
      expect(billed).toBeLessThanOrEqual(usd('0.005'));
    });
  });

  describe('incremental leases', () => {
    const lease = { incremental: { initialOutputTokens: 256, stepOutputTokens: 256 } };
    const long = {
      model: 'claude-haiku-4-5',
      max_tokens: 8_000,
      messages: [{ role: 'user', content: 'Go on.' }],
    };

    for (const text of ['plain', 'emoji', 'vietnamese', 'cjk', 'base64', 'repeat'] as const) {
      it(`${text} text: a long answer ends at the max_tokens the budget covered; neither books nor bill pass it`, async () => {
        await start({ budgets: { user: { limitUsd: '0.01', period: 'day' } }, reservation: lease });
        const result = await postSSE(app.url, long, {
          headers: userHeaders(`lease-${text}`, { text, tokens: '6000', tps: '4000', chunk: '1' }),
        });
        const meta = eventData<Meta & { maxTokens: number; fittedTo: string }>(result, 'meta');
        expect(meta.fittedTo).toBe('budget');
        // Sent with the most output $0.01 covers after the prompt's bound.
        expect(meta.maxTokens).toBe(
          Math.floor((usd('0.01') - meta.reservedInputTokens * HAIKU_4_5.input) / HAIKU_4_5.output),
        );
        // The lease grew with the answer (whatever the script does to the estimate) and
        // never cut it: the provider stopped at max_tokens, and its figure is the charge.
        const done = eventData<Done & { stopReason: string }>(result, 'done');
        expect(done).toMatchObject({ stopReason: 'max_tokens', estimated: false });
        const record = await recordOf(result);
        expect(record.tokensGenerated).toBe(meta.maxTokens);
        const bill =
          record.inputTokens * HAIKU_4_5.input + record.tokensGenerated * HAIKU_4_5.output;
        const books = (await spentBy(`lease-${text}`, '0.01')).spentNanos;
        expect(bill).toBeLessThanOrEqual(usd('0.01'));
        expect(books).toBe(bill);
        // The money was used: only the prompt's bound above its count was held back.
        expect(bill).toBeGreaterThan(
          usd('0.01') - (meta.reservedInputTokens + 1) * HAIKU_4_5.output,
        );
      });
    }

    it('output the provider bills without streaming it (hidden reasoning) cannot pass a budget one call at a time', async () => {
      const openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
      const body = {
        model: 'o4-mini',
        max_completion_tokens: 4_000,
        messages: [{ role: 'user', content: 'Think hard, answer briefly.' }],
      };
      const openaiUpstream = {
        upstream: (
          req: { body?: unknown; headers: Record<string, unknown> },
          meter: { model: string; maxTokens: number; signal: AbortSignal },
        ) =>
          openai.chat.completions.create(
            {
              ...(req.body as OpenAI.ChatCompletionCreateParamsStreaming),
              model: meter.model,
              max_completion_tokens: meter.maxTokens,
              stream: true,
              stream_options: { include_usage: true },
            },
            { signal: meter.signal, headers: knobHeaders(req as never) },
          ),
      };
      const knobsOf = (user: string) =>
        userHeaders(user, { 'reasoning-tokens': '3000', tokens: '50' });
      const budgets = { user: { limitUsd: '0.01', period: 'day' as const } };
      // Strict reserves max_completion_tokens: the budget cannot cover it.
      await start({ budgets, reservation: 'strict', ...openaiUpstream });
      expect((await postSSE(app.url, body, { headers: knobsOf('strict') })).status).toBe(402);
      await app.close();
      for (const reservation of ['fit', lease] as const) {
        const user = typeof reservation === 'string' ? 'fit' : 'lease';
        await start({ budgets, reservation, ...openaiUpstream });
        const result = await postSSE(app.url, body, { headers: knobsOf(user) });
        const meta = eventData<Meta & { maxTokens: number }>(result, 'meta');
        const record = await recordOf(result);
        // Sent with the max_completion_tokens $0.01 covers: the 3,000 reasoning tokens the
        // provider bills unseen stop there, and the provider's figure is the charge.
        expect((record.body as { max_completion_tokens?: number }).max_completion_tokens).toBe(
          meta.maxTokens,
        );
        expect(meta.maxTokens).toBeLessThan(3_050);
        const done = eventData<Done>(result, 'done');
        expect(done.usage.outputTokens).toBe(meta.maxTokens);
        expect(done.costNanos).toBe(
          record.usage!.inputTokens * O4_MINI.input + meta.maxTokens * O4_MINI.output,
        );
        expect((await spentBy(user, '0.01')).spentNanos).toBeLessThanOrEqual(usd('0.01'));
        await app.close();
      }
    });
  });

  describe('amounts', () => {
    it('a budget above the largest amount is a configuration error at start-up', () => {
      expect(() =>
        costTrackedSSE({
          store: createMemoryStore(),
          identify: identifyByHeader,
          budgets: { user: { limitUsd: '9007199.254740992', period: 'day' } },
        }),
      ).toThrow(/out of range/);
    });

    it('spend held at the maximum answers 402, never 503', async () => {
      await start({ budgets: { user: { limitNanos: MAX_NANOS, period: 'lifetime' } } });
      const scope = { kind: 'user', id: 'whale' };
      const policy = { budget: { limitNanos: MAX_NANOS, period: 'lifetime' as const } };
      for (let i = 0; i < 2; i++) {
        const admitted = await store.admit({
          scope,
          ...policy,
          reserveNanos: 1,
          estimatedTokens: 1,
          ttlMs: 60_000,
        });
        if (!admitted.admitted) throw new Error('not admitted');
        await store.settle(admitted.reservation.id, { costNanos: MAX_NANOS - 1, tokens: 1 });
      }
      expect((await store.getState(scope, policy)).budget!.spentNanos).toBe(MAX_NANOS);
      const result = await postSSE(
        app.url,
        { model: 'claude-haiku-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }] },
        { headers: userHeaders('whale') },
      );
      expect(result.status).toBe(402);
    });
  });
});
