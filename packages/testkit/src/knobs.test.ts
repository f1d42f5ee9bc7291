// Knob parsing from options, headers and flags; the output plan under max_tokens; the
// input token definition.

import { describe, expect, it } from 'vitest';
import { countInputTokens } from './input-tokens.js';
import {
  DEFAULT_KNOBS,
  KNOB_SPECS,
  KnobError,
  knobsFromFlags,
  knobsFromHeaders,
  mergeKnobs,
} from './knobs.js';
import { planOutput } from './plan.js';

describe('knobs', () => {
  it('every knob has a distinct x-fake-llm-* header and CLI flag', () => {
    const headers = new Set(KNOB_SPECS.map((k) => k.header));
    const flags = new Set(KNOB_SPECS.map((k) => k.flag));
    expect(headers.size).toBe(KNOB_SPECS.length);
    expect(flags.size).toBe(KNOB_SPECS.length);
    for (const knob of KNOB_SPECS) expect(knob.header).toBe(`x-fake-llm-${knob.flag}`);
  });

  it('headers override the server knobs and leave the rest alone', () => {
    const base = mergeKnobs(DEFAULT_KNOBS, { tokens: 10, seed: 4 });
    const knobs = knobsFromHeaders(base, {
      'x-fake-llm-tokens': '200',
      'x-fake-llm-tps': 'Infinity',
      'x-fake-llm-ttft-ms': '12.5',
      'x-fake-llm-fault': '529',
      'x-fake-llm-text': 'plain',
      'x-fake-llm-thinking-tokens': 'auto',
    });
    expect(knobs).toMatchObject({
      tokens: 200,
      tps: Number.POSITIVE_INFINITY,
      ttftMs: 12.5,
      fault: 529,
      text: 'plain',
      seed: 4,
      thinkingTokens: undefined,
    });
    expect(base.tokens).toBe(10);
  });

  it('rejects bad values with a message naming the source', () => {
    expect(() => knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-chunk': '0' })).toThrow(
      'x-fake-llm-chunk: expected an integer >= 1, got "0"',
    );
    expect(() => knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-fault': '200' })).toThrow(KnobError);
    expect(() => mergeKnobs(DEFAULT_KNOBS, { tps: -1 })).toThrow(
      'tps: expected a non-negative number',
    );
    expect(() => knobsFromFlags({ seed: '1.5' })).toThrow('--seed: expected an integer');
  });

  it('parses the text modes, searches and search-result-tokens from every source', () => {
    for (const text of ['mixed', 'plain', 'emoji', 'vietnamese', 'cjk', 'base64', 'repeat']) {
      expect(knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-text': text }).text).toBe(text);
    }
    expect(DEFAULT_KNOBS).toMatchObject({ searches: undefined, searchResultTokens: 1000 });
    const headers = knobsFromHeaders(DEFAULT_KNOBS, {
      'x-fake-llm-searches': '3',
      'x-fake-llm-search-result-tokens': '250',
    });
    expect(headers).toMatchObject({ searches: 3, searchResultTokens: 250 });
    expect(knobsFromHeaders(headers, { 'x-fake-llm-searches': 'auto' }).searches).toBeUndefined();
    expect(knobsFromFlags({ searches: '0', 'search-result-tokens': '0', text: 'cjk' })).toEqual({
      searches: 0,
      searchResultTokens: 0,
      text: 'cjk',
    });
    expect(mergeKnobs(DEFAULT_KNOBS, { searches: 2, text: 'emoji' })).toMatchObject({
      searches: 2,
      text: 'emoji',
    });
  });

  it('rejects bad text modes, searches and search-result-tokens', () => {
    expect(() => knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-text': 'Emoji' })).toThrow(
      'x-fake-llm-text: expected one of "mixed", "plain", "emoji", "vietnamese", "cjk", "base64", "repeat"; got "Emoji"',
    );
    expect(() => mergeKnobs(DEFAULT_KNOBS, { text: 'words' as never })).toThrow(
      'text: expected one of',
    );
    expect(() => knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-searches': '-1' })).toThrow(
      'x-fake-llm-searches: expected a non-negative integer, got "-1"',
    );
    expect(() => knobsFromFlags({ searches: 'two' })).toThrow(
      '--searches: expected a non-negative integer',
    );
    expect(() => mergeKnobs(DEFAULT_KNOBS, { searches: 1.5 })).toThrow(KnobError);
    expect(() =>
      knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-search-result-tokens': 'Infinity' }),
    ).toThrow('x-fake-llm-search-result-tokens: expected a non-negative integer');
    expect(() => mergeKnobs(DEFAULT_KNOBS, { searchResultTokens: -5 })).toThrow(
      'searchResultTokens: expected a non-negative integer, got -5',
    );
  });

  it('parses the tool loop knobs from every source', () => {
    expect(DEFAULT_KNOBS).toMatchObject({ toolTurns: undefined, toolName: undefined });
    expect(
      knobsFromHeaders(DEFAULT_KNOBS, {
        'x-fake-llm-tool-turns': '3',
        'x-fake-llm-tool-name': 'Glob',
      }),
    ).toMatchObject({ toolTurns: 3, toolName: 'Glob' });
    expect(knobsFromFlags({ 'tool-turns': '0', 'tool-name': 'shell' })).toEqual({
      toolTurns: 0,
      toolName: 'shell',
    });
    const looping = mergeKnobs(DEFAULT_KNOBS, { toolTurns: 2, toolName: 'Read' });
    expect(
      knobsFromHeaders(looping, {
        'x-fake-llm-tool-turns': 'auto',
        'x-fake-llm-tool-name': 'auto',
      }),
    ).toMatchObject({
      toolTurns: undefined,
      toolName: undefined,
    });
    expect(() => knobsFromHeaders(DEFAULT_KNOBS, { 'x-fake-llm-tool-turns': 'x' })).toThrow(
      'x-fake-llm-tool-turns: expected a non-negative integer, got "x"',
    );
    expect(() => mergeKnobs(DEFAULT_KNOBS, { toolName: 7 as never })).toThrow(
      'toolName: expected a tool name, got 7',
    );
  });

  it('"none" and undefined clear a fault', () => {
    const faulty = mergeKnobs(DEFAULT_KNOBS, { fault: 'hang' });
    expect(faulty.fault).toBe('hang');
    expect(knobsFromHeaders(faulty, { 'x-fake-llm-fault': 'none' }).fault).toBeUndefined();
    expect(mergeKnobs(faulty, { fault: undefined }).fault).toBeUndefined();
  });
});

describe('planOutput', () => {
  const knobs = mergeKnobs(DEFAULT_KNOBS, { tokens: 50 });

  it('plans the text block alone by default', () => {
    const plan = planOutput('anthropic', {}, knobs, 1000);
    expect(plan).toMatchObject({ totalTokens: 50, truncated: false, toolCall: false });
    expect(plan.blocks).toEqual([{ kind: 'text', tokens: 50 }]);
  });

  it('max_tokens cuts thinking first, then text, then the tool call', () => {
    const body = {
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [{ name: 'lookup' }],
      tool_choice: { type: 'any' },
    };
    expect(planOutput('anthropic', body, knobs, 1000).blocks).toEqual([
      { kind: 'thinking', tokens: 16 },
      { kind: 'text', tokens: 50 },
      { kind: 'tool_use', tokens: 12, toolName: 'lookup' },
    ]);
    const cut = planOutput('anthropic', body, knobs, 30);
    expect(cut.blocks).toEqual([
      { kind: 'thinking', tokens: 16 },
      { kind: 'text', tokens: 14 },
    ]);
    expect(cut).toMatchObject({ totalTokens: 30, truncated: true, toolCall: false });
  });

  it('OpenAI reasoning tokens count against max_completion_tokens before content', () => {
    const withReasoning = mergeKnobs(knobs, { reasoningTokens: 40 });
    const plan = planOutput('openai', {}, withReasoning, 60);
    expect(plan).toMatchObject({ reasoningTokens: 40, totalTokens: 20, truncated: true });
  });

  it('plans searches only with a web_search_* tool, 1 by default, capped at max_uses', () => {
    const tool = { type: 'web_search_20250305', name: 'web_search' };
    const withTool = { tools: [{ name: 'calc' }, tool] };
    const searchBlock = { kind: 'web_search', tokens: 8 };
    expect(planOutput('anthropic', withTool, knobs, 1000)).toMatchObject({
      blocks: [searchBlock, { kind: 'text', tokens: 50 }],
      searches: 1,
      totalTokens: 58,
    });
    const three = mergeKnobs(knobs, { searches: 3 });
    expect(planOutput('anthropic', withTool, three, 1000).searches).toBe(3);
    const capped = { tools: [{ ...tool, max_uses: 2 }] };
    expect(planOutput('anthropic', capped, three, 1000).searches).toBe(2);
    expect(planOutput('anthropic', { tools: [{ name: 'calc' }] }, three, 1000)).toMatchObject({
      blocks: [{ kind: 'text', tokens: 50 }],
      searches: 0,
    });
    expect(planOutput('openai', withTool, three, 1000)).toMatchObject({ searches: 0 });
    expect(planOutput('openai', withTool, three, 1000).blocks).toEqual([
      { kind: 'text', tokens: 50 },
    ]);
  });

  it('search queries come out of max_tokens after thinking; a cut query is not searched', () => {
    const body = {
      thinking: { type: 'enabled', budget_tokens: 1024 },
      tools: [{ type: 'web_search_20260209', name: 'web_search' }],
    };
    const two = mergeKnobs(knobs, { searches: 2 });
    const cut = planOutput('anthropic', body, two, 16 + 8 + 3);
    expect(cut).toMatchObject({ searches: 1, totalTokens: 27, truncated: true });
    expect(cut.blocks).toEqual([
      { kind: 'thinking', tokens: 16 },
      { kind: 'web_search', tokens: 8 },
      { kind: 'web_search', tokens: 3 },
    ]);
    const none = planOutput('anthropic', body, two, 16);
    expect(none).toMatchObject({ searches: 0, truncated: true });
    expect(none.blocks).toEqual([{ kind: 'thinking', tokens: 16 }]);
    // Searches and no text: the searches carry the answer, no empty text block.
    const noText = planOutput('anthropic', body, mergeKnobs(two, { tokens: 0 }), 1000);
    expect(noText.blocks.map((b) => b.kind)).toEqual(['thinking', 'web_search', 'web_search']);
    expect(noText).toMatchObject({ searches: 2, truncated: false });
  });

  it('grows a tool call to the smallest valid input of its schema; records a cut one whole size', () => {
    const bash = {
      name: 'Bash',
      input_schema: {
        type: 'object',
        properties: { command: { type: 'string' } },
        required: ['command'],
      },
    };
    const body = { tools: [bash], tool_choice: { type: 'any' } };
    const tiny = mergeKnobs(knobs, { tokens: 0, toolTokens: 1 });
    expect(planOutput('anthropic', body, tiny, 1000).blocks).toEqual([
      { kind: 'tool_use', tokens: 2, toolName: 'Bash', toolSchema: bash.input_schema },
    ]);
    const cut = planOutput('anthropic', body, mergeKnobs(tiny, { toolTokens: 12 }), 5);
    expect(cut.blocks[0]).toMatchObject({ tokens: 5, inputTokens: 12 });
    expect(cut).toMatchObject({ truncated: true, toolCall: false });
  });

  it('tool loop: a call while fewer tool results than toolTurns, then text', () => {
    const loop = mergeKnobs(knobs, { toolTurns: 1 });
    const tools = [{ type: 'function', name: 'f', parameters: { type: 'object' } }];
    const first = planOutput('openai-responses', { tools, input: 'go' }, loop, undefined);
    expect(first.blocks.map((b) => b.kind)).toEqual(['text', 'tool_use']);
    expect(first.toolCall).toBe(true);
    const answered = {
      tools,
      input: [{ type: 'function_call_output', call_id: 'c', output: 'ok' }],
    };
    expect(
      planOutput('openai-responses', answered, loop, undefined).blocks.map((b) => b.kind),
    ).toEqual(['text']);
    // Chat Completions tools are nested under `function`: a Responses-shaped one is not offered.
    expect(planOutput('openai', { tools, messages: [] }, loop, undefined).toolCall).toBe(false);
  });

  it('Responses: reasoning is hidden, or a thinking block when a summary is asked', () => {
    const reasoning = mergeKnobs(knobs, { reasoningTokens: 30 });
    expect(planOutput('openai-responses', {}, reasoning, 60)).toMatchObject({
      reasoningTokens: 30,
      reasoningSummary: false,
      blocks: [{ kind: 'text', tokens: 30 }],
    });
    const summary = planOutput(
      'openai-responses',
      { reasoning: { summary: 'auto' } },
      reasoning,
      60,
    );
    expect(summary).toMatchObject({ reasoningTokens: 0, reasoningSummary: true, totalTokens: 60 });
    expect(summary.blocks).toEqual([
      { kind: 'thinking', tokens: 30 },
      { kind: 'text', tokens: 30 },
    ]);
  });

  it('an empty answer still has an (empty) text block', () => {
    const plan = planOutput('anthropic', {}, mergeKnobs(DEFAULT_KNOBS, { tokens: 0 }), 10);
    expect(plan.blocks).toEqual([{ kind: 'text', tokens: 0 }]);
  });
});

describe('countInputTokens', () => {
  it('is ceil(UTF-8 bytes of the strings of every prompt field / 4)', () => {
    // 'user' (4) + 'Hello there' (11) = 15 bytes → 4 tokens.
    expect(
      countInputTokens({ messages: [{ role: 'user', content: 'Hello there' }] }, 'anthropic'),
    ).toBe(4);
    // '🚀' is 4 UTF-8 bytes; settings (temperature, model) are not read into the prompt.
    const body = {
      model: 'claude-haiku-4-5',
      system: '🚀🚀',
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 1,
    };
    expect(countInputTokens(body, 'anthropic')).toBe(Math.ceil((8 + 4 + 2) / 4));
    // Any other field is read: a response_format schema, a field the fake does not know.
    const more = { ...body, response_format: { schema: 'xxxx' }, extra: 'yyyy' };
    expect(countInputTokens(more, 'openai')).toBe(Math.ceil((8 + 4 + 2 + 4 + 4) / 4));
    expect(countInputTokens({}, 'anthropic')).toBe(1);
  });

  it("counts a token per byte with inputCounting 'bytes' (a hostile caller's worst case)", () => {
    const body = { messages: [{ role: 'user', content: 'Hello there' }] };
    expect(countInputTokens(body, 'anthropic', 'bytes')).toBe(15);
  });

  it('bills an image and a PDF page by rule, not by the bytes of their payload', () => {
    const image = Buffer.alloc(300_000, 9).toString('base64');
    const pdf = Buffer.from(
      '%PDF-1.4 1 0 obj << /Type /Page >> 2 0 obj << /Type /Page >>',
    ).toString('base64');
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: image } },
            {
              type: 'document',
              source: { type: 'base64', media_type: 'application/pdf', data: pdf },
            },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${image}` } },
          ],
        },
      ],
    };
    // 'user' (4 bytes → 1) + two images + two pages.
    expect(countInputTokens(body, 'anthropic')).toBe(1 + 2 * 1_600 + 2 * 1_500);
  });
});
