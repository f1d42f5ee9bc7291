import { describe, expect, it } from 'vitest';
import { readFixture } from '../fixtures.test-helper.js';
import { StreamMeter } from '../meter.js';
import type { MeterEvent } from '../meter-event.js';
import { createEventTranslator, responseEvents } from '../stream-events.js';
import { measureRequestTokens } from '../token-estimate.js';
import { forwardedBody, readRequestTerms } from './requests.js';

const FIXTURE = 'openai-responses-reasoning-tool.sse';

function translateAll(payloads: unknown[]): MeterEvent[] {
  const translate = createEventTranslator();
  return payloads.flatMap((raw) => translate(raw));
}

function meterOf(payloads: unknown[], options: { maxOutputTokens?: number } = {}) {
  const meter = new StreamMeter({ model: 'o4-mini', inputTokensEstimate: 1_600, ...options });
  for (const event of translateAll(payloads)) meter.observe(event);
  return meter;
}

describe('OpenAI Responses stream (recorded in the documented shape)', () => {
  const payloads = readFixture(FIXTURE);

  it('translates text, reasoning summaries, a function call and the final usage', () => {
    const events = translateAll(payloads);
    expect(events[0]).toEqual({
      type: 'start',
      provider: 'openai',
      id: 'resp_67c9fdcecf488190bdd9a0a5da3a45b8',
      model: 'o4-mini-2025-04-16',
    });
    const texts = (type: 'text' | 'thinking') =>
      events.flatMap((e) => (e.type === type ? [e.text] : [])).join('');
    expect(texts('text')).toBe('Let me\n\ndata: [DONE] check Paris — ☀️?');
    expect(texts('thinking')).toBe(
      '**Checking the weather**\n\nThe user wants Paris; I should call the tool.',
    );
    expect(events.flatMap((e) => (e.type === 'tool_input' ? [e.json] : [])).join('')).toBe(
      '{"city":"Paris"}',
    );
    expect(events.filter((e) => e.type === 'unseen_output')).toHaveLength(1);
    expect(events.find((e) => e.type === 'tool_call')).toEqual({
      type: 'tool_call',
      id: 'call_Ux9eW3NB1bVmPYJ2z0gS3Rhc',
      name: 'get_weather',
      input: { city: 'Paris' },
    });
    const usage = events.find((e) => e.type === 'usage') as Extract<MeterEvent, { type: 'usage' }>;
    // input_tokens includes cached_tokens; output_tokens includes reasoning_tokens.
    expect(usage).toEqual({
      type: 'usage',
      final: true,
      usage: {
        inputTokens: 512,
        cacheReadTokens: 1_024,
        cacheWrite5mTokens: 0,
        cacheWrite1hTokens: 0,
        outputTokens: 380,
        reasoningTokens: 256,
        webSearchRequests: 0,
        webFetchRequests: 0,
        serviceTier: 'default',
      },
    });
    expect(events.at(-1)).toEqual({ type: 'stop', reason: 'tool_calls' });
  });

  it('charges the provider usage to the nano-dollar', () => {
    const final = meterOf(payloads).finish('completed');
    expect(final.estimated).toBe(false);
    // o4-mini: 512 × $1.10/M + 1,024 cached × $0.275/M + 380 × $4.40/M
    //        = 563,200 + 281,600 + 1,672,000 nano-dollars
    expect(final.costNanos).toBe(2_516_800);
    expect(final.stopReason).toBe('tool_calls');
  });

  it('a stream cut after the model reasoned is charged its whole output limit', () => {
    // Cut after the first text delta: reasoning happened, usage never came.
    const cut = payloads.findIndex(
      (p) => (p as { type: string }).type === 'response.output_text.delta',
    );
    const final = meterOf(payloads.slice(0, cut + 1), { maxOutputTokens: 2_048 }).finish(
      'client_disconnected',
    );
    expect(final.estimated).toBe(true);
    expect(final.usage.outputTokens).toBe(2_048);
    // 1,600 estimated input × $1.10/M + 2,048 × $4.40/M
    expect(final.costNanos).toBe(1_600 * 1_100 + 2_048 * 4_400);
  });

  it('a stream cut without reasoning is charged the output it delivered', () => {
    const noReasoning = payloads.filter((p) => {
      const item = (p as { item?: { type?: string } }).item;
      return item?.type !== 'reasoning';
    });
    const cut = noReasoning.findIndex(
      (p) => (p as { type: string }).type === 'response.output_text.done',
    );
    const final = meterOf(noReasoning.slice(0, cut), { maxOutputTokens: 2_048 }).finish(
      'client_disconnected',
    );
    expect(final.estimated).toBe(true);
    expect(final.usage.outputTokens).toBeGreaterThan(0);
    expect(final.usage.outputTokens).toBeLessThan(100);
  });

  it('an output limit reached ends in length; a failed response is an error with its usage', () => {
    const completed = payloads.at(-1) as { response: Record<string, unknown> };
    const incomplete = {
      type: 'response.incomplete',
      sequence_number: 99,
      response: {
        ...completed.response,
        status: 'incomplete',
        incomplete_details: { reason: 'max_output_tokens' },
      },
    };
    expect(translateAll([payloads[0], incomplete]).at(-1)).toEqual({
      type: 'stop',
      reason: 'length',
    });
    const failed = {
      type: 'response.failed',
      sequence_number: 99,
      response: {
        ...completed.response,
        status: 'failed',
        error: { code: 'server_error', message: 'The model failed.' },
      },
    };
    const events = translateAll([payloads[0], failed]);
    expect(events).toContainEqual({
      type: 'error',
      errorType: 'server_error',
      message: 'The model failed.',
    });
    expect(events.some((e) => e.type === 'usage' && e.final)).toBe(true);
    expect(events.some((e) => e.type === 'stop')).toBe(false);
  });

  it('an error event mid-stream is an upstream error', () => {
    const error = {
      type: 'error',
      sequence_number: 3,
      code: 'rate_limit_exceeded',
      message: 'Slow down.',
      param: null,
    };
    expect(translateAll([payloads[0], error]).at(-1)).toEqual({
      type: 'error',
      errorType: 'rate_limit_exceeded',
      message: 'Slow down.',
    });
  });

  it('counts web searches the response made, which its usage does not', () => {
    const completed = payloads.at(-1) as { response: { output: unknown[] } };
    const searched = {
      ...completed,
      response: {
        ...completed.response,
        output: [
          { type: 'web_search_call', id: 'ws_1', status: 'completed' },
          { type: 'web_search_call', id: 'ws_2', status: 'completed' },
          ...completed.response.output,
        ],
      },
    };
    const usage = translateAll([payloads[0], searched]).find((e) => e.type === 'usage');
    expect(usage).toMatchObject({ usage: { webSearchRequests: 2 } });
    // The tokens as before, and two searches at $10 per 1,000 calls.
    expect(meterOf([payloads[0], searched]).finish('completed').costNanos).toBe(
      2_516_800 + 2 * 10_000_000,
    );
  });
});

describe('OpenAI Responses whole answer', () => {
  it('reads a Response body: text, the call, usage and stop', () => {
    const completed = readFixture(FIXTURE).at(-1) as { response: object };
    const events = responseEvents(completed.response);
    expect(events[0]).toMatchObject({ type: 'start', provider: 'openai' });
    expect(events.filter((e) => e.type === 'text')).toEqual([
      { type: 'text', text: 'Let me\n\ndata: [DONE] check Paris — ☀️?' },
    ]);
    expect(events).toContainEqual({ type: 'tool_input', json: '{"city":"Paris"}' });
    expect(events).toContainEqual(expect.objectContaining({ type: 'usage', final: true }));
    expect(events.at(-1)).toEqual({ type: 'stop', reason: 'tool_calls' });
  });
});

describe('OpenAI Responses requests', () => {
  const input = [{ role: 'user', content: 'Hi' }];
  const terms = (extra: Record<string, unknown>) =>
    readRequestTerms({ model: 'gpt-5', input, ...extra }, 'openai-responses');

  it('checks the output and tool-call limits are whole numbers', () => {
    expect(terms({ max_output_tokens: 1.5 }).problem).toMatch(/max_output_tokens/);
    expect(terms({ max_output_tokens: '100' }).problem).toMatch(/max_output_tokens/);
    expect(terms({ max_tool_calls: 0 }).problem).toMatch(/max_tool_calls/);
    expect(terms({ max_output_tokens: 100, service_tier: 'flex' })).toMatchObject({
      serviceTier: 'flex',
      cacheWrite: '5m',
    });
  });

  it('bounds web search by max_tool_calls, wherever the tool is offered', () => {
    expect(terms({ tools: [{ type: 'web_search' }], max_tool_calls: 2 }).serverTools).toEqual([
      { name: 'web_search', type: 'web_search', maxUses: 2 },
    ]);
    const nested = terms({
      input: [
        {
          type: 'additional_tools',
          tools: [{ type: 'namespace', name: 'ns', tools: [{ type: 'web_search_2025_08_26' }] }],
        },
        ...input,
      ],
    });
    expect(nested.serverTools).toEqual([{ name: 'web_search', type: 'web_search_2025_08_26' }]);
  });

  it('refuses built-in tools it cannot bound, saying what to do', () => {
    expect(terms({ tools: [{ type: 'web_search_preview' }] }).unbounded).toMatch(
      /send \{ "type": "web_search" \}/,
    );
    expect(
      terms({ tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }).unbounded,
    ).toMatch(/file_search/);
    expect(terms({ tools: [{ type: 'mcp', server_url: 'https://x' }] }).unbounded).toMatch(/MCP/);
    expect(terms({ tools: [{ type: 'code_interpreter' }] }).unbounded).toMatch(/containers/);
    expect(terms({ tools: [{ type: 'future_tool' }] }).unbounded).toMatch(/"future_tool"/);
    const clientTools = terms({
      tools: [
        { type: 'function', name: 'f', parameters: {} },
        { type: 'custom', name: 'apply_patch' },
        { type: 'local_shell' },
      ],
    });
    expect(clientTools.unbounded).toBeUndefined();
    expect(clientTools.serverTools).toEqual([]);
  });

  it('forwards the reserved output limit and at most the reserved searches', () => {
    const body = { model: 'gpt-5', input, tools: [{ type: 'web_search' }] };
    expect(forwardedBody(body, 'openai-responses', { maxTokens: 4_096 })).toEqual({
      ...body,
      max_output_tokens: 4_096,
      max_tool_calls: 5,
    });
    // A limit the caller set is reserved as set, and sent as set.
    const few = { ...body, max_output_tokens: 100, max_tool_calls: 2 };
    expect(forwardedBody(few, 'openai-responses', { maxTokens: 100 })).toBe(few);
    const many = { ...body, max_output_tokens: 100, max_tool_calls: 20 };
    expect(forwardedBody(many, 'openai-responses', { maxTokens: 100 })).toBe(many);
    const plain = { model: 'gpt-5', input };
    expect(forwardedBody(plain, 'openai-responses', { maxTokens: 64 })).toEqual({
      ...plain,
      max_output_tokens: 64,
    });
  });

  it('context the provider stored cannot be bounded from the request', () => {
    const count = (extra: Record<string, unknown>) =>
      measureRequestTokens({ model: 'gpt-5', input, ...extra }, { provider: 'openai' }).unbounded;
    expect(count({})).toBeUndefined();
    expect(count({ previous_response_id: 'resp_1' })).toMatch(/previous_response_id/);
    expect(count({ conversation: 'conv_1' })).toMatch(/conversation/);
    expect(count({ prompt: { id: 'pmpt_1' } })).toMatch(/stored prompt/);
    expect(
      measureRequestTokens(
        { model: 'gpt-5', input: [{ type: 'item_reference', id: 'msg_1' }] },
        { provider: 'openai' },
      ).unbounded,
    ).toMatch(/item_reference/);
  });
});
