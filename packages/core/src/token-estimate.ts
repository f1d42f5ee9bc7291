/**
 * Token estimation: how many tokens a request will cost before it is sent, and how many
 * output tokens a stream has produced when it ends before the provider reports usage.
 *
 * - {@link estimateTextTokens}: a fast heuristic for one string (single pass over char
 *   codes, no allocation); {@link createOutputEstimator}: the same heuristic fed chunk by
 *   chunk, giving exactly the same total however the text was split.
 * - {@link estimateRequestTokens}: the input estimate for an Anthropic Messages or OpenAI
 *   Chat Completions request (text, tool calls and results, images, PDFs, tool
 *   definitions, per-message overhead), with an optional safety `margin`;
 *   {@link measureRequestTokens} gives it with an upper bound for reservations.
 * - {@link estimateTextTokenBound} and `OutputEstimator.bound`: an upper bound per class of
 *   text ({@link TEXT_BOUND_MARGINS}), measured against public tokenizers.
 * - The pluggable counters that use these (and the exact, provider-side count) live in
 *   `token-counter.ts`.
 *
 * ## The heuristic
 *
 * It imitates how BPE tokenizers work without a vocabulary. The o200k pre-tokenizer first
 * cuts text into pieces — a word with at most one leading space or punctuation character,
 * groups of up to 3 digits, a run of punctuation, a run of whitespace, a run of newlines —
 * and most short pieces then become exactly one token. So the estimator walks the text once,
 * finds those piece boundaries with a small state machine over UTF-16 code units, and
 * charges each piece by character class:
 *
 * - ASCII word: 1 token, +0.26 per letter beyond 7 (long words split); a lower→upper case
 *   change (`camelCase`) starts a new piece; ALL-CAPS letters beyond 2 cost +0.28; a word
 *   that absorbs a single punctuation prefix (`.push`, `_id`) costs +0.29 beyond the prefix.
 * - Accented Latin letters: +0.71 each (they are multi-byte and break merges); Greek,
 *   Cyrillic, Arabic, Indic…: +0.13 per letter after the first; Thai, Lao, Myanmar, Khmer
 *   (no spaces between words): +0.4 per letter (not calibrated, no corpus file).
 * - CJK ideographs and kana: 0.69 per character, plus 0.26 to start a run; Hangul: 1 per
 *   word plus 0.39 per syllable.
 * - Digits: 1 per group of 3 (a single space before a number is its own token).
 * - Punctuation: 1 per run, +0.3 per character change after the third (`});` is one token,
 *   `|---|---:|` is several), +0.06 per repeated character (`--------`); other BMP
 *   symbols (“ ” — ° €) +0.24 each.
 * - Emoji and other astral characters: +1.54 each; ZWJ and variation selectors: +0.51.
 * - Whitespace: a single space is free (it joins the next word); a longer run is one token
 *   (+1 per 128); a newline run is one token (+1 per 16), nearly free after punctuation.
 *
 * ## Measured accuracy
 *
 * Ground truth is the `o200k_base` encoding (OpenAI's current models; `gpt-tokenizer`,
 * used only in tests). Claude's tokenizer is not public and its counts differ from o200k's
 * (often higher, by an amount that depends on the model and the text), so these figures do
 * not bound the error against Claude: for Anthropic the exact figure comes from the
 * provider's count-tokens endpoint (`anthropicTokenCounter`), and without it a reservation
 * prices the upper bound ({@link measureRequestTokens}). Coefficients were fitted on the
 * corpus in `__fixtures__/estimator-corpus/` (regularised towards values read off per-piece
 * statistics), with `heldout-*` files kept out of the fit. Relative error
 * `(estimate − o200k) / o200k` on that corpus (21 files, 14,254 tokens):
 *
 * | file                  | o200k | error  | | file (held out)        | o200k | error |
 * |-----------------------|------:|-------:|-|------------------------|------:|------:|
 * | en-prose-gardening    |   765 |  +1.6% | | heldout-en-astronomy   |   589 | +0.8% |
 * | markdown-typescript   |   957 |  +3.0% | | heldout-llm-answer     |   622 | +2.4% |
 * | markdown-python       |   788 |  +2.2% | | heldout-go-sql         |   676 | +2.1% |
 * | api-response (JSON)   |  1018 |  +1.7% | | heldout-config-logs    |   697 | +2.6% |
 * | numbers-tables        |  2262 |   0.0% | | heldout-french         |   386 | +5.2% |
 * | url-list              |  1194 |  −2.3% | | heldout-japanese-tech  |   476 | +3.4% |
 * | german                |   409 |  −4.9% | | heldout-emoji-social   |   221 | +0.9% |
 * | spanish               |   329 |  +4.0% | |                        |       |       |
 * | russian               |   378 |  −0.3% | |                        |       |       |
 * | chinese               |   559 |  −3.9% | |                        |       |       |
 * | chinese-tech          |   418 |  +9.8% | |                        |       |       |
 * | japanese              |   519 |  +0.6% | |                        |       |       |
 * | korean                |   335 |  +0.6% | |                        |       |       |
 * | emoji-chat            |   656 |  −3.2% | |                        |       |       |
 *
 * Whole corpus: +0.9% (fitting files +0.4%, held-out files +2.5%, worst held-out +5.2%).
 * Mean absolute per-file error 2.6%, worst +9.8%. Stated (and tested) bounds: every file
 * within ±15%, the whole corpus and the held-out files within ±5% — see
 * {@link TEXT_ESTIMATE_ACCURACY}.
 *
 * Bias: on prose, code, JSON and logs it tends to over-estimate slightly (+1–3%); on
 * German, Chinese and emoji-heavy text it under-estimates by up to ~5%. Known weak spots,
 * outside the stated bounds: random base64 / mixed-case identifiers (≈30% low), very long
 * runs of one letter or one emoji (up to 2× high), Vietnamese (one sample: ≈50% high). A
 * budget reservation prices the upper bound ({@link TEXT_BOUND_MARGINS}), not the estimate.
 *
 * @module
 */

import { TokenmeterError } from './errors.js';
import { countPdfPages } from './pdf-pages.js';

// ---------------------------------------------------------------------------------------
// Text heuristic: a state machine over UTF-16 code units.
// ---------------------------------------------------------------------------------------

// Coefficients (tokens). Fitted on the training part of the corpus; see the module doc.
const WORD_FREE_LETTERS = 7;
const WORD_EXTRA = 0.26;
const CASE_SPLIT = 0.99;
const CAPS_FREE_LETTERS = 2;
const CAPS_EXTRA = 0.28;
const PREFIXED_WORD = 0.29;
const LATIN_ACCENT_EXTRA = 0.71;
const ALPHABET_EXTRA = 0.13;
const DENSE_SCRIPT_CHAR = 0.4;
const CJK_CHAR = 0.69;
const CJK_START = 0.26;
const HANGUL_CHAR = 0.39;
const PUNCT_FREE_SEGMENTS = 3;
const PUNCT_EXTRA = 0.3;
const PUNCT_REPEAT = 0.06;
const SYMBOL_EXTRA = 0.24;
const ASTRAL_EXTRA = 1.54;
const JOINER_EXTRA = 0.51;
const NEWLINE_AFTER_PUNCT = 0.26;
const SPACES_PER_TOKEN = 128;
const NEWLINES_PER_TOKEN = 16;

// What the previous code unit was (the piece being built).
const PREV_NONE = 0;
const PREV_LOWER = 1; // a letter that is not ASCII upper case (any script)
const PREV_UPPER = 2;
const PREV_DIGIT = 3;
const PREV_PUNCT = 4;
const PREV_SPACE = 5;
const PREV_NEWLINE = 6;

// Extra cost classes for letters.
const LETTER_ASCII = 0;
const LETTER_LATIN = 1;
const LETTER_ALPHABET = 2;
const LETTER_CJK = 3;
const LETTER_HANGUL = 4;
const LETTER_DENSE = 5;

/** A marker for "the previous punctuation was an astral character" (never a code unit). */
const ASTRAL_MARK = -2;

// Text classes for the upper bound (TEXT_CLASSES order). Letter classes share the LETTER_*
// numbers (0 ASCII … 5 dense scripts), so a word's class is its highest letter kind.
const CLS_ASCII = LETTER_ASCII; // ASCII letters, digits, punctuation and whitespace
const CLS_SYMBOL = 6; // other BMP punctuation and symbols
const CLS_EMOJI = 7; // astral characters, joiners, variation selectors
const CLS_BLOB = 8; // inside a run of BLOB_RUN or more non-space characters
const CLASS_COUNT = 9;
/** ASCII non-space code units in a row after which a run is a blob (base64, hashes, URLs). */
const BLOB_RUN = 32;

interface ScanState {
  /** Tokens committed so far (fractional). */
  acc: number;
  prev: number;
  /** Length of the current run: letters in the word, digits, punctuation code points, spaces, newlines. */
  run: number;
  /** Distinct-character segments in the current punctuation run. */
  seg: number;
  /** Previous punctuation code unit, to spot repeats. */
  last: number;
  /** The current word is upper case so far. */
  caps: boolean;
  /** The current punctuation run began with a space (so it cannot prefix a word). */
  punctAfterSpace: boolean;
  /** A high surrogate is waiting for its low half (a chunk split a pair). */
  high: boolean;
  /** Anything at all was pushed. */
  any: boolean;
  /**
   * Tokens counted so far per text class (`CLS_*`), for the upper bound. A plain array of
   * doubles: on the JS heap, unlike a typed array's separately allocated backing store
   * (one per stream, ~250 bytes and a GC finalizer each).
   */
  by: number[];
  /** `acc` when the last lump of tokens was attributed to a class. */
  mark: number;
  /** The class of the tokens counted since `mark`. */
  pcls: number;
  /** ASCII non-space code units in a row (a long run is a blob: base64, a hash, a URL). */
  asciiRun: number;
}

function newState(): ScanState {
  return {
    acc: 0,
    prev: PREV_NONE,
    run: 0,
    seg: 0,
    last: -1,
    caps: false,
    punctAfterSpace: false,
    high: false,
    any: false,
    by: new Array<number>(CLASS_COUNT).fill(0),
    mark: 0,
    pcls: CLS_ASCII,
    asciiRun: 0,
  };
}

/** Attributes the tokens counted since the last mark to the current class (or to blobs). */
function flush(s: ScanState): void {
  const counted = s.acc - s.mark;
  if (counted !== 0) {
    s.by[s.asciiRun >= BLOB_RUN ? CLS_BLOB : s.pcls]! += counted;
    s.mark = s.acc;
  }
}

/** A non-space, non-letter unit of class `cls`. */
function enter(s: ScanState, cls: number): void {
  if (cls !== s.pcls) {
    flush(s);
    s.pcls = cls;
  }
  if (cls === CLS_ASCII) s.asciiRun++;
  else if (s.asciiRun > 0) {
    flush(s);
    s.asciiRun = 0;
  }
}

/** A whitespace unit: the run before it ends, and its tokens get their class. */
function enterSpace(s: ScanState): void {
  if (s.asciiRun > 0 || s.pcls !== CLS_ASCII) {
    flush(s);
    s.asciiRun = 0;
    s.pcls = CLS_ASCII;
  }
}

/** A pending run of spaces ends; `next` is what follows it. */
function closeSpaces(s: ScanState, next: number): void {
  // o200k: one space joins the following word or punctuation; the spaces before it form one
  // piece; spaces before a newline join the newline; a space before digits stands alone.
  if (next === PREV_NEWLINE) return;
  if (next === PREV_DIGIT) s.acc += s.run >= 2 ? 2 : 1;
  else if (s.run >= 2) s.acc += 1;
}

function letter(s: ScanState, upper: boolean, kind: number): void {
  const prev = s.prev;
  const inWord = prev === PREV_LOWER || prev === PREV_UPPER;
  // A word takes the class of its most distinctive letter ("café" is accented Latin).
  if (inWord) {
    if (kind > s.pcls) s.pcls = kind;
  } else if (kind !== s.pcls) {
    flush(s);
    s.pcls = kind;
  }
  if (kind === LETTER_ASCII) s.asciiRun++;
  else s.asciiRun = 0;
  if (inWord && !(upper && prev === PREV_LOWER)) {
    s.run++;
    if (kind === LETTER_ASCII) {
      if (s.run > WORD_FREE_LETTERS) s.acc += WORD_EXTRA;
      if (upper && s.caps) {
        if (s.run > CAPS_FREE_LETTERS) s.acc += CAPS_EXTRA;
      } else s.caps = false;
    }
  } else {
    if (inWord) {
      s.acc += CASE_SPLIT; // "camelCase": the tokenizer cuts before the capital
    } else if (prev === PREV_PUNCT && s.run === 1 && !s.punctAfterSpace) {
      s.acc += PREFIXED_WORD; // ".push", "(x", "“Hello": one piece with its prefix
    } else {
      if (prev === PREV_SPACE) closeSpaces(s, PREV_LOWER);
      s.acc += kind === LETTER_CJK ? CJK_START : 1;
    }
    s.run = 1;
    s.caps = upper;
  }
  if (kind === LETTER_LATIN) s.acc += LATIN_ACCENT_EXTRA;
  else if (kind === LETTER_ALPHABET) {
    if (s.run > 1) s.acc += ALPHABET_EXTRA;
  } else if (kind === LETTER_CJK) s.acc += CJK_CHAR;
  else if (kind === LETTER_HANGUL) s.acc += HANGUL_CHAR;
  else if (kind === LETTER_DENSE) s.acc += DENSE_SCRIPT_CHAR;
  s.prev = upper ? PREV_UPPER : PREV_LOWER;
}

function digit(s: ScanState): void {
  enter(s, CLS_ASCII);
  if (s.prev === PREV_DIGIT) {
    if (s.run % 3 === 0) s.acc += 1; // numbers split into groups of up to 3 digits
    s.run++;
    return;
  }
  if (s.prev === PREV_SPACE) closeSpaces(s, PREV_DIGIT);
  s.acc += 1;
  s.run = 1;
  s.prev = PREV_DIGIT;
}

/** Punctuation, symbols and emoji. `joiner`: ZWJ / variation selector, glued to the run. */
function punct(s: ScanState, unit: number, extra: number, joiner: boolean): void {
  enter(
    s,
    extra === ASTRAL_EXTRA || extra === JOINER_EXTRA
      ? CLS_EMOJI
      : unit < 0x80
        ? CLS_ASCII
        : CLS_SYMBOL,
  );
  if (s.prev === PREV_PUNCT) {
    if (!joiner) {
      s.run++;
      if (unit === s.last) s.acc += PUNCT_REPEAT;
      else if (++s.seg > PUNCT_FREE_SEGMENTS) s.acc += PUNCT_EXTRA;
    }
  } else {
    s.punctAfterSpace = s.prev === PREV_SPACE;
    if (s.prev === PREV_SPACE) closeSpaces(s, PREV_PUNCT);
    s.acc += 1;
    s.run = 1;
    s.seg = 1;
    s.prev = PREV_PUNCT;
  }
  s.last = unit;
  s.acc += extra;
}

function space(s: ScanState): void {
  enterSpace(s);
  if (s.prev === PREV_SPACE) {
    if (++s.run % SPACES_PER_TOKEN === 0) s.acc += 1;
  } else {
    s.prev = PREV_SPACE;
    s.run = 1;
  }
}

function newline(s: ScanState): void {
  enterSpace(s);
  if (s.prev === PREV_NEWLINE) {
    if (++s.run % NEWLINES_PER_TOKEN === 0) s.acc += 1;
    return;
  }
  if (s.prev === PREV_PUNCT) {
    s.acc += NEWLINE_AFTER_PUNCT; // "});\n" is one piece
  } else {
    if (s.prev === PREV_SPACE) closeSpaces(s, PREV_NEWLINE);
    s.acc += 1;
  }
  s.prev = PREV_NEWLINE;
  s.run = 1;
}

/** Feeds one UTF-16 code unit. Ranges are ordered by how common they are. */
function unit(s: ScanState, c: number): void {
  if (s.high) {
    s.high = false;
    if (c >= 0xdc00 && c <= 0xdfff) {
      punct(s, ASTRAL_MARK, ASTRAL_EXTRA, false);
      return;
    }
    punct(s, 0xd800, SYMBOL_EXTRA, false); // a lone high surrogate, then go on with `c`
  }
  if (c < 0x80) {
    if (c >= 0x61 && c <= 0x7a) letter(s, false, LETTER_ASCII);
    else if (c === 0x20) space(s);
    else if (c >= 0x41 && c <= 0x5a) letter(s, true, LETTER_ASCII);
    else if (c >= 0x30 && c <= 0x39) digit(s);
    else if (c === 0x0a || c === 0x0d) newline(s);
    else if (c === 0x09 || c === 0x0b || c === 0x0c) space(s);
    else punct(s, c, 0, false);
  } else if (c < 0x250) {
    if (c === 0xa0) space(s);
    else if (c < 0xc0 || c === 0xd7 || c === 0xf7) punct(s, c, SYMBOL_EXTRA, false);
    else letter(s, false, LETTER_LATIN);
  } else if (c < 0x370) {
    letter(s, false, LETTER_LATIN); // IPA, modifier letters, combining marks
  } else if (c < 0x1100) {
    const dense = (c >= 0xe00 && c < 0xf00) || (c >= 0x1000 && c < 0x10a0); // Thai, Lao, Myanmar
    letter(s, false, dense ? LETTER_DENSE : LETTER_ALPHABET);
  } else if (c < 0x1200) {
    letter(s, false, LETTER_HANGUL); // Hangul Jamo
  } else if (c < 0x2000) {
    if (c >= 0x1e00 && c < 0x1f00)
      letter(s, false, LETTER_LATIN); // Vietnamese etc.
    else if (c >= 0x1780 && c < 0x1800)
      letter(s, false, LETTER_DENSE); // Khmer
    else letter(s, false, LETTER_ALPHABET);
  } else if (c < 0x2070) {
    if (c <= 0x200a || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f) space(s);
    else if (c >= 0x200b && c <= 0x200d) punct(s, c, JOINER_EXTRA, true);
    else punct(s, c, SYMBOL_EXTRA, false); // general punctuation: dashes, quotes, …
  } else if (c < 0x2c00) {
    punct(s, c, SYMBOL_EXTRA, false); // arrows, maths, box drawing, dingbats, ☀ ⭐
  } else if (c < 0x2e00) {
    letter(s, false, LETTER_ALPHABET);
  } else if (c < 0x2e80) {
    punct(s, c, SYMBOL_EXTRA, false);
  } else if (c < 0x3000) {
    letter(s, false, LETTER_CJK); // radicals
  } else if (c === 0x3000) {
    space(s); // ideographic space
  } else if (c < 0x3040) {
    punct(s, c, SYMBOL_EXTRA, false); // 、。「」
  } else if (c < 0x3130) {
    letter(s, false, LETTER_CJK); // kana, bopomofo
  } else if (c < 0x3190) {
    letter(s, false, LETTER_HANGUL); // compatibility jamo
  } else if (c < 0x3200) {
    letter(s, false, LETTER_CJK);
  } else if (c < 0x3400) {
    punct(s, c, SYMBOL_EXTRA, false); // enclosed CJK, compatibility
  } else if (c < 0xa000) {
    letter(s, false, LETTER_CJK); // ideographs
  } else if (c < 0xac00) {
    letter(s, false, LETTER_ALPHABET); // Yi, Vai, …
  } else if (c < 0xd800) {
    letter(s, false, LETTER_HANGUL); // syllables
  } else if (c < 0xdc00) {
    s.high = true; // wait for the low half, possibly in the next chunk
  } else if (c < 0xf900) {
    punct(s, c, SYMBOL_EXTRA, false); // lone low surrogate, private use
  } else if (c < 0xfb00) {
    letter(s, false, LETTER_CJK); // compatibility ideographs
  } else if (c < 0xfe00) {
    letter(s, false, LETTER_ALPHABET); // presentation forms
  } else if (c < 0xfe10) {
    punct(s, c, JOINER_EXTRA, true); // variation selectors
  } else if (c < 0xfe70) {
    punct(s, c, SYMBOL_EXTRA, false);
  } else if (c < 0xff00) {
    if (c === 0xfeff)
      punct(s, c, 0, true); // BOM / zero-width no-break space
    else letter(s, false, LETTER_ALPHABET);
  } else if (
    (c >= 0xff10 && c <= 0xff19) ||
    (c >= 0xff21 && c <= 0xff3a) ||
    (c >= 0xff41 && c <= 0xff5a) ||
    (c >= 0xff66 && c <= 0xffdc)
  ) {
    letter(s, false, LETTER_CJK); // fullwidth letters and digits, halfwidth kana
  } else {
    punct(s, c, SYMBOL_EXTRA, false);
  }
}

function feed(s: ScanState, text: string): void {
  const n = text.length;
  if (n === 0) return;
  s.any = true;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a && !s.high) {
      const prev = s.prev;
      if (prev === PREV_LOWER || prev === PREV_UPPER || s.pcls === CLS_ASCII) {
        i = lowerRun(s, text, i, n);
        continue;
      }
    }
    unit(s, c);
    i++;
  }
}

/**
 * The commonest stretch of any English or code text: lower-case ASCII words (going on with
 * one, or beginning one after ASCII text) and the single spaces between them. The steps
 * `letter()` and `space()` take for exactly these cases, on locals, with the same additions
 * in the same order: what it counts is bit for bit what `unit()` per code unit gives (a test
 * scans text both ways). Called with `text[i]` in a–z, no pending surrogate, and either a
 * word going on or the class ASCII (so the first letter changes no class). Returns where it
 * stopped.
 */
function lowerRun(s: ScanState, text: string, i: number, n: number): number {
  let acc = s.acc;
  let run = s.run;
  let asciiRun = s.asciiRun;
  const prev = s.prev;
  if (prev !== PREV_LOWER && prev !== PREV_UPPER) {
    // A word begins: as letter() begins one.
    if (prev === PREV_PUNCT && run === 1 && !s.punctAfterSpace) acc += PREFIXED_WORD;
    else {
      if (prev === PREV_SPACE && run >= 2) acc += 1; // closeSpaces
      acc += 1;
    }
    run = 1;
    asciiRun++;
    i++;
  }
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) {
      asciiRun++;
      if (++run > WORD_FREE_LETTERS) acc += WORD_EXTRA;
      continue;
    }
    // One space and another lower-case word: as space() then letter() take them.
    if (c !== 0x20 || i + 1 === n) break;
    const next = text.charCodeAt(i + 1);
    if (next < 0x61 || next > 0x7a) break;
    // The space ends the word's ASCII run: its tokens go to its class (flush()).
    const counted = acc - s.mark;
    if (counted !== 0) {
      s.by[asciiRun >= BLOB_RUN ? CLS_BLOB : s.pcls]! += counted;
      s.mark = acc;
    }
    s.pcls = CLS_ASCII;
    acc += 1; // the next word; after one space closeSpaces adds nothing
    run = 1;
    asciiRun = 1;
    i++;
  }
  s.acc = acc;
  s.run = run;
  s.asciiRun = asciiRun;
  s.caps = false;
  s.prev = PREV_LOWER;
  return i;
}

/** The estimate for everything fed so far, as if the text ended here. */
function tokensOf(s: ScanState): number {
  if (!s.any) return 0;
  return Math.max(1, Math.round(rawTokensOf(s)));
}

/**
 * The upper bound for everything fed so far: each class's tokens times one plus its margin
 * (`TEXT_BOUND_MARGINS`), rounded up; never below the estimate.
 */
function boundOf(s: ScanState, margins: readonly number[]): number {
  if (!s.any) return 0;
  const raw = rawTokensOf(s);
  // Tokens not yet attributed (the current run, and a pending half emoji or trailing space)
  // take the class of the current run.
  const pendingClass = s.asciiRun >= BLOB_RUN ? CLS_BLOB : s.high ? CLS_EMOJI : s.pcls;
  let bound = (raw - s.mark) * (1 + margins[pendingClass]!);
  for (let k = 0; k < CLASS_COUNT; k++) bound += s.by[k]! * (1 + margins[k]!);
  // Float sums of fractional coefficients: drop the last bits of noise before rounding up.
  return Math.max(tokensOf(s), Math.ceil(bound - 1e-9));
}

/** The unrounded estimate, pending pieces included. */
function rawTokensOf(s: ScanState): number {
  let v = s.acc;
  if (s.high) {
    // Half an emoji: the other half is probably in the next chunk. Charge what the whole
    // character will cost where it stands (joining a punctuation run, or starting one).
    v += ASTRAL_EXTRA;
    if (s.prev === PREV_PUNCT) {
      if (s.seg >= PUNCT_FREE_SEGMENTS) v += PUNCT_EXTRA;
    } else {
      v += 1;
      if (s.prev === PREV_SPACE && s.run >= 2) v += 1;
    }
  } else if (s.prev === PREV_SPACE) {
    v += 1; // trailing whitespace is a piece of its own
  }
  return v;
}

/** Reused by estimateTextTokens so that a call allocates nothing (JS is single-threaded). */
const scratch = newState();

function resetState(s: ScanState): void {
  s.acc = 0;
  s.prev = PREV_NONE;
  s.run = 0;
  s.seg = 0;
  s.last = -1;
  s.caps = false;
  s.punctAfterSpace = false;
  s.high = false;
  s.any = false;
  s.by.fill(0);
  s.mark = 0;
  s.pcls = CLS_ASCII;
  s.asciiRun = 0;
}

function requireString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') {
    throw new TokenmeterError('invalid_argument', `${what} must be a string, got ${typeof value}`);
  }
}

/**
 * Estimates how many tokens `text` is, with a vocabulary-free heuristic calibrated against
 * OpenAI's `o200k_base` encoding (see the module doc for the method and measured error:
 * within ±15% per document and ±5% over the whole test corpus). A single pass over the
 * char codes with no allocation, cheap enough to run on every streamed chunk.
 *
 * Returns an integer: 0 for the empty string, at least 1 otherwise.
 *
 * @example
 * ```ts
 * estimateTextTokens(''); // 0
 * estimateTextTokens('Hello, world!'); // 4  (o200k: 4)
 * estimateTextTokens('城市公园的设计与管理'); // ~7
 * ```
 */
export function estimateTextTokens(text: string): number {
  requireString(text, 'text');
  resetState(scratch);
  feed(scratch, text);
  return tokensOf(scratch);
}

/**
 * An upper bound on the tokens of `text`, for reservations: the {@link estimateTextTokens}
 * estimate with each class of text (ASCII, accented Latin, other alphabets, CJK, Hangul,
 * Thai-like scripts, symbols, emoji, blobs such as base64) raised by its margin in
 * {@link TEXT_BOUND_MARGINS} for `provider` (without one, the larger margin of the two).
 * Never below the estimate.
 *
 * @example
 * ```ts
 * estimateTextTokenBound('Hello, world!', 'openai'); // 5 (estimate 4)
 * ```
 */
export function estimateTextTokenBound(text: string, provider?: TokenProvider): number {
  requireString(text, 'text');
  resetState(scratch);
  feed(scratch, text);
  return boundOf(scratch, marginsFor(provider));
}

/** Counts streamed output incrementally; see {@link createOutputEstimator}. */
export interface OutputEstimator {
  /**
   * Adds a chunk of delivered text (any split: mid-word, even between the two halves of a
   * surrogate pair). Work is proportional to the chunk, never to what came before.
   * Returns the updated {@link OutputEstimator.tokens}.
   */
  push(chunk: string): number;
  /** The estimate for everything pushed so far: equal to `estimateTextTokens(all text)`. */
  readonly tokens: number;
  /**
   * The upper bound for everything pushed so far: `estimateTextTokenBound(all text, provider)`
   * with the provider given at creation.
   */
  readonly bound: number;
}

/**
 * Creates an incremental output-token estimator for a stream that may end before the
 * provider's final usage arrives (client disconnect, cap reached, upstream error). It runs
 * the {@link estimateTextTokens} state machine over each chunk as it arrives, so after any
 * sequence of pushes `tokens` equals `estimateTextTokens` of the concatenated text, exactly.
 *
 * @example
 * ```ts
 * const output = createOutputEstimator();
 * for await (const delta of textDeltas) output.push(delta);
 * output.tokens; // === estimateTextTokens(textDeltas.join(''))
 * ```
 */
export function createOutputEstimator(provider?: TokenProvider): OutputEstimator {
  const state = newState();
  const margins = marginsFor(provider);
  return {
    push(chunk: string): number {
      requireString(chunk, 'chunk');
      feed(state, chunk);
      return tokensOf(state);
    },
    get tokens(): number {
      return tokensOf(state);
    },
    get bound(): number {
      return boundOf(state, margins);
    },
  };
}

/**
 * How {@link estimateTextTokens} compares with `o200k_base` on the committed corpus (21
 * files: English prose, Markdown with TypeScript / Python / Go / SQL, JSON, YAML and logs,
 * numbers and tables, URLs, German, French, Spanish, Russian, Chinese, Japanese, Korean,
 * emoji). Relative error is `(estimate − o200k) / o200k`. The bounds are asserted by the
 * test suite; `measured*` are the figures at the time of writing. Use the bounds to size a
 * safety margin: `1 + perFileBound` covers every document in the corpus.
 *
 * @example
 * ```ts
 * const margin = 1 + TEXT_ESTIMATE_ACCURACY.perFileBound; // 1.15
 * estimateRequestTokens(params, { margin });
 * ```
 */
export const TEXT_ESTIMATE_ACCURACY = Object.freeze({
  reference: 'o200k_base',
  /** Every corpus file is within ±this of o200k. */
  perFileBound: 0.15,
  /** The corpus as a whole is within ±this. */
  corpusBound: 0.05,
  measuredCorpusError: 0.0093,
  measuredMeanAbsFileError: 0.0264,
  measuredWorstFileError: 0.0981,
});

/** The classes of text the upper bound distinguishes, in class-number order. */
export type TextClass =
  | 'ascii'
  | 'latin'
  | 'alphabet'
  | 'cjk'
  | 'hangul'
  | 'dense'
  | 'symbol'
  | 'emoji'
  | 'blob';

/**
 * How far above the estimate each class of text may go, per provider: the margins that
 * {@link estimateTextTokenBound} adds. Fitted by `scripts/fit-bound-margins.mjs` on the
 * corpora in `__fixtures__/estimator-corpus/` and `__fixtures__/bound-corpus/`: the smallest
 * margins under which the bound covers every reference tokenizer on every file (and each half
 * of it), rounded up to 5 % plus 5 % headroom. References: for OpenAI, `o200k_base` (the
 * encoding of every catalogued OpenAI model); for Anthropic, the worst of `o200k_base`,
 * `cl100k_base` and Anthropic's published tokenizer (`@anthropic-ai/tokenizer`, the only
 * public Claude tokenizer; Claude's current one is not public, so for Anthropic the margins
 * are measured against these stand-ins, not proven). A token belongs to the class of the
 * text that produced it: a word takes its most distinctive letter's class, and every token
 * in a run of 32 or more ASCII non-space characters is a blob. Measured figures per script
 * are in the package README; for an exact figure use a `TokenCounter` that asks the
 * provider (`anthropicTokenCounter`).
 */
export const TEXT_BOUND_MARGINS: Readonly<
  Record<TokenProvider, Readonly<Record<TextClass, number>>>
> = Object.freeze({
  anthropic: Object.freeze({
    ascii: 0.3,
    latin: 1.9,
    alphabet: 3.55,
    cjk: 0.85,
    hangul: 0.95,
    dense: 3.25,
    symbol: 0.6,
    emoji: 0.75,
    blob: 0.75,
  }),
  openai: Object.freeze({
    ascii: 0.1,
    latin: 0.5,
    alphabet: 0.5,
    cjk: 0.15,
    hangul: 0.05,
    dense: 0.1,
    symbol: 0.5,
    emoji: 0.25,
    blob: 0.5,
  }),
});

/** The class names, in class-number order (CLS_*). */
export const TEXT_CLASSES: readonly TextClass[] = Object.freeze([
  'ascii',
  'latin',
  'alphabet',
  'cjk',
  'hangul',
  'dense',
  'symbol',
  'emoji',
  'blob',
]);

/** Margins indexed by class number, per provider; `any` is the larger of the two per class. */
const MARGINS = {
  anthropic: TEXT_CLASSES.map((c) => TEXT_BOUND_MARGINS.anthropic[c]),
  openai: TEXT_CLASSES.map((c) => TEXT_BOUND_MARGINS.openai[c]),
  any: TEXT_CLASSES.map((c) =>
    Math.max(TEXT_BOUND_MARGINS.anthropic[c], TEXT_BOUND_MARGINS.openai[c]),
  ),
} as const;

function marginsFor(provider: TokenProvider | undefined): readonly number[] {
  return provider === undefined ? MARGINS.any : MARGINS[provider];
}

/**
 * @internal Per-class token counts of `text`, for fitting and checking the margins.
 * `unitByUnit`: every code unit through `unit()`, without the fast path — the reference the
 * tests hold the fast path to.
 */
export function textTokensByClass(
  text: string,
  unitByUnit = false,
): { estimate: number; byClass: number[] } {
  const s = newState();
  if (!unitByUnit) feed(s, text);
  else if (text !== '') {
    s.any = true;
    for (let i = 0; i < text.length; i++) unit(s, text.charCodeAt(i));
  }
  const byClass = Array.from(s.by);
  const pendingClass = s.asciiRun >= BLOB_RUN ? CLS_BLOB : s.high ? CLS_EMOJI : s.pcls;
  byClass[pendingClass]! += rawTokensOf(s) - s.mark;
  return { estimate: tokensOf(s), byClass };
}

// ---------------------------------------------------------------------------------------
// Request estimation.
// ---------------------------------------------------------------------------------------

/** The two request shapes this module understands. */
export type TokenProvider = 'anthropic' | 'openai';

/** Options of {@link estimateRequestTokens}. */
export interface EstimateRequestOptions {
  /**
   * Multiplies the total (then rounds up). Default 1. Use e.g. 1.15 when the estimate feeds
   * a budget reservation and under-reserving is costly; see {@link TEXT_ESTIMATE_ACCURACY}.
   */
  margin?: number;
  /**
   * Which provider's rules to apply where they differ (image tokens when the size is
   * known, the tool-use system prompt). Default: guessed from the request's shape.
   */
  provider?: TokenProvider;
  /** Tokens for an image whose pixel size cannot be read from the request. Default 1,600. */
  imageTokens?: number;
  /** Tokens per PDF page (text plus the page image). Default 3,000. */
  pdfPageTokens?: number;
  /**
   * Tokens for an attachment whose content is not in the request (a URL or file id) or is
   * not text, PDF or image (audio, unknown binary). Default 3,000.
   */
  attachmentTokens?: number;
}

/** Per message: role and chat-format delimiters (`<|im_start|>role<|im_sep|>…<|im_end|>`). */
const MESSAGE_OVERHEAD = 4;
/** Per request: the priming of the assistant's reply. */
const REQUEST_OVERHEAD = 3;
/** A tool call or tool result block: ids and delimiters. */
const TOOL_BLOCK_OVERHEAD = 8;
/**
 * Anthropic adds a tool-use system prompt when `tools` are present: 346 tokens for Claude
 * 4.x / 3.7 with `tool_choice` auto or none (313 for any/tool), per Anthropic's docs.
 */
const ANTHROPIC_TOOL_PROMPT = 346;
const DEFAULT_IMAGE_TOKENS = 1_600;
const DEFAULT_PDF_PAGE_TOKENS = 3_000;
const DEFAULT_ATTACHMENT_TOKENS = 3_000;
/** Anthropic: images are scaled down to a long edge of at most 1,568 px and ~1,600 tokens. */
const ANTHROPIC_MAX_EDGE = 1_568;
const ANTHROPIC_MAX_IMAGE_TOKENS = 1_600;

interface Resolved {
  provider: TokenProvider | undefined;
  imageTokens: number;
  pdfPageTokens: number;
  attachmentTokens: number;
  /** Running totals of the walk: text estimates, attachment tokens. */
  textTokens: number;
  attachmentTotal: number;
  /** The attachments' share of the request's upper bound (their rule's allowance). */
  attachmentBound: number;
  /** Objects whose payload an attachment rule counted: left out of the bytes bound. */
  ruled: Set<object>;
  /** Content no rule can bound (a document by URL): why, for the first one met. */
  unbounded: string | undefined;
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, o: Resolved): number {
  return typeof value === 'string' ? scan(value, o) : 0;
}

/** One string's estimate, added to the walk's text total. */
function scan(value: string, o: Resolved): number {
  resetState(scratch);
  feed(scratch, value);
  const tokens = tokensOf(scratch);
  o.textTokens += tokens;
  return tokens;
}

/**
 * Tokens of an attachment (image, PDF, file) counted by a fixed rule, not by text, whose
 * payload is in `holder` (left out of the bytes bound); `bound` is its share of the upper
 * bound (by default the estimate raised by {@link ATTACHMENT_BOUND_MARGIN}).
 */
function attachment(
  tokens: number,
  o: Resolved,
  holder: object | undefined,
  bound = tokens * (1 + ATTACHMENT_BOUND_MARGIN),
): number {
  o.attachmentTotal += tokens;
  o.attachmentBound += bound;
  if (holder) o.ruled.add(holder);
  return tokens;
}

/** Content whose size is not in the request: estimated as an attachment, not bounded. */
function notBounded(tokens: number, o: Resolved, why: string): number {
  o.unbounded ??= why;
  o.attachmentTotal += tokens;
  return tokens;
}

/**
 * The most one image is billed, whatever its size: Anthropic scales every image down to
 * about 1,600 tokens (allowed 1.5× here); OpenAI's patch-based models bill up to 1,536
 * patches × 2.46 (gpt-4.1-nano), above its tile rule's 1,445.
 */
const IMAGE_BOUND: Readonly<Record<TokenProvider, number>> = { anthropic: 2_400, openai: 3_800 };

function imageBound(provider: TokenProvider | undefined): number {
  return provider === 'anthropic' ? IMAGE_BOUND.anthropic : IMAGE_BOUND.openai;
}

/** The pixel size of an image, when it is known. */
export interface ImageSize {
  width: number;
  height: number;
}

/**
 * Estimates the input tokens of one image from its pixel size, by the provider's published
 * rule. Anthropic: `width × height / 750` after scaling the long edge down to 1,568 px,
 * at most ~1,600. OpenAI (GPT-4o / GPT-4.1 / o-series tile rule): `detail: 'low'` is 85;
 * otherwise fit in 2048×2048, scale the short side to 768, then 170 per 512-px tile + 85
 * (models with other image rules, e.g. patch-based mini models, differ: use an exact
 * counter). Without a size, returns `fallback` (default 1,600).
 *
 * @example
 * ```ts
 * estimateImageTokens({ width: 1000, height: 1000 }, { provider: 'anthropic' }); // 1334
 * estimateImageTokens({ width: 1024, height: 1024 }, { provider: 'openai' }); // 765
 * estimateImageTokens(undefined); // 1600
 * ```
 */
export function estimateImageTokens(
  size: ImageSize | undefined,
  options: { provider?: TokenProvider; detail?: string; fallback?: number } = {},
): number {
  const fallback = options.fallback ?? DEFAULT_IMAGE_TOKENS;
  if (options.provider === 'openai' && options.detail === 'low') return 85;
  if (
    size === undefined ||
    !(Number.isFinite(size.width) && size.width > 0) ||
    !(Number.isFinite(size.height) && size.height > 0)
  ) {
    return fallback;
  }
  let { width, height } = size;
  if (options.provider === 'openai') {
    const fit = Math.min(1, 2048 / Math.max(width, height));
    width *= fit;
    height *= fit;
    const shrink = Math.min(1, 768 / Math.min(width, height));
    width *= shrink;
    height *= shrink;
    return 170 * Math.ceil(width / 512) * Math.ceil(height / 512) + 85;
  }
  const scale = Math.min(1, ANTHROPIC_MAX_EDGE / Math.max(width, height));
  const tokens = Math.ceil((width * scale * (height * scale)) / 750);
  return Math.min(tokens, ANTHROPIC_MAX_IMAGE_TOKENS);
}

const BASE64_VALUES = (() => {
  const table = new Int16Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  table[0x2d] = 62; // base64url
  table[0x5f] = 63;
  return table;
})();

/** Decodes at most `maxBytes` from the start of a base64 string (stops at padding or junk). */
function decodeBase64Prefix(b64: string, maxBytes: number): Uint8Array {
  const out = new Uint8Array(Math.min(maxBytes, Math.floor((b64.length * 3) / 4)));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (let i = 0; i < b64.length && n < out.length; i++) {
    const c = b64.charCodeAt(i);
    const v = c < 128 ? (BASE64_VALUES[c] ?? -1) : -1;
    if (v < 0) {
      if (c === 0x0a || c === 0x0d || c === 0x20) continue;
      break;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

/** Reads width and height from the header of a PNG, GIF, WebP or JPEG file. */
function imageSizeFromBytes(b: Uint8Array): ImageSize | undefined {
  const at = (i: number): number => b[i] ?? 0;
  const be16 = (i: number): number => (at(i) << 8) | at(i + 1);
  const le16 = (i: number): number => at(i) | (at(i + 1) << 8);
  if (at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47 && b.length >= 24) {
    return { width: be16(16) * 65536 + be16(18), height: be16(20) * 65536 + be16(22) };
  }
  if (at(0) === 0x47 && at(1) === 0x49 && at(2) === 0x46 && b.length >= 10) {
    return { width: le16(6), height: le16(8) };
  }
  if (at(0) === 0x52 && at(1) === 0x49 && at(8) === 0x57 && at(9) === 0x45 && b.length >= 30) {
    const chunk = String.fromCharCode(at(12), at(13), at(14), at(15));
    if (chunk === 'VP8 ') return { width: le16(26) & 0x3fff, height: le16(28) & 0x3fff };
    if (chunk === 'VP8L') {
      return {
        width: 1 + (((at(22) & 0x3f) << 8) | at(21)),
        height: 1 + (((at(24) & 0x0f) << 10) | (at(23) << 2) | ((at(22) & 0xc0) >> 6)),
      };
    }
    if (chunk === 'VP8X') {
      return {
        width: 1 + (at(24) | (at(25) << 8) | (at(26) << 16)),
        height: 1 + (at(27) | (at(28) << 8) | (at(29) << 16)),
      };
    }
    return undefined;
  }
  if (at(0) === 0xff && at(1) === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (at(i) !== 0xff) return undefined;
      const marker = at(i + 1);
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
        i += 2; // markers without a length
        continue;
      }
      const isFrame =
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) return { width: be16(i + 7), height: be16(i + 5) };
      i += 2 + be16(i + 2);
    }
  }
  return undefined;
}

/** JPEG frame headers can follow a large EXIF block; read this much at most. */
const IMAGE_HEADER_BYTES = 128 * 1024;

function imageSizeFromBase64(b64: string): ImageSize | undefined {
  return imageSizeFromBytes(decodeBase64Prefix(b64, IMAGE_HEADER_BYTES));
}

/** Splits `data:<type>;base64,<data>`; undefined for anything else. */
function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  if (comma < 0) return undefined;
  const meta = url.slice(5, comma);
  if (!meta.endsWith(';base64')) return undefined;
  return { mediaType: meta.slice(0, -7), data: url.slice(comma + 1) };
}

function base64Attachment(
  mediaType: string,
  data: string,
  o: Resolved,
  holder: object,
  provider: TokenProvider | undefined,
  detail?: string,
): number {
  if (mediaType.startsWith('image/')) {
    const tokens = estimateImageTokens(imageSizeFromBase64(data), {
      ...(provider === undefined ? {} : { provider }),
      ...(detail === undefined ? {} : { detail }),
      fallback: o.imageTokens,
    });
    return attachment(tokens, o, holder, Math.max(tokens, imageBound(provider)));
  }
  if (mediaType === 'application/pdf') {
    const pages = countPdfPages(decodeBase64Prefix(data, Number.POSITIVE_INFINITY));
    if (pages === undefined) {
      o.ruled.add(holder);
      return notBounded(
        o.pdfPageTokens,
        o,
        'a PDF whose pages cannot be counted (compressed in a way tokenmeter does not read, or encrypted)',
      );
    }
    return attachment(pages * o.pdfPageTokens, o, holder);
  }
  // Text is counted as text; its base64 (longer than the text) stays in the bytes bound.
  if (mediaType.startsWith('text/')) {
    const bytes = decodeBase64Prefix(data, Number.POSITIVE_INFINITY);
    return scan(new TextDecoder().decode(bytes), o);
  }
  return attachment(o.attachmentTokens, o, holder);
}

/** An Anthropic `source` of an image or document block. */
function anthropicSource(source: unknown, o: Resolved, isImage: boolean, holder: object): number {
  if (isRecord(source) && source.type === 'base64' && typeof source.data === 'string') {
    const mediaType =
      typeof source.media_type === 'string'
        ? source.media_type
        : isImage
          ? 'image/*'
          : 'application/pdf';
    return base64Attachment(mediaType, source.data, o, source, 'anthropic');
  }
  if (isRecord(source) && source.type === 'text') return text(source.data, o);
  if (isRecord(source) && source.type === 'content') return content(source.content, o);
  // url / file sources: the bytes are elsewhere. An image is billed within its bound
  // whatever it holds; a document is not.
  if (isImage) return attachment(o.imageTokens, o, holder, imageBound('anthropic'));
  o.ruled.add(holder);
  return notBounded(
    o.attachmentTokens,
    o,
    'a document by URL or file id (its size is not in the request)',
  );
}

/** An image referenced by URL (OpenAI `image_url`, Responses `input_image`). */
function imageUrl(url: unknown, detail: unknown, o: Resolved, holder: object): number {
  const d = typeof detail === 'string' ? detail : undefined;
  const provider = o.provider ?? 'openai';
  const dataUrl = typeof url === 'string' ? parseDataUrl(url) : undefined;
  if (dataUrl !== undefined) {
    return base64Attachment(dataUrl.mediaType, dataUrl.data, o, holder, provider, d);
  }
  const tokens = estimateImageTokens(undefined, {
    provider,
    ...(d === undefined ? {} : { detail: d }),
    fallback: o.imageTokens,
  });
  return attachment(tokens, o, holder, Math.max(tokens, imageBound(provider)));
}

/** An OpenAI file part: inline (`file_data`, a data URL) or by id / URL. */
function fileData(fileDataValue: unknown, o: Resolved, holder: object): number {
  const dataUrl = typeof fileDataValue === 'string' ? parseDataUrl(fileDataValue) : undefined;
  if (dataUrl !== undefined) {
    return base64Attachment(dataUrl.mediaType, dataUrl.data, o, holder, o.provider);
  }
  o.ruled.add(holder);
  return notBounded(o.attachmentTokens, o, 'a file by id or URL (its size is not in the request)');
}

/** Tokens of a value's JSON text: every string in it is text to the provider. */
function json(value: unknown, o: Resolved): number {
  if (value === undefined) return 0;
  if (typeof value === 'string') return scan(value, o);
  const serialised = serialise(value);
  return serialised === undefined ? 0 : scan(serialised, o);
}

/** JSON.stringify, its failure said as the request's. */
function serialise(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (cause) {
    throw new TokenmeterError('invalid_argument', 'request is not JSON-serialisable', {
      cause,
    });
  }
}

/** A value JSON.stringify would ask for its own form (its text may depend on its key). */
function hasToJSON(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  );
}

/**
 * UTF-8 bytes of an array element's JSON, from its JSON on its own (`serialised`); undefined
 * where the two may differ (a `toJSON` is told its key) or the element is not serialised.
 */
function elementBytes(value: unknown, serialised: string | undefined): number | undefined {
  if (serialised !== undefined) return hasToJSON(value) ? undefined : utf8Length(serialised);
  // What JSON writes `null` for in an array.
  const none = value === undefined || typeof value === 'function' || typeof value === 'symbol';
  return none ? 4 : undefined;
}

/** One content block of either provider (or of the OpenAI Responses API). */
function block(b: unknown, o: Resolved): number {
  if (typeof b === 'string') return scan(b, o);
  if (!isRecord(b)) return json(b, o);
  switch (b.type) {
    case 'text':
    case 'input_text':
    case 'output_text':
      return text(b.text, o);
    case 'image':
      return anthropicSource(b.source, o, true, b);
    case 'document':
      return anthropicSource(b.source, o, false, b) + text(b.title, o) + text(b.context, o);
    case 'image_url':
      return isRecord(b.image_url)
        ? imageUrl(b.image_url.url, b.image_url.detail, o, b.image_url)
        : imageUrl(b.image_url, undefined, o, b);
    case 'input_image':
      return imageUrl(b.image_url, b.detail, o, b);
    case 'file':
      return fileData(
        isRecord(b.file) ? b.file.file_data : undefined,
        o,
        isRecord(b.file) ? b.file : b,
      );
    case 'input_file':
      return fileData(b.file_data, o, b);
    case 'input_audio':
      o.ruled.add(b);
      return notBounded(o.attachmentTokens, o, 'audio input (the catalog has no audio prices)');
    case 'tool_use':
    case 'server_tool_use':
      return TOOL_BLOCK_OVERHEAD + text(b.name, o) + json(b.input, o);
    case 'tool_result':
      return TOOL_BLOCK_OVERHEAD + content(b.content, o);
    case 'function_call':
      return TOOL_BLOCK_OVERHEAD + text(b.name, o) + text(b.arguments, o);
    case 'function_call_output':
      return (
        TOOL_BLOCK_OVERHEAD + (typeof b.output === 'string' ? text(b.output, o) : json(b.output, o))
      );
    case 'thinking':
      return text(b.thinking, o);
    case 'redacted_thinking':
      return text(b.data, o);
    case 'refusal':
      return text(b.refusal, o);
    case 'item_reference':
      return notBounded(0, o, 'an item_reference (an item the provider stored)');
    case 'search_result':
      return text(b.title, o) + text(b.source, o) + content(b.content, o);
    default:
      // Anything else (server tool results, future block types): its JSON text.
      return json(b, o);
  }
}

function content(c: unknown, o: Resolved): number {
  if (c === undefined || c === null) return 0;
  if (typeof c === 'string') return scan(c, o);
  if (Array.isArray(c)) {
    let sum = 0;
    for (const b of c) sum += block(b, o);
    return sum;
  }
  return block(c, o);
}

function message(m: unknown, o: Resolved): number {
  if (!isRecord(m)) return MESSAGE_OVERHEAD + json(m, o);
  // A Responses API input item that is not a message (function_call, …).
  if (m.role === undefined && typeof m.type === 'string') return MESSAGE_OVERHEAD + block(m, o);
  let sum = MESSAGE_OVERHEAD + content(m.content, o);
  if (typeof m.name === 'string') sum += 1 + text(m.name, o);
  if (typeof m.refusal === 'string') sum += text(m.refusal, o);
  if (typeof m.tool_call_id === 'string') sum += text(m.tool_call_id, o);
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls) {
      if (isRecord(call) && isRecord(call.function)) {
        sum += TOOL_BLOCK_OVERHEAD + text(call.function.name, o) + text(call.function.arguments, o);
      } else sum += TOOL_BLOCK_OVERHEAD + json(call, o);
    }
  }
  if (m.function_call !== undefined) sum += TOOL_BLOCK_OVERHEAD + json(m.function_call, o);
  return sum;
}

/**
 * Responses API context the provider stores and reads into the prompt, whose size the
 * request does not hold: an earlier response, a conversation, a stored prompt template.
 */
function storedContext(request: Json, o: Resolved): void {
  const present = (value: unknown) => value !== undefined && value !== null && value !== '';
  if (present(request.previous_response_id)) {
    notBounded(0, o, 'a previous_response_id (the earlier turns the provider stored)');
  } else if (present(request.conversation)) {
    notBounded(0, o, 'a conversation (the turns the provider stored)');
  } else if (isRecord(request.prompt)) {
    notBounded(0, o, 'a stored prompt template ("prompt": {"id"})');
  }
}

/** Anthropic tools carry `input_schema` (custom) or a dated `type` (server tools). */
function isAnthropicTool(tool: unknown): boolean {
  return (
    isRecord(tool) &&
    (tool.input_schema !== undefined ||
      (typeof tool.type === 'string' && /_\d{8}$/.test(tool.type)))
  );
}

function guessProvider(request: Json): TokenProvider | undefined {
  if (request.system !== undefined) return 'anthropic';
  if (Array.isArray(request.tools) && request.tools.some(isAnthropicTool)) return 'anthropic';
  if (Array.isArray(request.messages)) {
    for (const m of request.messages) {
      if (!isRecord(m)) continue;
      if (m.role === 'system' || m.role === 'developer' || m.role === 'tool') return 'openai';
      if (Array.isArray(m.content)) {
        for (const b of m.content) {
          if (!isRecord(b)) continue;
          if (b.type === 'image_url' || b.type === 'input_audio' || b.type === 'file') {
            return 'openai';
          }
          if (b.type === 'image' || b.type === 'tool_use' || b.type === 'tool_result') {
            return 'anthropic';
          }
        }
      }
    }
  }
  return undefined;
}

function nonNegativeOption(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `${name} must be a finite number ≥ 0, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Estimates the input tokens of a request before it is sent, with the
 * {@link estimateTextTokens} heuristic. Understands:
 *
 * - Anthropic Messages params: `system` (string or text blocks); `messages` with string
 *   content or blocks — text, image (pixel size read from PNG/GIF/WebP/JPEG headers, then
 *   `w×h/750`; unknown size: `imageTokens`, 1,600), document (PDF pages × `pdfPageTokens`,
 *   text sources as text), tool_use (name + input JSON), tool_result, thinking,
 *   search_result; `tools` (their JSON, plus Anthropic's 346-token tool-use system prompt);
 * - OpenAI Chat Completions: `messages` with role / string content or parts (text,
 *   image_url, file, input_audio), `name`, `tool_calls`, `tool_call_id`; `tools` and legacy
 *   `functions` (their JSON);
 * - OpenAI Responses: `instructions` and `input` (string or items).
 *
 * Each message adds 4 tokens (role and delimiters), the request 3 more. Unknown shapes count
 * their JSON text; long base64 strings count as attachments, never as text. The result is
 * multiplied by `margin` and rounded up. Exact counts differ, Claude's more than OpenAI's —
 * see the module doc; for an exact figure use a `TokenCounter`.
 *
 * @throws TokenmeterError `invalid_argument` when `request` is not an object, an option is
 *   out of range, or the request cannot be serialised to JSON.
 *
 * @example
 * ```ts
 * const tokens = estimateRequestTokens({
 *   model: 'claude-sonnet-4-5',
 *   max_tokens: 1024,
 *   system: 'You are terse.',
 *   messages: [{ role: 'user', content: 'Summarise the attached report.' }],
 * }); // ≈ 21
 * const reserved = estimateRequestTokens(params, { margin: 1.15 });
 * ```
 */
export function estimateRequestTokens(
  request: object,
  options: EstimateRequestOptions = {},
): number {
  return measureRequestTokens(request, options).tokens;
}

/** What {@link measureRequestTokens} finds: the estimate and an upper bound. */
export interface RequestTokenCount {
  /** The estimate, as {@link estimateRequestTokens} gives it. */
  tokens: number;
  /**
   * An upper bound for reservations that no text defeats: every field of the request
   * counted at one token per UTF-8 byte of its JSON (no tokenizer that works on bytes
   * makes more tokens than the bytes it reads, whatever the text), attachments by their
   * rule's allowance (images at the most a provider bills one, PDF pages at
   * `pdfPageTokens` × 1.5), and the fixed prompts a provider adds (Anthropic's tool-use
   * system prompt). Natural text is 3–4 bytes a token, so this is that much above the
   * estimate: count exactly (`anthropicTokenCounter`) where the difference matters.
   */
  upperBound: number;
  /**
   * Set when part of the request has a size that is not in it — a document by URL or file
   * id, a PDF whose pages cannot be counted, audio — so `upperBound` does not bound it:
   * count it exactly (the provider's count) or refuse the request. Says what it is.
   */
  unbounded?: string;
  /**
   * True when attachments were counted by allowances (images, PDF pages) rather than
   * bytes: the bound holds as far as those allowances do; an exact count is better where
   * one is free.
   */
  approximate: boolean;
}

/**
 * How far above their fixed-rule estimate attachments (PDF pages, other files) may go in
 * {@link RequestTokenCount.upperBound}. Not measured (no public tokenizer counts them): an
 * allowance. Prompts with attachments are best counted exactly (`anthropicTokenCounter`).
 */
export const ATTACHMENT_BOUND_MARGIN = 0.5;

/**
 * Top-level fields that set how the provider answers rather than what it reads: left out of
 * the estimate (every field is in the upper bound).
 */
const SETTINGS = new Set([
  'model',
  'max_tokens',
  'max_completion_tokens',
  'max_output_tokens',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'top_k',
  'n',
  'seed',
  'stop',
  'stop_sequences',
  'service_tier',
  'metadata',
  'user',
  'store',
  'logprobs',
  'top_logprobs',
  'logit_bias',
  'frequency_penalty',
  'presence_penalty',
  'parallel_tool_calls',
  'speed',
  'inference_geo',
  'thinking',
  'reasoning_effort',
  'reasoning',
  'verbosity',
  'container',
  'context_management',
  'modalities',
  'safety_identifier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'background',
  'include',
  'truncation',
  'previous_response_id',
  'conversation',
]);

/** Fields of the request whose text the walk reads itself. */
const READ = new Set([
  'system',
  'instructions',
  'messages',
  'input',
  'prompt',
  'tools',
  'functions',
]);

/**
 * The estimate of {@link estimateRequestTokens} and an upper bound, in one walk over the
 * request (see {@link RequestTokenCount} for what the bound counts).
 *
 * @example
 * ```ts
 * const { tokens, upperBound } = measureRequestTokens(params, { provider: 'anthropic' });
 * ```
 */
export function measureRequestTokens(
  request: object,
  options: EstimateRequestOptions = {},
): RequestTokenCount {
  if (!isRecord(request)) {
    throw new TokenmeterError('invalid_argument', 'request must be a plain object');
  }
  const margin = options.margin ?? 1;
  if (typeof margin !== 'number' || !Number.isFinite(margin) || margin <= 0) {
    throw new TokenmeterError(
      'invalid_argument',
      `margin must be a finite number > 0, got ${String(options.margin)}`,
    );
  }
  const provider = options.provider ?? guessProvider(request);
  const o: Resolved = {
    provider,
    imageTokens: nonNegativeOption(options.imageTokens, 'imageTokens', DEFAULT_IMAGE_TOKENS),
    pdfPageTokens: nonNegativeOption(
      options.pdfPageTokens,
      'pdfPageTokens',
      DEFAULT_PDF_PAGE_TOKENS,
    ),
    attachmentTokens: nonNegativeOption(
      options.attachmentTokens,
      'attachmentTokens',
      DEFAULT_ATTACHMENT_TOKENS,
    ),
    textTokens: 0,
    attachmentTotal: 0,
    attachmentBound: 0,
    ruled: new Set(),
    unbounded: undefined,
  };
  let total = REQUEST_OVERHEAD;
  // What the provider adds that is not in the request's bytes (its tool-use prompts).
  let added = REQUEST_OVERHEAD;
  if (request.system !== undefined && request.system !== null) {
    total += MESSAGE_OVERHEAD + content(request.system, o);
  }
  if (typeof request.instructions === 'string') {
    total += MESSAGE_OVERHEAD + text(request.instructions, o);
  }
  for (const key of ['messages', 'input'] as const) {
    const list = request[key];
    if (Array.isArray(list)) {
      for (const m of list) total += message(m, o);
    } else if (typeof list === 'string') {
      total += MESSAGE_OVERHEAD + scan(list, o);
    }
  }
  if (typeof request.prompt === 'string') total += scan(request.prompt, o);
  storedContext(request, o);
  // The tools' JSON, the largest part of an agent's request, is read twice: scanned for the
  // estimate, and its UTF-8 bytes for the bound. Serialised once, for both: `toolsBytes` is
  // the bytes of `"tools":[…]`'s value, undefined where JSON would not write it as read here.
  let toolsBytes: number | undefined;
  if (Array.isArray(request.tools) && request.tools.length > 0) {
    const asRead =
      Object.prototype.propertyIsEnumerable.call(request, 'tools') && !hasToJSON(request.tools);
    toolsBytes = asRead ? 1 : undefined; // `[`, then each element with its `,` or `]`
    for (const tool of request.tools) {
      const serialised = typeof tool === 'string' ? undefined : serialise(tool);
      total += serialised === undefined ? json(tool, o) : scan(serialised, o);
      if (toolsBytes !== undefined) {
        const element = elementBytes(tool, serialised);
        toolsBytes = element === undefined ? undefined : toolsBytes + 1 + element;
      }
      if (o.provider === 'anthropic') {
        const extra = anthropicDefinedToolTokens(tool);
        total += extra;
        added += extra;
      }
    }
    if (o.provider === 'anthropic') {
      total += ANTHROPIC_TOOL_PROMPT;
      added += ANTHROPIC_TOOL_PROMPT;
    }
  }
  if (Array.isArray(request.functions)) {
    for (const fn of request.functions) total += json(fn, o);
  }
  // Any other field may be read too (a response_format schema, a tool_choice, a field
  // added after this was written): its JSON text.
  for (const [key, value] of Object.entries(request)) {
    if (!READ.has(key) && !SETTINGS.has(key)) total += json({ [key]: value }, o);
  }
  const tokens = Math.ceil(total * margin);
  const bound = promptBytes(request, o.ruled, toolsBytes) + o.attachmentBound + added;
  const count: RequestTokenCount = {
    tokens,
    upperBound: Math.max(tokens, Math.ceil(bound * margin - 1e-9)),
    approximate: o.attachmentBound > 0,
  };
  if (o.unbounded !== undefined) count.unbounded = o.unbounded;
  return count;
}

/**
 * The upper bound, at a token per UTF-8 byte of their JSON, of the request's fields outside
 * `counted` that a provider may read into the prompt (every top-level field but the
 * settings): for an exact count made of some fields only (a provider's count endpoint takes
 * `messages`, `system`, `tools`…), so that a field it did not see is still bounded.
 *
 * @example
 * uncountedFieldTokens({ model, max_tokens: 10, messages, safeguards: 'xyz' }, ['model', 'messages']);
 * // 17: the bytes of {"safeguards":"xyz"}
 */
export function uncountedFieldTokens(request: object, counted: readonly string[]): number {
  const rest: Json = {};
  let any = false;
  for (const [key, value] of Object.entries(request)) {
    if (SETTINGS.has(key) || counted.includes(key) || value === undefined) continue;
    rest[key] = value;
    any = true;
  }
  return any ? promptBytes(rest, new Set()) : 0;
}

/**
 * UTF-8 bytes of the request's JSON, leaving out the payloads an attachment rule counted.
 * `toolsBytes`: those of its `tools` (serialised already), when the rest can be written
 * without them: the same sum, without serialising the tools again.
 */
function promptBytes(request: Json, ruled: ReadonlySet<object>, toolsBytes?: number): number {
  if (toolsBytes !== undefined && ruled.size === 0 && !hasToJSON(request)) {
    const { tools: _, ...rest } = request;
    const restBytes = utf8Length(serialise(rest) as string);
    // `"tools":` and its value, after a comma unless the rest is `{}`.
    return restBytes + (restBytes === 2 ? 0 : 1) + 8 + toolsBytes;
  }
  let serialised: string | undefined;
  try {
    // A replacer runs for every value; without attachments there is nothing to leave out.
    serialised =
      ruled.size === 0
        ? JSON.stringify(request)
        : JSON.stringify(request, (_key, value: unknown) =>
            typeof value === 'object' && value !== null && ruled.has(value) ? null : value,
          );
  } catch (cause) {
    throw new TokenmeterError('invalid_argument', 'request is not JSON-serialisable', { cause });
  }
  return serialised === undefined ? 0 : utf8Length(serialised);
}

/** The UTF-8 length of a string (a lone surrogate is 3 bytes, as the encoder writes it). */
function utf8Length(text: string): number {
  const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  if (NodeBuffer) return NodeBuffer.byteLength(text, 'utf8');
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Input tokens Anthropic adds for one of its own tool types beyond the tool's JSON, as
 * published: bash 245, text editor 700, computer use 735 plus its 499-token system prompt.
 * Other Anthropic-defined types (web search, web fetch, code execution, memory, …) get an
 * allowance of 500. Custom tools (with `input_schema`) add nothing here.
 */
function anthropicDefinedToolTokens(tool: unknown): number {
  if (!isRecord(tool) || typeof tool.type !== 'string' || tool.input_schema !== undefined) return 0;
  const type = tool.type;
  if (type === 'custom' || !/_\d{8}$/.test(type)) return 0;
  if (type.startsWith('bash_')) return 245;
  if (type.startsWith('text_editor_')) return 700;
  if (type.startsWith('computer_')) return 735 + 499;
  return ANTHROPIC_DEFINED_TOOL_ALLOWANCE;
}

/** Input tokens assumed for an Anthropic-defined tool type with no published figure. */
const ANTHROPIC_DEFINED_TOOL_ALLOWANCE = 500;
