/**
 * The demo with DATABASE_URL: every stream is recorded in a private PostgreSQL (initdb +
 * pg_ctl on a free port), GET /api/spend answers the caller's spend by day and by model,
 * and the page draws both charts and lists the budget alerts fired, checked in a real
 * headless Chromium against hand computations. Earlier days come from a ledger writing
 * with its clock set back, as an app running for a while would have left them.
 */
import { mkdir } from 'node:fs/promises';
import { emptyUsage, formatUsd } from '@tokenmeter/core';
import { createPostgresLedger, type LedgerEntry } from '@tokenmeter/ledger-postgres';
import { type PrivatePostgres, startPostgres } from '@tokenmeter/ledger-postgres/testing';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchChromium } from './helpers/browser.js';
import { crossedAlerts, demoKeys, demoLink, sendAndWait } from './helpers/demo-page.js';
import { REPO_ROOT, type Running, startExample, stopAll } from './helpers/process.js';

const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY) * DAY;
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
// Per million tokens: haiku $1 in / $5 out, sonnet $3 / $15.
const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;
const sonnetNanos = (input: number, output: number) => input * 3_000 + output * 15_000;

interface SeedStream {
  user: string;
  daysAgo: number;
  model: string;
  input: number;
  output: number;
  cost: number;
}
// What the app recorded before today (alice's 20-days-ago stream is outside the 14 days).
const SEED: SeedStream[] = [
  { user: 'alice', daysAgo: 20, model: 'claude-haiku-4-5', input: 50, output: 50 },
  { user: 'alice', daysAgo: 3, model: 'claude-haiku-4-5', input: 100, output: 200 },
  { user: 'alice', daysAgo: 3, model: 'claude-haiku-4-5', input: 40, output: 123 },
  { user: 'alice', daysAgo: 1, model: 'claude-sonnet-4-6', input: 100, output: 300 },
  { user: 'bob', daysAgo: 1, model: 'claude-sonnet-4-6', input: 999, output: 999 },
].map((s) => ({
  ...s,
  cost: (s.model.includes('sonnet') ? sonnetNanos : haikuNanos)(s.input, s.output),
}));

interface Done {
  usage: { inputTokens: number; outputTokens: number };
  costNanos: number;
  estimated: boolean;
}
interface SpendBody {
  totalNanos: number;
  days: Array<{ date: string; costNanos: number; costUsd: number; streams: number }>;
  models: Array<{ model: string; costNanos: number; costUsd: number; streams: number }>;
  unwritten: number;
}
/** The page's globals, typed just enough for the callbacks that run in the browser. */
interface PageGlobals {
  tokenmeterDemo: { finished: number; done: Done | null };
}

let db: PrivatePostgres;
let demo: Running;
let browser: Browser;
let page: Page;
/** alice's key, drawn by the demo at start and printed once. */
let aliceAuth: { authorization: string };

beforeAll(async () => {
  await mkdir(`${REPO_ROOT}test-output`, { recursive: true });
  db = await startPostgres();
  // Earlier days, written by a ledger whose clock is set back one stream at a time.
  let clock = 0;
  const seeder = createPostgresLedger({ connectionString: db.url, now: () => clock });
  SEED.forEach((s, i) => {
    clock = today - s.daysAgo * DAY + 3_600_000 + i;
    const entry: LedgerEntry = {
      requestId: `seed-${i}`,
      scopes: [{ kind: 'user', id: s.user }],
      model: s.model,
      provider: 'anthropic',
      outcome: 'completed',
      final: {
        usage: { ...emptyUsage(), inputTokens: s.input, outputTokens: s.output },
        costNanos: s.cost,
        estimated: false,
      },
      durationMs: 1_000,
    };
    seeder.onSettle(entry);
  });
  expect((await seeder.close()).written).toBe(SEED.length);

  demo = await startExample('demo/server.mjs', {
    DATABASE_URL: db.url,
    TOKENMETER_DEMO_FAKE_TPS: '2000',
    TOKENMETER_DEMO_FAKE_TTFT_MS: '0',
    // bob's first answer ($0.0006 or more of $0.0025) crosses 10 % and maybe 30 %.
    TOKENMETER_DEMO_ALERTS: '10,30,100',
  });
  browser = await launchChromium();
  page = await browser.context.newPage();
  aliceAuth = { authorization: `Bearer ${demoKeys(demo.output()).alice}` };
  // The link the demo prints hands the page its keys.
  await page.goto(await demoLink(demo));
  await page.waitForSelector('body[data-ready="true"][data-keys="2"]');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
  db?.destroy();
});

/** What GET /api/spend should answer for `user`, by hand: seeded streams plus `today`. */
function expectedSpend(user: string, todayStreams: Array<{ model: string; cost: number }>) {
  const days = Array.from({ length: 14 }, (_, i) => {
    const start = today - (13 - i) * DAY;
    const seeded = SEED.filter((s) => s.user === user && today - s.daysAgo * DAY === start);
    const all = [...seeded, ...(start === today ? todayStreams : [])];
    return {
      date: dateOf(start),
      costNanos: all.reduce((n, s) => n + s.cost, 0),
      streams: all.length,
    };
  });
  const byModel = new Map<string, { costNanos: number; streams: number }>();
  for (const s of [...SEED.filter((s) => s.user === user && s.daysAgo < 14), ...todayStreams]) {
    const m = byModel.get(s.model) ?? { costNanos: 0, streams: 0 };
    m.costNanos += s.cost;
    m.streams++;
    byModel.set(s.model, m);
  }
  const models = [...byModel]
    .map(([model, m]) => ({ model, ...m }))
    .sort((a, b) => b.costNanos - a.costNanos || a.model.localeCompare(b.model));
  return { days, models, totalNanos: days.reduce((n, d) => n + d.costNanos, 0) };
}

/** The charts as the browser shows them: every bar's data attributes. */
async function chartsOnPage() {
  return page.evaluate(() => {
    const doc = (
      globalThis as unknown as {
        document: {
          querySelectorAll(s: string): Iterable<{ getAttribute(name: string): string | null }>;
        };
      }
    ).document;
    const read = (selector: string, key: string) =>
      [...doc.querySelectorAll(selector)].map((el) => ({
        key: el.getAttribute(key),
        nanos: Number(el.getAttribute('data-nanos')),
        streams: Number(el.getAttribute('data-streams')),
      }));
    return {
      days: read('#spend-days rect.bar', 'data-date'),
      models: read('#spend-models rect.bar', 'data-model'),
    };
  });
}

/** Sends `prompt` from the page; the `done` event it got, if any, and the result's state. */
async function send(prompt: string): Promise<{ done: Done | null; state: string }> {
  const state = await sendAndWait(page, prompt);
  const done = await page.evaluate(
    () => (globalThis as unknown as PageGlobals).tokenmeterDemo.done,
  );
  return { done, state };
}

describe('the demo with DATABASE_URL, in Chromium', () => {
  const aliceToday: Array<{ model: string; cost: number }> = [];

  it('says it records spend in PostgreSQL, and shows the history recorded before today', async () => {
    expect(demo.output()).toMatch(/spend recorded in PostgreSQL at postgres:\/\/postgres@127/);
    await page.selectOption('#user', 'alice');
    await page.waitForSelector('#spend-on:not([hidden])');
    expect(await page.isVisible('#spend-off')).toBe(false);
    const expected = expectedSpend('alice', []);
    await page.waitForFunction(
      (total) =>
        (
          globalThis as unknown as {
            document: { querySelector(s: string): { dataset: Record<string, string> } | null };
          }
        ).document.querySelector('#spend-summary')?.dataset.totalNanos === total,
      String(expected.totalNanos),
    );
    const charts = await chartsOnPage();
    expect(charts.days).toEqual(
      expected.days.map((d) => ({ key: d.date, nanos: d.costNanos, streams: d.streams })),
    );
    expect(charts.models).toEqual(
      expected.models.map((m) => ({ key: m.model, nanos: m.costNanos, streams: m.streams })),
    );
    // 3 days ago: 100,000 + 1,000,000 + 40,000 + 615,000 nano-dollars.
    expect(charts.days.find((d) => d.key === dateOf(today - 3 * DAY))?.nanos).toBe(1_755_000);
    expect(await page.textContent('#spend-summary')).toContain(
      `alice: ${formatUsd(expected.totalNanos)} over the last 14 days, 3 streams`,
    );
  });

  it('adds each answer to today and to its model as it settles, to the nano-dollar', async () => {
    const { done: first } = await send('What did I spend this week?');
    expect(first?.estimated).toBe(false);
    expect(first!.costNanos).toBe(haikuNanos(first!.usage.inputTokens, first!.usage.outputTokens));
    aliceToday.push({ model: 'claude-haiku-4-5', cost: first!.costNanos });

    await page.selectOption('#model', 'claude-sonnet-4-6');
    const { done: second } = await send('And with a bigger model?');
    expect(second!.costNanos).toBe(
      sonnetNanos(second!.usage.inputTokens, second!.usage.outputTokens),
    );
    aliceToday.push({ model: 'claude-sonnet-4-6', cost: second!.costNanos });

    const expected = expectedSpend('alice', aliceToday);
    const charts = await chartsOnPage();
    expect(charts.days).toEqual(
      expected.days.map((d) => ({ key: d.date, nanos: d.costNanos, streams: d.streams })),
    );
    expect(charts.days.at(-1)).toEqual({
      key: dateOf(today),
      nanos: first!.costNanos + second!.costNanos,
      streams: 2,
    });
    expect(charts.models).toEqual(
      expected.models.map((m) => ({ key: m.model, nanos: m.costNanos, streams: m.streams })),
    );
    // The tallest column is today's or the seeded one, and it fills the plot.
    const heights = await page.$$eval('#spend-days rect.bar', (els) =>
      els.map((el) => Number(el.getAttribute('height'))),
    );
    expect(Math.max(...heights)).toBe(136);
    // The same figures over HTTP, and the ledger agrees with the store's budget counter.
    const spend = (await (
      await fetch(`${demo.url}/api/spend?days=14`, { headers: aliceAuth })
    ).json()) as SpendBody;
    expect(spend.totalNanos).toBe(expected.totalNanos);
    expect(spend.unwritten).toBe(0);
    const budget = (await (
      await fetch(`${demo.url}/api/budget`, { headers: aliceAuth })
    ).json()) as { budget: { spentNanos: number } };
    expect(budget.budget.spentNanos).toBe(spend.days.at(-1)!.costNanos);
    await page.screenshot({ path: `${REPO_ROOT}test-output/demo-spend.png`, fullPage: true });
  });

  it('lists the budget alerts the user crossed, once each, newest first', async () => {
    await page.selectOption('#model', 'claude-haiku-4-5');
    await page.selectOption('#user', 'bob');
    expect(await page.isVisible('#alerts-empty')).toBe(true);
    const costs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { done, state } = await send(`Question ${i + 1} for bob.`);
      if (state !== 'done') break;
      costs.push(done!.costNanos);
    }
    expect(await page.getAttribute('#result', 'data-error-code')).toBe('budget_exceeded');
    // Newest first, as the page lists them.
    const expected = crossedAlerts(costs, 2_500_000, [10, 30, 100])
      .map(({ percent, spentNanos }) => ({ percent: String(percent), spent: String(spentNanos) }))
      .reverse();
    expect(expected.length).toBeGreaterThanOrEqual(1);
    const shown = await page.$$eval('#alert-list li', (els) =>
      els.map((el) => ({
        percent: el.getAttribute('data-percent'),
        spent: el.getAttribute('data-spent-nanos'),
      })),
    );
    expect(shown).toEqual(expected);
    expect(await page.isVisible('#alerts-empty')).toBe(false);
    expect(await page.textContent('#alert-list li')).toContain(
      `${expected[0]!.percent} % of $0.0025 reached: ${formatUsd(Number(expected[0]!.spent))} spent`,
    );
    // bob's history: the seeded stream of yesterday and today's answers, nothing of alice's.
    const expectedBob = expectedSpend(
      'bob',
      costs.map((cost) => ({ model: 'claude-haiku-4-5', cost })),
    );
    const charts = await chartsOnPage();
    expect(charts.days.map((d) => d.nanos)).toEqual(expectedBob.days.map((d) => d.costNanos));
    await page.screenshot({ path: `${REPO_ROOT}test-output/demo-alerts.png`, fullPage: true });
  });

  it('answers 400 for a bad range and 503 while Postgres is down, then recovers', async () => {
    const headers = aliceAuth;
    const bad = await fetch(`${demo.url}/api/spend?days=0`, { headers });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'invalid_request' } });
    db.stop();
    try {
      const down = await fetch(`${demo.url}/api/spend`, { headers });
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ error: { code: 'ledger_unavailable' } });
    } finally {
      db.start();
    }
    const back = await fetch(`${demo.url}/api/spend`, { headers });
    expect(back.status).toBe(200);
  });
});
