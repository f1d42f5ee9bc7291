import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
// Ground truth only: core never imports a tokenizer at runtime.
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { encodeChat } from 'gpt-tokenizer/model/gpt-4o';
import { describe, expect, it } from 'vitest';
import { TokenmeterError } from './errors.js';
import {
  createOutputEstimator,
  estimateImageTokens,
  estimateRequestTokens,
  estimateTextTokens,
  measureRequestTokens,
  TEXT_ESTIMATE_ACCURACY,
  textTokensByClass,
} from './token-estimate.js';

const corpusDir = new URL('./__fixtures__/estimator-corpus/', import.meta.url);
const corpus = readdirSync(corpusDir)
  .filter((name) => name !== 'README.md')
  .sort()
  .map((name) => {
    const text = readFileSync(new URL(name, corpusDir), 'utf8');
    return { name, text, o200k: countTokens(text), estimate: estimateTextTokens(text) };
  });

const relativeError = (estimate: number, truth: number): number => (estimate - truth) / truth;

/** Splits `text` at arbitrary UTF-16 offsets (so surrogate pairs can be cut). */
function splitAt(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(text.slice(from, p));
    from = p;
  }
  chunks.push(text.slice(from));
  return chunks;
}

/** Any UTF-16 code units, lone surrogates included, biased towards interesting ones. */
const codeUnit = fc.oneof(
  fc.constantFrom(' ', '  ', '\n', '\r\n', '\t', 'a', 'Z', '7', '.', '-', '_', '(', '"', 'é', '—'),
  fc.constantFrom(
    '中',
    'の',
    '한',
    'я',
    'ก',
    '😀',
    '👍🏽',
    '👨‍👩‍👧',
    '☀️',
    '\uD83D',
    '\uDE00',
    '\u200D',
  ),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
);
const anyText = fc.array(codeUnit, { maxLength: 200 }).map((parts) => parts.join(''));
const corpusSlice = fc
  .tuple(fc.integer({ min: 0, max: corpus.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 600 }))
  .map(([i, start, length]) => {
    const text = corpus[i]?.text ?? '';
    const from = start % (text.length + 1);
    return text.slice(from, from + length);
  });
const someText = fc.oneof(anyText, corpusSlice);

describe('estimateTextTokens against o200k_base on the committed corpus', () => {
  it('has a corpus: small, with held-out files and the promised kinds of text', () => {
    const bytes = corpus.reduce((sum, f) => sum + Buffer.byteLength(f.text), 0);
    expect(bytes).toBeLessThan(200 * 1024);
    expect(corpus.filter((f) => f.name.startsWith('heldout-')).length).toBeGreaterThanOrEqual(6);
    const names = corpus.map((f) => f.name).join(' ');
    for (const kind of ['en-prose', 'typescript', 'python', '.json', 'german', 'french']) {
      expect(names).toContain(kind);
    }
    for (const kind of ['chinese', 'japanese', 'emoji', 'numbers', 'url']) {
      expect(names).toContain(kind);
    }
  });

  it(`keeps every file within ±${TEXT_ESTIMATE_ACCURACY.perFileBound * 100}%`, () => {
    const rows = corpus.map((f) => ({
      file: f.name,
      o200k: f.o200k,
      estimate: f.estimate,
      error: `${(relativeError(f.estimate, f.o200k) * 100).toFixed(1)}%`,
    }));
    if (process.env.TOKEN_ESTIMATE_REPORT) console.table(rows);
    for (const f of corpus) {
      expect
        .soft(Math.abs(relativeError(f.estimate, f.o200k)), f.name)
        .toBeLessThanOrEqual(TEXT_ESTIMATE_ACCURACY.perFileBound);
    }
  });

  it(`keeps the whole corpus within ±${TEXT_ESTIMATE_ACCURACY.corpusBound * 100}%, held-out files too`, () => {
    const total = (files: typeof corpus, key: 'o200k' | 'estimate') =>
      files.reduce((sum, f) => sum + f[key], 0);
    const all = relativeError(total(corpus, 'estimate'), total(corpus, 'o200k'));
    expect(Math.abs(all)).toBeLessThanOrEqual(TEXT_ESTIMATE_ACCURACY.corpusBound);
    const heldOut = corpus.filter((f) => f.name.startsWith('heldout-'));
    const held = relativeError(total(heldOut, 'estimate'), total(heldOut, 'o200k'));
    expect(Math.abs(held)).toBeLessThanOrEqual(TEXT_ESTIMATE_ACCURACY.corpusBound);
  });

  it('publishes the figures it measures (so the doc cannot drift from the code)', () => {
    const errors = corpus.map((f) => relativeError(f.estimate, f.o200k));
    const sumOf = (key: 'o200k' | 'estimate') => corpus.reduce((s, f) => s + f[key], 0);
    const aggregate = relativeError(sumOf('estimate'), sumOf('o200k'));
    const meanAbs = errors.reduce((s, e) => s + Math.abs(e), 0) / errors.length;
    const worst = Math.max(...errors.map(Math.abs));
    expect(TEXT_ESTIMATE_ACCURACY.measuredCorpusError).toBeCloseTo(aggregate, 3);
    expect(TEXT_ESTIMATE_ACCURACY.measuredMeanAbsFileError).toBeCloseTo(meanAbs, 3);
    expect(TEXT_ESTIMATE_ACCURACY.measuredWorstFileError).toBeCloseTo(worst, 3);
    expect(corpus.length).toBe(21);
    expect(sumOf('o200k')).toBe(14_254);
  });

  it('agrees with o200k on small familiar pieces', () => {
    const cases = [
      'Hello, world!',
      'The quick brown fox jumps over the lazy dog.',
      '1234567',
      'const windowStart = now - this.options.windowMs;',
      '城市公园的设计与管理',
      '    return x;\n',
    ];
    for (const text of cases) {
      expect(Math.abs(estimateTextTokens(text) - countTokens(text)), text).toBeLessThanOrEqual(2);
    }
  });
});

describe('estimateTextTokens sanity', () => {
  it('is 0 for the empty string and at least 1 otherwise', () => {
    expect(estimateTextTokens('')).toBe(0);
    expect(estimateTextTokens(' ')).toBe(1);
    expect(estimateTextTokens('a')).toBe(1);
    expect(estimateTextTokens('\uD83D')).toBeGreaterThanOrEqual(1);
  });

  it('is a non-negative integer for any string, lone surrogates included', () => {
    fc.assert(
      fc.property(someText, (text) => {
        const n = estimateTextTokens(text);
        expect(Number.isSafeInteger(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(text.length === 0 ? 0 : 1);
        // never more than ~3 tokens per UTF-16 unit, whatever the input
        expect(n).toBeLessThanOrEqual(3 * text.length + 1);
      }),
    );
  });

  it('grows with repeated text, about linearly', () => {
    fc.assert(
      fc.property(someText, fc.integer({ min: 2, max: 6 }), (text, k) => {
        const once = estimateTextTokens(text);
        const many = estimateTextTokens(text.repeat(k));
        expect(many).toBeGreaterThanOrEqual(once);
        // a join can merge or split one piece per boundary, and rounding adds 1
        expect(Math.abs(many - k * once)).toBeLessThanOrEqual(
          3 * k + 1 + Math.ceil(0.05 * k * once),
        );
      }),
    );
    for (const f of corpus) {
      expect(estimateTextTokens(f.text + f.text)).toBeGreaterThan(estimateTextTokens(f.text));
    }
  });

  it('appending text never lowers the estimate by more than a pending piece', () => {
    fc.assert(
      fc.property(someText, someText, (a, b) => {
        expect(estimateTextTokens(a + b)).toBeGreaterThanOrEqual(estimateTextTokens(a) - 2);
      }),
    );
  });

  it('splits numbers into groups of three digits like the tokenizer', () => {
    expect(estimateTextTokens('123')).toBe(1);
    expect(estimateTextTokens('1234')).toBe(2);
    expect(estimateTextTokens('1234567890')).toBe(countTokens('1234567890'));
  });

  it('charges emoji and CJK more per character than English', () => {
    const perChar = (s: string) => estimateTextTokens(s) / s.length;
    expect(perChar('汉字汉字汉字汉字')).toBeGreaterThan(perChar('the garden in spring'));
    expect(estimateTextTokens('🎉🎉🎉')).toBeGreaterThanOrEqual(3);
  });

  it('rejects a non-string with invalid_argument', () => {
    expect(() => estimateTextTokens(42 as unknown as string)).toThrow(TokenmeterError);
    try {
      estimateTextTokens(null as unknown as string);
    } catch (error) {
      expect(TokenmeterError.isInstance(error) && error.code).toBe('invalid_argument');
    }
  });
});

/** Mostly words, spaces and the units next to them: where the scanner's fast path runs. */
const wordyText = fc
  .array(
    fc.constantFrom(
      'the',
      'a',
      'ing',
      'streaming',
      'Word',
      'HTTP',
      ' ',
      '  ',
      '   ',
      '\n',
      '\t',
      '.',
      '("',
      '7',
      '42',
      'é',
      '中',
      '😀',
      '\uD83D',
      'abcdefghijklmnopqrstuvwxyzabcdefghij',
    ),
    { maxLength: 80 },
  )
  .map((parts) => parts.join(''));

describe("the scanner's fast path for lower-case words", () => {
  it('counts bit for bit what unit-by-unit scanning counts (the estimate and every class)', () => {
    fc.assert(
      fc.property(fc.oneof(someText, wordyText), (text) => {
        expect(textTokensByClass(text)).toEqual(textTokensByClass(text, true));
      }),
      { numRuns: 1_000 },
    );
    const edges = [
      'a blob of letters abcdefghijklmnopqrstuvwxyzabcdefghij then words',
      'one short of a blob abcdefghijklmnopqrstuvwxyzabcde then words', // 31 letters
      'café au lait, naïve words',
      'x.push(y) "quoted" _under \\escaped 7days',
      'two  spaces\nand\tmore',
      'TeSt camelCase HTTPServer iPhone',
      'a,b,,c...d;;;e:{"k":["v"]},f-->g',
      'café.au,lait naïve:word',
    ];
    for (const text of [...edges, ...corpus.map((c) => c.text)]) {
      expect(textTokensByClass(text)).toEqual(textTokensByClass(text, true));
    }
  });
});

describe('createOutputEstimator', () => {
  it('matches estimateTextTokens exactly, however the text is chunked', () => {
    fc.assert(
      fc.property(someText, fc.array(fc.nat(), { maxLength: 30 }), (text, cuts) => {
        const output = createOutputEstimator();
        let sent = '';
        for (const chunk of splitAt(text, cuts)) {
          const running = output.push(chunk);
          sent += chunk;
          expect(running).toBe(output.tokens);
          expect(running).toBe(estimateTextTokens(sent)); // every prefix, not only the end
        }
        expect(output.tokens).toBe(estimateTextTokens(text));
      }),
      { numRuns: 300 },
    );
  });

  it('counts an emoji whose surrogate pair arrives in two chunks once', () => {
    const output = createOutputEstimator();
    output.push('ok ');
    output.push('\uD83D');
    output.push('\uDE00');
    output.push(' done');
    expect(output.tokens).toBe(estimateTextTokens('ok 😀 done'));
  });

  it('counts a word split across chunks as one word', () => {
    const output = createOutputEstimator();
    for (const chunk of ['Sum', 'mari', 'sing the ', 'rep', 'ort']) output.push(chunk);
    expect(output.tokens).toBe(estimateTextTokens('Summarising the report'));
  });

  it('starts at 0 and keeps estimators independent', () => {
    const a = createOutputEstimator();
    const b = createOutputEstimator();
    expect(a.tokens).toBe(0);
    a.push('one two three');
    expect(b.tokens).toBe(0);
    expect(a.push('')).toBe(a.tokens);
    // estimateTextTokens shares scratch state; it must not disturb a running estimator
    estimateTextTokens('something else entirely');
    a.push(' four');
    expect(a.tokens).toBe(estimateTextTokens('one two three four'));
  });

  it('keeps a running total over a long stream of tiny chunks', () => {
    const output = createOutputEstimator();
    const chunk = 'token ';
    for (let i = 0; i < 200_000; i++) output.push(chunk);
    expect(output.tokens).toBe(estimateTextTokens(chunk.repeat(200_000)));
  });

  it('rejects a non-string chunk', () => {
    expect(() => createOutputEstimator().push(undefined as unknown as string)).toThrow(
      TokenmeterError,
    );
  });
});

// --- request estimation -------------------------------------------------------------------

function base64(bytes: number[]): string {
  return Buffer.from(bytes).toString('base64');
}
const be32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
/** The first bytes of a PNG of the given size (enough for the header reader). */
const pngHeader = (w: number, h: number) =>
  base64([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    0,
    0,
    0,
    13,
    0x49,
    0x48,
    0x44,
    0x52,
    ...be32(w),
    ...be32(h),
    8,
    6,
    0,
    0,
    0,
  ]);
const gifHeader = (w: number, h: number) =>
  base64([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, w & 255, w >> 8, h & 255, h >> 8, 0, 0, 0]);
/** SOI, an APP0 segment, then SOF0 with the size. */
const jpegHeader = (w: number, h: number) =>
  base64([
    0xff,
    0xd8,
    0xff,
    0xe0,
    0,
    16,
    0x4a,
    0x46,
    0x49,
    0x46,
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    0xff,
    0xc0,
    0,
    17,
    8,
    h >> 8,
    h & 255,
    w >> 8,
    w & 255,
    3,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
  ]);
const webpHeader = (w: number, h: number) =>
  base64([
    ...[0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x58],
    ...[10, 0, 0, 0, 0, 0, 0, 0],
    (w - 1) & 255,
    ((w - 1) >> 8) & 255,
    (w - 1) >> 16,
    (h - 1) & 255,
    ((h - 1) >> 8) & 255,
    (h - 1) >> 16,
  ]);

const anthropicImage = (data: string, mediaType = 'image/png') => ({
  type: 'image',
  source: { type: 'base64', media_type: mediaType, data },
});

describe('estimateImageTokens', () => {
  it("follows Anthropic's (w × h) / 750 with the 1,568 px long-edge limit", () => {
    expect(estimateImageTokens({ width: 1000, height: 1000 }, { provider: 'anthropic' })).toBe(
      1334,
    );
    expect(estimateImageTokens({ width: 200, height: 200 }, { provider: 'anthropic' })).toBe(54);
    expect(estimateImageTokens({ width: 4000, height: 3000 }, { provider: 'anthropic' })).toBe(
      1600,
    );
    expect(estimateImageTokens({ width: 3136, height: 400 }, { provider: 'anthropic' })).toBe(419);
  });

  it("follows OpenAI's tile rule, and 85 for detail: low", () => {
    expect(estimateImageTokens({ width: 1024, height: 1024 }, { provider: 'openai' })).toBe(765);
    expect(estimateImageTokens({ width: 2048, height: 4096 }, { provider: 'openai' })).toBe(1105);
    expect(
      estimateImageTokens({ width: 4096, height: 4096 }, { provider: 'openai', detail: 'low' }),
    ).toBe(85);
  });

  it('uses the fallback when the size is unknown or nonsense', () => {
    expect(estimateImageTokens(undefined)).toBe(1600);
    expect(estimateImageTokens(undefined, { fallback: 999 })).toBe(999);
    expect(estimateImageTokens({ width: Number.NaN, height: 10 })).toBe(1600);
  });
});

describe('estimateRequestTokens', () => {
  const anthropicParams = {
    model: 'claude-sonnet-4-5',
    max_tokens: 1024,
    system: 'You are a careful assistant. Answer briefly.',
    messages: [
      { role: 'user', content: 'What is the capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And of Germany?' },
    ],
  };

  it('counts text, per-message overhead and the request overhead', () => {
    const texts = [
      'You are a careful assistant. Answer briefly.',
      'What is the capital of France?',
      'Paris.',
      'And of Germany?',
    ];
    const expected = 3 + texts.reduce((n, t) => n + 4 + estimateTextTokens(t), 0);
    expect(estimateRequestTokens(anthropicParams)).toBe(expected);
  });

  it('gives the same count for string content and text blocks', () => {
    const blocks = {
      ...anthropicParams,
      system: [
        { type: 'text', text: anthropicParams.system, cache_control: { type: 'ephemeral' } },
      ],
      messages: anthropicParams.messages.map((m) => ({
        role: m.role,
        content: [{ type: 'text', text: m.content }],
      })),
    };
    expect(estimateRequestTokens(blocks)).toBe(estimateRequestTokens(anthropicParams));
  });

  it('is close to the exact gpt-4o chat encoding for an OpenAI text chat', () => {
    const messages = [
      { role: 'system' as const, content: 'You are a helpful assistant that answers in Markdown.' },
      {
        role: 'user' as const,
        content: corpus.find((f) => f.name === 'heldout-llm-answer.md')?.text ?? '',
      },
      { role: 'assistant' as const, content: 'Thanks, I will keep that in mind.' },
      { role: 'user' as const, content: 'Now rewrite the example in Python, please.' },
    ];
    const exact = encodeChat(messages, 'gpt-4o').length;
    const estimate = estimateRequestTokens({ model: 'gpt-4o', messages });
    expect(Math.abs(relativeError(estimate, exact))).toBeLessThanOrEqual(0.1);
  });

  it('counts tool_use input JSON and tool_result content', () => {
    const input = { city: 'Paris', unit: 'celsius', days: [1, 2, 3] };
    const withTools = estimateRequestTokens({
      messages: [
        { role: 'user', content: 'Weather?' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input }],
        },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 'toolu_01',
              content: [{ type: 'text', text: 'Sunny, 21 °C, light wind from the west.' }],
            },
          ],
        },
      ],
    });
    const parts =
      estimateTextTokens('Weather?') +
      estimateTextTokens('get_weather') +
      estimateTextTokens(JSON.stringify(input)) +
      estimateTextTokens('Sunny, 21 °C, light wind from the west.');
    expect(withTools).toBe(3 + 3 * 4 + 2 * 8 + parts);
  });

  it('counts Anthropic tools as JSON plus the tool-use system prompt; OpenAI tools as JSON', () => {
    const schema = {
      type: 'object',
      properties: { city: { type: 'string', description: 'City name, e.g. "Paris"' } },
      required: ['city'],
    };
    const anthropicTool = {
      name: 'get_weather',
      description: 'Current weather',
      input_schema: schema,
    };
    const base = { messages: [{ role: 'user', content: 'hi' }] };
    const plain = estimateRequestTokens(base);
    expect(estimateRequestTokens({ ...base, tools: [anthropicTool] })).toBe(
      plain + estimateTextTokens(JSON.stringify(anthropicTool)) + 346,
    );
    const openaiTool = {
      type: 'function',
      function: { name: 'get_weather', description: 'Current weather', parameters: schema },
    };
    expect(estimateRequestTokens({ ...base, tools: [openaiTool] }, { provider: 'openai' })).toBe(
      plain + estimateTextTokens(JSON.stringify(openaiTool)),
    );
  });

  it('bounds a request by the UTF-8 bytes of its whole JSON, exactly, however odd its tools', () => {
    // OpenAI's rules: the bound adds nothing but the request's 3 tokens to the bytes.
    const boundOf = (request: object) =>
      measureRequestTokens(request, { provider: 'openai' }).upperBound;
    const expected = (request: object) =>
      Math.max(
        estimateRequestTokens(request, { provider: 'openai' }),
        Buffer.byteLength(JSON.stringify(request)) + 3,
      );
    const anyString = fc.array(codeUnit, { maxLength: 30 }).map((parts) => parts.join(''));
    const tool = fc.oneof(
      fc.jsonValue(),
      fc.record({ name: anyString, description: anyString, input_schema: fc.jsonValue() }),
      fc.constantFrom(undefined, () => 1, Symbol('s'), new Date(0), {
        toJSON: (key: string) => key,
      }),
    );
    fc.assert(
      fc.property(
        fc.array(tool, { minLength: 1, maxLength: 6 }),
        fc.dictionary(
          fc.constantFrom('metadata', 'temperature', 'response_format', 'x_extra'),
          fc.jsonValue(),
        ),
        anyString,
        (tools, extra, content) => {
          const request = {
            model: 'gpt-4o',
            messages: [{ role: 'user', content }],
            ...extra,
            tools,
          };
          expect(boundOf(request)).toBe(expected(request));
          const toolsOnly = { tools };
          expect(boundOf(toolsOnly)).toBe(expected(toolsOnly));
        },
      ),
      { numRuns: 300 },
    );
    // Tools JSON would not write as they are read: inherited, or with their own JSON form.
    const tools = [{ name: 'a', description: 'b' }];
    const inherited = Object.assign(Object.create({ tools }), { model: 'gpt-4o' });
    expect(boundOf(inherited)).toBe(expected(inherited));
    const ownForm = Object.assign([...tools], { toJSON: () => [] });
    expect(boundOf({ tools: ownForm })).toBe(expected({ tools: ownForm }));
    const requestForm = { tools, toJSON: () => ({ tools: [] }) };
    expect(boundOf(requestForm)).toBe(expected(requestForm));
  });

  it('counts OpenAI tool calls, tool messages and names', () => {
    const request = {
      model: 'gpt-4o',
      messages: [
        { role: 'developer', content: 'Use tools when useful.' },
        { role: 'user', name: 'ana', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":4,"sky":"snow"}' },
      ],
    };
    const n = estimateRequestTokens(request);
    const floor =
      estimateTextTokens('Use tools when useful.') +
      estimateTextTokens('Weather in Oslo?') +
      estimateTextTokens('{"city":"Oslo"}') +
      estimateTextTokens('{"temp":4,"sky":"snow"}');
    expect(n).toBeGreaterThan(floor + 4 * 4);
    expect(n).toBeLessThan(floor + 60);
  });

  it('reads image sizes from PNG, GIF, JPEG and WebP headers (Anthropic rule)', () => {
    const one = (block: object) =>
      estimateRequestTokens({ messages: [{ role: 'user', content: [block] }] }) - 3 - 4;
    expect(one(anthropicImage(pngHeader(1000, 1000)))).toBe(1334);
    expect(one(anthropicImage(gifHeader(300, 150), 'image/gif'))).toBe(60);
    expect(one(anthropicImage(jpegHeader(800, 600), 'image/jpeg'))).toBe(640);
    expect(one(anthropicImage(webpHeader(640, 480), 'image/webp'))).toBe(410);
  });

  it('uses the documented fixed estimate for images of unknown size, never their base64 as text', () => {
    const junk = Buffer.alloc(600_000, 7).toString('base64'); // 800 KB of base64, no header
    const one = (block: object, options = {}) =>
      estimateRequestTokens({ messages: [{ role: 'user', content: [block] }] }, options) - 3 - 4;
    expect(one(anthropicImage(junk, 'image/jpeg'))).toBe(1600);
    expect(one({ type: 'image', source: { type: 'url', url: 'https://x.example/a.png' } })).toBe(
      1600,
    );
    expect(one(anthropicImage(junk, 'image/jpeg'), { imageTokens: 1000 })).toBe(1000);
  });

  it('handles OpenAI image_url parts: data URLs by size, detail low, remote URLs fixed', () => {
    const one = (part: object) =>
      estimateRequestTokens({ model: 'gpt-4o', messages: [{ role: 'user', content: [part] }] }) -
      3 -
      4;
    const dataUrl = `data:image/png;base64,${pngHeader(1024, 1024)}`;
    expect(one({ type: 'image_url', image_url: { url: dataUrl } })).toBe(765);
    expect(one({ type: 'image_url', image_url: { url: dataUrl, detail: 'low' } })).toBe(85);
    expect(one({ type: 'image_url', image_url: { url: 'https://x.example/cat.jpg' } })).toBe(1600);
  });

  it('counts PDF documents by page, and text documents as text', () => {
    const pdf = Buffer.from(
      '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n' +
        '2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >> endobj\n' +
        '3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n4 0 obj << /Type/Page >> endobj\n' +
        '5 0 obj << /Type /Page\n/Parent 2 0 R >> endobj\n%%EOF\n',
    ).toString('base64');
    const one = (block: object) =>
      estimateRequestTokens({ messages: [{ role: 'user', content: [block] }] }) - 3 - 4;
    const doc = (source: object) => ({ type: 'document', source });
    expect(one(doc({ type: 'base64', media_type: 'application/pdf', data: pdf }))).toBe(9000);
    expect(one(doc({ type: 'text', media_type: 'text/plain', data: 'Plain text body.' }))).toBe(
      estimateTextTokens('Plain text body.'),
    );
    expect(one(doc({ type: 'url', url: 'https://x.example/report.pdf' }))).toBe(3000);
    // OpenAI file part with a PDF data URL
    expect(
      one({
        type: 'file',
        file: { filename: 'r.pdf', file_data: `data:application/pdf;base64,${pdf}` },
      }),
    ).toBe(9000);
  });

  it('counts unknown shapes by their JSON text, a base64-looking blob too (judged whole)', () => {
    const block = { type: 'future_block', payload: { a: 'some words here', n: [1, 2, 3] } };
    const one = (b: object) =>
      estimateRequestTokens({ messages: [{ role: 'user', content: [b] }] }) - 3 - 4;
    expect(one(block)).toBe(estimateTextTokens(JSON.stringify(block)));
    // Text to the provider, wherever it stands: never one flat attachment.
    const blob = Buffer.alloc(300_000, 1).toString('base64');
    const withBlob = { type: 'future_block', data: blob };
    expect(one(withBlob)).toBe(estimateTextTokens(JSON.stringify(withBlob)));
    expect(one(withBlob)).toBeGreaterThan(100_000);
    // a request without messages: its fields but the settings
    const odd = { model: 'x', query: 'find the nearest library' };
    expect(estimateRequestTokens(odd)).toBe(
      3 + estimateTextTokens(JSON.stringify({ query: odd.query })),
    );
  });

  it('understands the OpenAI Responses shape (instructions, input)', () => {
    expect(estimateRequestTokens({ instructions: 'Be brief.', input: 'Hello there' })).toBe(
      3 + 4 + estimateTextTokens('Be brief.') + 4 + estimateTextTokens('Hello there'),
    );
  });

  it('applies the margin and rounds up', () => {
    const base = estimateRequestTokens(anthropicParams);
    expect(estimateRequestTokens(anthropicParams, { margin: 1.5 })).toBe(Math.ceil(base * 1.5));
    expect(estimateRequestTokens(anthropicParams, { margin: 1 })).toBe(base);
  });

  it('never counts fewer tokens for a longer conversation', () => {
    fc.assert(
      fc.property(fc.array(someText, { maxLength: 8 }), someText, (texts, extra) => {
        const messages = texts.map((content) => ({ role: 'user', content }));
        const before = estimateRequestTokens({ messages });
        const after = estimateRequestTokens({
          messages: [...messages, { role: 'user', content: extra }],
        });
        expect(after).toBeGreaterThan(before);
      }),
    );
  });

  it('rejects bad input with invalid_argument', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return TokenmeterError.isInstance(error) ? error.code : 'other';
      }
      return 'none';
    };
    expect(code(() => estimateRequestTokens(null as unknown as object))).toBe('invalid_argument');
    expect(code(() => estimateRequestTokens([] as unknown as object))).toBe('invalid_argument');
    expect(code(() => estimateRequestTokens(anthropicParams, { margin: 0 }))).toBe(
      'invalid_argument',
    );
    expect(code(() => estimateRequestTokens(anthropicParams, { margin: Number.NaN }))).toBe(
      'invalid_argument',
    );
    expect(code(() => estimateRequestTokens(anthropicParams, { imageTokens: -1 }))).toBe(
      'invalid_argument',
    );
    const cyclic: Record<string, unknown> = { type: 'x' };
    cyclic.self = cyclic;
    expect(
      code(() => estimateRequestTokens({ messages: [{ role: 'user', content: [cyclic] }] })),
    ).toBe('invalid_argument');
  });
});

describe('measureRequestTokens: an upper bound no text defeats', () => {
  const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
  const pdf = (pages: number) =>
    Buffer.from(
      `%PDF-1.4\n${Array.from({ length: pages }, (_, i) => `${i + 3} 0 obj << /Type /Page >> endobj\n`).join('')}`,
    ).toString('base64');

  it('is at least one token per byte of every field, unknown ones included', () => {
    const request = {
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: 'Hello' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 't1', name: 'f', input: { q: 'x'.repeat(5_000) } }],
        },
      ],
      response_format: {
        type: 'json_schema',
        json_schema: { schema: { description: 'y'.repeat(3_000) } },
      },
      some_future_field: 'z'.repeat(2_000),
    };
    const count = measureRequestTokens(request, { provider: 'openai' });
    expect(count.upperBound).toBeGreaterThanOrEqual(bytes(request));
    expect(count.upperBound).toBeLessThanOrEqual(bytes(request) + 3);
    // The estimate reads the schema and the unknown field too, not only messages.
    expect(count.tokens).toBeGreaterThan(
      estimateRequestTokens({ messages: request.messages }) + 1_000,
    );
    expect(count.approximate).toBe(false);
    expect(count.unbounded).toBeUndefined();
  });

  it("adds what Anthropic puts around tools: its tool-use prompt and each tool type's allowance", () => {
    const tools = [{ type: 'bash_20250124', name: 'bash' }];
    const request = { messages: [{ role: 'user', content: 'ls' }], tools };
    expect(measureRequestTokens(request, { provider: 'anthropic' }).upperBound).toBe(
      bytes(request) + 3 + 346 + 245,
    );
  });

  it('counts an attachment by its rule, leaving its payload out of the bytes', () => {
    const image = Buffer.alloc(2_000_000, 7).toString('base64'); // not a readable image
    const request = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: image } },
            {
              type: 'document',
              source: { type: 'base64', media_type: 'application/pdf', data: pdf(4) },
            },
          ],
        },
      ],
    };
    const count = measureRequestTokens(request, { provider: 'anthropic' });
    const shell = JSON.stringify(request).length - image.length - pdf(4).length;
    // The image at the most Anthropic bills one (1,600, allowed 1.5×), the PDF at its pages.
    expect(count.upperBound).toBeLessThanOrEqual(shell + 2_400 + 4 * 3_000 * 1.5 + 3);
    expect(count.upperBound).toBeGreaterThanOrEqual(2_400 + 4 * 3_000 * 1.5);
    expect(count.approximate).toBe(true);
    // OpenAI's patch-based models bill an image up to ~3,800 tokens.
    const openai = measureRequestTokens(
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'https://x.example/a.png' } }],
          },
        ],
      },
      { provider: 'openai' },
    );
    expect(openai.upperBound).toBeGreaterThanOrEqual(3_800);
  });

  it('says what it cannot bound: documents by URL or file id, PDFs it cannot count, audio', () => {
    const cases: Array<[unknown, RegExp]> = [
      [
        { type: 'document', source: { type: 'url', url: 'https://x.example/big.pdf' } },
        /document by URL or file id/,
      ],
      [
        { type: 'document', source: { type: 'file', file_id: 'file_123' } },
        /document by URL or file id/,
      ],
      [{ type: 'file', file: { file_id: 'file-abc' } }, /file by id or URL/],
      [{ type: 'input_file', file_url: 'https://x.example/a.pdf' }, /file by id or URL/],
      [
        {
          type: 'document',
          source: {
            type: 'base64',
            media_type: 'application/pdf',
            data: Buffer.from('%PDF-1.7 /Encrypt').toString('base64'),
          },
        },
        /PDF whose pages cannot be counted/,
      ],
      [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }, /audio input/],
    ];
    for (const [part, why] of cases) {
      const count = measureRequestTokens({ messages: [{ role: 'user', content: [part] }] });
      expect(count.unbounded).toMatch(why);
    }
    // An image by URL is bounded whatever it holds.
    expect(
      measureRequestTokens({
        messages: [
          {
            role: 'user',
            content: [{ type: 'image', source: { type: 'url', url: 'https://x.example/a.png' } }],
          },
        ],
      }).unbounded,
    ).toBeUndefined();
  });
});
