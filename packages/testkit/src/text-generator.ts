// Deterministic text for the fake's answers. A token is one piece handed out by a generator:
// the same seed always yields the same pieces, so a test can recompute exactly what was sent
// from the seed and the token count, and `output_tokens` can equal the pieces streamed.
//
// Pieces are interned string constants: producing a token allocates nothing; only joining
// the pieces of one chunk builds a string.

import type { TextMode } from './types.js';

const WORDS: readonly string[] = [
  ' the',
  ' stream',
  ' token',
  ' budget',
  ' meter',
  ' of',
  ' and',
  ' to',
  ' a',
  ' cost',
  ' request',
  ' server',
  ' client',
  ' event',
  ' data',
  ' model',
  ' reply',
  ' fast',
  ' slow',
  ' is',
  ' was',
  ' not',
  ' every',
  ' chunk',
  ' byte',
  ' line',
  ' cache',
  ' price',
  ' limit',
  ' window',
  ' time',
  ' quick',
  ' brown',
  ' fox',
  ' jumps',
  ' over',
  ' lazy',
  ' dog',
  ' usage',
  ' settle',
  ' reserve',
  ' abort',
  ' drain',
  ' socket',
  ' upstream',
  ' browser',
  ' answer',
  ' question',
  ' money',
  ' exact',
  ' once',
  ' never',
  ' always',
  ' here',
  ' there',
  ' with',
  ' without',
  ' for',
  ' in',
  ' on',
  ' at',
  ' by',
  ' we',
  ' it',
];

const PUNCTUATION: readonly string[] = [',', '.', ';', ':', '?', '!'];

/**
 * Sequences that break naive SSE relays, JSON encoders or HTML, emitted in turn by the
 * `mixed` mode. Multi-piece entries are deliberately split across tokens (a ZWJ emoji, a
 * word and its combining accent) so that chunk boundaries fall inside one grapheme.
 */
const SPECIALS: readonly (readonly string[])[] = [
  ['\r\n'],
  ['\n\ndata: [DONE]\n\n'],
  ['event: done\n'],
  [' café', ' naïve'],
  [' 日本語'],
  [' 🚀'],
  [' 👩', '\u200d', '💻'],
  ['\r'],
  ['data: {"type":"message_stop"}\n\n'],
  ['\u2028'],
  [': ping\n\n'],
  ['</script>'],
  ['\\n'],
  [' "quoted"'],
  ['id: 7\nretry: 0\n'],
  [' e', '\u0301'],
  ['\t'],
];

/** In `mixed` mode a special sequence starts at every token whose index ≡ 5 (mod 8). */
const SPECIAL_PERIOD = 8;
const SPECIAL_PHASE = 5;

/** Seeds of the other blocks are derived so that thinking, text and tool input differ. */
const THINKING_SALT = 0x7f4a7c15;
const TOOL_SALT = 0x2545f491;

/** A source of token pieces. */
export interface PieceSource {
  /** The next token's text. */
  next(): string;
  /** The next `n` tokens joined. */
  take(n: number): string;
}

/** Seeded text: words, punctuation, newlines and (in `mixed` mode) adversarial sequences. */
export class TextGenerator implements PieceSource {
  #state: number;
  #index = 0;
  #mode: TextMode | 'words';
  #special: readonly string[] | undefined;
  #specialPos = 0;
  #specialCursor: number;

  constructor(seed: number, mode: TextMode | 'words' = 'mixed') {
    this.#state = seed >>> 0;
    this.#mode = mode;
    this.#specialCursor = (seed >>> 0) % SPECIALS.length;
  }

  /** mulberry32: tiny, fast and good enough for text that only has to be reproducible. */
  #rand(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  next(): string {
    const index = this.#index++;
    if (this.#mode === 'mixed') {
      if (this.#special === undefined && index % SPECIAL_PERIOD === SPECIAL_PHASE) {
        this.#special = SPECIALS[this.#specialCursor];
        this.#specialCursor = (this.#specialCursor + 1) % SPECIALS.length;
        this.#specialPos = 0;
      }
      if (this.#special !== undefined) {
        const piece = this.#special[this.#specialPos++]!;
        if (this.#specialPos >= this.#special.length) this.#special = undefined;
        return piece;
      }
    }
    const r = this.#rand();
    if (this.#mode === 'words') return WORDS[r % WORDS.length]!;
    const pick = r % 100;
    if (pick < 5) return '\n';
    if (pick < 7) return '\n\n';
    if (pick < 15) return PUNCTUATION[(r >>> 8) % PUNCTUATION.length]!;
    return WORDS[(r >>> 8) % WORDS.length]!;
  }

  take(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += this.next();
    return out;
  }
}

/**
 * The input JSON of a tool call, one piece per token: `{"query": "` + words + `"}`. Fewer than
 * three tokens give `{}` (one token) or `{` `}` (two). Truncating it (max_tokens) leaves
 * invalid JSON, as a real truncated tool call does.
 */
export class ToolInputGenerator implements PieceSource {
  #index = 0;
  #total: number;
  #words: TextGenerator;

  constructor(seed: number, totalTokens: number) {
    this.#total = totalTokens;
    this.#words = new TextGenerator((seed ^ TOOL_SALT) >>> 0, 'words');
  }

  next(): string {
    const index = this.#index++;
    if (this.#total === 1) return '{}';
    if (this.#total === 2) return index === 0 ? '{' : '}';
    if (index === 0) return '{"query": "';
    if (index === this.#total - 1) return '"}';
    return this.#words.next();
  }

  take(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += this.next();
    return out;
  }
}

/** A generator for the thinking block, seeded apart from the text. */
export function thinkingGenerator(seed: number): TextGenerator {
  return new TextGenerator((seed ^ THINKING_SALT) >>> 0, 'plain');
}

/** Options of `seededText()`. */
export interface SeededTextOptions {
  /** Defaults to 1, like the server. */
  seed?: number;
  tokens: number;
  /** Defaults to `'mixed'`, like the server. */
  text?: TextMode;
}

/**
 * The first `tokens` tokens of the text the fake streams for `seed` — what a client should
 * have received as the text block.
 *
 * @example
 * expect(message.content[0].text).toBe(seededText({ seed: 1, tokens: 64 }));
 */
export function seededText(options: SeededTextOptions): string {
  return new TextGenerator(options.seed ?? 1, options.text ?? 'mixed').take(options.tokens);
}

/** The same text as `seededText()`, as one string per token. */
export function seededTokens(options: SeededTextOptions): string[] {
  const generator = new TextGenerator(options.seed ?? 1, options.text ?? 'mixed');
  const pieces: string[] = [];
  for (let i = 0; i < options.tokens; i++) pieces.push(generator.next());
  return pieces;
}

/** The first `tokens` tokens of the thinking block for `seed`. */
export function seededThinking(seed: number, tokens: number): string {
  return thinkingGenerator(seed).take(tokens);
}

/** The first `sent` tokens of a tool input planned at `planned` tokens for `seed`. */
export function seededToolInput(seed: number, planned: number, sent = planned): string {
  return new ToolInputGenerator(seed, planned).take(sent);
}
