import { REQUEST_SHAPE_LIMITS } from '@tokenmeter/core/providers';
import { describe, expect, it } from 'vitest';
import { ShapeScan } from './body.js';

const { depth: MAX_DEPTH, values: MAX_VALUES } = REQUEST_SHAPE_LIMITS;

/** Depth and values of a parsed value, counted as admission's walk counts them. */
function shapeOf(value: unknown, depth = 0): { depth: number; values: number } {
  if (typeof value !== 'object' || value === null) return { depth: 0, values: 1 };
  let deepest = 0;
  let values = 1;
  for (const child of Object.values(value)) {
    const s = shapeOf(child, depth + 1);
    deepest = Math.max(deepest, s.depth);
    values += s.values;
  }
  return { depth: deepest + 1, values };
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Strings full of what a naive scanner would miscount. */
const TRICKY = ['[', ']', '{', '}', ',', '"', '\\', '\\"', '\\\\', '\\\\"', 'a', ' ', '\n', 'é'];

function generate(rand: () => number, depth: number): unknown {
  const pick = rand();
  if (depth <= 1 || pick < 0.3) {
    if (pick < 0.15) {
      let s = '';
      for (let i = Math.floor(rand() * 8); i > 0; i--)
        s += TRICKY[Math.floor(rand() * TRICKY.length)];
      return s;
    }
    return pick < 0.2 ? null : pick < 0.25 ? true : Math.floor(rand() * 1000);
  }
  const n = Math.floor(rand() * 4);
  const items = Array.from({ length: n }, () => generate(rand, depth - 1));
  if (rand() < 0.5) return items;
  return Object.fromEntries(items.map((item, i) => [`k${TRICKY[i % TRICKY.length]}${i}`, item]));
}

/** Scans `text` cut into pieces at random places: the first problem found, if any. */
function scanInPieces(text: string, rand: () => number): string | undefined {
  const bytes = Buffer.from(text);
  const scan = new ShapeScan();
  let at = 0;
  while (at < bytes.length) {
    const next = Math.min(bytes.length, at + 1 + Math.floor(rand() * 12));
    const problem = scan.scan(bytes.subarray(at, next));
    if (problem) return problem;
    at = next;
  }
  return undefined;
}

const nest = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('ShapeScan', () => {
  it('agrees with a parse on depth and values for generated bodies, however they are cut into chunks', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const rand = random(seed);
      const value = generate(rand, 1 + Math.floor(rand() * 10));
      const text = JSON.stringify(value, null, seed % 3 === 0 ? 2 : undefined);
      const shape = shapeOf(value);
      // Wrapped to just inside and just past the depth limit.
      const inside = `${'['.repeat(MAX_DEPTH - shape.depth)}${text}${']'.repeat(MAX_DEPTH - shape.depth)}`;
      const past = `[${inside}]`;
      expect(scanInPieces(inside, rand), `seed ${seed}`).toBeUndefined();
      expect(scanInPieces(past, rand), `seed ${seed}`).toBe(
        `The request is nested more than ${MAX_DEPTH} levels deep.`,
      );
    }
  });

  it('counts values as admission does: exactly the limit passes, one more is refused', () => {
    // [0,…,0] with n zeros holds n + 1 values; empty containers count once.
    const flat = (n: number) => `[${Array.from({ length: n }, () => '0').join(',')}]`;
    expect(shapeOf(JSON.parse(flat(MAX_VALUES - 1))).values).toBe(MAX_VALUES);
    expect(new ShapeScan().scan(Buffer.from(flat(MAX_VALUES - 1)))).toBeUndefined();
    expect(new ShapeScan().scan(Buffer.from(flat(MAX_VALUES)))).toBe(
      `The request has more than ${MAX_VALUES} values.`,
    );
    const empties = (n: number) => `[${Array.from({ length: n }, () => '[ ]').join(', ')}]`;
    expect(new ShapeScan().scan(Buffer.from(empties(MAX_VALUES - 1)))).toBeUndefined();
    expect(new ShapeScan().scan(Buffer.from(empties(MAX_VALUES)))).toBeDefined();
  });

  it('brackets, quotes and backslashes inside strings are text', () => {
    const text = JSON.stringify({ a: `${nest(200)}"\\"[[[\\\\`, b: '\\', c: '"' });
    expect(scanInPieces(text, random(9))).toBeUndefined();
    for (let cut = 1; cut < text.length; cut++) {
      const scan = new ShapeScan();
      const bytes = Buffer.from(text);
      expect(scan.scan(bytes.subarray(0, cut)) ?? scan.scan(bytes.subarray(cut))).toBeUndefined();
    }
  });
});
