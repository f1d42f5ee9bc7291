// The seeded text: reproducible, one piece per token, and full of the sequences that break
// naive SSE relays.

import { describe, expect, it } from 'vitest';
import {
  SEARCH_QUERY_TOKENS,
  seededSearchQuery,
  seededText,
  seededThinking,
  seededTokens,
  TextGenerator,
  ToolInputGenerator,
} from './text-generator.js';
import { seededToolInput } from './tool-arguments.js';

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

describe('text modes approximating one BPE token per piece', () => {
  const modes = ['emoji', 'vietnamese', 'cjk', 'base64', 'repeat'] as const;

  it.each(modes)('%s is deterministic, and seeded text is a prefix of longer text', (text) => {
    const pieces = seededTokens({ seed: 5, tokens: 400, text });
    expect(seededTokens({ seed: 5, tokens: 400, text })).toEqual(pieces);
    expect(seededText({ seed: 5, tokens: 400, text })).toBe(pieces.join(''));
    expect(seededText({ seed: 5, tokens: 900, text }).startsWith(pieces.join(''))).toBe(true);
    expect(new TextGenerator(5, text).take(400)).toBe(pieces.join(''));
    expect(pieces.every((piece) => piece.length > 0)).toBe(true);
  });

  it.each(modes.filter((mode) => mode !== 'repeat'))('%s differs between seeds', (text) => {
    expect(seededText({ seed: 1, tokens: 100, text })).not.toBe(
      seededText({ seed: 2, tokens: 100, text }),
    );
  });

  it('emoji: one emoji per piece (a single code point outside the BMP), spaces and newlines', () => {
    const pieces = seededTokens({ seed: 8, tokens: 2000, text: 'emoji' });
    const emoji = new Set<string>();
    for (const piece of pieces) {
      if (piece === '\n') continue;
      const bare = piece.startsWith(' ') ? piece.slice(1) : piece;
      const codePoints = Array.from(bare);
      expect(codePoints).toHaveLength(1);
      expect(bare.codePointAt(0)).toBeGreaterThan(0xffff);
      expect(bare).toMatch(/^\p{Extended_Pictographic}$/u);
      emoji.add(bare);
    }
    expect(emoji.size).toBeGreaterThanOrEqual(35);
    expect(pieces).toContain('\n');
    expect(pieces.some((piece) => piece.startsWith(' '))).toBe(true);
    // Most pieces are bare emoji.
    expect(
      pieces.filter((piece) => Array.from(piece).length === 1 && piece !== '\n').length,
    ).toBeGreaterThan(1500);
    expect(seededText({ seed: 8, tokens: 2000, text: 'emoji' })).not.toMatch(/[\ufe0f\u200d]/);
  });

  it('vietnamese: one syllable with diacritics per piece, with its leading space, and , .', () => {
    const pieces = seededTokens({ seed: 8, tokens: 2000, text: 'vietnamese' });
    const syllables = new Set<string>();
    for (const piece of pieces) {
      if (piece === ',' || piece === '.') continue;
      expect(piece).toMatch(/^ [\p{L}]+$/u);
      expect(piece.normalize('NFC')).toBe(piece);
      syllables.add(piece);
    }
    expect(syllables.size).toBeGreaterThanOrEqual(38);
    expect(syllables).toContain(' người');
    expect(syllables).toContain(' Việt');
    expect(pieces).toContain(',');
    expect(pieces).toContain('.');
    expect([...syllables].filter((s) => /[^\x20-\x7e]/.test(s)).length).toBeGreaterThan(20);
  });

  it('cjk: one Chinese character per piece, and full-width ， 。', () => {
    const pieces = seededTokens({ seed: 8, tokens: 3000, text: 'cjk' });
    const chars = new Set<string>();
    for (const piece of pieces) {
      if (piece === '，' || piece === '。') continue;
      expect(piece).toMatch(/^\p{Script=Han}$/u);
      chars.add(piece);
    }
    expect(chars.size).toBe(60);
    expect(pieces).toContain('，');
    expect(pieces).toContain('。');
  });

  it('base64: pieces of exactly 3 base64 characters, one long run without spaces', () => {
    const pieces = seededTokens({ seed: 8, tokens: 5000, text: 'base64' });
    for (const piece of pieces) expect(piece).toMatch(/^[A-Za-z0-9+/]{3}$/);
    const text = pieces.join('');
    expect(text).toHaveLength(15000);
    expect(text).toMatch(/^[A-Za-z0-9+/]+$/);
    // It looks random: most pieces differ, and the whole alphabet shows up.
    expect(new Set(pieces).size).toBeGreaterThan(2000);
    expect(new Set(text).size).toBe(64);
  });

  it('repeat: "aaaa" pieces with a newline as every 20th piece, whatever the seed', () => {
    const pieces = seededTokens({ seed: 8, tokens: 60, text: 'repeat' });
    pieces.forEach((piece, index) => {
      expect(piece).toBe(index % 20 === 19 ? '\n' : 'aaaa');
    });
    expect(seededText({ seed: 8, tokens: 60, text: 'repeat' })).toBe(
      `${'aaaa'.repeat(19)}\n`.repeat(3),
    );
    expect(seededText({ seed: 99, tokens: 60, text: 'repeat' })).toBe(
      seededText({ seed: 8, tokens: 60, text: 'repeat' }),
    );
  });

  it('mixed and plain text are unchanged by the new modes', () => {
    expect(seededTokens({ seed: 1, tokens: 8 })).toEqual([
      ' drain',
      ' cost',
      ' meter',
      ' settle',
      '\n',
      '\n\ndata: [DONE]\n\n',
      ' usage',
      ' stream',
    ]);
    expect(seededTokens({ seed: 1, tokens: 8, text: 'plain' })).toEqual([
      ' drain',
      ' cost',
      ' meter',
      ' settle',
      '\n',
      ' usage',
      ' stream',
      ' quick',
    ]);
  });
});

describe('seededSearchQuery', () => {
  it('is 8 tokens of valid {"query": …} JSON, different per search; a cut one is a prefix', () => {
    const query = seededSearchQuery(3, 0);
    expect(JSON.parse(query)).toEqual({ query: expect.stringMatching(/^( \w+){6}$/) });
    expect(seededSearchQuery(3, 0)).toBe(query);
    expect(seededSearchQuery(3, 1)).not.toBe(query);
    expect(seededSearchQuery(4, 0)).not.toBe(query);
    expect(seededSearchQuery(3, 0, 8)).toBe(query);
    const cut = seededSearchQuery(3, 0, 5);
    expect(query.startsWith(cut)).toBe(true);
    expect(() => JSON.parse(cut)).toThrow(SyntaxError);
    expect(SEARCH_QUERY_TOKENS).toBe(8);
  });
});
