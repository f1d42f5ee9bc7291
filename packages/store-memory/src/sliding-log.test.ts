import { describe, expect, it } from 'vitest';
import { SlidingLog } from './sliding-log.js';

describe('SlidingLog', () => {
  it('counts an entry while now - t < windowMs, and not at t + windowMs', () => {
    const log = new SlidingLog(1_000);
    log.add(0, 3);
    expect(log.used(999)).toBe(3);
    expect(log.used(1_000)).toBe(0);
  });

  it('ignores corrections to entries that already left the window', () => {
    const log = new SlidingLog(1_000);
    const old = log.add(0, 5);
    log.add(500, 7);
    expect(log.used(1_200)).toBe(7);
    log.set(old, 50);
    expect(log.used(1_200)).toBe(7);
  });

  it('computes retry-after from the entries that must leave, or null when the need exceeds the limit', () => {
    const log = new SlidingLog(1_000);
    log.add(0, 4);
    log.add(100, 4);
    log.add(200, 2);
    // limit 10, used 10: need 3 → used must drop to 7 → once the first entry leaves (t=0).
    expect(log.retryAfter(300, 3, 10)).toBe(0 + 1_000 - 300);
    // need 5 → used must drop to 5 → once the first two leave (t=100).
    expect(log.retryAfter(300, 5, 10)).toBe(100 + 1_000 - 300);
    expect(log.retryAfter(300, 11, 10)).toBeNull();
    expect(log.retryAfter(1_250, 3, 10)).toBe(0);
  });

  it('reports resetMs from the newest non-zero entry', () => {
    const log = new SlidingLog(1_000);
    log.add(0, 1);
    const last = log.add(400, 1);
    expect(log.resetMs(500)).toBe(900);
    log.set(last, 0);
    expect(log.resetMs(500)).toBe(500);
    expect(log.resetMs(1_000)).toBe(0);
  });

  it('stays exact across compaction of a long log', () => {
    const log = new SlidingLog(10_000);
    for (let t = 0; t < 50_000; t++) log.add(t, 1);
    expect(log.used(49_999)).toBe(10_000);
    expect(log.used(55_000)).toBe(4_999);
    expect(log.retryAfter(55_000, 1, 4_999)).toBe(45_000 + 10_000 - 55_000 + 1);
  });
});
