// The seeded text: reproducible, one piece per token, and full of the sequences that break
// naive SSE relays.

import { describe, expect, it } from 'vitest';
import {
  seededText,
  seededThinking,
  seededTokens,
  seededToolInput,
  TextGenerator,
  ToolInputGenerator,
} from './text-generator.js';

describe('TextGenerator', () => {
  it('is deterministic per seed and differs between seeds', () => {
    expect(seededText({ seed: 1, tokens: 300 })).toBe(seededText({ seed: 1, tokens: 300 }));
    expect(seededText({ seed: 1, tokens: 300 })).not.toBe(seededText({ seed: 2, tokens: 300 }));
  });

  it('take(n) equals n calls of next(), and a prefix stays a prefix', () => {
    const a = new TextGenerator(42);
    const b = new TextGenerator(42);
    let joined = '';
    for (let i = 0; i < 97; i++) joined += b.next();
    expect(a.take(97)).toBe(joined);
    expect(seededText({ seed: 42, tokens: 500 }).startsWith(joined)).toBe(true);
    expect(seededTokens({ seed: 42, tokens: 97 }).join('')).toBe(joined);
    expect(seededTokens({ seed: 42, tokens: 97 }).every((piece) => piece.length > 0)).toBe(true);
  });

  it('mixed text carries newlines, CRLF, unicode, emoji and SSE look-alikes within 200 tokens', () => {
    for (const seed of [0, 1, 7, 123456]) {
      const text = seededText({ seed, tokens: 200 });
      expect(text).toContain('\n\ndata: [DONE]\n\n');
      expect(text).toContain('event: done\n');
      expect(text).toContain('\r\n');
      expect(text).toContain('🚀');
      expect(text).toContain('日本語');
      expect(text).toContain('\u2028');
      expect(text).toMatch(/\r(?!\n)/);
    }
  });

  it('splits a ZWJ emoji across three tokens', () => {
    const pieces = seededTokens({ seed: 1, tokens: 200 });
    const at = pieces.indexOf(' 👩');
    expect(at).toBeGreaterThanOrEqual(0);
    expect(pieces.slice(at, at + 3)).toEqual([' 👩', '\u200d', '💻']);
  });

  it('plain text has words and newlines but none of the adversarial sequences', () => {
    const text = seededText({ seed: 3, tokens: 2000, text: 'plain' });
    expect(text).toContain('\n');
    expect(text).not.toContain('\r');
    expect(text).not.toContain('data:');
    expect(text).not.toMatch(/[^\x20-\x7e\n]/);
  });

  it('thinking text is seeded apart from the answer text', () => {
    expect(seededThinking(5, 50)).toBe(seededThinking(5, 50));
    expect(seededThinking(5, 50)).not.toBe(seededText({ seed: 5, tokens: 50, text: 'plain' }));
  });
});

describe('ToolInputGenerator', () => {
  it.each([1, 2, 3, 4, 12, 40])('%i tokens make valid JSON, one piece per token', (tokens) => {
    const generator = new ToolInputGenerator(9, tokens);
    const pieces = Array.from({ length: tokens }, () => generator.next());
    expect(pieces.every((piece) => piece.length > 0)).toBe(true);
    const input = JSON.parse(pieces.join(''));
    expect(typeof input).toBe('object');
    expect(seededToolInput(9, tokens)).toBe(pieces.join(''));
  });

  it('a truncated input is a prefix that is not valid JSON', () => {
    const cut = seededToolInput(9, 12, 6);
    expect(seededToolInput(9, 12).startsWith(cut)).toBe(true);
    expect(() => JSON.parse(cut)).toThrow(SyntaxError);
  });
});
