/**
 * A stream no format matches — a Gemini chunk, a Cohere event, plain strings —
 * handed to `costTrackedSSE({ upstream })`: metered as nothing, it would settle a
 * "completed" answer at the prompt's cost while the provider billed its output. It fails
 * instead: an `error` event (`handler_error`), the developer told why in the log, and the
 * reservation charged (what the provider billed cannot be known). A stream whose format is
 * known still skips the chunk types it does not know.
 */
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { postSSE } from '../helpers/sse-client.js';

const body = {
  model: 'claude-haiku-4-5',
  max_tokens: 500,
  messages: [{ role: 'user', content: 'Hello there' }],
};

async function* chunks(list: unknown[]) {
  for (const chunk of list) yield chunk;
}

let app: TestApp;
afterEach(async () => {
  await app?.close();
});

async function run(list: unknown[]) {
  app = await startApp({
    express,
    middleware: {
      store: createMemoryStore(),
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      upstream: () => chunks(list),
    },
  });
  const result = await postSSE(app.url, body, { headers: { 'x-user': 'u1' } });
  const [settled] = await app.waitForSettles(1);
  return { result, settled: settled! };
}

describe('a stream of no known format', () => {
  it.each([
    [
      'a Gemini chunk',
      [{ candidates: [{ content: { parts: [{ text: 'Hi' }] } }], usageMetadata: {} }],
      'candidates, usageMetadata',
    ],
    [
      'a Cohere event',
      [{ event_type: 'text-generation', text: 'Hi', is_finished: false }],
      'event_type, text, is_finished',
    ],
    ['plain strings', ['Hello', ' world'], 'string'],
  ])(
    '%s: an error event, the log says why, the reservation is charged',
    async (_name, list, shape) => {
      const { result, settled } = await run(list);
      expect(result.status).toBe(200);
      const error = result.events.find((e) => e.event === 'error');
      expect(error?.json).toMatchObject({ code: 'handler_error' });
      expect(result.events.some((e) => e.event === 'done')).toBe(false);
      expect(settled.outcome).toBe('handler_error');
      // Charged what was reserved, never the prompt alone: the provider may have billed it all.
      expect(settled.final.costNanos).toBe(settled.reservedNanos);
      expect(settled.final.costNanos).toBeGreaterThan(0);
      expect(settled.final.estimated).toBe(true);
      expect(app.errors.join('\n')).toContain(`first chunk is `);
      expect(app.errors.join('\n')).toContain(shape);
    },
  );

  it('a known stream still skips chunk types it does not know', async () => {
    const { result, settled } = await run([
      {
        type: 'message_start',
        message: {
          id: 'msg_1',
          model: 'claude-haiku-4-5',
          usage: { input_tokens: 12, output_tokens: 1 },
        },
      },
      { type: 'some_future_event', payload: 1 },
      'a stray string',
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 3 } },
      { type: 'message_stop' },
    ]);
    expect(result.events.some((e) => e.event === 'done')).toBe(true);
    expect(settled.outcome).toBe('completed');
    // Haiku 4.5: $1 / $5 per million tokens → 12 × 1,000 + 3 × 5,000 nano-dollars.
    expect(settled.final.costNanos).toBe(12 * 1_000 + 3 * 5_000);
  });
});
