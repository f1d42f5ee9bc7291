/**
 * Key names without Redis: scope tags are fixed-size, base64url (no brace, colon or
 * glob character can reach a key), and distinct for distinct scopes, including the
 * classic `kind:id` look-alikes and lone surrogates; reservation ids parse back exactly
 * and nothing else parses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeScope,
  encodeScope,
  parseReservationId,
  reservationId,
  scopeKeys,
  scopeRedisKey,
  scopeTag,
} from './keys.js';

const TAG = /^[A-Za-z0-9_-]{43}$/;
const anyString = fc.string({ unit: 'binary', maxLength: 40 });

describe('scope tags', () => {
  it('are 43 base64url characters whatever the scope holds', () => {
    fc.assert(
      fc.property(anyString, anyString, (kind, id) => {
        expect(scopeTag({ kind, id })).toMatch(TAG);
      }),
    );
    expect(scopeTag({ kind: 'user', id: 'x'.repeat(10_240) })).toMatch(TAG);
  });

  it('differ for look-alike scopes', () => {
    const scopes = [
      { kind: 'a:b', id: 'c' },
      { kind: 'a', id: 'b:c' },
      { kind: 'a:', id: 'b:c' },
      { kind: 'a', id: ':b:c' },
      { kind: 'ab', id: 'c' },
      { kind: 'a', id: 'bc' },
      { kind: '1:a', id: '' },
      { kind: 'user', id: '\uD800' },
      { kind: 'user', id: '\uDBFF' },
      { kind: 'user', id: '\uFFFD' },
      { kind: 'user', id: '\u0000' },
      { kind: 'user', id: '' },
    ];
    const tags = new Set(scopes.map(scopeTag));
    expect(tags.size).toBe(scopes.length);
  });

  it('are equal exactly when the scopes are equal', () => {
    fc.assert(
      fc.property(anyString, anyString, anyString, anyString, (k1, i1, k2, i2) => {
        const same = k1 === k2 && i1 === i2;
        expect(scopeTag({ kind: k1, id: i1 }) === scopeTag({ kind: k2, id: i2 })).toBe(same);
      }),
      { numRuns: 500 },
    );
  });

  it('name every key of a scope under one hash tag after the prefix', () => {
    const { base, index } = scopeKeys('app:', scopeTag({ kind: 'user', id: '{evil}:*' }));
    expect(base).toMatch(/^app:\{[A-Za-z0-9_-]{43}\}$/);
    expect(index).toBe(`${base}:x`);
    expect(scopeRedisKey({ kind: 'user', id: '{evil}:*' }, 'app:')).toBe(base);
    expect(() => scopeRedisKey({ kind: '', id: 'x' })).toThrow(/non-empty kind/);
  });
});

describe('stored scopes', () => {
  it('round-trip exactly, lone surrogates included', () => {
    fc.assert(
      fc.property(anyString, anyString, (kind, id) => {
        const blob = encodeScope({ kind, id });
        // What Redis stores and returns is UTF-8: the blob must survive that unchanged.
        expect(Buffer.from(blob, 'utf8').toString('utf8')).toBe(blob);
        expect(decodeScope(blob)).toEqual({ kind, id });
      }),
    );
    expect(decodeScope(encodeScope({ kind: 'u', id: '\uD800x' }))).toEqual({
      kind: 'u',
      id: '\uD800x',
    });
  });
});

describe('reservation ids', () => {
  const tag = scopeTag({ kind: 'user', id: 'u1' });

  it('parse back to the tag and number they were made from', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(parseReservationId(reservationId(tag, n))).toEqual({ tag, sequence: String(n) });
      }),
    );
  });

  it('reject anything the store did not issue', () => {
    for (const id of [
      '',
      'never-issued-reservation-id',
      tag,
      `${tag}.`,
      `${tag}.0`,
      `${tag}.01`,
      `${tag}.1\n`,
      `${tag}.1:x`,
      `${tag}.1 `,
      ` ${tag}.1`,
      `${tag}x.1`,
      `${tag.slice(1)}.1`,
      `${tag}.12345678901234567`,
      `{${tag}}.1`,
      `${tag.slice(0, 42)}}.1`,
    ]) {
      expect(parseReservationId(id), JSON.stringify(id)).toBeUndefined();
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (id) => {
        const parsed = parseReservationId(id);
        if (parsed) expect(reservationId(parsed.tag, Number(parsed.sequence))).toBe(id);
      }),
    );
  });
});
