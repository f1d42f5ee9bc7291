// One fake process serves 1,000 concurrent paced streams, each complete and exact.

import { Agent, request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';

/**
 * Paced length of each stream: 30 tokens at 2 tokens/s. Long beside the time it takes to
 * open 1,000 connections — about a second when idle, and 9 s was seen on a machine running
 * two test suites and a benchmark at once — so the streams overlap however busy it is.
 */
const STREAM_MS = 15_000;
/**
 * The bound on the whole run. Streams served one after another would take 1,000 × 15 s, ten
 * at a time 25 minutes; at once they take 15 s plus the overhead of 1,000 connections,
 * which a busy machine stretches. So the bound is loose, and the test's own timeout is
 * above it: the assertion, not Vitest's 5 s default, decides.
 */
const WALL_BOUND_MS = 60_000;

let fake: FakeLLM;
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 30, tps: (30 * 1_000) / STREAM_MS, text: 'plain', seed: 5 });
});

afterAll(async () => {
  agent.destroy();
  await fake.close();
});

function streamOnce(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${fake.url}/v1/messages`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (data: string) => {
        raw += data;
      });
      res.on('end', () => resolve(raw));
      res.on('error', reject);
    });
    req.end(
      JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
  });
}

function textOf(raw: string): string {
  let text = '';
  for (const event of raw.split('\n\n')) {
    const data = event.split('\n')[1];
    if (!data?.startsWith('data: ')) continue;
    const parsed = JSON.parse(data.slice('data: '.length));
    if (parsed.type === 'content_block_delta') text += parsed.delta.text;
  }
  return text;
}

it('serves 1,000 concurrent streams from one process', {
  timeout: WALL_BOUND_MS + 30_000,
}, async () => {
  const streams = 1000;
  let peak = 0;
  fake.on('request-start', () => {
    peak = Math.max(peak, fake.inFlight);
  });
  const started = performance.now();
  const bodies = await Promise.all(Array.from({ length: streams }, () => streamOnce()));
  const elapsed = performance.now() - started;

  const expected = seededText({ seed: 5, tokens: 30, text: 'plain' });
  expect(
    bodies.every((raw) => raw.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')),
  ).toBe(true);
  expect(bodies.every((raw) => textOf(raw) === expected)).toBe(true);
  expect(peak).toBeGreaterThanOrEqual(streams * 0.9);
  expect(fake.totals.requests).toBe(streams);
  expect(fake.totals.tokensSent).toBe(streams * 30);
  expect(fake.requests.every((r) => r.finishedNormally && r.usage?.outputTokens === 30)).toBe(true);
  // 15 s of pacing per stream; the rest is overhead for 1,000 streams at once.
  expect(elapsed).toBeGreaterThanOrEqual(STREAM_MS * 0.9);
  expect(elapsed).toBeLessThan(WALL_BOUND_MS);
});
