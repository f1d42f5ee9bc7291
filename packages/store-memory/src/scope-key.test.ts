import { describe, expect, it } from 'vitest';
import { scopeKey } from './scope-key.js';

describe('scopeKey', () => {
  it('keeps look-alike scopes apart', () => {
    const keys = [
      { kind: 'a:b', id: 'c' },
      { kind: 'a', id: 'b:c' },
      { kind: 'a', id: 'b:c:' },
      { kind: '1:a', id: 'b' },
      { kind: 'a', id: '' },
      { kind: 'a:', id: '' },
    ].map(scopeKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
