import { describe, expect, it, vi } from 'vitest';
import { TokenmeterError } from './errors.js';
import {
  type AnthropicCountTokensClient,
  anthropicTokenCounter,
  createHeuristicTokenCounter,
  heuristicTokenCounter,
  measureInputTokens,
  measureInputTokensNow,
  type TokenCounter,
} from './token-counter.js';
import { estimateRequestTokens, measureRequestTokens } from './token-estimate.js';

const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 512,
  temperature: 0.2,
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Hello' }],
  tools: [{ name: 'noop', input_schema: { type: 'object' } }],
  tool_choice: { type: 'auto' },
};
const ctx = { model: 'claude-haiku-4-5', provider: 'anthropic' as const };

describe('heuristic counters', () => {
  it('heuristicTokenCounter is estimateRequestTokens, with the upper bound of measureRequestTokens', async () => {
    expect(await heuristicTokenCounter.countInputTokens(params, ctx)).toBe(
      estimateRequestTokens(params, { provider: 'anthropic' }),
    );
    const measured = await measureInputTokens(heuristicTokenCounter, params, ctx);
    expect(measured).toEqual({
      ...measureRequestTokens(params, { provider: 'anthropic' }),
      exact: false,
    });
    expect(measured.upperBound).toBeGreaterThan(measured.tokens);
    const padded = createHeuristicTokenCounter({ margin: 2 });
    expect(padded.countInputTokens(params, ctx)).toBe(Math.ceil(estimateRequestTokens(params) * 2));
    expect(() => createHeuristicTokenCounter({ margin: -1 })).toThrow(TokenmeterError);
  });

  it('takes a counter without measureInputTokens as exact, and refuses nonsense figures', async () => {
    const exact: TokenCounter = { countInputTokens: () => 321 };
    expect(await measureInputTokens(exact, params, ctx)).toEqual({
      tokens: 321,
      upperBound: 321,
      exact: true,
    });
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) {
      await expect(
        measureInputTokens({ countInputTokens: () => bad }, params, ctx),
      ).rejects.toMatchObject({ code: 'invalid_argument' });
    }
    const inverted: TokenCounter = {
      countInputTokens: () => 10,
      measureInputTokens: () => ({ tokens: 10, upperBound: 9, exact: false }),
    };
    await expect(measureInputTokens(inverted, params, ctx)).rejects.toMatchObject({
      code: 'invalid_argument',
    });
  });

  it('measureInputTokensNow answers a synchronous counter without a promise, an async one with one', async () => {
    const now = measureInputTokensNow(heuristicTokenCounter, params, ctx);
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toEqual(await measureInputTokens(heuristicTokenCounter, params, ctx));
    expect(measureInputTokensNow({ countInputTokens: () => 7 }, params, ctx)).toEqual({
      tokens: 7,
      upperBound: 7,
      exact: true,
    });
    const later = measureInputTokensNow({ countInputTokens: async () => 8 }, params, ctx);
    expect(later).toBeInstanceOf(Promise);
    expect(await later).toEqual({ tokens: 8, upperBound: 8, exact: true });
    const measuredLater = measureInputTokensNow(
      {
        countInputTokens: () => 1,
        measureInputTokens: async () => ({ tokens: 3, upperBound: 2, exact: false }),
      },
      params,
      ctx,
    );
    await expect(measuredLater).rejects.toMatchObject({ code: 'invalid_argument' });
    // Checked the same way when synchronous: it throws.
    expect(() => measureInputTokensNow({ countInputTokens: () => -1 }, params, ctx)).toThrow(
      /whole numbers/,
    );
  });
});

describe('anthropicTokenCounter', () => {
  it('sends model, messages, system, tools (and tool_choice) and returns input_tokens as exact', async () => {
    const countTokens = vi.fn(async () => ({ input_tokens: 1234 }));
    const client: AnthropicCountTokensClient = { messages: { countTokens } };
    const counter = anthropicTokenCounter(client, { cacheSize: 0 });
    const signal = new AbortController().signal;
    expect(await counter.countInputTokens(params, { ...ctx, signal })).toBe(1234);
    expect(countTokens).toHaveBeenCalledTimes(1);
    expect(countTokens).toHaveBeenCalledWith(
      {
        model: 'claude-haiku-4-5',
        messages: params.messages,
        system: params.system,
        tools: params.tools,
        tool_choice: params.tool_choice,
      },
      { signal },
    );
    expect(await measureInputTokens(counter, params, ctx)).toEqual({
      tokens: 1234,
      upperBound: 1234,
      exact: true,
    });
  });

  it('answers a repeated prompt from its cache, shares concurrent calls, and never caches a failure', async () => {
    let calls = 0;
    let fail = true;
    const countTokens = vi.fn(async (p: { messages: unknown }) => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (fail) throw new Error('529 overloaded');
      return { input_tokens: JSON.stringify(p.messages).length };
    });
    const counter = anthropicTokenCounter({ messages: { countTokens } }, { cacheSize: 2 });
    await expect(counter.countInputTokens(params, ctx)).rejects.toMatchObject({
      code: 'upstream_error',
    });
    fail = false;
    const expected = JSON.stringify(params.messages).length;
    // Three at once: one call.
    const counts = await Promise.all([1, 2, 3].map(() => counter.countInputTokens(params, ctx)));
    expect(counts).toEqual([expected, expected, expected]);
    expect(calls).toBe(2);
    expect(await counter.countInputTokens({ ...params }, ctx)).toBe(expected);
    expect(calls).toBe(2);
    // A different model is a different count; past cacheSize the least recently used goes.
    const other = (text: string) => ({ ...params, messages: [{ role: 'user', content: text }] });
    await counter.countInputTokens(other('a'), ctx);
    await counter.countInputTokens(other('b'), ctx);
    expect(calls).toBe(4);
    await counter.countInputTokens(params, ctx);
    expect(calls).toBe(5);
    await counter.countInputTokens(params, { ...ctx, model: 'claude-sonnet-4-6' });
    expect(calls).toBe(6);
  });

  it('falls back, or fails with upstream_error', async () => {
    const failing: AnthropicCountTokensClient = {
      messages: { countTokens: async () => Promise.reject(new Error('529 overloaded')) },
    };
    const fallback: TokenCounter = { countInputTokens: () => 77 };
    expect(await anthropicTokenCounter(failing, { fallback }).countInputTokens(params, ctx)).toBe(
      77,
    );
    const measured = await measureInputTokens(
      anthropicTokenCounter(failing, { fallback: heuristicTokenCounter }),
      params,
      ctx,
    );
    expect(measured.exact).toBe(false);
    expect(measured.upperBound).toBeGreaterThan(measured.tokens);
    await expect(
      anthropicTokenCounter(failing).countInputTokens(params, ctx),
    ).rejects.toMatchObject({
      code: 'upstream_error',
    });
    const weird: AnthropicCountTokensClient = {
      messages: { countTokens: async () => ({ input_tokens: -5 }) },
    };
    await expect(anthropicTokenCounter(weird).countInputTokens(params, ctx)).rejects.toMatchObject({
      code: 'upstream_error',
    });
    expect(() => anthropicTokenCounter(weird, { cacheSize: -1 })).toThrow(TokenmeterError);
  });

  it("lets a caller's abort through as the abort, not a counting failure", async () => {
    const controller = new AbortController();
    const client: AnthropicCountTokensClient = {
      messages: {
        countTokens: async () => {
          controller.abort();
          throw new Error('aborted');
        },
      },
    };
    const counter = anthropicTokenCounter(client, { fallback: heuristicTokenCounter });
    const error = await Promise.resolve(
      counter.countInputTokens(params, { ...ctx, signal: controller.signal }),
    ).catch((e: unknown) => e);
    expect(controller.signal.aborted).toBe(true);
    expect(error).toBe(controller.signal.reason);
  });

  it('does not call Anthropic for OpenAI requests', async () => {
    const countTokens = vi.fn(async () => ({ input_tokens: 1 }));
    const counter = anthropicTokenCounter({ messages: { countTokens } });
    const openai = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] };
    expect(await counter.countInputTokens(openai, { model: 'gpt-4o', provider: 'openai' })).toBe(
      estimateRequestTokens(openai, { provider: 'openai' }),
    );
    expect(countTokens).not.toHaveBeenCalled();
    expect(() => anthropicTokenCounter({} as AnthropicCountTokensClient)).toThrow(TokenmeterError);
  });
});
