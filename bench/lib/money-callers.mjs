/**
 * The money workload, part two: callers the app does not control. Not timed: every figure
 * is money, read from the fake upstream's records (what a provider bills) and the store.
 *
 * - hostile bodies through `anthropicGateway()` / `openaiGateway()` (the gateways'
 *   defaults): each case of "callers we don't control" — whole-body calls under a lease or a
 *   cap, a stream cut after web searches, a document by URL, a server tool without
 *   max_uses, text billed a token per byte, type-confused fields, unpriced tiers — with the
 *   provider's bill against what was reserved and the caller's budget;
 * - a coding agent's day: Claude Code's recorded call (claude-opus-5-5, max_tokens 128,000,
 *   thinking billed unseen) replayed on a $2 a day key in each reservation mode, one call
 *   at a time and with its title call beside it: calls admitted, the day's spend, how far
 *   it passed $2, and what was left at the first refusal.
 */
import { emptyUsage, Pricing, usd } from '@tokenmeter/core';
import { anthropicGateway, openaiGateway } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { recordedRequests } from './recordings.mjs';

const pricing = new Pricing();

/** What the provider billed for one fake record (everything generated), priced. */
function billed(record) {
  if (!record || record.status >= 400) return 0;
  const knobs = record.knobs ?? {};
  const usage = {
    ...emptyUsage(),
    inputTokens:
      record.inputTokens +
      (record.provider === 'anthropic' ? record.searches * (knobs.searchResultTokens ?? 0) : 0),
    outputTokens: record.tokensGenerated + record.reasoningTokens,
    webSearchRequests: record.provider === 'anthropic' ? record.searches : 0,
  };
  return pricing.costOf(usage, record.model).nanos;
}

async function startGateway(fake, provider, options = {}) {
  const store = createMemoryStore();
  const settles = [];
  const app = express();
  const create = provider === 'anthropic' ? anthropicGateway : openaiGateway;
  app.use(
    '/llm',
    create({
      apiKey: 'server-key',
      baseURL: provider === 'anthropic' ? fake.url : `${fake.url}/v1`,
      store,
      identify: (key) => (key ? { user: key } : undefined),
      budgets: { user: { limitUsd: '10', period: 'day' } },
      forwardHeaders: ['x-fake-llm-*'],
      logger: { warn() {}, error() {} },
      onSettle: (info) => settles.push(info),
      ...options,
    }),
  );
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${server.address().port}/llm`;
  return {
    url: `${base}${provider === 'anthropic' ? '/v1/messages' : '/v1/chat/completions'}`,
    store,
    settles,
    async waitForSettles(n) {
      const deadline = Date.now() + 10_000;
      while (settles.length < n && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      return settles;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One call; `leaveAfter` text deltas then gone (a client that disconnects). */
async function call(
  gateway,
  provider,
  body,
  { knobs = {}, user = 'caller', headers = {}, leaveAfter } = {},
) {
  const h = { 'content-type': 'application/json', ...headers };
  for (const [k, v] of Object.entries(knobs)) h[`x-fake-llm-${k}`] = String(v);
  if (provider === 'anthropic') h['x-api-key'] = user;
  else h.authorization = `Bearer ${user}`;
  const controller = new AbortController();
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: h,
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  if (leaveAfter === undefined) {
    await response.text();
    return response.status;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while ((text.match(/"text_delta"/g) ?? []).length < leaveAfter) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  controller.abort();
  return response.status;
}

/** 15,000 characters of random base64, rare ideographs and control characters. */
function hostileText(seed) {
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

const messages = [{ role: 'user', content: 'Tell me about tide pools.' }];

/** The cases, each: provider, gateway options, calls (possibly at once), budget. */
function cases() {
  const hostileAnthropic = (seed) => {
    const blob = hostileText(seed);
    return {
      model: 'claude-haiku-4-5',
      max_tokens: 200,
      stream: true,
      system: blob.slice(0, 2_500),
      tools: [
        { name: 'lookup', description: blob.slice(2_500, 7_500), input_schema: { type: 'object' } },
      ],
      messages: [
        { role: 'user', content: 'Look it up.' },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 't1', name: 'lookup', input: { q: blob.slice(7_500, 11_000) } },
          ],
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 't1', content: blob.slice(11_000) }],
        },
      ],
    };
  };
  const hostileOpenAI = (seed) => {
    const blob = hostileText(seed);
    return {
      model: 'gpt-4.1-mini',
      max_completion_tokens: 200,
      stream: true,
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
    };
  };
  const byteWorst = { 'input-counting': 'bytes', tokens: 50 };
  return [
    {
      name: 'whole-body call, lease, $0.005 budget (haiku-4-5, max_tokens 4,000)',
      provider: 'anthropic',
      budgetUsd: '0.005',
      options: { reservation: 'lease' },
      calls: [
        {
          body: { model: 'claude-haiku-4-5', max_tokens: 4_000, messages, stream: false },
          knobs: { tokens: 4_000 },
        },
      ],
    },
    {
      name: 'whole-body call, $0.002 cap (gpt-4.1-mini, 4,000)',
      provider: 'openai',
      budgetUsd: '10',
      options: { maxCostPerRequestUsd: '0.002' },
      capUsd: '0.002',
      calls: [
        {
          body: { model: 'gpt-4.1-mini', max_completion_tokens: 4_000, messages, stream: false },
          knobs: { tokens: 4_000 },
        },
      ],
    },
    {
      name: 'stream cut after 3 web searches of 20,000 result tokens',
      provider: 'anthropic',
      budgetUsd: '10',
      calls: [
        {
          body: {
            model: 'claude-haiku-4-5',
            max_tokens: 4_000,
            messages,
            stream: true,
            tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }],
          },
          knobs: { searches: 3, 'search-result-tokens': 20_000, tokens: 3_000, tps: 400 },
          leaveAfter: 20,
        },
      ],
    },
    {
      name: 'document by URL, 150,000 tokens, $0.50 budget (opus-4-1)',
      provider: 'anthropic',
      budgetUsd: '0.50',
      calls: [
        {
          body: {
            model: 'claude-opus-4-1',
            max_tokens: 1_000,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'document', source: { type: 'url', url: 'https://x.example/big.pdf' } },
                ],
              },
            ],
          },
          knobs: { 'input-tokens': 150_000 },
        },
      ],
    },
    {
      name: 'web search without max_uses, 20 searches wanted, $2 budget',
      provider: 'anthropic',
      budgetUsd: '2',
      calls: [
        {
          body: {
            model: 'claude-haiku-4-5',
            max_tokens: 500,
            messages,
            stream: true,
            tools: [{ type: 'web_search_20250305', name: 'web_search' }],
          },
          knobs: { searches: 20, 'search-result-tokens': 20_000 },
        },
      ],
    },
    {
      name: 'text billed a token per byte, 8 at once, $0.10 budget (Anthropic)',
      provider: 'anthropic',
      budgetUsd: '0.10',
      options: { maxInputTokens: 50_000 },
      calls: Array.from({ length: 8 }, (_, i) => ({
        body: hostileAnthropic(i + 1),
        knobs: byteWorst,
      })),
    },
    {
      name: 'text billed a token per byte, 8 at once, $0.10 budget (OpenAI)',
      provider: 'openai',
      budgetUsd: '0.10',
      options: { maxInputTokens: 50_000 },
      calls: Array.from({ length: 8 }, (_, i) => ({
        body: hostileOpenAI(i + 1),
        knobs: byteWorst,
      })),
    },
    {
      name: '"stream": "true"',
      provider: 'anthropic',
      budgetUsd: '10',
      calls: [{ body: { model: 'claude-haiku-4-5', max_tokens: 100, messages, stream: 'true' } }],
    },
    {
      name: 'service_tier "priority" (no published price)',
      provider: 'openai',
      budgetUsd: '10',
      calls: [
        { body: { model: 'gpt-4.1-mini', max_tokens: 100, messages, service_tier: 'priority' } },
      ],
    },
  ];
}

async function hostile(fake) {
  const rows = [];
  for (const c of cases()) {
    fake.reset();
    const gateway = await startGateway(fake, c.provider, {
      budgets: { user: { limitUsd: c.budgetUsd, period: 'day' } },
      ...c.options,
    });
    try {
      const statuses = await Promise.all(
        c.calls.map((one) => call(gateway, c.provider, one.body, one)),
      );
      const answered = statuses.filter((s) => s === 200).length;
      const settles = await gateway.waitForSettles(answered);
      const records = fake.requests.filter((r) => !r.path.endsWith('/count_tokens'));
      for (const r of records) await fake.waitForRequest(r.id);
      const bill = records.reduce((sum, r) => sum + billed(r), 0);
      const reserved = settles.reduce((sum, s) => sum + s.reservedNanos, 0);
      const charged = settles.reduce((sum, s) => sum + s.final.costNanos, 0);
      const budget = usd(c.budgetUsd);
      rows.push({
        case: c.name,
        provider: c.provider,
        statuses: [...new Set(statuses)].join(', '),
        answered,
        reservedNanos: reserved,
        chargedNanos: charged,
        billedNanos: bill,
        budgetNanos: budget,
        limitNanos: c.capUsd ? usd(c.capUsd) : budget,
        pastLimitNanos: Math.max(0, bill - (c.capUsd ? usd(c.capUsd) : budget)),
        pastReservationNanos: Math.max(0, bill - reserved),
      });
    } finally {
      await gateway.close();
    }
  }
  return rows;
}

async function agentDay(fake) {
  const main = recordedRequests('claude-code-print-default')[0];
  const side = recordedRequests('claude-code-interactive-nonessential').find(
    (r) => !Array.isArray(r.body.tools) || r.body.tools.length === 0,
  );
  // About $0.09 a call: a ~50 KB prompt, 600 tokens of thinking billed unseen, 1,600 of text.
  const answer = { 'thinking-tokens': 600, tokens: 1_600, chunk: 40 };
  const rows = [];
  const variants = {
    alone: [main],
    'with its title call': [side, main],
    'two sessions at once': [main, main],
    // The known limit of leases: output billed unseen, in calls that run at once. On $1.50
    // the second round starts with $0.55 left, less than two such calls bill.
    'two sessions at once, 20,000 tokens of thinking billed unseen, $1.50 a day': [main, main],
  };
  for (const mode of ['strict', 'fit', 'lease']) {
    for (const [variant, requests] of Object.entries(variants)) {
      fake.reset();
      const limitUsd = variant.includes('$1.50') ? '1.50' : '2';
      const gateway = await startGateway(fake, 'anthropic', {
        budgets: { user: { limitUsd, period: 'day' } },
        reservation: mode,
      });
      try {
        let admitted = 0;
        let refusedEarly = 0;
        for (let round = 0; round < 80; round++) {
          const statuses = await Promise.all(
            requests.map((r) =>
              call(gateway, 'anthropic', r.body, {
                knobs:
                  r !== main
                    ? { tokens: 40 }
                    : variant.includes('20,000')
                      ? { ...answer, 'thinking-tokens': 20_000 }
                      : answer,
                headers: r.headers,
                user: 'agent',
              }),
            ),
          );
          const ok = statuses.filter((s) => s === 200).length;
          admitted += ok;
          if (ok === 0) break;
          // Refused in a round where another call was admitted: money remained.
          refusedEarly += statuses.length - ok;
        }
        await gateway.waitForSettles(admitted);
        const records = fake.requests.filter((r) => r.path === '/v1/messages');
        for (const r of records) await fake.waitForRequest(r.id);
        const mains = records.filter(
          (r) => Array.isArray(r.body?.tools) && r.body.tools.length > 0,
        );
        const bill = records.reduce((sum, r) => sum + billed(r), 0);
        const state = await gateway.store.getState(
          { kind: 'user', id: 'agent' },
          { budget: { limitNanos: usd(limitUsd), period: 'day' } },
        );
        rows.push({
          mode,
          variant,
          mainCalls: mains.length,
          calls: admitted,
          refusedEarly,
          meanMainNanos: mains.length
            ? Math.round(mains.reduce((s, r) => s + billed(r), 0) / mains.length)
            : 0,
          spentNanos: state.budget.spentNanos,
          billedNanos: bill,
          budgetNanos: usd(limitUsd),
          pastBudgetNanos: Math.max(0, bill - usd(limitUsd)),
          leftNanos: usd(limitUsd) - bill,
        });
      } finally {
        await gateway.close();
      }
    }
  }
  return rows;
}

export async function moneyCallers(ctx) {
  const fake = await startFakeLLM({ tps: 0, chunk: 4, tokens: 60, seed: 21 });
  try {
    const hostileRows = await hostile(fake);
    ctx.log(`money: hostile callers, ${hostileRows.length} cases`);
    const day = await agentDay(fake);
    ctx.log("money: a coding agent's day");
    return { hostile: hostileRows, agentDay: day };
  } finally {
    await fake.close();
  }
}
