/**
 * The input bound on a corpus, by script: `estimateTextTokenBound` must cover every
 * reference tokenizer of its provider on every file and each half of it, and the per-script
 * figures the package README publishes must be the ones measured here.
 */
import { readdirSync, readFileSync } from 'node:fs';
// Ground truth only: core never imports a tokenizer at runtime.
import { countTokens as claudeTokens } from '@anthropic-ai/tokenizer';
import { countTokens as cl100kTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import {
  createOutputEstimator,
  estimateTextTokenBound,
  estimateTextTokens,
  measureRequestTokens,
  TEXT_BOUND_MARGINS,
  type TokenProvider,
} from './token-estimate.js';

/** Reference counts are slow (a WASM and two JS tokenizers): each text is counted once. */
const counted = new Map<string, number>();
function memo(name: string, count: (text: string) => number) {
  return (text: string) => {
    const key = `${name}\u0000${text}`;
    let n = counted.get(key);
    if (n === undefined) {
      n = count(text);
      counted.set(key, n);
    }
    return n;
  };
}
const o200k = memo('o200k', o200kTokens);
const REFERENCES: Record<TokenProvider, Record<string, (text: string) => number>> = {
  anthropic: { o200k, cl100k: memo('cl100k', cl100kTokens), claude: memo('claude', claudeTokens) },
  openai: { o200k },
};

const SCRIPTS: ReadonlyArray<[script: string, files: string[]]> = [
  [
    'Latin: English, German, French, Spanish',
    [
      'en-prose-gardening.txt',
      'heldout-en-astronomy.txt',
      'heldout-llm-answer.md',
      'german.txt',
      'heldout-french.txt',
      'spanish.txt',
    ],
  ],
  ['Latin with many diacritics: Vietnamese', ['vietnamese.txt']],
  [
    'Code, JSON, logs, tables',
    [
      'markdown-typescript.md',
      'markdown-python.md',
      'heldout-go-sql.md',
      'code-rust.rs',
      'code-minified.js',
      'api-response.json',
      'heldout-config-logs.txt',
      'numbers-tables.md',
    ],
  ],
  [
    'CJK: Chinese, Japanese',
    ['chinese.txt', 'chinese-tech.txt', 'japanese.txt', 'heldout-japanese-tech.txt'],
  ],
  ['Korean', ['korean.txt']],
  [
    'Other alphabets: Russian, Greek, Arabic, Hindi',
    ['russian.txt', 'greek.txt', 'arabic.txt', 'hindi.txt'],
  ],
  ['Thai', ['thai.txt']],
  ['Emoji', ['emoji-chat.txt', 'heldout-emoji-social.txt', 'emoji-heavy.txt']],
  ['Base64, hashes, ids, URLs', ['base64-blobs.txt', 'hashes-and-ids.txt', 'url-list.txt']],
  ['Repeated characters', ['repeated-chars.txt']],
  ['Symbols and maths', ['symbols-math.txt']],
];

const files = new Map<string, string>();
for (const dir of ['estimator-corpus', 'bound-corpus']) {
  const url = new URL(`./__fixtures__/${dir}/`, import.meta.url);
  for (const name of readdirSync(url)) {
    if (name !== 'README.md') files.set(name, readFileSync(new URL(name, url), 'utf8'));
  }
}

/** A file and its two halves (cut at a newline), so the bound holds on shorter prompts too. */
function samples(name: string): Array<[string, string]> {
  const text = files.get(name) ?? '';
  const cut = text.indexOf('\n', Math.floor(text.length / 2));
  return cut > 0
    ? [
        [name, text],
        [`${name} (first half)`, text.slice(0, cut)],
        [`${name} (second half)`, text.slice(cut)],
      ]
    : [[name, text]];
}

const ratio = (a: number, b: number) => (a / b).toFixed(2);

// Counting the corpora with three tokenizers takes seconds on a busy machine.
describe('estimateTextTokenBound on the corpora, by script', { timeout: 120_000 }, () => {
  it('files every corpus file under exactly one script', () => {
    const listed = SCRIPTS.flatMap(([, names]) => names).sort();
    expect(listed).toEqual([...files.keys()].sort());
  });

  for (const provider of ['anthropic', 'openai'] as const) {
    it(`covers every ${provider} reference tokenizer on every file and half file`, () => {
      const misses: string[] = [];
      for (const [, names] of SCRIPTS) {
        for (const name of names) {
          for (const [label, text] of samples(name)) {
            const bound = estimateTextTokenBound(text, provider);
            for (const [ref, count] of Object.entries(REFERENCES[provider])) {
              const n = count(text);
              if (n > bound) misses.push(`${label}: ${ref} ${n} > bound ${bound}`);
            }
          }
        }
      }
      expect(misses).toEqual([]);
    });
  }

  it('is never below the estimate, and the output estimator gives the same bound however text is chunked', () => {
    for (const [name, text] of files) {
      for (const provider of ['anthropic', 'openai', undefined] as const) {
        expect(estimateTextTokenBound(text, provider), name).toBeGreaterThanOrEqual(
          estimateTextTokens(text),
        );
      }
      const output = createOutputEstimator('anthropic');
      for (let i = 0; i < text.length; i += 7) output.push(text.slice(i, i + 7));
      expect(output.bound, name).toBe(estimateTextTokenBound(text, 'anthropic'));
      expect(output.tokens, name).toBe(estimateTextTokens(text));
    }
    expect(estimateTextTokenBound('')).toBe(0);
  });

  it('bounds a whole request above every reference, whatever the text: its bytes', () => {
    for (const [name, text] of [...files, ...Object.entries(hostileTexts())]) {
      const request = { system: 'Answer.', messages: [{ role: 'user', content: text }] };
      for (const provider of ['anthropic', 'openai'] as const) {
        const count = measureRequestTokens(request, { provider });
        for (const [ref, tokens] of Object.entries(REFERENCES.anthropic)) {
          expect(count.upperBound, `${name} ${provider} ${ref}`).toBeGreaterThanOrEqual(
            tokens(text),
          );
        }
        expect(count.upperBound).toBeGreaterThanOrEqual(Buffer.byteLength(text));
        expect(count.approximate).toBe(false);
      }
    }
  });

  it('publishes the figures it measures in the package README', () => {
    const rows = SCRIPTS.map(([script, names]) => {
      let anthropicRef = 0;
      let anthropicBound = Number.POSITIVE_INFINITY;
      let openaiRef = 0;
      let openaiBound = Number.POSITIVE_INFINITY;
      for (const name of names) {
        const text = files.get(name) ?? '';
        const estimate = estimateTextTokens(text);
        const worst = Math.max(...Object.values(REFERENCES.anthropic).map((f) => f(text)));
        anthropicRef = Math.max(anthropicRef, worst / estimate);
        anthropicBound = Math.min(
          anthropicBound,
          estimateTextTokenBound(text, 'anthropic') / worst,
        );
        const openaiCount = o200k(text);
        openaiRef = Math.max(openaiRef, openaiCount / estimate);
        openaiBound = Math.min(openaiBound, estimateTextTokenBound(text, 'openai') / openaiCount);
      }
      return `| ${script} | ${ratio(anthropicRef, 1)} | ${ratio(anthropicBound, 1)} | ${ratio(openaiRef, 1)} | ${ratio(openaiBound, 1)} |`;
    });
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const missing = rows.filter((row) => !readme.includes(row));
    expect(missing, `update the table in packages/core/README.md:\n${rows.join('\n')}`).toEqual([]);
    const pct = (m: number) => `+${Math.round(m * 100)}%`;
    for (const [cls, margin] of Object.entries(TEXT_BOUND_MARGINS.anthropic)) {
      const openai = TEXT_BOUND_MARGINS.openai[cls as keyof typeof TEXT_BOUND_MARGINS.openai];
      expect(readme).toContain(`| ${cls} | ${pct(margin)} | ${pct(openai)} |`);
    }
  });
});

/**
 * Strings shaped to tokenize badly: random letters, rare ideographs, random symbols, control
 * characters, zero-width joiners, runs of tabs. The per-script margins of the estimator do
 * not cover these (they are fitted on real text); the request bound, by bytes, must.
 */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function hostileTexts(): Record<string, string> {
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    return seed / 2 ** 32;
  };
  const gen = (n: number, f: () => string) => Array.from({ length: n }, f).join('');
  const range = (from: number, size: number) => () =>
    String.fromCodePoint(from + Math.floor(rnd() * size));
  return {
    'random words': gen(600, () => ` ${gen(1 + Math.floor(rnd() * 10), range(0x61, 26))}`),
    'rare ideographs': gen(1_500, range(0x3400, 6_000)),
    'random Hangul': gen(1_500, range(0xac00, 11_172)),
    'random Cyrillic': gen(2_000, range(0x400, 0x100)),
    'private use': gen(2_000, range(0xe000, 0x1800)),
    'astral symbols': gen(800, range(0x10000, 0x2000)),
    'control characters': gen(2_000, range(1, 30)),
    'zero-width joiners': gen(2_000, () => ['\u200d', '\u200b', '\ufe0f'][Math.floor(rnd() * 3)]!),
    tabs: '\t'.repeat(3_000),
    'random base64': gen(3_000, () => B64[Math.floor(rnd() * 64)]!),
  };
}
