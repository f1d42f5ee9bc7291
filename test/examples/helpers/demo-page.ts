/**
 * Test helpers for the demo: its keys and link from the startup log, driving its page, and
 * the budget alerts a run of costs crosses.
 */
import type { Page } from 'playwright-core';
import type { Running } from './process.js';

/** The random keys the demo printed when it started (`keys alice=…, bob=…`), by user id. */
export function demoKeys(output: string): Record<string, string> {
  const line = /demo: keys (\S+=.*) \(new at every start/.exec(output)?.[1];
  if (!line) throw new Error(`the demo printed no keys:\n${output}`);
  return Object.fromEntries(line.split(', ').map((pair) => pair.split('=') as [string, string]));
}

/** The link the demo prints after its URL, which hands the page its keys. */
export async function demoLink(demo: Running): Promise<string> {
  return (await demo.waitFor(/demo: open (http:\/\/\S+)/, 5_000))[1]!;
}

/** The page's `window.tokenmeterDemo`, typed just enough for callbacks run in the browser. */
interface DemoGlobals {
  tokenmeterDemo: { finished: number };
}

/**
 * Types `prompt`, clicks Send and resolves when the page has finished with that request
 * (any outcome: done, stopped, rejected, error), with the result card's `data-state`.
 */
export async function sendAndWait(page: Page, prompt: string): Promise<string> {
  const before = await page.evaluate(
    () => (globalThis as unknown as DemoGlobals).tokenmeterDemo.finished,
  );
  await page.fill('#prompt', prompt);
  await page.click('#send');
  await page.waitForFunction(
    (n) => (globalThis as unknown as DemoGlobals).tokenmeterDemo.finished > n,
    before,
    { timeout: 20_000 },
  );
  return (await page.getAttribute('#result', 'data-state')) ?? '';
}

/**
 * The alerts a user's streams cross, by hand: each threshold (percent of `limitNanos`) the
 * running spend reaches, once, with the spend after the stream that reached it; oldest first.
 */
export function crossedAlerts(
  costs: readonly number[],
  limitNanos: number,
  percents: readonly number[],
): Array<{ percent: number; spentNanos: number }> {
  const crossed: Array<{ percent: number; spentNanos: number }> = [];
  let spent = 0;
  for (const cost of costs) {
    const before = spent;
    spent += cost;
    for (const percent of percents) {
      const threshold = (limitNanos * percent) / 100;
      if (before < threshold && spent >= threshold) crossed.push({ percent, spentNanos: spent });
    }
  }
  return crossed;
}
