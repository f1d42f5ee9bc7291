/**
 * Whether a slow client holds the provider back through each library (measured, as the
 * README says): a LangChain.js stream is pulled chunk by chunk, so the provider is held
 * back as with the raw SDK stream; the AI SDK's streamText() reads the provider's answer
 * whatever its reader does (like the Anthropic SDK's MessageStream helper), so the answer
 * piles up in the process instead — bounded by max_tokens, let go by stallTimeoutMs.
 */
import { createMemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express from 'express';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { slowRead } from '../helpers/slow-read.js';
import { sourceUpstream } from '../helpers/sources.js';

let fake: FakeLLM;
let app: TestApp;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, seed: 4 });
  app = await startApp({
    express,
    middleware: {
      store: createMemoryStore(),
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '100', period: 'day' } },
      upstream: sourceUpstream(fake.url),
      maxTokensLimit: 1_000_000,
    },
  });
});
afterAll(async () => {
  await app.close();
  await fake.close();
});

const request = (maxTokens: number) => ({
  model: 'gpt-4o-mini',
  max_tokens: maxTokens,
  messages: [{ role: 'user', content: 'Write for a long time.' }],
});

it('LangChain.js: a slow reader holds the provider back', async () => {
  const planned = 1_000_000;
  // Up to 60 s for the buffers to fill: seconds when quiet, longer beside other suites.
  const { res, received, record } = await slowRead(
    fake,
    app.url,
    request(planned),
    planned,
    { 'x-user': 'bp-langchain', 'x-source': 'langchain' },
    60_000,
  );
  expect(record.writesBlocked).toBeGreaterThan(0);
  expect(record.tokensGenerated).toBeLessThan(planned / 2);
  expect(received).toBeGreaterThan(0);
  res.destroy();
}, 90_000);

it("the AI SDK: streamText() reads the provider's whole answer whatever the reader does", async () => {
  const planned = 20_000;
  const { res, received, record } = await slowRead(
    fake,
    app.url,
    request(planned),
    planned,
    { 'x-user': 'bp-ai-sdk', 'x-source': 'ai-sdk' },
    60_000,
  );
  expect(record.tokensGenerated).toBe(planned);
  expect(record.writesBlocked).toBe(0);
  // ~40 bytes of SSE per token went to a reader that took a fraction of it.
  expect(received).toBeLessThan(planned * 10);
  res.destroy();
}, 90_000);
