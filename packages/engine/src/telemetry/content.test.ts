import { describe, expect, it } from 'vitest';
import { inputContent, outputContent } from './content.js';

describe('opt-in content in the GenAI conventions shapes', () => {
  it('Anthropic: messages with text, tool use and tool result blocks; system apart; no image bytes', () => {
    const content = inputContent({
      model: 'claude-haiku-4-5',
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'Use the tool.' },
            { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'rain' },
            { type: 'image', source: { type: 'base64', data: 'AAAA' } },
          ],
        },
      ],
    });
    expect(JSON.parse(content.system!)).toEqual([{ type: 'text', content: 'Be brief.' }]);
    expect(JSON.parse(content.messages!)).toEqual([
      { role: 'user', parts: [{ type: 'text', content: 'Weather in Paris?' }] },
      {
        role: 'assistant',
        parts: [
          { type: 'reasoning', content: 'Use the tool.' },
          { type: 'tool_call', id: 'toolu_1', name: 'weather', arguments: { city: 'Paris' } },
        ],
      },
      {
        role: 'user',
        parts: [{ type: 'tool_call_response', id: 'toolu_1', response: 'rain' }, { type: 'image' }],
      },
    ]);
    expect(content.messages).not.toContain('AAAA');
  });

  it('OpenAI: system stays a message, tool calls and tool results become parts', () => {
    const content = inputContent({
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'rain' },
      ],
    });
    expect(content.system).toBeUndefined();
    expect(JSON.parse(content.messages!)).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'Be brief.' }] },
      {
        role: 'assistant',
        parts: [
          { type: 'tool_call', id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
        ],
      },
      { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: 'rain' }] },
    ]);
  });

  it('anything else gives nothing rather than a guess', () => {
    expect(inputContent(undefined)).toEqual({});
    expect(inputContent('hello')).toEqual({});
    expect(inputContent({ prompt: 'hi' })).toEqual({});
  });

  it('writes the answer as one assistant message with its finish reason', () => {
    expect(JSON.parse(outputContent('Hi!', 'stop'))).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'Hi!' }], finish_reason: 'stop' },
    ]);
  });
});
