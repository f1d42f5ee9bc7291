/**
 * Hardening matrix — provider faults. Every case ends with an SSE `done` or `error` whose
 * code names the cause, and a balanced ledger (spend = what was settled, nothing reserved).
 */
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../helpers/app.js';
import { body, expectBooksBalanced, handCost, startHarness } from '../helpers/harness.js';
import { eventData, postSSE } from '../helpers/sse-client.js';

let fake: FakeLLM;
let store: MemoryStore;
let app: TestApp;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 80, chunk: 2, seed: 11 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown();
  fake.reset();
});

async function run(user: string, headers: Record<string, string>, extra = {}) {
  store = createMemoryStore();
  app = await startHarness(fake, store, extra);
  const result = await postSSE(app.url, body(), { headers: { 'x-user': user, ...headers } });
  const books = await expectBooksBalanced(store, user, app, 1);
  const last = fake.lastRequest;
  const record = last ? await fake.waitForRequest(last.id, { timeoutMs: 5_000 }) : undefined;
  return { result, settle: books.settles[0]!, record };
}

describe('provider faults', () => {
  it.each([
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
    [529, 'overloaded_error'],
  ])(
    'HTTP %i before the stream → error upstream_error (%s), nothing charged',
    async (status, type) => {
      const { result, settle } = await run(`p${status}`, { 'x-fake-llm-fault': String(status) });
      expect(eventData(result, 'error')).toMatchObject({
        code: 'upstream_error',
        upstreamStatus: status,
        upstreamType: type,
        costNanos: 0,
      });
      expect(settle.final.costNanos).toBe(0);
      // The provider's error message is not relayed: it can hold request details.
      expect(result.events.at(-1)!.data).not.toMatch(/x-api-key|Bearer|test-key/);
    },
  );

  it('headers then silence → error upstream_idle after the idle timeout; input estimate charged', async () => {
    const { result, settle, record } = await run(
      'p-hang',
      { 'x-fake-llm-fault': 'hang' },
      { idleTimeoutMs: 300 },
    );
    expect(eventData(result, 'error')).toMatchObject({ code: 'upstream_idle', estimated: true });
    expect(settle.outcome).toBe('upstream_idle');
    expect(record!.clientClosedAt).toBeDefined(); // the upstream call was aborted
    expect(settle.final.costNanos).toBeGreaterThan(0);
  });

  it('a stream that never sends message_delta → done, charged its reservation (never a guess below it)', async () => {
    const { result, settle, record } = await run('p-nodelta', {
      'x-fake-llm-fault': 'no-message-delta',
    });
    const meta = eventData<{ reservedUsd: number }>(result, 'meta');
    const done = eventData<{ estimated: boolean; costNanos: number }>(result, 'done');
    expect(result.text).toBe(record!.text);
    expect(done.estimated).toBe(true);
    // The provider may have billed more than it showed: what was reserved covers it.
    expect(done.costNanos).toBe(Math.round(meta.reservedUsd * 1e9));
    expect(done.costNanos).toBeGreaterThan(handCost(record!.inputTokens, record!.tokensGenerated));
    expect(settle.final.cost.warnings.join()).toMatch(/completed without the provider's usage/);
  });

  it('an extremely long answer stops at max_tokens → done with stop_reason max_tokens, exact cost', async () => {
    const { result, record } = await run('p-long', { 'x-fake-llm-tokens': '100000' });
    const done = eventData<{ stopReason: string; costNanos: number; estimated: boolean }>(
      result,
      'done',
    );
    expect(done.stopReason).toBe('max_tokens');
    expect(record!.usage!.outputTokens).toBe(300);
    expect(done).toMatchObject({
      estimated: false,
      costNanos: handCost(record!.usage!.inputTokens, 300),
    });
  });

  it('unknown event types are tolerated → done, exact cost', async () => {
    const { result, record } = await run('p-unknown', { 'x-fake-llm-fault': 'unknown-events' });
    expect(result.text).toBe(record!.text);
    expect(eventData(result, 'done')).toMatchObject({
      estimated: false,
      costNanos: handCost(record!.usage!.inputTokens, record!.usage!.outputTokens),
    });
  });

  it('error event mid-stream, reset mid-stream, malformed SSE → upstream_error, estimate charged', async () => {
    for (const fault of ['error-mid-stream', 'reset-mid-stream', 'malformed-sse']) {
      const { result, settle } = await run(`p-${fault}`, {
        'x-fake-llm-fault': fault,
        'x-fake-llm-fault-after': '20',
      });
      expect(eventData(result, 'error')).toMatchObject({ code: 'upstream_error', estimated: true });
      expect(settle.final.usage.outputTokens).toBeGreaterThan(0);
      await app.close();
      await store.shutdown();
    }
  });
});
