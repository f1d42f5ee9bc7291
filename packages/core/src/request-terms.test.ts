import { describe, expect, it } from 'vitest';
import { forwardedBody, readRequestTerms } from './providers/requests.js';
import { boundRequest, DEFAULT_SERVER_TOOL_LIMITS } from './request-terms.js';

const messages = [{ role: 'user', content: 'Find the latest figures.' }];
const anthropic = (extra: Record<string, unknown>) =>
  readRequestTerms({ model: 'claude-opus-5', max_tokens: 100, messages, ...extra }, 'anthropic');

describe('readRequestTerms: prompt caching and content problems', () => {
  const block = (ttl?: string) => ({
    type: 'text',
    text: 'x',
    cache_control: { type: 'ephemeral', ...(ttl ? { ttl } : {}) },
  });

  it('finds the longest cache lifetime asked for anywhere in the body', () => {
    expect(anthropic({}).cacheWrite).toBeUndefined();
    expect(anthropic({ system: [block()] }).cacheWrite).toBe('5m');
    expect(anthropic({ system: [block('5m')] }).cacheWrite).toBe('5m');
    // 1 h wins whatever the order of the blocks.
    expect(
      anthropic({ system: [block('1h')], messages: [{ role: 'user', content: [block()] }] })
        .cacheWrite,
    ).toBe('1h');
    expect(
      anthropic({ system: [block()], messages: [{ role: 'user', content: [block('1h')] }] })
        .cacheWrite,
    ).toBe('1h');
    // Tools and the top-level (automatic) cache_control count too.
    expect(
      anthropic({ tools: [{ name: 't', cache_control: { type: 'ephemeral' } }] }).cacheWrite,
    ).toBe('5m');
    expect(anthropic({ cache_control: { type: 'ephemeral', ttl: '1h' } }).cacheWrite).toBe('1h');
  });

  it('assumes an OpenAI prompt may be written to the cache (it caches by itself)', () => {
    expect(readRequestTerms({ model: 'gpt-6-sol', messages }, 'openai').cacheWrite).toBe('5m');
  });

  it('reports a reason to refuse the body (NUL, lone surrogates, depth, size) before anything else', () => {
    expect(anthropic({ system: 'a\u0000b', speed: 'warp' }).problem).toBe(
      'The request text contains a NUL character.',
    );
    expect(anthropic({ system: 'a\ud800b' }).problem).toMatch(/lone UTF-16 surrogate/);
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = [deep];
    expect(anthropic({ system: deep }).problem).toMatch(/nested more than 32/);
    expect(anthropic({ system: new Array(100_001).fill(1) }).problem).toMatch(/100000 values/);
  });
});

describe('readRequestTerms: fields that raise the bill', () => {
  it('reads fast mode and data residency', () => {
    expect(anthropic({ speed: 'fast', inference_geo: 'us' })).toMatchObject({
      speed: 'fast',
      inferenceGeo: 'us',
    });
    expect(anthropic({ speed: 'standard' }).speed).toBeUndefined();
    expect(anthropic({ speed: 'warp' }).unbounded).toMatch(/"speed": "warp"/);
    expect(anthropic({ inference_geo: 7 }).problem).toMatch(/inference_geo/);
  });

  it('lists server tools with their limits, and skips custom and client-run tools', () => {
    const terms = anthropic({
      tools: [
        { name: 'lookup', input_schema: { type: 'object' } },
        { type: 'custom', name: 'x', input_schema: {} },
        { type: 'bash_20250124', name: 'bash' },
        { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' },
        { type: 'computer_20250124', name: 'computer', display_width_px: 1024 },
        { type: 'memory_20250818', name: 'memory' },
        { type: 'web_search_20250305', name: 'web_search', max_uses: 20 },
        { type: 'web_fetch_20250910', name: 'web_fetch', max_content_tokens: 5_000 },
        { type: 'code_execution_20250825', name: 'code_execution' },
      ],
    });
    expect(terms.serverTools).toEqual([
      { name: 'web_search', type: 'web_search_20250305', maxUses: 20 },
      { name: 'web_fetch', type: 'web_fetch_20250910', maxContentTokens: 5_000 },
      { name: 'code_execution', type: 'code_execution_20250825' },
    ]);
    expect(anthropic({ tools: [{ type: 'web_search_20250305', max_uses: 0 }] }).problem).toMatch(
      /max_uses/,
    );
  });

  it('refuses fields with no bound: MCP servers; OpenAI n > 1, audio, predictions', () => {
    expect(anthropic({ mcp_servers: [{ type: 'url', url: 'https://x' }] }).unbounded).toMatch(
      /mcp_servers/,
    );
    const openai = (extra: Record<string, unknown>) =>
      readRequestTerms({ model: 'gpt-4o', messages, ...extra }, 'openai');
    expect(openai({ n: 1 }).unbounded).toBeUndefined();
    expect(openai({ n: 3 }).unbounded).toMatch(/"n"/);
    expect(openai({ modalities: ['text', 'audio'] }).unbounded).toMatch(/audio/);
    expect(openai({ audio: { voice: 'alloy' } }).unbounded).toMatch(/audio/);
    expect(openai({ prediction: { type: 'content', content: 'x' } }).unbounded).toMatch(
      /prediction/,
    );
    expect(openai({ web_search_options: {} }).serverTools).toEqual([
      { name: 'web_search', type: 'web_search_options' },
    ]);
  });
});

describe('boundRequest', () => {
  it('adds each server use: its fee count and its input tokens', () => {
    const terms = anthropic({
      speed: 'fast',
      cache_control: { type: 'ephemeral' },
      tools: [
        { type: 'web_search_20250305', max_uses: 20 },
        { type: 'web_fetch_20250910', max_content_tokens: 5_000, max_uses: 2 },
        { type: 'web_search_20260209' },
      ],
    });
    const search = DEFAULT_SERVER_TOOL_LIMITS.web_search!;
    const { bound } = boundRequest(terms, { promptTokens: 1_000, maxTokens: 500 });
    expect(bound).toEqual({
      promptTokens:
        1_000 +
        20 * search.inputTokensPerUse +
        2 * 5_000 +
        search.defaultMaxUses * search.inputTokensPerUse,
      outputTokens: 500,
      cacheWrite: '5m',
      speed: 'fast',
      serverToolUses: { web_search: 20 + search.defaultMaxUses, web_fetch: 2 },
      // What one use may add, for an estimate of a call cut before its usage arrived.
      serverToolInputTokens: { web_search: search.inputTokensPerUse, web_fetch: 5_000 },
    });
  });

  it('says a server tool with no limit cannot be bounded, and takes limits from the caller', () => {
    const terms = anthropic({ tools: [{ type: 'code_execution_20250825' }] });
    expect(boundRequest(terms, { promptTokens: 10, maxTokens: 10 }).unbounded).toMatch(
      /serverTools: \{ code_execution:/,
    );
    const limits = { code_execution: { defaultMaxUses: 3, inputTokensPerUse: 1_000 } };
    expect(
      boundRequest(terms, { promptTokens: 10, maxTokens: 10, serverTools: limits }).bound,
    ).toEqual({
      promptTokens: 3_010,
      outputTokens: 10,
      serverToolUses: { code_execution: 3 },
      serverToolInputTokens: { code_execution: 1_000 },
    });
  });

  it('says uses past what can be counted cannot be bounded (never an overflowed bound)', () => {
    const terms = anthropic({ tools: [{ type: 'web_search_20250305', max_uses: 1e12 }] });
    expect(boundRequest(terms, { promptTokens: 10, maxTokens: 10 }).unbounded).toMatch(/max_uses/);
  });
});

describe('readRequestTerms: fields are type-checked before they are read', () => {
  it('refuses a stream, tools, tier or max_tokens of the wrong type', () => {
    expect(anthropic({ stream: 'true' }).problem).toBe(
      '"stream" must be true or false, got "true".',
    );
    expect(anthropic({ stream: 1 }).problem).toMatch(/"stream" must be true or false, got 1/);
    expect(anthropic({ stream: false }).problem).toBeUndefined();
    expect(anthropic({ tools: { name: 'x' } }).problem).toMatch(/"tools" must be an array/);
    expect(anthropic({ tools: ['x'] }).problem).toMatch(/objects only/);
    expect(anthropic({ max_tokens: '100' }).problem).toMatch(/"max_tokens" must be a whole number/);
    expect(anthropic({ service_tier: 3 }).problem).toMatch(/service_tier/);
    expect(anthropic({ service_tier: 'priority' }).problem).toMatch(/"auto" or "standard_only"/);
    expect(anthropic({ service_tier: 'auto' }).problem).toBeUndefined();
  });

  it('refuses max_tokens and max_completion_tokens that differ (the provider may honour either)', () => {
    const openai = (extra: Record<string, unknown>) =>
      readRequestTerms({ model: 'gpt-5', messages, ...extra }, 'openai');
    expect(openai({ max_tokens: 1, max_completion_tokens: 10_000 }).problem).toMatch(/Send one of/);
    expect(openai({ max_tokens: 50, max_completion_tokens: 50 }).problem).toBeUndefined();
    expect(openai({ service_tier: 'priority' }).serviceTier).toBe('priority');
  });

  it('reads a thinking budget, and refuses a thinking block it cannot read', () => {
    expect(anthropic({ thinking: { type: 'enabled', budget_tokens: 2_048 } }).thinkingBudget).toBe(
      2_048,
    );
    expect(anthropic({ thinking: { type: 'adaptive' } }).thinkingBudget).toBeUndefined();
    expect(anthropic({ thinking: { type: 'enabled' } }).problem).toMatch(/budget_tokens/);
    expect(anthropic({ thinking: 'on' }).problem).toMatch(/"thinking" must be an object/);
  });
});

describe('forwardedBody: what is sent carries what was reserved', () => {
  const body = {
    model: 'claude-opus-4-6',
    max_tokens: 64_000,
    messages,
    tools: [
      { type: 'web_search_20250305', name: 'web_search' },
      { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 2 },
      { name: 'lookup', input_schema: { type: 'object' } },
    ],
  };

  it('lowers max_tokens and writes the reserved limits into server tools that set none', () => {
    const sent = forwardedBody(body, 'anthropic', { maxTokens: 20_000 });
    expect(sent.max_tokens).toBe(20_000);
    expect(sent.tools).toEqual([
      { type: 'web_search_20250305', name: 'web_search', max_uses: 5 },
      { type: 'web_fetch_20250910', name: 'web_fetch', max_uses: 2, max_content_tokens: 100_000 },
      { name: 'lookup', input_schema: { type: 'object' } },
    ]);
    // The caller's body is never changed in place.
    expect(body.max_tokens).toBe(64_000);
    expect(body.tools[0]).toEqual({ type: 'web_search_20250305', name: 'web_search' });
    const limits = { web_search: { defaultMaxUses: 2, inputTokensPerUse: 10 } };
    expect(
      (
        forwardedBody(body, 'anthropic', { maxTokens: 64_000, serverTools: limits })
          .tools as unknown[]
      )[0],
    ).toEqual({ type: 'web_search_20250305', name: 'web_search', max_uses: 2 });
  });

  it('returns the body itself when it already carries every bound', () => {
    const bounded = { model: 'claude-haiku-4-5', max_tokens: 100, messages };
    expect(forwardedBody(bounded, 'anthropic', { maxTokens: 100 })).toBe(bounded);
  });

  it('lowers a thinking budget under max_tokens, keeping the answer its share (at least 1,024 thinking)', () => {
    const thinking = {
      model: 'claude-sonnet-4-6',
      max_tokens: 16_000,
      messages,
      thinking: { type: 'enabled', budget_tokens: 10_000 },
    };
    expect(forwardedBody(thinking, 'anthropic', { maxTokens: 8_000 }).thinking).toEqual({
      type: 'enabled',
      budget_tokens: 2_000,
    });
    expect(forwardedBody(thinking, 'anthropic', { maxTokens: 2_000 }).thinking).toEqual({
      type: 'enabled',
      budget_tokens: 1_024,
    });
    // A budget already under the new max_tokens is left alone.
    expect(forwardedBody(thinking, 'anthropic', { maxTokens: 12_000 }).thinking).toEqual(
      thinking.thinking,
    );
  });

  it('OpenAI: writes the output field the caller used', () => {
    const c = { model: 'gpt-5', messages, max_completion_tokens: 9_000 };
    expect(forwardedBody(c, 'openai', { maxTokens: 4_000 })).toEqual({
      ...c,
      max_completion_tokens: 4_000,
    });
    const t = { model: 'gpt-4o', messages, max_tokens: 9_000 };
    expect(forwardedBody(t, 'openai', { maxTokens: 4_000 })).toEqual({ ...t, max_tokens: 4_000 });
    const both = { ...c, max_tokens: 9_000 };
    expect(forwardedBody(both, 'openai', { maxTokens: 4_000 })).toEqual({
      ...both,
      max_tokens: 4_000,
      max_completion_tokens: 4_000,
    });
  });
});
