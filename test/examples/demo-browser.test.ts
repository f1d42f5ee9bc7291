/**
 * The demo as a user meets it: `npm run demo` from the repository root (build included),
 * then the page in a real headless Chromium: opened bare it asks for a key, a pasted key is
 * checked, the printed link hands it every key. One answer streams with a live token count
 * and cost that match the `done` event; Stop aborts a second answer and the page shows
 * the estimated partial charge the server settled; the tiny budget runs out and the page
 * says so. A screenshot goes to test-output/demo.png.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { formatUsd } from '@tokenmeter/core';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchChromium } from './helpers/browser.js';
import { demoKeys, demoLink, sendAndWait } from './helpers/demo-page.js';
import { freePort, REPO_ROOT, type Running, start, stopAll } from './helpers/process.js';
import { eventOf, parseSse, textOf } from './helpers/sse.js';

const OUTPUT_DIR = `${REPO_ROOT}test-output/`;
// claude-haiku-4-5: $1 per million input tokens, $5 per million output tokens.
const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;

interface Done {
  usage: { inputTokens: number; outputTokens: number };
  costNanos: number;
  estimated: boolean;
  budget: { remainingUsd: number };
}
interface Settlement {
  outcome: string;
  usage: { inputTokens: number; outputTokens: number };
  costNanos: number;
  estimated: boolean;
}
/**
 * The page's globals, typed just enough for the callbacks that run in the browser (this
 * project's TypeScript has no DOM library; the casts vanish when the callback is sent).
 */
interface PageGlobals {
  tokenmeterDemo: { finished: number; settlement: Settlement | null; text: string };
  localStorage: { getItem(name: string): string | null };
  document: {
    querySelector(selector: string): {
      dataset: Record<string, string | undefined>;
      textContent: string | null;
    } | null;
  };
}

let demo: Running;
let browser: Browser;
let page: Page;
/** Bodies of the page's POST /api/chat responses, in order. */
const chatBodies: Promise<string>[] = [];
let firstDone: Done;
/** The keys `npm run demo` drew and printed, by user id, and the link it printed. */
let keys: Record<string, string>;
let link: string;

beforeAll(async () => {
  // `npm run demo` reinstalls (npm ci) when node_modules is older than the lock file: that
  // must never happen under a running test suite.
  const marker = `${REPO_ROOT}node_modules/.package-lock.json`;
  if (
    !existsSync(marker) ||
    statSync(marker).mtimeMs < statSync(`${REPO_ROOT}package-lock.json`).mtimeMs
  ) {
    throw new Error('node_modules is older than package-lock.json: run `npm ci` first.');
  }
  await mkdir(OUTPUT_DIR, { recursive: true });
  const port = await freePort();
  demo = await start({
    command: 'npm',
    args: ['run', 'demo'],
    env: {
      PORT: String(port),
      // Brisk but still a stream: ~2 s per answer, so Stop lands mid-stream.
      TOKENMETER_DEMO_FAKE_TPS: '100',
      TOKENMETER_DEMO_FAKE_TTFT_MS: '150',
    },
    timeoutMs: 120_000,
  });
  keys = demoKeys(demo.output());
  link = await demoLink(demo);
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('response', (response) => {
    if (response.request().method() === 'POST' && response.url().endsWith('/api/chat')) {
      chatBodies.push(response.text().catch(() => ''));
    }
  });
  await page.goto(demo.url);
  await page.waitForSelector('body[data-ready="true"]');
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await stopAll();
});

async function budgetOf(user: string) {
  const response = await fetch(`${demo.url}/api/budget`, {
    headers: { authorization: `Bearer ${keys[user]}` },
  });
  return (await response.json()) as { budget: { spentNanos: number; remainingNanos: number } };
}

describe('npm run demo, in Chromium', () => {
  it('prints its URL and says it uses the in-process fake Claude', () => {
    expect(demo.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(demo.output()).toMatch(/answers from the testkit's fake Claude in this process/);
    expect(demo.output()).toMatch(/set ANTHROPIC_API_KEY to use the real API/);
  });

  it('opened without a key, asks for one; a pasted key is checked, kept, and its user chosen', async () => {
    expect(Object.keys(keys)).toEqual(['alice', 'bob']);
    expect(await page.getAttribute('body', 'data-keys')).toBe('0');
    expect(await page.isDisabled('#send')).toBe(true);
    expect(await page.textContent('#key-hint')).toContain('No key yet');
    expect(await page.$$eval('#user option', (els) => els.length)).toBe(0);
    // A user id is not a key.
    await page.fill('#key', 'alice');
    await page.click('#key-add');
    await page.waitForSelector('#notice:not([hidden])');
    expect(await page.textContent('#notice')).toContain('Unknown key.');
    expect(await page.getAttribute('body', 'data-keys')).toBe('0');
    await page.fill('#key', keys.alice!);
    await page.click('#key-add');
    await page.waitForSelector('body[data-keys="1"]');
    expect(await page.isHidden('#notice')).toBe(true);
    expect(await page.inputValue('#user')).toBe('alice');
    expect(await page.inputValue('#key')).toBe('');
    expect(await page.isEnabled('#send')).toBe(true);
    expect(await page.textContent('#curl')).toContain(`Bearer ${keys.alice}`);
  });

  it('the printed link hands the page every key, which it keeps, and leaves the address bar', async () => {
    expect(link).toBe(`${demo.url}/#keys=${keys.alice},${keys.bob}`);
    await page.goto(link);
    await page.waitForSelector('body[data-ready="true"][data-keys="2"]');
    expect(await page.$$eval('#user option', (els) => els.map((el) => el.textContent))).toEqual([
      'alice · $1.00 a day',
      'bob · $0.0025 a day',
    ]);
    expect(page.url()).toBe(`${demo.url}/`);
    // Kept for the next visit: the bare URL knows both users now.
    const stored = await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).localStorage.getItem('tokenmeter-demo-keys'),
    );
    expect(JSON.parse(stored ?? '[]')).toEqual([keys.alice, keys.bob]);
    await page.goto(demo.url);
    await page.waitForSelector('body[data-ready="true"][data-keys="2"]');
  });

  it('runs without a database: the spend history says how to turn it on', async () => {
    expect(demo.output()).toMatch(/spend not recorded \(set DATABASE_URL/);
    expect(await page.isVisible('#spend-off')).toBe(true);
    expect(await page.isVisible('#spend-on')).toBe(false);
    expect(await page.textContent('#spend-off')).toContain('DATABASE_URL');
  });

  it('streams an answer with a live token count and cost that match the done event', async () => {
    await page.selectOption('#user', 'alice');
    await page.fill('#prompt', 'Tell me how token budgets work.');
    await page.click('#send');
    // Mid-stream: text and a running (estimated) count are already on the page.
    await page.waitForFunction(
      () => {
        const { document } = globalThis as unknown as PageGlobals;
        const result = document.querySelector('#result');
        return (
          result?.dataset.state === 'streaming' &&
          Number(result.dataset.outputTokens ?? 0) > 2 &&
          (document.querySelector('#output')?.textContent ?? '').length > 0
        );
      },
      undefined,
      { timeout: 10_000 },
    );
    expect(await page.textContent('#stat-cost-kind')).toBe('estimated');
    await page.waitForSelector('#result[data-state="done"]', { timeout: 20_000 });

    const events = parseSse(await chatBodies[0]!);
    firstDone = eventOf(events, 'done') as unknown as Done;
    const text = textOf(events);
    expect(text.length).toBeGreaterThan(100);
    expect(await page.textContent('#output')).toBe(text);
    expect(firstDone.estimated).toBe(false);
    expect(firstDone.costNanos).toBe(
      haikuNanos(firstDone.usage.inputTokens, firstDone.usage.outputTokens),
    );
    expect(await page.textContent('#stat-output')).toBe(
      firstDone.usage.outputTokens.toLocaleString('en-US'),
    );
    expect(await page.textContent('#stat-input')).toBe(String(firstDone.usage.inputTokens));
    expect(await page.textContent('#stat-cost')).toBe(formatUsd(firstDone.costNanos));
    expect(await page.textContent('#stat-cost-kind')).toBe('exact');
    expect(await page.getAttribute('#result', 'data-cost-nanos')).toBe(String(firstDone.costNanos));
    const remaining = 1_000_000_000 - firstDone.costNanos;
    expect(firstDone.budget.remainingUsd).toBe(remaining / 1e9);
    expect(await page.textContent('#summary')).toContain(`${formatUsd(remaining)} left today`);
    // The budget panel refreshes from GET /api/budget after the stream.
    await page.waitForFunction(
      (nanos) =>
        (globalThis as unknown as PageGlobals).document.querySelector('#budget-spent')?.dataset
          .nanos === nanos,
      String(firstDone.costNanos),
      { timeout: 5_000 },
    );
    expect(await page.textContent('#budget-remaining')).toBe(formatUsd(remaining));
    expect((await budgetOf('alice')).budget.spentNanos).toBe(firstDone.costNanos);
    await demo.waitFor(/settled user=alice .*outcome=completed/, 5_000);
    await page.screenshot({ path: `${OUTPUT_DIR}demo-answer.png`, fullPage: true });
  });

  it('Stop aborts mid-stream and shows the estimated partial charge the server settled', async () => {
    await page.fill('#prompt', 'Now a long story about a lighthouse, please.');
    await page.click('#send');
    await page.waitForFunction(
      () =>
        Number(
          (globalThis as unknown as PageGlobals).document.querySelector('#result')?.dataset
            .outputTokens ?? 0,
        ) >= 3,
      undefined,
      { timeout: 10_000 },
    );
    await page.click('#stop');
    await page.waitForSelector('#result[data-state="stopped"]', { timeout: 10_000 });

    const settlement = await page.evaluate(
      () => (globalThis as unknown as PageGlobals).tokenmeterDemo.settlement,
    );
    expect(settlement).not.toBeNull();
    expect(settlement!.outcome).toBe('client_disconnected');
    expect(settlement!.estimated).toBe(true);
    expect(settlement!.usage.outputTokens).toBeGreaterThanOrEqual(3);
    // The fake's shortest answer is 120 tokens: this one was cut before its end.
    expect(settlement!.usage.outputTokens).toBeLessThan(120);
    expect(settlement!.costNanos).toBe(
      haikuNanos(settlement!.usage.inputTokens, settlement!.usage.outputTokens),
    );
    expect(await page.textContent('#stat-cost')).toBe(formatUsd(settlement!.costNanos));
    expect(await page.textContent('#stat-cost-kind')).toBe('estimated');
    const summary = await page.textContent('#summary');
    expect(summary).toContain(`Charged ${formatUsd(settlement!.costNanos)}`);
    expect(summary).toContain('estimated');
    expect((await page.textContent('#output'))!.length).toBeGreaterThan(0);
    // Charged exactly once: the budget holds the first answer plus this partial one.
    expect((await budgetOf('alice')).budget.spentNanos).toBe(
      firstDone.costNanos + settlement!.costNanos,
    );
    await demo.waitFor(/settled user=alice .*estimated outcome=client_disconnected/, 5_000);
  });

  it('shows a clear rejection when the tiny budget runs out, and nothing streams', async () => {
    await page.selectOption('#user', 'bob');
    const states: string[] = [];
    for (let i = 0; i < 5 && !states.includes('rejected'); i++) {
      states.push(await sendAndWait(page, `Question number ${i + 1} for bob.`));
    }
    // "A request or two" go through, then the daily budget cannot cover the next one.
    expect(states.at(-1)).toBe('rejected');
    expect(states.slice(0, -1).length).toBeGreaterThanOrEqual(1);
    expect(states.slice(0, -1).every((s) => s === 'done')).toBe(true);
    expect(await page.getAttribute('#result', 'data-error-code')).toBe('budget_exceeded');
    expect(await page.isVisible('#notice')).toBe(true);
    expect(await page.getAttribute('#notice', 'data-kind')).toBe('budget');
    expect(await page.textContent('#notice')).toContain("Budget exceeded: bob's daily budget");
    expect(await page.textContent('#output')).toBe('');
    expect(await page.textContent('#stat-status')).toBe('Rejected (402)');

    await page.screenshot({ path: `${OUTPUT_DIR}demo.png`, fullPage: true });
  });
});
