// The fake honours backpressure on its own side: when the client stops reading, its writes
// block and generation pauses instead of buffering the whole answer; reading again resumes
// it. (Loopback socket buffers hold megabytes, hence the very long answer.)

import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';

let fake: FakeLLM;

beforeAll(async () => {
  fake = await startFakeLLM();
});

afterAll(async () => {
  await fake.close();
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

it('a paused reader blocks the writes and holds generation far below the requested length', async () => {
  const tokens = 20_000_000;
  const chunk = 500;
  const body = JSON.stringify({
    model: 'claude-sonnet-4-6',
    max_tokens: tokens,
    stream: true,
    messages: [{ role: 'user', content: 'Write a very long answer.' }],
  });
  const req = request(`${fake.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-fake-llm-tokens': String(tokens),
      'x-fake-llm-chunk': String(chunk),
    },
  });
  const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end(body);
  });
  response.pause();
  const id = response.headers['request-id'] as string;
  const record = fake.request(id)!;

  await until(() => record.writesBlocked > 0);
  const generatedWhenBlocked = record.tokensGenerated;
  await sleep(150);
  // Paused: no token generated since the socket stopped draining.
  expect(record.tokensGenerated).toBe(generatedWhenBlocked);
  expect(record.tokensGenerated).toBe(record.tokensSent);
  expect(record.tokensGenerated).toBeLessThan(tokens / 4);
  // What sits in the fake's own buffer stays around one high-water mark, not the answer.
  expect(record.maxBufferedBytes).toBeLessThan(256 * 1024);

  let bytes = 0;
  response.on('data', (data: Buffer) => {
    bytes += data.length;
  });
  response.resume();
  // Reading again lets the socket drain, and generation picks up where it stopped.
  await until(() => record.tokensGenerated > generatedWhenBlocked + 10 * chunk);
  expect(bytes).toBeGreaterThan(0);
  req.destroy();

  const ended = await fake.waitForRequest(id);
  expect(ended.stopCause).toBe('client-closed');
  expect(ended.writesBlocked).toBeGreaterThan(0);
  expect(ended.blockedMs).toBeGreaterThanOrEqual(140);
  expect(ended.tokensGenerated - ended.tokensSentAtClientClose!).toBeLessThanOrEqual(chunk);
});
