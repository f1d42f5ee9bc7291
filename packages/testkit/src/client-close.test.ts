// When the client leaves, generation stops within one chunk and the fake records when and
// how much was sent — the numbers a "stop billing on disconnect" test needs.

import { setTimeout as sleep } from 'node:timers/promises';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import type { RequestRecord } from './types.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 100_000 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

const messages = [{ role: 'user' as const, content: 'Write forever.' }];

function expectStoppedWithinOneChunk(record: RequestRecord, chunk: number) {
  expect(record.stopCause).toBe('client-closed');
  expect(record.clientClosedAt).toBeDefined();
  expect(record.generationStoppedAt).toBeDefined();
  expect(record.generationStoppedAt!).toBeGreaterThanOrEqual(record.clientClosedAt!);
  expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(chunk);
  expect(record.tokensGenerated).toBeLessThan(record.tokensPlanned);
  expect(record.finishedNormally).toBe(false);
  expect(record.usage).toBeUndefined();
}

describe('client aborts', () => {
  it('Anthropic stream helper: abort after the first delta → APIUserAbortError; generation stops at once', async () => {
    const controller = new AbortController();
    const stream = anthropic.messages.stream(
      { model: 'claude-sonnet-4-6', max_tokens: 200_000, messages },
      { signal: controller.signal, headers: { 'x-fake-llm-chunk': '4' } },
    );
    stream.once('text', () => controller.abort());
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);

    const record = await fake.waitForRequest(stream.request_id!);
    expectStoppedWithinOneChunk(record, 4);
    // Nothing more is produced afterwards.
    const generated = record.tokensGenerated;
    await sleep(50);
    expect(record.tokensGenerated).toBe(generated);
  });

  it('Anthropic raw stream: breaking out of the loop closes the connection', async () => {
    const { data: stream, request_id } = await anthropic.messages
      .create(
        { model: 'claude-sonnet-4-6', max_tokens: 200_000, messages, stream: true },
        { headers: { 'x-fake-llm-tps': '2000' } },
      )
      .withResponse();
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && ++deltas === 3) break;
    }
    const record = await fake.waitForRequest(request_id!);
    expectStoppedWithinOneChunk(record, 1);
    expect(record.tokensSent).toBeGreaterThanOrEqual(3);
  });

  it('OpenAI stream helper: abort → APIUserAbortError; the fake sees the close', async () => {
    const controller = new AbortController();
    const stream = openai.chat.completions.stream(
      { model: 'gpt-4o-mini', messages },
      { signal: controller.signal, headers: { 'x-fake-llm-tps': '1000', 'x-fake-llm-chunk': '2' } },
    );
    const closed = new Promise<RequestRecord>((resolve) => fake.once('client-close', resolve));
    stream.once('content', () => controller.abort());
    await expect(stream.finalChatCompletion()).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    const record = await closed;
    await fake.waitForRequest(record.id);
    expectStoppedWithinOneChunk(record, 2);
  });

  it('non-streaming: a client abort mid-generation stops it; nothing was sent', async () => {
    const controller = new AbortController();
    const pending = anthropic.messages.create(
      { model: 'claude-sonnet-4-6', max_tokens: 1000, messages },
      {
        signal: controller.signal,
        headers: { 'x-fake-llm-tokens': '1000', 'x-fake-llm-tps': '500' },
      },
    );
    setTimeout(() => controller.abort(), 100);
    await expect(pending).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
    await fake.waitForIdle();
    const record = fake.lastRequest!;
    expect(record.stopCause).toBe('client-closed');
    expect(record.generationStoppedAt!).toBeGreaterThanOrEqual(record.clientClosedAt!);
    expect(record.tokensSent).toBe(0);
    const generated = record.tokensGenerated;
    await sleep(50);
    expect(record.tokensGenerated).toBe(generated);
    // About 50 tokens at 500 tokens/s in 100 ms: generation ran, then stopped.
    expect(record.tokensGenerated).toBeGreaterThan(10);
    expect(record.tokensGenerated).toBeLessThan(500);
  });
});
