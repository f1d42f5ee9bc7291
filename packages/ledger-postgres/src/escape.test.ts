import { describe, expect, it } from 'vitest';
import { escapeText, unescapeText } from './escape.js';

describe('escapeText', () => {
  it('leaves ordinary text alone, emoji and backslashes included', () => {
    for (const text of ['ada', 'team/core', 'Frage 🙂', 'C:\\temp', 'a\\b', '\uFFFD', '']) {
      expect(escapeText(text)).toBe(text);
    }
  });

  it('writes a NUL and lone surrogates as \\uXXXX, and a backslash before u as \\u005c', () => {
    expect(escapeText('a\u0000b')).toBe('a\\u0000b');
    expect(escapeText('a\ud800b')).toBe('a\\ud800b');
    expect(escapeText('x\udc00')).toBe('x\\udc00');
    expect(escapeText('\udc00\ud800')).toBe('\\udc00\\ud800'); // the wrong order is two lone halves
    expect(escapeText('\ud83d\ude42')).toBe('\ud83d\ude42'); // a pair is a character
    expect(escapeText('C:\\users')).toBe('C:\\u005cusers');
    expect(escapeText('\\u0000')).toBe('\\u005cu0000');
  });

  it('keeps nothing Postgres refuses and gives every original back, never two alike', () => {
    const tricky = [
      'a\u0000b',
      'a\\u0000b',
      '\\\u0000',
      '\\\\u',
      '\\u005c',
      '\ud800',
      '\\ud800',
      '\udfff\u0000\\',
      'plain',
      '\\',
      'a\\',
    ];
    const stored = tricky.map(escapeText);
    expect(new Set(stored).size).toBe(tricky.length);
    for (const [i, s] of stored.entries()) {
      expect(s.includes('\u0000')).toBe(false);
      expect(s.isWellFormed()).toBe(true);
      expect(unescapeText(s)).toBe(tricky[i]);
    }
  });
});
