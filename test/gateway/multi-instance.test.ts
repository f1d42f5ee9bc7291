/**
 * Two gateway instances (two processes) on one Redis share one budget: 100 concurrent calls
 * through the official Anthropic SDK, half to each, admit exactly what the budget's worst
 * cases allow, and the spend is the sum of what was settled — $0 overspend.
 */
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { measureRequestTokens } from '@tokenmeter/core/tokens';
import { createRedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  type RedisServer,
  startNodeApp,
  startRedisServer,
} from '../helpers/processes.js';

const script = fileURLToPath(new URL('../fixtures/gateway-instance.mjs', import.meta.url));
const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 100,
  messages: [{ role: 'user' as const, content: 'Count to a hundred.' }],
};
// The worst case the gateway reserves: the prompt's upper bound at $1/M + 100 output at $5/M.
const prompt = measureRequestTokens(params, { provider: 'anthropic' }).upperBound;
const reserve = prompt * 1_000 + 100 * 5_000;
const K = 7;
const BUDGET = K * reserve + Math.floor(reserve / 2);

let redis: RedisServer;
let fake: FakeLLM;
const apps: AppProcess[] = [];
beforeAll(async () => {
  redis = await startRedisServer();
  fake = await startFakeLLM({ tps: 0 });
  for (let i = 0; i < 2; i++) {
    apps.push(
      await startNodeApp(script, {
        REDIS_URL: redis.url,
        UPSTREAM_URL: fake.url,
        BUDGET_NANOS: String(BUDGET),
        PREFIX: 'gw-mi:',
      }),
    );
  }
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await fake?.close();
  await redis?.stop();
});

describe('two gateway instances on one Redis', () => {
  it('admit exactly the budget under 100 concurrent SDK calls, with $0 overspend', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const client = new Anthropic({
          baseURL: `http://127.0.0.1:${apps[i % 2]!.port}/llm`,
          apiKey: 'shared-user',
          maxRetries: 3,
        });
        const options = { headers: { 'x-fake-llm-tokens': '100', 'x-fake-llm-ttft-ms': '1000' } };
        // Half stream, half do not: the same machinery meters both.
        const call =
          i % 4 < 2
            ? client.messages.stream(params, options).finalMessage()
            : client.messages.create(params, options);
        return call.then(
          (message) => ({ ok: true as const, message }),
          (error: unknown) => ({ ok: false as const, error }),
        );
      }),
    );
    const admitted = results.filter((r) => r.ok);
    const refused = results.filter((r) => !r.ok);
    expect(admitted).toHaveLength(K);
    expect(refused).toHaveLength(100 - K);
    for (const r of refused) {
      const error = (r as { error: InstanceType<typeof Anthropic.APIError> }).error;
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(error.status).toBe(402);
    }
    // Retries: none for a budget refusal (x-should-retry: false), so each call hit once.
    expect(fake.requests).toHaveLength(K);
    const settles = (
      await Promise.all(
        apps.map(async (a) => (await fetch(`http://127.0.0.1:${a.port}/settles`)).json()),
      )
    ).flat() as Array<{ costNanos: number; recorded: boolean }>;
    expect(settles).toHaveLength(K);
    expect(settles.every((s) => s.recorded)).toBe(true);
    const store = createRedisStore({ url: redis.url, prefix: 'gw-mi:' });
    try {
      const state = await store.getState(
        { kind: 'user', id: 'shared-user' },
        { budget: { limitNanos: BUDGET, period: 'day' } },
      );
      const settled = settles.reduce((sum, s) => sum + s.costNanos, 0);
      expect(state.budget!.spentNanos).toBe(settled);
      expect(state.budget!.reservedNanos).toBe(0);
      expect(Math.max(0, state.budget!.spentNanos - BUDGET)).toBe(0);
      // And the provider's bill (what the fake generated) is what was settled.
      const billed = fake.requests.reduce(
        (sum, r) => sum + r.inputTokens * 1_000 + r.tokensGenerated * 5_000,
        0,
      );
      expect(settled).toBe(billed);
    } finally {
      await store.shutdown();
    }
  });
});
