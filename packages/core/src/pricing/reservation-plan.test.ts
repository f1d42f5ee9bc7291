import { describe, expect, it } from 'vitest';
import { Pricing } from './cost.js';
import { outputWithin, planReservation, type ReservationPolicy } from './reservation-plan.js';

// claude-haiku-4-5: $1 / $5 per million tokens = 1,000 / 5,000 nano-dollars per token.
const model = 'claude-haiku-4-5';
const pricing = new Pricing();
const bound = { promptTokens: 2_000, outputTokens: 64_000 };
const cost = (output: number) => 2_000 * 1_000 + output * 5_000;
const policy = (mode: ReservationPolicy['mode'], extra: Partial<ReservationPolicy> = {}) => ({
  mode,
  minOutputTokens: 1_024,
  leaseInitialTokens: 256,
  capNanos: null,
  ...extra,
});
const plan = (
  mode: ReservationPolicy['mode'],
  availableNanos: number | null,
  extra: Partial<ReservationPolicy> = {},
  watchable = true,
) =>
  planReservation({
    bound,
    model,
    pricing,
    policy: policy(mode, extra),
    availableNanos,
    watchable,
  });

describe('planReservation', () => {
  it('strict: the whole worst case, or a refusal that says what it needs', () => {
    expect(plan('strict', null)).toEqual({
      ok: true,
      reserveNanos: cost(64_000),
      maxTokens: 64_000,
      coveredOutputTokens: 64_000,
      fittedTo: null,
    });
    expect(plan('strict', cost(64_000) - 1)).toEqual({
      ok: false,
      limit: 'budget',
      needNanos: cost(64_000),
      outputTokens: 64_000,
    });
  });

  it('fit: the worst case when it fits, else the largest max_tokens the budget covers', () => {
    expect(plan('fit', cost(64_000))).toMatchObject({
      ok: true,
      maxTokens: 64_000,
      fittedTo: null,
    });
    // $0.05: 2,000 prompt tokens ($0.002) leave $0.048 = 9,600 output tokens.
    expect(plan('fit', 50_000_000)).toEqual({
      ok: true,
      reserveNanos: cost(9_600),
      maxTokens: 9_600,
      coveredOutputTokens: 9_600,
      fittedTo: 'budget',
    });
    // One nano-dollar short of 9,600 tokens: 9,599.
    expect(plan('fit', cost(9_600) - 1)).toMatchObject({ maxTokens: 9_599 });
    // Not even the least useful answer: refused, saying what would do.
    expect(plan('fit', cost(1_024) - 1)).toEqual({
      ok: false,
      limit: 'budget',
      needNanos: cost(1_024),
      outputTokens: 1_024,
    });
  });

  it('lease: the prompt and a first slice; sent with the most output the budget has left', () => {
    expect(plan('lease', null)).toEqual({
      ok: true,
      reserveNanos: cost(256),
      maxTokens: 64_000,
      coveredOutputTokens: 256,
      fittedTo: null,
    });
    expect(plan('lease', 50_000_000)).toEqual({
      ok: true,
      reserveNanos: cost(256),
      maxTokens: 9_600,
      coveredOutputTokens: 256,
      fittedTo: 'budget',
    });
    expect(plan('lease', cost(256) - 1)).toMatchObject({ ok: false, needNanos: cost(256) });
    // A whole-body answer cannot be watched: planned as fit, the first slice its least.
    expect(plan('lease', 50_000_000, {}, false)).toMatchObject({
      reserveNanos: cost(9_600),
      coveredOutputTokens: 9_600,
    });
    expect(plan('lease', cost(300), {}, false)).toMatchObject({ ok: true, maxTokens: 300 });
    expect(plan('lease', cost(255), {}, false)).toMatchObject({ ok: false, outputTokens: 256 });
  });

  it('a per-request cap lowers max_tokens in every mode, or refuses when it allows no output', () => {
    const cap = { capNanos: cost(4_000) };
    for (const mode of ['strict', 'fit'] as const) {
      expect(plan(mode, null, cap)).toEqual({
        ok: true,
        reserveNanos: cost(4_000),
        maxTokens: 4_000,
        coveredOutputTokens: 4_000,
        fittedTo: 'max_cost_per_request',
      });
    }
    expect(plan('lease', null, cap)).toMatchObject({ maxTokens: 4_000, coveredOutputTokens: 256 });
    // The cap is the route's choice: however little it allows is sent…
    expect(plan('fit', null, { capNanos: cost(80) })).toMatchObject({ ok: true, maxTokens: 80 });
    // …unless not even one output token fits after the prompt.
    expect(plan('fit', null, { capNanos: cost(0) + 4_999 })).toMatchObject({
      ok: false,
      limit: 'max_cost_per_request',
      needNanos: cost(1),
    });
  });

  it('never plans max_tokens under the least the call can be sent with (thinking)', () => {
    const p = planReservation({
      bound,
      model,
      pricing,
      policy: policy('fit', { minOutputTokens: 16 }),
      availableNanos: cost(1_000),
      watchable: true,
      minMaxTokens: 1_025,
    });
    expect(p).toMatchObject({ ok: false, outputTokens: 1_025 });
  });

  it('outputWithin: the most output whose cost fits, by binary search', () => {
    expect(outputWithin(cost, cost(123), 64_000)).toBe(123);
    expect(outputWithin(cost, cost(123) + 4_999, 64_000)).toBe(123);
    expect(outputWithin(cost, cost(0) - 1, 64_000)).toBe(0);
    expect(outputWithin(cost, Number.MAX_SAFE_INTEGER, 64_000)).toBe(64_000);
  });
});
