/**
 * Hardening matrix — clients that leave at every point of a request's life. The upstream
 * call is never started or is aborted, and the ledger balances.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Store } from '@tokenmeter/core';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { BUDGET, body, expectBooksBalanced, startHarness } from '../helpers/harness.js';
import { postSSE } from '../helpers/sse-client.js';

let fake: FakeLLM;
let store: MemoryStore;
let app: TestApp;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 200, tokens: 400, chunk: 1, seed: 5 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown();
  fake.reset();
});

/** The real memory store with a slow admission (a store under load), nothing else changed. */
function slowAdmissions(inner: Store, delayMs: number): Store {
  return {
    admit: async (request) => {
      await new Promise((r) => setTimeout(r, delayMs));
      return inner.admit(request);
    },
    settle: (id, actual) => inner.settle(id, actual),
    extend: (id, request) => inner.extend(id, request),
    release: (id) => inner.release(id),
    getState: (scope, policy) => inner.getState(scope, policy),
    now: () => inner.now(),
  };
}

function openRaw(
  url: string,
  user: string,
  headers: Record<string, string>,
  extra: Record<string, unknown>,
): Promise<{ res: IncomingMessage; destroy(): void }> {
  const target = new URL(url);
  const payload = JSON.stringify(body(extra));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          'x-user': user,
          ...headers,
        },
      },
      (res) => resolve({ res, destroy: () => req.destroy() }),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('client disconnects', () => {
  it('before admission completes: the reservation is released and the provider never called', async () => {
    store = createMemoryStore();
    app = await startHarness(fake, slowAdmissions(store, 300));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      postSSE(app.url, body(), { headers: { 'x-user': 'c-early' }, signal: controller.signal }),
    ).rejects.toThrow();
    // The admission finishes at ~300 ms, finds the client gone and releases at once.
    await new Promise((r) => setTimeout(r, 600));
    await expect
      .poll(
        async () => {
          const state = await store.getState({ kind: 'user', id: 'c-early' }, { budget: BUDGET });
          return { ...state.budget, open: state.reservations.open };
        },
        { timeout: 5_000, interval: 50 },
      )
      .toMatchObject({ spentNanos: 0, reservedNanos: 0, open: 0 });
    expect(fake.requests).toHaveLength(0);
    expect(app.settles).toHaveLength(0);
  });

  it('between admission and the first token: the upstream call is aborted, only input charged', async () => {
    store = createMemoryStore();
    app = await startHarness(fake, store);
    await postSSE(app.url, body(), {
      headers: { 'x-user': 'c-ttft', 'x-fake-llm-ttft-ms': '1000' },
      abortWhen: (event) => event.event === 'meta',
    });
    const { settles } = await expectBooksBalanced(store, 'c-ttft', app, 1);
    const record = await fake.waitForRequest(fake.lastRequest!.id, { timeoutMs: 5_000 });
    expect(record.clientClosedAt).toBeDefined();
    expect(record.tokensGenerated).toBe(0);
    expect(settles[0]!.outcome).toBe('client_disconnected');
    expect(settles[0]!.final.usage.outputTokens).toBe(0);
    expect(settles[0]!.final.costNanos).toBe(settles[0]!.final.usage.inputTokens * 1_000);
  });

  it('a client that never reads: the stream waits on backpressure, then settles when it leaves', async () => {
    store = createMemoryStore();
    app = await startHarness(fake, store, {
      maxTokensLimit: 1_000_000,
      budgets: { user: { limitUsd: '20', period: 'day' } },
    });
    const { res, destroy } = await openRaw(
      app.url,
      'c-never',
      { 'x-fake-llm-tokens': '1000000', 'x-fake-llm-tps': '0' },
      { max_tokens: 1_000_000 },
    );
    res.pause();
    await new Promise((r) => setTimeout(r, 1_500));
    destroy();
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('client_disconnected');
    expect(fake.lastRequest!.tokensGenerated).toBeLessThan(1_000_000);
    const state = await store.getState(
      { kind: 'user', id: 'c-never' },
      { budget: { limitNanos: 20_000_000_000, period: 'day' } },
    );
    expect(state.budget!.spentNanos).toBe(settle!.final.costNanos);
    expect(state.budget!.reservedNanos).toBe(0);
  });

  it('many clients disconnecting at once: every stream settles once and every upstream call stops', async () => {
    store = createMemoryStore();
    app = await startHarness(fake, store);
    const N = 40;
    await Promise.all(
      Array.from({ length: N }, () =>
        postSSE(app.url, body(), {
          headers: { 'x-user': 'c-storm' },
          abortWhen: (event) => event.event === 'delta',
        }),
      ),
    );
    const { settles } = await expectBooksBalanced(store, 'c-storm', app, N);
    expect(settles).toHaveLength(N);
    expect(settles.every((s) => s.outcome === 'client_disconnected')).toBe(true);
    await fake.waitForIdle({ timeoutMs: 5_000 });
    for (const record of fake.requests) {
      expect(record.stopCause).toBe('client-closed');
      expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(1);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(app.settles).toHaveLength(N); // exactly once each
  });
});
