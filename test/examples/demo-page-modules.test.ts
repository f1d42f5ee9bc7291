/**
 * The demo page's own modules, run in Node: its SSE parser against eventsource-parser on
 * adversarial streams cut at every position (CRLF and lone CR line ends, multi-line data,
 * comments), and its money formatting against formatUsd() from @tokenmeter/core.
 */
import { formatUsd, jsonSseEncoder, plainSseEncoder } from '@tokenmeter/core';
import { seededText, seededTokens } from '@tokenmeter/testkit';
import { createParser } from 'eventsource-parser';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from './helpers/process.js';

interface Message {
  event: string;
  data: string;
}
// Plain browser modules without type declarations: imported by URL and typed here.
const { createSseParser } = (await import(`${EXAMPLES_DIR}demo/public/sse.js`)) as {
  createSseParser(onMessage: (m: Message) => void): { feed(text: string): void };
};
const { formatNanos } = (await import(`${EXAMPLES_DIR}demo/public/format.js`)) as {
  formatNanos(nanos: number): string;
};

function oracle(chunks: string[]): Message[] {
  const out: Message[] = [];
  const parser = createParser({
    onEvent: (m) => out.push({ event: m.event ?? 'message', data: m.data }),
  });
  for (const chunk of chunks) parser.feed(chunk);
  return out;
}

function pageParser(chunks: string[]): Message[] {
  const out: Message[] = [];
  const parser = createSseParser((m) => out.push(m));
  for (const chunk of chunks) parser.feed(chunk);
  return out;
}

// A stream as the middleware writes it (JSON events, comments), one as a plain-text
// encoder writes it (multi-line data), and the same with CRLF and lone-CR line ends.
const tokens = seededTokens({ seed: 3, tokens: 60 });
const jsonBody = [
  jsonSseEncoder.meta({ requestId: 'r1', model: 'm' }),
  ...tokens.map((text) => jsonSseEncoder.delta({ text })),
  ': ping\n\n',
  jsonSseEncoder.done({ costUsd: 0.000123 }),
].join('');
const plainBody = `${tokens.map((text) => plainSseEncoder.delta({ text })).join('')}data:no-space\nevent: only-event\n\n`;
const BODIES = {
  json: jsonBody,
  plain: plainBody,
  crlf: plainBody.replace(/\n/g, '\r\n'),
  cr: jsonBody.replace(/\n/g, '\r'),
};

describe('demo page: sse.js', () => {
  it.each(Object.entries(BODIES))(
    'parses the %s stream like eventsource-parser, cut anywhere',
    (_name, body) => {
      const whole = oracle([body]);
      expect(whole.length).toBeGreaterThan(20);
      expect(pageParser([body])).toEqual(whole);
      for (let i = 1; i < body.length; i++) {
        expect(pageParser([body.slice(0, i), body.slice(i)])).toEqual(whole);
      }
    },
  );

  it('reassembles the mixed seeded text exactly from JSON deltas in random chunks', () => {
    const text = seededText({ seed: 5, tokens: 200 });
    const body = seededTokens({ seed: 5, tokens: 200 })
      .map((t) => jsonSseEncoder.delta({ text: t }))
      .join('');
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), body.length];
          const chunks = points.slice(1).map((end, i) => body.slice(points[i], end));
          const joined = pageParser(chunks)
            .map((m) => (JSON.parse(m.data) as { text: string }).text)
            .join('');
          expect(joined).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('demo page: format.js', () => {
  it('formats nano-dollars exactly as formatUsd() does', () => {
    for (const nanos of [
      0, 1, 1_234, 123_000, 664_000, 1_500_000_000, 999_999_999, 12_345_678_901_234,
    ]) {
      expect(formatNanos(nanos)).toBe(formatUsd(nanos));
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (nanos) => {
        expect(formatNanos(nanos)).toBe(formatUsd(nanos));
      }),
    );
  });
});
