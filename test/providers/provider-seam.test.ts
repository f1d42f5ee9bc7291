/**
 * Adding a provider is one file and one line: `fixtures/acme-provider.ts` (an adapter for a
 * Gemini-shaped stream) and `registerProvider(acmeProvider)`. Before that line its stream
 * cannot be metered and fails (charged its reservation); after it, the same route streams
 * the text and charges the provider's usage at the catalog's price, to the nano-dollar, and
 * its requests are read and forwarded by its own rules.
 */
import { Pricing, PricingCatalog } from '@tokenmeter/core';
import { registerProvider } from '@tokenmeter/core/providers';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { acmeProvider } from '../fixtures/acme-provider.js';
import { identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { eventData, postSSE } from '../helpers/sse-client.js';

// acme-1: $2 input, $8 output per million tokens.
const catalog = PricingCatalog.bundled().extend([
  { id: 'acme-1', provider: 'acme', rates: { input: '2', output: '8' } },
]);
const handCost = (input: number, output: number) => input * 2_000 + output * 8_000;

const answer = [
  { candidates: [{ content: { parts: [{ text: 'Tide pools ' }] } }] },
  { candidates: [{ content: { parts: [{ text: 'hold anemones.' }] } }] },
  {
    candidates: [{ content: { parts: [] }, finishReason: 'STOP' }],
    usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 5 },
  },
];

let app: TestApp;
afterEach(async () => {
  await app?.close();
});

async function stream() {
  app = await startApp({
    express,
    middleware: {
      store: createMemoryStore(),
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '1.00', period: 'day' } },
      pricing: new Pricing({ catalog }),
      request: (_req, body) => {
        const b = body as { model: string; max_tokens: number; messages: unknown[] };
        return {
          model: b.model,
          maxTokens: b.max_tokens,
          provider: 'acme',
          input: { messages: b.messages },
        };
      },
      upstream: async function* () {
        for (const chunk of answer) yield chunk;
      },
    },
  });
  const result = await postSSE(
    app.url,
    { model: 'acme-1', max_tokens: 200, messages: [{ role: 'user', content: 'Tide pools?' }] },
    { headers: { 'x-user': 'ada' } },
  );
  const [settled] = await app.waitForSettles(1);
  return { result, settled: settled! };
}

describe('a provider added as one adapter file and one registry line', () => {
  it('unregistered, its stream is not metered as nothing: it fails and is charged its reservation', async () => {
    const { result, settled } = await stream();
    expect(eventData<{ code: string }>(result, 'error').code).toBe('handler_error');
    expect(settled.outcome).toBe('handler_error');
    expect(settled.final.costNanos).toBe(settled.reservedNanos);
    expect(app.errors.join('\n')).toMatch(/first chunk is an object with keys candidates/);
  });

  it('registered, its stream is metered: the text, and the usage at the catalog price', async () => {
    registerProvider(acmeProvider);
    const { result, settled } = await stream();
    expect(result.text).toBe('Tide pools hold anemones.');
    const done = eventData<{ costNanos: number; estimated: boolean; stopReason: string }>(
      result,
      'done',
    );
    expect(done).toMatchObject({
      costNanos: handCost(12, 5),
      estimated: false,
      stopReason: 'STOP',
    });
    expect(settled.outcome).toBe('completed');
    expect(settled.provider).toBe('acme');
    expect(settled.final.usage).toMatchObject({ inputTokens: 12, outputTokens: 5 });
  });

  it('a second adapter under a registered name is refused, saying so', () => {
    registerProvider(acmeProvider); // the same adapter again: nothing changes
    expect(() => registerProvider({ ...acmeProvider })).toThrow(
      /named "acme" is registered already/,
    );
  });

  it("registered, its requests are read and forwarded by its own rules: the output limit the budget fits, in acme's field", async () => {
    registerProvider(acmeProvider);
    const sent: unknown[] = [];
    app = await startApp({
      express,
      middleware: {
        store: createMemoryStore(),
        identify: identifyByHeader,
        // 1,000 nanos: $0.000001. Budget $0.01 = 10,000,000 nanos.
        budgets: { user: { limitUsd: '0.01', period: 'day' } },
        pricing: new Pricing({ catalog }),
        reservation: 'fit',
        request: (_req, body) => {
          const b = body as { model: string; generationConfig: { maxOutputTokens: number } };
          return {
            model: b.model,
            maxTokens: b.generationConfig.maxOutputTokens,
            provider: 'acme',
            inputTokens: 100,
            input: b as unknown as Record<string, unknown>,
          };
        },
        upstream: async function* (_req, meter) {
          sent.push(meter.params.generationConfig);
          for (const chunk of answer) yield chunk;
        },
      },
    });
    const ask = (generationConfig: Record<string, number>) =>
      postSSE(
        app.url,
        { model: 'acme-1', contents: [{ parts: [{ text: 'Tide pools?' }] }], generationConfig },
        { headers: { 'x-user': 'ada' } },
      );
    const refused = await ask({ maxOutputTokens: 100, candidateCount: 3 });
    expect(refused.status).toBe(400);
    expect((refused.body as { error: { code: string } }).error.code).toBe('unbounded_request');
    // $0.01 covers the 100-token prompt ($0.0002) and (10,000,000 - 200,000) / 8,000 = 1,225 output tokens.
    const fitted = await ask({ maxOutputTokens: 60_000, candidateCount: 1 });
    expect(fitted.status).toBe(200);
    expect(sent).toEqual([{ maxOutputTokens: 1_225, candidateCount: 1 }]);
  });
});
