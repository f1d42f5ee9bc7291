/**
 * examples/ai-sdk: the example as a child process in front of a fake Claude started here
 * (ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL), its page in a real headless Chromium — the AI
 * SDK's own DefaultChatTransport and readUIMessageStream, bundled by the example with
 * esbuild. The page shows the provider's text exactly and the final cost from the
 * data-tokenmeter part, equal to a hand computation and to what the server settled; Stop
 * ends the provider call. A screenshot goes to test-output/ai-sdk.png.
 */
import { mkdir } from 'node:fs/promises';
import { formatUsd } from '@tokenmeter/core';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchChromium } from './helpers/browser.js';
import { REPO_ROOT, type Running, startExample, stopAll } from './helpers/process.js';

// claude-haiku-4-5 (the example's model): $1 per million input tokens, $5 per million output.
const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;
const ADA_DAILY_NANOS = 1_000_000_000;
const OUTPUT_DIR = `${REPO_ROOT}test-output/`;

/** The page's globals, typed just enough for the callbacks that run in the browser. */
interface PageGlobals {
  tokenmeterChat: { finished: number };
}

let fake: FakeLLM;
let app: Running;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  // Adversarial text (CR, CRLF, emoji, `data: [DONE]` lines) as fast as the socket goes.
  fake = await startFakeLLM({ apiKey: 'sk-ai-sdk-test', tokens: 60, seed: 11, text: 'mixed' });
  [app, browser] = await Promise.all([
    startExample('ai-sdk/server.mjs', {
      ANTHROPIC_API_KEY: 'sk-ai-sdk-test',
      ANTHROPIC_BASE_URL: fake.url,
    }),
    launchChromium(),
  ]);
  page = await browser.context.newPage();
  await page.goto(app.url);
  // The bundled script ran: it fetched the budget.
  await page.waitForSelector('#remaining[data-nanos]');
});
afterAll(async () => {
  await browser?.close();
  await stopAll();
  await fake?.close();
});

async function spentBy(key: string): Promise<{ spentNanos: number; reservedNanos: number }> {
  const response = await fetch(`${app.url}/api/budget`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return ((await response.json()) as { budget: { spentNanos: number; reservedNanos: number } })
    .budget;
}

async function finished(): Promise<number> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).tokenmeterChat.finished);
}

describe('examples/ai-sdk, in Chromium', () => {
  let firstCost = 0;

  it('shows the exact text and the final cost of the data-tokenmeter part, as settled and by hand', async () => {
    expect(await page.getAttribute('#remaining', 'data-nanos')).toBe(String(ADA_DAILY_NANOS));
    await page.fill('#prompt', 'How do token budgets work? 🌊');
    await page.click('#send');
    await page.waitForSelector('#result[data-state="done"]', { timeout: 10_000 });

    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.headers['x-api-key']).toBe('sk-ai-sdk-test');
    expect(record.maxTokens).toBe(1_024);
    expect(record.stopCause).toBe('completed');
    expect(record.text.length).toBeGreaterThan(0);
    expect(await page.textContent('#answer')).toBe(record.text);

    const { inputTokens, outputTokens } = record.usage!;
    expect(outputTokens).toBe(60);
    const hand = haikuNanos(inputTokens, outputTokens);
    expect(await page.getAttribute('#cost', 'data-nanos')).toBe(String(hand));
    expect(await page.textContent('#cost')).toBe(formatUsd(hand));
    expect(await page.textContent('#cost-kind')).toBe('(exact)');
    expect(await page.textContent('#tokens')).toBe(`${inputTokens} / ${outputTokens}`);
    const settled = await app.waitFor(
      /settled user=ada model=claude-haiku-4-5 output=60 costNanos=(\d+) exact outcome=completed/,
      5_000,
    );
    expect(Number(settled[1])).toBe(hand);
    // The remaining budget of the final part: the day's budget less this answer.
    expect(await page.getAttribute('#remaining', 'data-nanos')).toBe(
      String(ADA_DAILY_NANOS - hand),
    );
    expect(await spentBy('key-ada')).toMatchObject({ spentNanos: hand, reservedNanos: 0 });
    firstCost = hand;
    await mkdir(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: `${OUTPUT_DIR}ai-sdk.png`, fullPage: true });
  });

  it('Stop aborts the fetch mid-stream, and the server ends the provider call', async () => {
    // Slow answers from here on: ~4 s each, so Stop lands mid-stream.
    fake.configure({ tps: 50, tokens: 200 });
    const before = await finished();
    const requests = fake.requests.length;
    await page.fill('#prompt', 'Now a long story, please.');
    await page.click('#send');
    await page.waitForSelector('#result[data-state="streaming"]');
    await expect.poll(() => fake.requests.length, { timeout: 5_000 }).toBe(requests + 1);
    const id = fake.lastRequest!.id;
    await expect
      .poll(() => fake.request(id)?.tokensSent ?? 0, { timeout: 5_000 })
      .toBeGreaterThan(5);
    // The page has shown part of the answer.
    await expect
      .poll(async () => ((await page.textContent('#answer')) ?? '').length, { timeout: 5_000 })
      .toBeGreaterThan(0);
    await page.click('#stop');
    await page.waitForSelector('#result[data-state="stopped"]', { timeout: 5_000 });
    await page.waitForFunction(
      (n) => (globalThis as unknown as PageGlobals).tokenmeterChat.finished > n,
      before,
    );

    const record = await fake.waitForRequest(id, { timeoutMs: 5_000 });
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensSent).toBeLessThan(200);
    // What the page shows is a prefix of what the fake sent.
    const shown = (await page.textContent('#answer')) ?? '';
    expect(shown.length).toBeGreaterThan(0);
    expect(record.text.startsWith(shown)).toBe(true);
    // Charged once, an estimate of the partial answer; the page asked for the budget left.
    const settled = await app.waitFor(
      /settled user=ada model=claude-haiku-4-5 output=\d+ costNanos=(\d+) estimated outcome=client_disconnected/,
      5_000,
    );
    const partial = Number(settled[1]);
    expect(partial).toBeGreaterThan(0);
    expect(await spentBy('key-ada')).toMatchObject({
      spentNanos: firstCost + partial,
      reservedNanos: 0,
    });
    await page.waitForSelector(
      `#remaining[data-nanos="${ADA_DAILY_NANOS - firstCost - partial}"]`,
      { timeout: 5_000 },
    );
    fake.configure({ tps: 0, tokens: 60 });
  });
});
