/**
 * The money workload: how close each reservation mode keeps spend to its bound, on
 * requests as users send them. Not timed: every figure is money, read from the fake
 * upstream's own records (what a provider bills: tokens generated, searches run, priced
 * with the bundled catalog) and from the store's books. It runs in this process — a real
 * Express 5 app on loopback with `costTrackedSSE()` and the memory store, the official
 * Anthropic SDK, the testkit's fake — through the README's mount pattern.
 *
 * - worst case: for each kind of request, what was reserved against what was billed (the
 *   reservation must never be below the bill);
 * - no false cut-offs: answers just under max_tokens in every text kind, with money to
 *   spare, must all complete;
 * - incremental leases: one long answer against a budget too small for it, per text kind:
 *   how far the provider's bill and the store's books go past the budget;
 * - per-request cap: the bill of a long answer against the cap;
 * - callers the app does not control (`money-callers.mjs`): hostile bodies through the
 *   gateways, and a coding agent's day on a $2 key in each reservation mode.
 */
import Anthropic from '@anthropic-ai/sdk';
import { emptyUsage, Pricing, usd } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { countInputTokens, startFakeLLM } from '@tokenmeter/testkit';
import { createParser } from 'eventsource-parser';
import express from 'express';
import { moneyCallers } from './money-callers.mjs';

const pricing = new Pricing();
const TEXTS = ['plain', 'mixed', 'emoji', 'vietnamese', 'cjk', 'base64', 'repeat'];

/** What the provider billed for a request, from the fake's record, priced by the catalog. */
function billed(record, model) {
  const usage = {
    ...emptyUsage(),
    inputTokens:
      record.inputTokens + (record.searches ?? 0) * (record.knobs?.searchResultTokens ?? 0),
    outputTokens: record.tokensGenerated,
    webSearchRequests: record.searches ?? 0,
  };
  const speed = record.body?.speed;
  if (speed === 'fast') usage.speed = 'fast';
  if (typeof record.body?.inference_geo === 'string')
    usage.inferenceGeo = record.body.inference_geo;
  return pricing.costOf(usage, model).nanos;
}

async function startApp(fake, options) {
  const client = new Anthropic({ baseURL: fake.url, apiKey: 'bench', maxRetries: 0 });
  const store = createMemoryStore();
  const settles = [];
  const app = express();
  app.post(
    '/chat',
    express.json({ limit: '2mb' }),
    costTrackedSSE({
      store,
      identify: (req) => ({ user: String(req.headers['x-user']) }),
      maxTokensLimit: 64_000,
      logger: { warn() {}, error() {} },
      onSettle: (info) => settles.push(info),
      upstream: (req, meter) =>
        client.messages.create(
          { ...req.body, model: meter.model, max_tokens: meter.maxTokens, stream: true },
          {
            signal: meter.signal,
            headers: Object.fromEntries(
              Object.entries(req.headers).filter(([k]) => k.startsWith('x-fake-llm-')),
            ),
          },
        ),
      ...options,
    }),
  );
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}/chat`,
    store,
    settles,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Posts one request and reads its SSE events. */
async function post(url, body, headers) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    return { status: response.status, events: [], body: JSON.parse(text) };
  }
  const events = [];
  const parser = createParser({
    onEvent: (message) => events.push({ event: message.event, data: JSON.parse(message.data) }),
  });
  parser.feed(text);
  return { status: response.status, events };
}

const knobs = (values) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [`x-fake-llm-${k}`, String(v)]));

async function lastRecord(fake) {
  const record = fake.lastRequest;
  await fake.waitForRequest(record.id);
  return record;
}

/** Request kinds users send, each with what it asks the provider for. */
const KINDS = [
  {
    name: 'plain chat (haiku-4-5)',
    body: {
      model: 'claude-haiku-4-5',
      max_tokens: 800,
      messages: [{ role: 'user', content: 'Explain budgets.' }],
    },
    knobs: {},
  },
  {
    name: 'fast + us + web search ×5 (opus-5)',
    body: {
      model: 'claude-opus-5',
      max_tokens: 800,
      speed: 'fast',
      inference_geo: 'us',
      tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }],
      messages: [{ role: 'user', content: 'What is new this week?' }],
    },
    knobs: { searches: 5, 'search-result-tokens': 4_000 },
  },
  {
    name: '1-hour cache write (sonnet-4-6)',
    body: {
      model: 'claude-sonnet-4-6',
      max_tokens: 800,
      system: [
        {
          type: 'text',
          text: 'You are a careful assistant for a budgeting app. '.repeat(40),
          cache_control: { type: 'ephemeral', ttl: '1h' },
        },
      ],
      messages: [{ role: 'user', content: 'Hello' }],
    },
    // The provider writes the whole prompt to the 1-hour cache (set per request below).
    knobs: {},
    cacheAll: true,
  },
  {
    name: 'prompt of ~80K tokens near the 100K tier, counted at 100,500 (haiku-5-5)',
    body: {
      model: 'claude-haiku-5-5',
      max_tokens: 800,
      messages: [
        {
          role: 'user',
          content:
            'The committee reviewed the quarterly figures and approved the new budget. '.repeat(
              6_000,
            ),
        },
      ],
    },
    knobs: { 'input-tokens': 100_500 },
  },
  {
    name: 'provider counts 25% more prompt than the estimate (sonnet-4-6)',
    body: {
      model: 'claude-sonnet-4-6',
      max_tokens: 800,
      messages: [{ role: 'user', content: 'Summarise the meeting notes below.\n'.repeat(300) }],
    },
    inputScale: 1.25,
  },
];

export async function money(ctx) {
  const SEEDS = ctx.plan.money.seeds;
  const fake = await startFakeLLM({ tps: 0, chunk: 4 });
  const out = { worstCase: [], cutOffs: [], leases: [], cap: [] };
  try {
    // (1) Worst case: reserved vs billed.
    {
      const app = await startApp(fake, {
        budgets: { user: { limitUsd: '100', period: 'day' } },
        reservation: 'strict',
      });
      try {
        for (const kind of KINDS) {
          let worstRatio = 0;
          let overspend = 0;
          let count = 0;
          // The answer's text does not matter here (the provider reports its usage); its
          // length and the request's terms do.
          for (const seed of SEEDS) {
            let extra = {};
            if (kind.cacheAll) {
              // The provider writes the whole prompt, as it counts it, to the 1-hour cache.
              extra = {
                'input-tokens': 0,
                'cache-write-1h': countInputTokens(kind.body, 'anthropic'),
              };
            }
            if (kind.inputScale) {
              const probe = await post(app.url, kind.body, {
                'x-user': 'probe',
                ...knobs({ tokens: 1 }),
              });
              const estimate = probe.events.find((e) => e.event === 'meta').data.inputTokens;
              extra = { 'input-tokens': Math.ceil(estimate * kind.inputScale) };
            }
            const result = await post(app.url, kind.body, {
              'x-user': 'worst',
              ...knobs({ text: 'mixed', seed, tokens: 780, ...kind.knobs, ...extra }),
            });
            const meta = result.events.find((e) => e.event === 'meta')?.data;
            const end = result.events.at(-1)?.data;
            if (!meta || result.events.at(-1)?.event !== 'done')
              throw new Error(`worst case ${kind.name}: no done event (${result.status})`);
            const reserved = Math.round(meta.reservedUsd * 1e9);
            const bill = end.costNanos;
            worstRatio = Math.max(worstRatio, bill / reserved);
            overspend = Math.max(overspend, bill - reserved);
            count++;
          }
          out.worstCase.push({
            kind: kind.name,
            requests: count,
            maxBillOverReserved: worstRatio,
            maxOverspendNanos: overspend,
          });
        }
      } finally {
        await app.close();
      }
      ctx.log(`money: worst case, ${out.worstCase.length} cells`);
    }

    // (2) False cut-offs: answers of 481 tokens with max_tokens 500, every text kind and seed.
    {
      const app = await startApp(fake, { budgets: { user: { limitUsd: '5', period: 'day' } } });
      try {
        for (const text of TEXTS) {
          let cut = 0;
          let overMax = 0;
          for (const seed of SEEDS) {
            const result = await post(
              app.url,
              {
                model: 'claude-haiku-4-5',
                max_tokens: 500,
                messages: [{ role: 'user', content: 'Go.' }],
              },
              { 'x-user': `cut-${text}`, ...knobs({ text, seed, tokens: 481 }) },
            );
            const last = result.events.at(-1);
            if (last?.event !== 'done') cut++;
            if ((last?.data?.usage?.outputTokens ?? 0) > 500) overMax++;
          }
          out.cutOffs.push({ text, answers: SEEDS.length, cut, chargedAboveMaxTokens: overMax });
        }
      } finally {
        await app.close();
      }
      ctx.log('money: false cut-offs');
    }

    // (3) Incremental leases: a 6,000-token answer against a $0.01 budget (2,000 output
    // tokens at $5/M), leases of 256 tokens. The request is sent with the max_tokens the
    // budget covers; the lease grows with the answer.
    {
      const budget = usd('0.01');
      const step = 256;
      const stepNanos = step * 5_000;
      for (const text of TEXTS) {
        let worst = { bill: 0, books: 0, limit: '', afterCut: 0 };
        let leastBilled = Number.POSITIVE_INFINITY;
        let mostAfterCut = 0;
        for (const seed of SEEDS) {
          const app = await startApp(fake, {
            budgets: { user: { limitUsd: '0.01', period: 'day' } },
            reservation: { incremental: { initialOutputTokens: step, stepOutputTokens: step } },
          });
          try {
            const result = await post(
              app.url,
              {
                model: 'claude-haiku-4-5',
                max_tokens: 8_000,
                messages: [{ role: 'user', content: 'Go on.' }],
              },
              { 'x-user': 'lease', ...knobs({ text, seed, tokens: 6_000, tps: 2_000, chunk: 1 }) },
            );
            const record = await lastRecord(fake);
            const last = result.events.at(-1);
            const bill = billed(record, 'claude-haiku-4-5');
            const state = await app.store.getState(
              { kind: 'user', id: 'lease' },
              { budget: { limitNanos: budget, period: 'day' } },
            );
            leastBilled = Math.min(leastBilled, bill / budget);
            // Tokens the provider generated after the middleware stopped reading (the abort
            // reaching it): what a cut cannot avoid.
            mostAfterCut = Math.max(
              mostAfterCut,
              record.tokensGenerated - (record.tokensSentAtClientClose ?? record.tokensGenerated),
            );
            if (bill - budget > worst.bill - budget || worst.limit === '') {
              worst = {
                bill,
                books: state.budget.spentNanos,
                limit: last?.data?.limit ?? last?.event ?? '',
              };
            }
          } finally {
            await app.close();
          }
        }
        out.leases.push({
          text,
          budgetNanos: budget,
          stepNanos,
          billNanos: worst.bill,
          booksNanos: worst.books,
          overspendBillNanos: Math.max(0, worst.bill - budget),
          overspendBooksNanos: Math.max(0, worst.books - budget),
          ended: worst.limit,
          leastBilledShare: leastBilled,
          mostTokensAfterCut: mostAfterCut,
        });
      }
      ctx.log('money: leases');
    }

    // (4) Per-request cap: $0.005 on haiku-4-5 (~1,000 output tokens) against a 4,000-token answer.
    {
      const cap = usd('0.005');
      const app = await startApp(fake, {
        budgets: { user: { limitUsd: '100', period: 'day' } },
        maxCostPerRequestUsd: '0.005',
      });
      try {
        for (const text of TEXTS) {
          let maxBill = 0;
          let minBill = Number.POSITIVE_INFINITY;
          for (const seed of SEEDS) {
            await post(
              app.url,
              {
                model: 'claude-haiku-4-5',
                max_tokens: 4_000,
                messages: [{ role: 'user', content: 'Go on.' }],
              },
              { 'x-user': 'cap', ...knobs({ text, seed, tokens: 4_000, tps: 2_000, chunk: 1 }) },
            );
            const bill = billed(await lastRecord(fake), 'claude-haiku-4-5');
            maxBill = Math.max(maxBill, bill);
            minBill = Math.min(minBill, bill);
          }
          out.cap.push({ text, capNanos: cap, maxBillNanos: maxBill, minBillNanos: minBill });
        }
      } finally {
        await app.close();
      }
      ctx.log('money: per-request cap');
    }
  } finally {
    await fake.close();
  }
  Object.assign(out, await moneyCallers(ctx));
  return out;
}
