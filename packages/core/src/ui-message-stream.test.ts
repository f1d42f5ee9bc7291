import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import * as full from './sse-payloads.test-helper.js';
import { uiFinishReason, uiMessageStreamEncoder } from './ui-message-stream.js';

/** Every chunk of an encoded stream, as an SSE parser reads it. */
function chunks(text: string): unknown[] {
  const out: unknown[] = [];
  const parser = createParser({
    onEvent: (e) => out.push(e.data === '[DONE]' ? '[DONE]' : JSON.parse(e.data)),
  });
  parser.feed(text);
  return out;
}

describe('uiMessageStreamEncoder', () => {
  it('opens and closes text and reasoning parts, one id each, and ends with [DONE]', () => {
    const e = uiMessageStreamEncoder.forStream!();
    const wire =
      e.meta(full.meta({ requestId: 'req-1' })) +
      e.reasoning!({ text: 'think' }) +
      e.reasoning!({ text: 'ing' }) +
      e.delta({ text: 'Hel' }) +
      e.delta({ text: 'lo' }) +
      e.usage(full.usage({ outputTokens: 3, costUsd: 0.1 })) +
      e.done(full.done({ costNanos: 7 }));
    expect(chunks(wire)).toEqual([
      {
        type: 'start',
        messageId: 'req-1',
        messageMetadata: { tokenmeter: full.meta({ requestId: 'req-1' }) },
      },
      { type: 'start-step' },
      { type: 'reasoning-start', id: 'reasoning-0' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: 'think' },
      { type: 'reasoning-delta', id: 'reasoning-0', delta: 'ing' },
      { type: 'reasoning-end', id: 'reasoning-0' },
      { type: 'text-start', id: 'text-1' },
      { type: 'text-delta', id: 'text-1', delta: 'Hel' },
      { type: 'text-delta', id: 'text-1', delta: 'lo' },
      {
        type: 'data-tokenmeter',
        id: 'tokenmeter',
        data: full.usage({ outputTokens: 3, costUsd: 0.1 }),
      },
      { type: 'text-end', id: 'text-1' },
      {
        type: 'data-tokenmeter',
        id: 'tokenmeter',
        data: { ...full.done({ costNanos: 7 }), final: true },
      },
      { type: 'finish-step' },
      {
        type: 'finish',
        finishReason: 'stop',
        messageMetadata: {
          tokenmeter: { ...full.done({ costNanos: 7 }), final: true },
        },
      },
      '[DONE]',
    ]);
  });

  it('an error closes open parts, keeps the figures in the message, then reports the error', () => {
    const e = uiMessageStreamEncoder.forStream!();
    const wire =
      e.delta({ text: 'par' }) +
      e.error(full.error({ code: 'budget_exceeded', message: 'Budget exceeded.', costNanos: 5 }));
    const types = chunks(wire).map((c) =>
      typeof c === 'string' ? c : (c as { type: string }).type,
    );
    expect(types).toEqual([
      'text-start',
      'text-delta',
      'text-end',
      'data-tokenmeter',
      'message-metadata',
      'error',
      '[DONE]',
    ]);
    expect(chunks(wire)[5]).toEqual({ type: 'error', errorText: 'Budget exceeded.' });
  });

  it('a tool call closes the open text and becomes tool-input-start + tool-input-available', () => {
    const e = uiMessageStreamEncoder.forStream!();
    const wire =
      e.delta({ text: 'Let me check.' }) +
      e.toolCall!({ id: 'c1', name: 'get_weather', input: { city: 'Oslo' } });
    expect(chunks(wire).slice(2)).toEqual([
      { type: 'text-end', id: 'text-0' },
      { type: 'tool-input-start', toolCallId: 'c1', toolName: 'get_weather' },
      {
        type: 'tool-input-available',
        toolCallId: 'c1',
        toolName: 'get_weather',
        input: { city: 'Oslo' },
      },
    ]);
  });

  it('keeps no state between streams', () => {
    const a = uiMessageStreamEncoder.forStream!();
    const b = uiMessageStreamEncoder.forStream!();
    a.delta({ text: 'x' });
    expect(chunks(b.delta({ text: 'y' }))[0]).toEqual({ type: 'text-start', id: 'text-0' });
    expect(uiMessageStreamEncoder.headers).toMatchObject({ 'x-vercel-ai-ui-message-stream': 'v1' });
  });

  it('text with line ends, [DONE] and JSON stays inside one delta', () => {
    const e = uiMessageStreamEncoder.forStream!();
    const text = '\n\ndata: [DONE]\n\ndata: {"type":"finish"}\r\n\u2028';
    const parsed = chunks(e.delta({ text }));
    expect(parsed).toHaveLength(2);
    expect(parsed[1]).toEqual({ type: 'text-delta', id: 'text-0', delta: text });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop', 'stop'],
    ['max_tokens', 'length'],
    ['length', 'length'],
    ['tool_use', 'tool-calls'],
    ['tool_calls', 'tool-calls'],
    ['refusal', 'content-filter'],
    ['content_filter', 'content-filter'],
    [null, 'other'],
  ])('stop reason %s → finishReason %s', (stop, finish) => {
    expect(uiFinishReason(stop)).toBe(finish);
  });
});
