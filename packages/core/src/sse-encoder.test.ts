/**
 * The SSE encoder, checked against an independent parser (eventsource-parser, which
 * follows the WHATWG "event stream interpretation"): exact output for known cases, and
 * properties over hostile text streamed as UTF-8 bytes cut at arbitrary positions.
 */
import { createParser, type ParseError } from 'eventsource-parser';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenmeterError } from './errors.js';
import {
  encodeComment,
  encodeEvent,
  encodeJsonEvent,
  jsonSseEncoder,
  PLAIN_DONE,
  plainSseEncoder,
  type SseEvent,
} from './sse-encoder.js';
import * as full from './sse-payloads.test-helper.js';

interface Parsed {
  event: string | undefined;
  data: string;
  id: string | undefined;
}

interface Received {
  events: Parsed[];
  comments: string[];
  ids: string[];
  retries: number[];
  errors: ParseError[];
}

function newParser() {
  const got: Received = { events: [], comments: [], ids: [], retries: [], errors: [] };
  const parser = createParser({
    onEvent: (e) => got.events.push({ event: e.event, data: e.data, id: e.id }),
    onComment: (c) => got.comments.push(c),
    onId: (id) => got.ids.push(id),
    onRetry: (ms) => got.retries.push(ms),
    onError: (err) => got.errors.push(err),
  });
  return { parser, got };
}

/** Parses a whole stream fed as one string. */
function parse(stream: string): Received {
  const { parser, got } = newParser();
  parser.feed(stream);
  return got;
}

/**
 * What a browser does: UTF-8 bytes arrive cut at `cuts` (byte offsets, possibly inside a
 * multi-byte character), a streaming TextDecoder turns them back into text.
 */
function parseBytes(stream: string, cuts: readonly number[]): Received {
  const bytes = new TextEncoder().encode(stream);
  const decoder = new TextDecoder('utf-8');
  const { parser, got } = newParser();
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    parser.feed(decoder.decode(bytes.subarray(start, cut), { stream: true }));
    start = cut;
  }
  parser.feed(decoder.decode());
  return got;
}

/** Sorted, distinct byte offsets inside a stream of `length` bytes. */
function cutsFor(seeds: readonly number[], length: number): number[] {
  return [...new Set(seeds.map((s) => s % (length + 1)))].sort((a, b) => a - b);
}

/** What the SSE line grammar can carry: every line end arrives as LF. */
const normalise = (s: string) => s.replace(/\r\n|\r/g, '\n');
/** What UTF-8 can carry: a lone surrogate becomes U+FFFD. */
const wellFormed = (s: string) =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

function expectInvalidArgument(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(TokenmeterError.isInstance(thrown)).toBe(true);
  expect((thrown as TokenmeterError).code).toBe('invalid_argument');
}

// Text a model might produce, biased towards what breaks naive encoders.
const hostilePiece = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '\r',
      '\n',
      '\r\n',
      '\n\r',
      ':',
      ' ',
      'data:',
      'data: ',
      '\n\ndata: [DONE]\n\n',
      '[DONE]',
      '[DONE',
      ']',
      'event: done',
      'id: x',
      'retry: 1',
      ': comment',
      '\0',
      '\uFEFF',
      '\u2028',
      'é',
      '😀',
      '👩‍👩‍👧',
      '𝄞',
      '\uD83D',
      '\uDE00',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 6 }) },
);
const text = fc.oneof(
  fc.array(hostilePiece, { maxLength: 12 }).map((parts) => parts.join('')),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
);
const eventName = fc.oneof(
  fc.constantFrom('delta', 'done', 'message', 'error', 'data', ' spaced', 'a:b'),
  text.map((s) => s.replace(/[\r\n]/g, '') || 'x'),
);
const eventId = text.map((s) => s.replace(/[\r\n\0]/g, ''));
const seeds = fc.array(fc.nat(), { maxLength: 24 });
const RUNS = { numRuns: 300 };

describe('encodeEvent', () => {
  it('writes event, id, retry, then data, then the blank line', () => {
    expect(encodeEvent({ data: 'hi' })).toBe('data: hi\n\n');
    expect(encodeEvent({ event: 'delta', id: '7', retry: 1000, data: 'hi' })).toBe(
      'event: delta\nid: 7\nretry: 1000\ndata: hi\n\n',
    );
  });

  it.each([
    ['LF', 'a\nb', 'data: a\ndata: b\n\n', 'a\nb'],
    ['CR', 'a\rb', 'data: a\ndata: b\n\n', 'a\nb'],
    ['CRLF', 'a\r\nb', 'data: a\ndata: b\n\n', 'a\nb'],
    ['LF CR (two line ends)', 'a\n\rb', 'data: a\ndata: \ndata: b\n\n', 'a\n\nb'],
    ['mixed', 'a\r\n\rb\nc\r', 'data: a\ndata: \ndata: b\ndata: c\ndata: \n\n', 'a\n\nb\nc\n'],
    ['only line ends', '\n\n', 'data: \ndata: \ndata: \n\n', '\n\n'],
  ])('splits multi-line data on %s', (_, data, wire, parsed) => {
    const out = encodeEvent({ event: 'delta', data });
    expect(out).toBe(`event: delta\n${wire}`);
    expect(parse(out).events).toEqual([{ event: 'delta', data: parsed, id: undefined }]);
  });

  it.each([
    'data: x',
    '\n\ndata: [DONE]\n\n',
    'event: done',
    '\nevent: done\ndata: forged\n\n',
    'id: x',
    '\nid: x\n',
    'retry: 1',
    '\nretry: 1\n',
    ':comment',
    '\n:comment\n',
    '\r\r\r',
  ])('cannot forge or end an event with %j', (data) => {
    const got = parse(encodeEvent({ event: 'delta', data }) + encodeEvent({ data: 'next' }));
    expect(got.events).toEqual([
      { event: 'delta', data: normalise(data), id: undefined },
      { event: undefined, data: 'next', id: undefined },
    ]);
    expect(got.ids).toEqual([]);
    expect(got.retries).toEqual([]);
    expect(got.comments).toEqual([]);
    expect(got.errors).toEqual([]);
  });

  it('keeps leading spaces: writes exactly one space after "data:"', () => {
    const data = ' one\n  two\n\tthree';
    expect(encodeEvent({ data })).toBe('data:  one\ndata:   two\ndata: \tthree\n\n');
    expect(parse(encodeEvent({ data })).events[0]?.data).toBe(data);
  });

  it('sends empty data as an event with data ""', () => {
    expect(encodeEvent({ data: '' })).toBe('data: \n\n');
    expect(parse(encodeEvent({ event: 'delta', data: '' })).events).toEqual([
      { event: 'delta', data: '', id: undefined },
    ]);
  });

  it('with data undefined, sends id or retry without dispatching an event', () => {
    expect(encodeEvent({ id: '42' })).toBe('id: 42\n\n');
    expect(encodeEvent({ retry: 0 })).toBe('retry: 0\n\n');
    const got = parse(encodeEvent({ id: '42', retry: 5000 }));
    expect(got.events).toEqual([]);
    expect(got.ids).toEqual(['42']);
    expect(got.retries).toEqual([5000]);
  });

  it('refuses blocks no client would see: an event name without data, or nothing', () => {
    expectInvalidArgument(() => encodeEvent({ event: 'delta' }));
    expectInvalidArgument(() => encodeEvent({}));
  });

  it('carries emoji and astral-plane characters, even when bytes are cut one by one', () => {
    const data = '😀 👩‍👩‍👧 𝄞 é 中文\n🚀';
    const stream = encodeEvent({ event: 'delta', data });
    const bytes = new TextEncoder().encode(stream).length;
    const everyByte = Array.from({ length: bytes }, (_, i) => i);
    expect(parseBytes(stream, everyByte).events).toEqual([{ event: 'delta', data, id: undefined }]);
  });

  it('carries NUL in data and event names', () => {
    expect(parse(encodeEvent({ event: 'a\0b', data: 'x\0y' })).events).toEqual([
      { event: 'a\0b', data: 'x\0y', id: undefined },
    ]);
  });

  it('accepts ids that parsers keep: empty (resets Last-Event-ID), spaces, colons', () => {
    expect(encodeEvent({ id: '', data: 'x' })).toBe('id: \ndata: x\n\n');
    expect(parse(encodeEvent({ id: '', data: 'x' })).events[0]?.id).toBe('');
    expect(parse(encodeEvent({ id: ' a:b ', data: 'x' })).events[0]?.id).toBe(' a:b ');
  });

  it.each(['', 'a\nb', 'a\rb', 'delta\n\ndata: forged'])('rejects event name %j', (event) => {
    expectInvalidArgument(() => encodeEvent({ event, data: 'x' }));
    expectInvalidArgument(() => encodeJsonEvent(event, {}));
  });

  it.each(['a\nb', 'a\rb', '\r\n', 'a\0b'])('rejects id %j', (id) => {
    expectInvalidArgument(() => encodeEvent({ id, data: 'x' }));
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])('rejects retry %d', (retry) => {
    expectInvalidArgument(() => encodeEvent({ retry }));
  });

  it('rejects data that is not a string (from untyped callers)', () => {
    expectInvalidArgument(() => encodeEvent({ data: 42 as unknown as string }));
  });
});

describe('encodeComment', () => {
  it('writes a keep-alive ping by default', () => {
    expect(encodeComment()).toBe(': ping\n\n');
    expect(encodeComment('')).toBe(': \n\n');
  });

  it('writes one comment line per line of text', () => {
    expect(encodeComment('a\nb\r\nc\rd')).toBe(': a\n: b\n: c\n: d\n\n');
    expect(parse(encodeComment('a\nb\r\nc\rd')).comments).toEqual(['a', 'b', 'c', 'd']);
  });

  it('never produces an event, whatever the text', () => {
    const got = parse(encodeComment('\n\ndata: [DONE]\n\nevent: x\ndata: y\n\nid: 1\nretry: 1\n'));
    expect(got.events).toEqual([]);
    expect(got.ids).toEqual([]);
    expect(got.retries).toEqual([]);
  });

  it('property: comments of any text give no event and the text line by line', () => {
    fc.assert(
      fc.property(text, seeds, (t, s) => {
        const stream = encodeComment(t);
        const got = parseBytes(stream, cutsFor(s, new TextEncoder().encode(stream).length));
        expect(got.events).toEqual([]);
        expect(got.ids).toEqual([]);
        expect(got.retries).toEqual([]);
        expect(got.comments.join('\n')).toBe(wellFormed(normalise(t)));
      }),
      RUNS,
    );
  });
});

describe('encodeJsonEvent', () => {
  it('writes one data line: JSON escapes every line end', () => {
    const value = { text: 'a\n\ndata: [DONE]\n\r\nb' };
    const out = encodeJsonEvent('delta', value);
    expect(out).toBe('event: delta\ndata: {"text":"a\\n\\ndata: [DONE]\\n\\r\\nb"}\n\n');
    const events = parse(out).events;
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]?.data ?? '')).toEqual(value);
  });

  it('keeps lone surrogates, NUL and U+2028 exactly, through UTF-8 bytes', () => {
    const value = { text: '\uD83D|\uDE00|\uDE00\uD83D|\0|\u2028|😀' };
    const stream = encodeJsonEvent('delta', value);
    const cuts = Array.from({ length: 60 }, (_, i) => i);
    const events = parseBytes(stream, cuts).events;
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]?.data ?? '')).toStrictEqual(value);
  });

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a BigInt', { n: 1n }],
    [
      'a cycle',
      (() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(),
    ],
  ])('rejects %s', (_, value) => {
    expectInvalidArgument(() => encodeJsonEvent('delta', value));
  });
});

describe('jsonSseEncoder', () => {
  it("speaks tokenmeter's default protocol (meta, delta, usage, done, error, ping)", () => {
    expect(jsonSseEncoder.meta(full.meta())).toBe(
      `event: meta\ndata: ${JSON.stringify(full.meta())}\n\n`,
    );
    expect(jsonSseEncoder.delta({ text: 'Hi\n' })).toBe('event: delta\ndata: {"text":"Hi\\n"}\n\n');
    expect(jsonSseEncoder.usage(full.usage())).toBe(
      `event: usage\ndata: ${JSON.stringify(full.usage())}\n\n`,
    );
    expect(jsonSseEncoder.done(full.done())).toBe(
      `event: done\ndata: ${JSON.stringify(full.done())}\n\n`,
    );
    expect(jsonSseEncoder.error(full.error())).toBe(
      `event: error\ndata: ${JSON.stringify(full.error())}\n\n`,
    );
    expect(jsonSseEncoder.comment()).toBe(': ping\n\n');
  });

  it('a delta of "[DONE]" is just text', () => {
    expect(parse(jsonSseEncoder.delta({ text: PLAIN_DONE })).events).toEqual([
      { event: 'delta', data: '{"text":"[DONE]"}', id: undefined },
    ]);
  });

  it("a delta's bytes are JSON.stringify's, for any text and any object a caller passes", () => {
    const same = (data: unknown) =>
      expect(jsonSseEncoder.delta(data as { text: string })).toBe(
        `event: delta\ndata: ${JSON.stringify(data)}\n\n`,
      );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        same({ text });
      }),
      { numRuns: 2_000 },
    );
    for (const text of [
      '',
      '"',
      '\\',
      '\u2028\u2029',
      '\ud800',
      '\udfff\ud800',
      '\u0000\u001f\u007f',
    ]) {
      same({ text });
    }
    // Not the plain `{ text }`: each goes the whole way through JSON.stringify.
    same({ text: 'a', extra: 1 });
    same({ extra: 1, text: 'a' });
    same({ text: 'a', toJSON: () => ({ text: 'b' }) });
    same(Object.assign(Object.create({ inherited: 1 }), { text: 'a' }));
    class Delta {
      constructor(readonly text: string) {}
      toJSON() {
        return { text: this.text.toUpperCase() };
      }
    }
    same(new Delta('abc'));
    same({ text: 5 });
  });
});

describe('plainSseEncoder', () => {
  it('sends text as data and ends with data: [DONE]', () => {
    expect(plainSseEncoder.delta({ text: 'Hello' })).toBe('data: Hello\n\n');
    expect(plainSseEncoder.delta({ text: 'a\r\nb' })).toBe('data: a\ndata: b\n\n');
    expect(plainSseEncoder.done(full.done())).toBe('data: [DONE]\n\n');
    expect(plainSseEncoder.meta(full.meta())).toBe('');
    expect(plainSseEncoder.usage(full.usage())).toBe('');
    expect(plainSseEncoder.comment()).toBe(': ping\n\n');
  });

  it.each([
    ['[DONE]', ['[DONE', ']']],
    [' [DONE]', [' [DONE', ']']],
    ['[DONE]!', ['[DONE', ']!']],
    ['[DONE][DONE]', ['[DONE', '][DONE', ']']],
    ['\n\ndata: [DONE]\n\n', ['\n\ndata: [DONE', ']\n\n']],
  ])('cuts %j so no delta reads as the terminator', (textIn, datas) => {
    const events = parse(plainSseEncoder.delta({ text: textIn })).events;
    expect(events.map((e) => e.data)).toEqual(datas);
    expect(events.map((e) => e.data).join('')).toBe(textIn);
    for (const e of events) {
      expect(e.event).toBeUndefined();
      expect(e.data.includes(PLAIN_DONE)).toBe(false);
    }
  });

  it('sends an error as a named JSON event, with no [DONE] after it', () => {
    const out = plainSseEncoder.error(
      full.error({ code: 'budget_exceeded', message: 'stop\n\ndata: [DONE]' }),
    );
    const events = parse(out).events;
    expect(events).toHaveLength(1);
    expect(events[0]?.event).toBe('error');
    expect(JSON.parse(events[0]?.data ?? '')).toEqual(
      full.error({ code: 'budget_exceeded', message: 'stop\n\ndata: [DONE]' }),
    );
  });

  it('protocol limit: a CRLF split across two deltas arrives as two line ends', () => {
    const stream = plainSseEncoder.delta({ text: 'a\r' }) + plainSseEncoder.delta({ text: '\nb' });
    expect(parse(stream).events.map((e) => e.data)).toEqual(['a\n', '\nb']);
  });
});

describe('properties: any events, streamed as bytes cut anywhere, parse back exactly', () => {
  type Block =
    | { kind: 'event'; fields: SseEvent & { data: string } }
    | { kind: 'control'; id: string | undefined; retry: number }
    | { kind: 'comment'; text: string };

  const block: fc.Arbitrary<Block> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record({
          event: fc.option(eventName, { nil: undefined }),
          data: text,
          id: fc.option(eventId, { nil: undefined }),
          retry: fc.option(fc.nat(), { nil: undefined }),
        })
        .map((fields) => ({ kind: 'event' as const, fields })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ id: fc.option(eventId, { nil: undefined }), retry: fc.nat() })
        .map(({ id, retry }) => ({ kind: 'control' as const, id, retry })),
    },
    { weight: 1, arbitrary: text.map((t) => ({ kind: 'comment' as const, text: t })) },
  );

  it('encodeEvent / encodeComment', () => {
    fc.assert(
      fc.property(fc.array(block, { maxLength: 12 }), seeds, (blocks, s) => {
        let stream = '';
        const expected: Received = { events: [], comments: [], ids: [], retries: [], errors: [] };
        for (const b of blocks) {
          if (b.kind === 'comment') {
            stream += encodeComment(b.text);
            expected.comments.push(...wellFormed(normalise(b.text)).split('\n'));
            continue;
          }
          const { id, retry } = b.kind === 'event' ? b.fields : b;
          stream += encodeEvent(b.kind === 'event' ? b.fields : { id, retry });
          if (id !== undefined) expected.ids.push(wellFormed(id));
          if (retry !== undefined) expected.retries.push(retry);
          if (b.kind === 'event') {
            const { event, data } = b.fields;
            expected.events.push({
              event: event === undefined ? undefined : wellFormed(event),
              data: wellFormed(normalise(data)),
              id: id === undefined ? undefined : wellFormed(id),
            });
          }
        }
        const bytes = new TextEncoder().encode(stream).length;
        expect(parseBytes(stream, cutsFor(s, bytes))).toEqual(expected);
      }),
      RUNS,
    );
  });

  const jsonValue = fc.jsonValue({ maxDepth: 3, stringUnit: hostilePiece });
  const payload = fc.dictionary(text, jsonValue, { maxKeys: 4 });
  type Call =
    | { method: 'meta' | 'usage' | 'done' | 'error'; data: Record<string, unknown> }
    | { method: 'delta'; data: { text: string } }
    | { method: 'comment'; text: string };
  const call: fc.Arbitrary<Call> = fc.oneof(
    {
      weight: 6,
      arbitrary: text.map((t) => ({ method: 'delta' as const, data: { text: t } })),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        method: fc.constantFrom(
          'meta' as const,
          'usage' as const,
          'done' as const,
          'error' as const,
        ),
        data: payload,
      }),
    },
    { weight: 1, arbitrary: text.map((t) => ({ method: 'comment' as const, text: t })) },
  );

  it('jsonSseEncoder: data is the exact JSON, text round-trips exactly', () => {
    fc.assert(
      fc.property(fc.array(call, { maxLength: 12 }), seeds, (calls, s) => {
        let stream = '';
        const sent: Exclude<Call, { method: 'comment' }>[] = [];
        for (const c of calls) {
          if (c.method === 'comment') {
            stream += jsonSseEncoder.comment(c.text);
          } else {
            stream +=
              c.method === 'delta'
                ? jsonSseEncoder.delta(c.data)
                : // Any JSON at all: the encoder writes it whatever its shape.
                  jsonSseEncoder[c.method](c.data as never);
            sent.push(c);
          }
        }
        const got = parseBytes(stream, cutsFor(s, new TextEncoder().encode(stream).length));
        expect(got.errors).toEqual([]);
        expect(got.events.map((e) => e.event)).toEqual(sent.map((c) => c.method));
        got.events.forEach((e, i) => {
          const original = sent[i]?.data;
          expect(e.data).toBe(JSON.stringify(original));
          if (sent[i]?.method === 'delta') {
            expect(JSON.parse(e.data)).toStrictEqual(original);
          } else {
            expect(JSON.parse(e.data)).toStrictEqual(JSON.parse(JSON.stringify(original)));
          }
        });
      }),
      RUNS,
    );
  });

  it('plainSseEncoder: one delta joins back to its text with line ends as LF, never [DONE]', () => {
    fc.assert(
      fc.property(text, seeds, (t, s) => {
        const stream = plainSseEncoder.delta({ text: t });
        const got = parseBytes(stream, cutsFor(s, new TextEncoder().encode(stream).length));
        expect(got.errors).toEqual([]);
        expect(got.events.length).toBe(t.split(PLAIN_DONE).length);
        for (const e of got.events) {
          expect(e.event).toBeUndefined();
          expect(e.data.includes(PLAIN_DONE)).toBe(false);
        }
        expect(got.events.map((e) => e.data).join('')).toBe(wellFormed(normalise(t)));
      }),
      RUNS,
    );
  });

  it('plainSseEncoder: a whole stream ends with exactly one [DONE], or an error and none', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            text,
            text.map((t) => ({ comment: t })),
          ),
          { maxLength: 12 },
        ),
        fc.boolean(),
        seeds,
        (parts, failed, s) => {
          let stream = plainSseEncoder.meta(full.meta());
          let expectedText = '';
          for (const p of parts) {
            if (typeof p === 'string') {
              stream += plainSseEncoder.delta({ text: p }) + plainSseEncoder.usage(full.usage());
              expectedText += wellFormed(normalise(p));
            } else {
              stream += plainSseEncoder.comment(p.comment);
            }
          }
          stream += failed
            ? plainSseEncoder.error(full.error())
            : plainSseEncoder.done(full.done());
          const got = parseBytes(stream, cutsFor(s, new TextEncoder().encode(stream).length));
          expect(got.errors).toEqual([]);
          const last = got.events.at(-1);
          const deltas = got.events.slice(0, -1);
          if (failed) {
            expect(last).toEqual({
              event: 'error',
              data: JSON.stringify(full.error()),
              id: undefined,
            });
          } else {
            expect(last).toEqual({ event: undefined, data: PLAIN_DONE, id: undefined });
          }
          expect(deltas.every((e) => e.event === undefined && !e.data.includes(PLAIN_DONE))).toBe(
            true,
          );
          expect(deltas.map((e) => e.data).join('')).toBe(expectedText);
        },
      ),
      RUNS,
    );
  });
});
