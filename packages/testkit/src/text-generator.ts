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

/**
 * `emoji` mode: common emoji, each a single code point outside the BMP with default emoji
 * presentation (no variation selector, no ZWJ), so one piece is one emoji is one BPE-ish token.
 */
const EMOJI: readonly string[] = Array.from(
  '😀😂😍🤔😎😭😊🙂🙃😉😅🤣😇🥰😘😜🤗🤩😴🥳🎉🚀🔥👍👏🙏💯💡🎈🌟🌈🍕🍔🍺🐶🐱🦄🌍💻📱🎁',
);
/** The same emoji with a leading space (interned, like every other piece). */
const SPACED_EMOJI: readonly string[] = EMOJI.map((emoji) => ` ${emoji}`);

/** `vietnamese` mode: common syllables (NFC), each with its leading space. */
const VIETNAMESE: readonly string[] = (
  'người Việt nước những được trong của và có không là một các cho ' +
  'với này đã để năm khi đến làm nhiều về ra cũng như sẽ ' +
  'tại từ học thành phố Nam hơn đây đó chúng tôi mình biết nói'
)
  .split(' ')
  .map((syllable) => ` ${syllable}`);

/** `cjk` mode: common Chinese characters, one per piece. */
const CJK: readonly string[] = Array.from(
  '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然',
);

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** `base64` mode draws its 3-character pieces from this many interned triples. */
const BASE64_TRIPLES = 4096;
let base64Triples: readonly string[] | undefined;

/** 4,096 distinct base64 triples, built on first use (every character appears in each place). */
function base64TriplesTable(): readonly string[] {
  if (base64Triples) return base64Triples;
  const table: string[] = [];
  for (let i = 0; i < BASE64_TRIPLES; i++) {
    // An odd multiplier permutes the 18-bit space, so the triples are distinct and scattered.
    const x = Math.imul(i, 0x9e3779b1) >>> 14;
    table.push(
      BASE64_ALPHABET[x & 63]! +
        BASE64_ALPHABET[(x >>> 6) & 63]! +
        BASE64_ALPHABET[(x >>> 12) & 63]!,
    );
  }
  base64Triples = table;
  return table;
}

/** `repeat` mode: this piece, with a newline as every `REPEAT_LINE`th piece. */
const REPEAT_PIECE = 'aaaa';
const REPEAT_LINE = 20;

/** In `mixed` mode a special sequence starts at every token whose index ≡ 5 (mod 8). */
const SPECIAL_PERIOD = 8;
const SPECIAL_PHASE = 5;

/** Seeds of the other blocks are derived so that thinking, text and tool input differ. */
const THINKING_SALT = 0x7f4a7c15;
const TOOL_SALT = 0x2545f491;
const SEARCH_SALT = 0x5bd1e995;
const TOOL_FILL_SALT = 0x1b873593;

/**
 * Output tokens of one web search query: `{"query": "` + six words + `"}`, valid JSON when
 * complete.
 */
export const SEARCH_QUERY_TOKENS = 8;

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
  readonly #mode: TextMode | 'words';
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
    if (this.#mode === 'repeat')
      return index % REPEAT_LINE === REPEAT_LINE - 1 ? '\n' : REPEAT_PIECE;
    const r = this.#rand();
    const pick = r % 100;
    switch (this.#mode) {
      case 'words':
        return WORDS[r % WORDS.length]!;
      case 'emoji':
        if (pick < 4) return '\n';
        if (pick < 14) return SPACED_EMOJI[(r >>> 8) % SPACED_EMOJI.length]!;
        return EMOJI[(r >>> 8) % EMOJI.length]!;
      case 'vietnamese':
        if (pick < 6) return ',';
        if (pick < 10) return '.';
        return VIETNAMESE[(r >>> 8) % VIETNAMESE.length]!;
      case 'cjk':
        if (pick < 6) return '，';
        if (pick < 10) return '。';
        return CJK[(r >>> 8) % CJK.length]!;
      case 'base64':
        return base64TriplesTable()[(r >>> 8) % BASE64_TRIPLES]!;
      default:
        // mixed (between its special sequences) and plain.
        if (pick < 5) return '\n';
        if (pick < 7) return '\n\n';
        if (pick < 15) return PUNCTUATION[(r >>> 8) % PUNCTUATION.length]!;
        return WORDS[(r >>> 8) % WORDS.length]!;
    }
  }

  take(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += this.next();
    return out;
  }
}

/**
 * The input JSON of a call of a tool without a schema, one piece per token: `{"query": "` +
 * words + `"}`. Fewer than three tokens give `{}` (one token) or `{` `}` (two). Truncating it
 * (max_tokens) leaves invalid JSON, as a real truncated tool call does. Tools with a schema get
 * a valid instance of it instead (tool-arguments.ts).
 */
export class ToolInputGenerator implements PieceSource {
  #index = 0;
  #total: number;
  #words: TextGenerator;

  constructor(seed: number, totalTokens: number) {
    this.#total = totalTokens;
    this.#words = toolWordsGenerator(seed);
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

/** The words of a tool call's input for `seed`, seeded apart from the text. */
export function toolWordsGenerator(seed: number): TextGenerator {
  return new TextGenerator((seed ^ TOOL_SALT) >>> 0, 'words');
}

/** The words that fill a tool input's other strings (their minLength), apart from its own. */
export function toolFillGenerator(seed: number): TextGenerator {
  return new TextGenerator((seed ^ TOOL_FILL_SALT) >>> 0, 'words');
}

/** A generator for the thinking block, seeded apart from the text. */
export function thinkingGenerator(seed: number): TextGenerator {
  return new TextGenerator((seed ^ THINKING_SALT) >>> 0, 'plain');
}

/** The query JSON of web search `search` (0-based), seeded apart from the text and the tool. */
export function searchQueryGenerator(seed: number, search: number): ToolInputGenerator {
  return new ToolInputGenerator(
    (seed + Math.imul(search + 1, SEARCH_SALT)) >>> 0,
    SEARCH_QUERY_TOKENS,
  );
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

/**
 * The first `sent` tokens (all 8 by default) of the query JSON of web search `search`
 * (0-based) for `seed`, e.g. `{"query": " cost meter token over the fast"}`.
 */
export function seededSearchQuery(
  seed: number,
  search: number,
  sent = SEARCH_QUERY_TOKENS,
): string {
  return searchQueryGenerator(seed, search).take(sent);
}
