import { describe, expect, it } from 'vitest';
import { TokenmeterError } from '../errors.js';
import { assertAdmitRequest, assertStore } from './validate.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return TokenmeterError.isInstance(error) ? error.code : 'other';
  }
}

describe('assertStore', () => {
  it('names every missing method and how to fix it', () => {
    expect(() => assertStore({ admit() {}, now() {} })).toThrow(
      /missing settle, extend, release, getState.*runStoreConformance/,
    );
    expect(codeOf(() => assertStore(null))).toBe('invalid_config');
    expect(codeOf(() => assertStore({ ...complete(), shutdown: 1 }))).toBe('invalid_config');
    expect(codeOf(() => assertStore({ ...complete(), releaseByKey: 'x' }))).toBe('invalid_config');
    expect(assertStore({ ...complete(), releaseByKey: () => Promise.resolve() })).toBeTruthy();
    expect(assertStore(complete())).toBeTruthy();
  });
});

describe('assertAdmitRequest', () => {
  const valid = { scope: { kind: 'user', id: '' }, reserveNanos: 0, estimatedTokens: 0, ttlMs: 1 };

  it('accepts an empty id and zero amounts', () => {
    expect(assertAdmitRequest(valid)).toBe(valid);
  });

  it('reports money mistakes as invalid_argument, not money_out_of_range', () => {
    expect(codeOf(() => assertAdmitRequest({ ...valid, reserveNanos: Number.NaN }))).toBe(
      'invalid_argument',
    );
    expect(() => assertAdmitRequest({ ...valid, reserveNanos: 0.5 })).toThrow(/usd\('1.50'\)/);
  });

  it('accepts a requestKey of 1 to 200 characters and nothing else', () => {
    expect(assertAdmitRequest({ ...valid, requestKey: 'k' })).toBeTruthy();
    expect(assertAdmitRequest({ ...valid, requestKey: 'x'.repeat(200) })).toBeTruthy();
    for (const requestKey of ['', 'x'.repeat(201), 42, null]) {
      expect(codeOf(() => assertAdmitRequest({ ...valid, requestKey: requestKey as string }))).toBe(
        'invalid_argument',
      );
    }
  });
});

function complete() {
  const method = () => Promise.resolve();
  return {
    admit: method,
    settle: method,
    extend: method,
    release: method,
    getState: method,
    now: method,
  };
}
