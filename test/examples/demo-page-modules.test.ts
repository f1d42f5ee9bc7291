/**
 * The demo page's own modules, run in Node: its SSE parser against eventsource-parser on
 * adversarial streams cut at every position (CRLF and lone CR line ends, multi-line data,
 * comments), its money formatting against formatUsd() from @tokenmeter/core, and its spend
 * charts (exact amounts on every bar, heights in proportion, text escaped).
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
interface DaySpend {
  date: string;
  costNanos: number;
  streams: number;
}
interface ModelSpend {
  model: string;
  costNanos: number;
  streams: number;
}
const { dailyChart, modelChart } = (await import(`${EXAMPLES_DIR}demo/public/charts.js`)) as {
  dailyChart(days: DaySpend[], size?: { width?: number; height?: number }): string;
  modelChart(models: ModelSpend[], size?: { width?: number }): string;
};

/** The bars of a chart: their attributes, as the browser would read them. */
function barsOf(svg: string): Array<Record<string, string>> {
  return [...svg.matchAll(/<rect ([^>]*)>/g)].map(([, attrs]) =>
    Object.fromEntries([...attrs!.matchAll(/([\w-]+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!])),
  );
}

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
  jsonSseEncoder.meta({
    requestId: 'r1',
    model: 'm',
    maxTokens: 100,
    inputTokens: 5,
    reservedUsd: 0.0005,
    reservedInputTokens: 5,
    reservedOutputTokens: 100,
    budget: null,
  }),
  ...tokens.map((text) => jsonSseEncoder.delta({ text })),
  ': ping\n\n',
  jsonSseEncoder.done({
    stopReason: 'end_turn',
    usage: {
      inputTokens: 5,
      outputTokens: 60,
      uncachedInputTokens: 5,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    },
    costUsd: 0.000123,
    costNanos: 123_000,
    estimated: false,
    budget: null,
  }),
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

describe('demo page: charts.js', () => {
  const days: DaySpend[] = [
    { date: '2026-11-30', costNanos: 0, streams: 0 },
    { date: '2026-12-01', costNanos: 2_500_000, streams: 2 },
    { date: '2026-12-02', costNanos: 1, streams: 1 },
    { date: '2026-12-03', costNanos: 10_000_001, streams: 7 },
  ];

  it('draws one column per day with its exact nano-dollars, heights in proportion', () => {
    const svg = dailyChart(days, { width: 400, height: 180 });
    const bars = barsOf(svg);
    expect(
      bars.map((b) => [b['data-date'], Number(b['data-nanos']), Number(b['data-streams'])]),
    ).toEqual(days.map((d) => [d.date, d.costNanos, d.streams]));
    // Plot height = 180 - 22 (top) - 22 (bottom) = 136: the largest day fills it.
    const heights = bars.map((b) => Number(b.height));
    expect(heights[3]).toBe(136);
    expect(heights[0]).toBe(0);
    expect(heights[1]).toBeCloseTo((2_500_000 / 10_000_001) * 136, 1);
    expect(heights[2]).toBeGreaterThanOrEqual(0);
    expect(heights[2]).toBeLessThan(0.01);
    // Every column stands on the same baseline.
    for (const b of bars) expect(Number(b.y) + Number(b.height)).toBeCloseTo(158, 1);
    expect(bars[0]!.class).toBe('bar zero');
    expect(svg).toContain(`<title>2026-12-03: ${formatUsd(10_000_001)} · 7 streams</title>`);
    expect(svg).toContain(`<title>2026-12-02: ${formatUsd(1)} · 1 stream</title>`);
    expect(svg).toContain(`max ${formatUsd(10_000_001)} a day`);
  });

  it('says so when there is no spend, with every day still listed at 0', () => {
    const quiet = days.map((d) => ({ ...d, costNanos: 0, streams: 0 }));
    const svg = dailyChart(quiet);
    expect(barsOf(svg).map((b) => Number(b.height))).toEqual([0, 0, 0, 0]);
    expect(svg).toContain('no spend yet');
    expect(modelChart([])).toContain('no spend in this period');
  });

  it('draws one bar per model, lengths in proportion, model names escaped', () => {
    const models: ModelSpend[] = [
      { model: 'claude-opus-4-6', costNanos: 9_000_000, streams: 1 },
      { model: 'claude-haiku-4-5', costNanos: 3_000_000, streams: 4 },
      { model: '<img src=x onerror=alert(1)>&"', costNanos: 0, streams: 1 },
    ];
    const svg = modelChart(models, { width: 560 });
    const bars = barsOf(svg);
    expect(bars.map((b) => Number(b['data-nanos']))).toEqual([9_000_000, 3_000_000, 0]);
    // Bar space = 560 - 170 (labels) - 110 (amounts) = 280.
    expect(bars.map((b) => Number(b.width))).toEqual([280, 93.33, 0]);
    expect(svg).not.toContain('<img');
    expect(svg).toContain('&lt;img src=x onerror=alert(1)&gt;&amp;&quot;');
    expect(svg).toContain(`>${formatUsd(3_000_000)}</text>`);
  });
});
