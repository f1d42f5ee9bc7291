import { parseOptions } from '@tokenmeter/engine';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { describe, expect, it } from 'vitest';
import { costTrackedSSE } from './cost-tracked-sse.js';
import { anthropicGateway, openaiGateway } from './gateway.js';
import type { CostTrackedSSEOptions } from './types.js';

const identify = () => ({ user: 'u' });

describe('options are checked at creation, with messages that say what to do', () => {
  it('requires identify, and says how to write one', () => {
    expect(() =>
      costTrackedSSE({ store: createMemoryStore() } as unknown as CostTrackedSSEOptions),
    ).toThrow(/identify\(req\).*never the request body.*req\.user/);
  });

  it('rejects a store that misses methods', () => {
    expect(() => costTrackedSSE({ store: { admit() {} } as never, identify })).toThrow(/store/i);
  });

  it.each([
    [{ budgets: { user: { limitUsd: '-1' } } }, /non-negative limitUsd/],
    [{ budgets: { user: { period: 'day' } } }, /limitUsd/],
    [
      { rateLimits: { user: [{ kind: 'requests', limit: 5, windowMs: 0 }] } },
      /windowMs must be a positive/,
    ],
    [
      { rateLimits: { user: [{ kind: 'hits', limit: 5, windowMs: 1000 }] } },
      /'requests', 'tokens' or 'concurrency'/,
    ],
    [
      { rateLimits: { user: [{ kind: 'concurrency', limit: 5, windowMs: 1000 }] } },
      /concurrency limit .* has no window/,
    ],
    [
      { rateLimits: { user: [{ kind: 'concurrency', limit: -1 }] } },
      /limit must be a whole number ≥ 0/,
    ],
    [
      {
        rateLimits: {
          user: [
            { kind: 'concurrency', limit: 5 },
            { kind: 'concurrency', limit: 6 },
          ],
        },
      },
      /more than one concurrency limit/,
    ],
    [{ rateLimits: { user: { kind: 'requests', limit: 5, windowMs: 1000 } } }, /must be an array/],
    [{ storeFailure: 'maybe' }, /'closed'.*'open'/],
    [{ reservation: 'optimistic' }, /'strict', 'fit' or 'lease'/],
    [{ reservation: { mode: 'fit', minOutputTokens: 0 } }, /minOutputTokens must be a positive/],
    [{ maxCostPerRequestUsd: 0 }, /above 0/],
    [{ idleTimeoutMs: -5 }, /idleTimeoutMs must be a positive/],
    [{ budgetExceededStatus: 200 }, /4xx or 5xx/],
    [{ budgets: { user: { limitUsd: '9007199.254740992' } } }, /out of range/],
    [{ tokenCounter: { count: () => 1 } }, /countInputTokens/],
    [{ serverTools: { web_search: 5 } }, /defaultMaxUses, inputTokensPerUse/],
    [
      { serverTools: { code_execution: { defaultMaxUses: 0, inputTokensPerUse: 10 } } },
      /defaultMaxUses must be a positive/,
    ],
  ])('rejects %j', (extra, message) => {
    expect(() =>
      parseOptions({
        store: createMemoryStore(),
        identify,
        ...(extra as object),
      } as CostTrackedSSEOptions),
    ).toThrow(message);
  });

  it('fills defaults: fail closed, worst-case reservations, 402, JSON encoder', () => {
    const config = parseOptions({ store: createMemoryStore(), identify });
    expect(config.policy.storeFailure).toBe('closed');
    expect(config.policy.leaseStepTokens).toBe(0);
    expect(config.policy.budgetExceededStatus).toBe(402);
    expect(config.timing.keepAliveMs).toBe(15_000);
    expect(config.timing.reservationTtlMs).toBe(config.timing.totalTimeoutMs + 60_000);
    expect(config.policy.serverTools.web_search).toEqual({
      defaultMaxUses: 5,
      inputTokensPerUse: 25_000,
    });
  });

  it('resolves the settings once, grouped by concern and frozen: nothing changes them per request', () => {
    const config = parseOptions({ store: createMemoryStore(), identify, keepAliveMs: 5_000 });
    for (const group of ['services', 'policy', 'timing', 'hooks', 'protocol'] as const) {
      expect(Object.isFrozen(config[group])).toBe(true);
    }
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config.timing as { keepAliveMs: number }).keepAliveMs = 1;
    }).toThrow(TypeError);
    expect(config.timing.keepAliveMs).toBe(5_000);
  });

  it('merges server-tool limits over the defaults', () => {
    const config = parseOptions({
      store: createMemoryStore(),
      identify,
      serverTools: { web_search: { defaultMaxUses: 2, inputTokensPerUse: 10_000 } },
    });
    expect(config.policy.serverTools.web_search).toEqual({
      defaultMaxUses: 2,
      inputTokensPerUse: 10_000,
    });
    expect(config.policy.serverTools.web_fetch).toEqual({
      defaultMaxUses: 5,
      inputTokensPerUse: 100_000,
    });
  });

  it('returns a named middleware', () => {
    expect(costTrackedSSE({ store: createMemoryStore(), identify }).name).toBe('costTrackedSSE');
  });
});

describe('unknown option names are refused at creation, with the nearest known name', () => {
  const store = createMemoryStore();
  it.each([
    ['budget', 'budgets'],
    ['ratelimits', 'rateLimits'],
    ['maxTokenLimit', 'maxTokensLimit'],
    ['onSettled', 'onSettle'],
  ])('costTrackedSSE: "%s" → did you mean "%s"?', (typo, meant) => {
    expect(() =>
      costTrackedSSE({ store, identify, [typo]: {} } as unknown as CostTrackedSSEOptions),
    ).toThrow(`costTrackedSSE has no option "${typo}": did you mean "${meant}"?`);
  });

  it('a name like no option: the message lists them', () => {
    expect(() =>
      costTrackedSSE({ store, identify, colour: 'blue' } as unknown as CostTrackedSSEOptions),
    ).toThrow(/has no option "colour"\. Its options: store, identify, budgets, /);
  });

  it('the gateways check their own names (apiKey, forwardHeaders, …) the same way', () => {
    const base = { store, identify: () => ({ key: 'k' }), apiKey: 'sk' };
    expect(() => anthropicGateway({ ...base, forwardHeader: ['x-*'] } as never)).toThrow(
      'anthropicGateway has no option "forwardHeader": did you mean "forwardHeaders"?',
    );
    expect(() => openaiGateway({ ...base, upstream: () => null } as never)).toThrow(
      /openaiGateway has no option "upstream"/,
    );
    expect(() =>
      anthropicGateway({ ...base, callerConcurrency: 4, maxBodyBytes: 1000 }),
    ).not.toThrow();
  });
});
