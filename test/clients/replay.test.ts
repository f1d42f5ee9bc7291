/**
 * What real coding agents send, replayed through the gateways with their defaults: the
 * request bodies Claude Code 2.1, opencode 1.18 and Codex 0.171 sent against the testkit
 * (recorded by `record-clients.mjs` into `test/fixtures/clients/`), Claude Code's and
 * opencode's through `anthropicGateway()`, Codex's through `openaiGateway()` at
 * `/v1/responses`. Claude Code's calls are Opus with max_tokens 128,000 and adaptive thinking
 * whose text is omitted (billed unseen); opencode sends a Haiku title call with max_tokens
 * 48,000 beside its main call; Codex sends no max_output_tokens at all. On a $2 a day key,
 * calls of about $0.09 are admitted until the money is spent, and the day ends within $2
 * (one call at a time) or within the stated bound of leases (calls at once).
 */
import { readFileSync } from 'node:fs';
import { costOf, usd } from '@tokenmeter/core';
import { anthropicGateway, type GatewayOptions, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { billedNanos, billedUsage } from '../helpers/billing.js';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

interface Recorded {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function recorded(name: string): Recorded[] {
  const url = new URL(`../fixtures/clients/${name}.json`, import.meta.url);
  const fixture = JSON.parse(readFileSync(url, 'utf8')) as { requests: Recorded[] };
  return fixture.requests.filter((r) => r.method === 'POST');
}

const claudePrint = recorded('claude-code-print-default');
const claudeSide = recorded('claude-code-interactive-nonessential').filter(
  (r) => !Array.isArray(r.body.tools) || r.body.tools.length === 0,
);
const opencode = recorded('opencode-run');
const codex = recorded('codex-exec');

/**
 * Each answer: 600 tokens of thinking the caller never sees (display "omitted") and 1,600
 * of text. With Claude Code's ~50 KB prompt, a call costs about $0.09 on claude-opus-5-5
 * ($4 / $20 per million tokens).
 */
const ANSWER = { 'thinking-tokens': '600', tokens: '1600', chunk: '40' };
const OPUS_OUTPUT = 20_000; // nano-dollars per output token

let fake: FakeLLM;
let store: MemoryStore;
let gateway: Gateway;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, seed: 4 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await gateway?.close();
  fake.reset();
});

async function start(
  create: (options: GatewayOptions) => unknown = anthropicGateway,
  baseURL = fake.url,
) {
  store = createMemoryStore();
  gateway = await startGateway(express5, create, {
    apiKey: 'server-key',
    baseURL,
    store,
    identify: (key) => (key ? { key } : undefined),
    budgets: { key: { limitUsd: '2', period: 'day' } },
    forwardHeaders: ['x-fake-llm-*'],
  });
}

/** One recorded request, as the client sent it, with the test's key. */
async function replay(request: Recorded, knobs: Record<string, string> = ANSWER) {
  // Claude Code and opencode send the key as x-api-key, Codex as Authorization: Bearer.
  const auth: Record<string, string> = request.path.startsWith('/v1/responses')
    ? { authorization: 'Bearer tm-agent' }
    : { 'x-api-key': 'tm-agent' };
  const headers: Record<string, string> = { ...request.headers, ...auth };
  for (const [k, v] of Object.entries(knobs)) headers[`x-fake-llm-${k}`] = v;
  const response = await fetch(`${gateway.url}${request.path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(request.body),
  });
  return { status: response.status, text: await response.text() };
}

const spentToday = async () =>
  (
    await store.getState(
      { kind: 'key', id: 'tm-agent' },
      { budget: { limitNanos: usd('2'), period: 'day' } },
    )
  ).budget!;
const answered = () => fake.requests.filter((r) => r.path === '/v1/messages');

describe('Claude Code on a $2 a day key', () => {
  it('one call at a time: admitted until the money is spent (20+ calls of ~$0.09), never past $2', async () => {
    await start();
    const main = claudePrint[0]!;
    expect(main.body).toMatchObject({ model: 'claude-opus-5-5', max_tokens: 128_000 });
    expect(main.body.thinking).toMatchObject({ type: 'adaptive', display: 'omitted' });
    let admitted = 0;
    let refusal = '';
    for (let i = 0; i < 60 && refusal === ''; i++) {
      const answer = await replay(main);
      if (answer.status === 200) admitted++;
      else {
        expect(answer.status).toBe(402);
        refusal = answer.text;
      }
    }
    expect(refusal).toMatch(/billing_error/);
    const settles = await waitForSettles(gateway, admitted);
    const records = answered();
    expect(records).toHaveLength(admitted);
    // Every call was charged exactly what the provider billed, hidden thinking included.
    for (const [i, settle] of settles.entries()) {
      expect(settle.final.estimated).toBe(false);
      expect(settle.final.costNanos).toBe(billedNanos(records[i]!));
    }
    const first = billedNanos(records[0]!);
    expect(first).toBeGreaterThan(usd('0.08'));
    expect(first).toBeLessThan(usd('0.10'));
    expect(admitted).toBeGreaterThanOrEqual(20);
    const budget = await spentToday();
    const billed = records.reduce((sum, r) => sum + billedNanos(r), 0);
    expect(budget.spentNanos).toBe(billed);
    expect(billed).toBeLessThanOrEqual(usd('2'));
    // Refused only when what was left could not pay for the prompt and the first lease
    // (256 output tokens): no refusal while money for an answer remains.
    const prompt = costOf({ ...billedUsage(records[0]!), outputTokens: 0 }, 'claude-opus-5-5');
    expect(budget.remainingNanos).toBeLessThan(prompt.nanos + 256 * OPUS_OUTPUT);
    // Each call was sent with the max_tokens that what was left covers after its prompt
    // (counted exactly: count_tokens, free), priced as the cache writes its cache_control
    // may make ($5/M): $2 does not pay for 128,000 Opus tokens.
    const sent = records.map((r) => (r.body as { max_tokens: number }).max_tokens);
    const promptTokens = records[0]!.inputTokens;
    expect(sent[0]).toBe(Math.floor((usd('2') - promptTokens * 5_000) / OPUS_OUTPUT));
    expect(sent.at(-1)).toBeLessThan(sent[0]!);
  });

  it('a title call beside each main call: admitted until spent, within $2 plus the hidden thinking of one call', async () => {
    await start();
    expect(claudeSide).toHaveLength(1);
    const side = claudeSide[0]!;
    expect(side.body).toMatchObject({ model: 'claude-opus-5-5', max_tokens: 128_000 });
    let admitted = 0;
    for (let round = 0; round < 40; round++) {
      const answers = await Promise.all([replay(side, { tokens: '40' }), replay(claudePrint[0]!)]);
      for (const a of answers) expect([200, 402]).toContain(a.status);
      const ok = answers.filter((a) => a.status === 200).length;
      admitted += ok;
      if (ok === 0) break;
    }
    await waitForSettles(gateway, admitted);
    const billed = answered().reduce((sum, r) => sum + billedNanos(r), 0);
    const budget = await spentToday();
    // Calls that run at once each see the lease of the other, not its hidden thinking: the
    // day may pass $2 by the thinking one call billed unseen (600 tokens here).
    expect(budget.spentNanos).toBe(billed);
    expect(billed).toBeLessThanOrEqual(usd('2') + 600 * OPUS_OUTPUT);
    expect(admitted).toBeGreaterThanOrEqual(40);
  });
});

describe('opencode', () => {
  it("its Haiku title call (max_tokens 48,000, thinking 16,000) and main call are both answered, at the provider's price", async () => {
    await start();
    expect(opencode.map((r) => [r.body.model, r.body.max_tokens])).toEqual([
      ['claude-haiku-4-5-20251001', 48_000],
      ['claude-sonnet-4-6', 32_000],
    ]);
    const answers = await Promise.all(opencode.map((r) => replay(r, { tokens: '30' })));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const settles = await waitForSettles(gateway, 2);
    for (const record of answered()) {
      const settle = settles.find((s) => s.model === record.model)!;
      expect(settle.final.costNanos).toBe(billedNanos(record));
      expect(settle.final.costNanos).toBeLessThanOrEqual(settle.reservedNanos);
      // Sent as asked: $2 covers both.
      expect((record.body as { max_tokens: number }).max_tokens).toBe(
        record.model?.startsWith('claude-haiku') ? 48_000 : 32_000,
      );
    }
  });
});

/**
 * gpt-6.2-sol (Codex 0.171's default model), its published rates by hand, in nano-dollars
 * per token: $2 input and $10 output per million tokens, for prompts up to 272,000 tokens.
 */
const SOL = { input: 2_000, output: 10_000, tierAbove: 272_000 };
/**
 * Each answer: 2,000 reasoning tokens (hidden: Codex asks no summary) and 4,000 of text. With
 * Codex's ~14,000-token prompt (its tools ride in an `additional_tools` input item), a call
 * costs about $0.09.
 */
const CODEX_ANSWER = { 'reasoning-tokens': '2000', tokens: '4000', chunk: '40' };

describe('Codex on a $2 a day key', () => {
  it('its Responses call without max_output_tokens: admitted, forwarded with the reserved max_output_tokens, charged exactly until the money is spent, never past $2', async () => {
    await start(openaiGateway, `${fake.url}/v1`);
    expect(codex).toHaveLength(1);
    const main = codex[0]!;
    expect(main.path).toBe('/v1/responses');
    expect(main.body).toMatchObject({ model: 'gpt-6.2-sol', stream: true });
    expect(main.body).not.toHaveProperty('max_output_tokens');
    expect(main.body.reasoning).not.toHaveProperty('summary');
    let admitted = 0;
    let refusal = '';
    for (let i = 0; i < 60 && refusal === ''; i++) {
      const answer = await replay(main, CODEX_ANSWER);
      if (answer.status === 200) {
        admitted++;
        expect(answer.text).toMatch(/event: response\.(completed|incomplete)\n/);
      } else {
        expect(answer.status).toBe(402);
        refusal = answer.text;
      }
    }
    expect(refusal).toMatch(/insufficient_quota/);
    const settles = await waitForSettles(gateway, admitted);
    const records = fake.requests.filter((r) => r.path === '/v1/responses');
    expect(records).toHaveLength(admitted);
    expect(settles).toHaveLength(admitted);
    // Charged exactly what the provider billed: the prompt, the text and the hidden reasoning.
    for (const [i, settle] of settles.entries()) {
      const record = records[i]!;
      expect(record.inputTokens).toBeLessThan(SOL.tierAbove);
      expect(record.reasoningTokens).toBe(2_000);
      const hand =
        record.inputTokens * SOL.input +
        (record.tokensGenerated + record.reasoningTokens) * SOL.output;
      expect(settle.final.estimated).toBe(false);
      expect(settle.final.costNanos).toBe(hand);
      expect(settle.final.costNanos).toBe(billedNanos(record));
    }
    expect(admitted).toBeGreaterThanOrEqual(20);
    const budget = await spentToday();
    const billed = records.reduce((sum, r) => sum + billedNanos(r), 0);
    expect(budget.spentNanos).toBe(billed);
    expect(billed).toBeLessThanOrEqual(usd('2'));
    // Refused only when what was left could not pay for the prompt and the first lease (256
    // output tokens).
    const prompt = records[0]!.inputTokens * SOL.input;
    expect(budget.remainingNanos).toBeLessThan(prompt + 256 * SOL.output);
    // Sent without max_output_tokens, each was forwarded with one: the model's limit
    // (128,000, not catalogued: the default) while $2 covers it, then what was left covers.
    const sent = records.map((r) => (r.body as { max_output_tokens?: number }).max_output_tokens);
    expect(sent.every((n) => Number.isInteger(n) && n! >= 16 && n! <= 128_000)).toBe(true);
    expect(sent[0]).toBe(128_000);
    expect(sent.at(-1)).toBeLessThan(128_000);
    expect(sent).toEqual([...sent].sort((a, b) => b! - a!));
    // Answered whole while what was forwarded covered the answer (6,000 tokens), cut at the
    // forwarded bound (the provider's response.incomplete) only once the money ran short.
    for (const [i, record] of records.entries()) {
      expect(record.stopReason).toBe(sent[i]! >= 6_000 ? 'completed' : 'incomplete');
    }
    expect(records[0]!.stopReason).toBe('completed');
  });
});
