import { describe, expect, it } from 'vitest';
import { callerKey, forwarded, nodeHeaders } from './headers.js';

describe('callerKey', () => {
  it('takes x-api-key before a bearer token, wherever each comes in the list', () => {
    expect(
      callerKey([
        ['authorization', 'Bearer b'],
        ['x-api-key', 'k'],
      ]),
    ).toBe('k');
    expect(callerKey(new Headers({ authorization: 'Bearer  tok_1 ' }))).toBe('tok_1');
    expect(
      callerKey([
        ['x-api-key', ''],
        ['authorization', 'Basic abc'],
      ]),
    ).toBeUndefined();
    expect(callerKey(nodeHeaders({ 'x-api-key': ['a', 'b'] }))).toBeUndefined();
  });
});

describe('forwarded', () => {
  it('passes the allowlist (names and prefixes), never credentials or hop-by-hop headers', () => {
    const headers = new Headers({
      'anthropic-version': '2023-06-01',
      'x-trace-id': 't1',
      'x-other': 'no',
      authorization: 'Bearer secret',
      cookie: 'c=1',
      connection: 'keep-alive',
    });
    expect(
      forwarded(headers, ['anthropic-version', 'x-trace-*', 'authorization', 'cookie', 'conn*']),
    ).toEqual({ 'anthropic-version': '2023-06-01', 'x-trace-id': 't1' });
  });
});
