/** Starts the fake upstream process (upstream.mjs) and talks to its admin port. */
import { fileURLToPath } from 'node:url';
import { spawnChild, waitForLine } from './processes.mjs';

export async function startUpstream() {
  const child = spawnChild(
    process.execPath,
    [fileURLToPath(new URL('./upstream.mjs', import.meta.url))],
    {
      name: 'upstream',
    },
  );
  const line = await waitForLine(child, /^upstream \d+ \d+/, 20_000);
  const [, apiPort, adminPort] = line.split(' ').map(Number);
  const admin = `http://127.0.0.1:${adminPort}`;
  const call = async (method, path, body) => {
    const response = await fetch(`${admin}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok)
      throw new Error(`upstream ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  return {
    child,
    pid: child.pid,
    url: `http://127.0.0.1:${apiPort}`,
    /** Forgets records and totals and sets the knobs of the next workload. */
    async prepare(knobs = {}) {
      await call('POST', '/__reset');
      if (Object.keys(knobs).length > 0) await call('POST', '/__configure', knobs);
    },
    totals: () => call('GET', '/__totals'),
    marks: () => call('GET', '/__marks'),
    /** Polls the totals until `predicate(totals)` holds or `timeoutMs` passed; returns the last. */
    async waitUntil(predicate, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      let totals = await call('GET', '/__totals');
      while (!predicate(totals) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        totals = await call('GET', '/__totals');
      }
      return totals;
    },
    /** Waits until no upstream response is open (or `timeoutMs` passed); returns the totals. */
    waitIdle(timeoutMs) {
      return this.waitUntil((totals) => totals.inFlight === 0, timeoutMs);
    },
  };
}
