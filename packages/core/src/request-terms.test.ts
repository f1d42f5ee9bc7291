import { describe, expect, it } from 'vitest';
import { boundRequest, DEFAULT_SERVER_TOOL_LIMITS, readRequestTerms } from './request-terms.js';

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
    });
  });
});
