import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlidingLog } from './sliding-log.js';

/** The log as plain objects, the obvious way: what the typed-array log must answer alike. */
class ReferenceLog {
  private entries: Array<{ t: number; n: number }> = [];
  constructor(private readonly windowMs: number) {}
  private live(now: number) {
    return this.entries.filter((e) => now - e.t < this.windowMs);
  }
  add(now: number, n: number) {
    const entry = { t: now, n };
    this.entries.push(entry);
    return entry;
  }
  used(now: number) {
    return this.live(now).reduce((sum, e) => sum + e.n, 0);
  }
  retryAfter(now: number, need: number, limit: number) {
    const target = limit - Math.max(need, 1);
    if (target < 0) return null;
    let remaining = this.used(now);
    if (remaining <= target) return 0;
    for (const e of this.live(now)) {
      remaining -= e.n;
      if (remaining <= target) return e.t + this.windowMs - now;
    }
    return null;
  }
  resetMs(now: number) {
    const counted = this.live(now).filter((e) => e.n > 0);
    const last = counted[counted.length - 1];
    return last ? last.t + this.windowMs - now : 0;
  }
}

type Step =
  | { op: 'add'; dt: number; n: number }
  | { op: 'set'; pick: number; n: number }
  | { op: 'grow'; pick: number; by: number }
  | { op: 'ask'; dt: number; need: number; limit: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant('add' as const),
    dt: fc.integer({ min: 0, max: 40 }),
    n: fc.integer({ min: 0, max: 5_000 }),
  }),
  fc.record({
    op: fc.constant('set' as const),
    pick: fc.nat(),
    n: fc.integer({ min: 0, max: 5_000 }),
  }),
  fc.record({
    op: fc.constant('grow' as const),
    pick: fc.nat(),
    by: fc.integer({ min: -3_000, max: 3_000 }),
  }),
  fc.record({
    op: fc.constant('ask' as const),
    dt: fc.integer({ min: 0, max: 300 }),
    need: fc.integer({ min: 0, max: 6_000 }),
    limit: fc.integer({ min: 0, max: 60_000 }),
  }),
);

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

  it('answers as a log of plain objects would, through growth, compaction and emptying', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.array(step, { minLength: 1, maxLength: 400 }),
        (windowMs, steps) => {
          const log = new SlidingLog(windowMs);
          const reference = new ReferenceLog(windowMs);
          const made: Array<{ handle: number; entry: { t: number; n: number } }> = [];
          let now = 0;
          for (const s of steps) {
            if (s.op === 'add') {
              now += s.dt;
              made.push({ handle: log.add(now, s.n), entry: reference.add(now, s.n) });
            } else if (s.op === 'set' || s.op === 'grow') {
              const pick = made[s.pick % Math.max(made.length, 1)];
              if (!pick) continue;
              // An entry keeps its amount until pruned; pruned only once out of the window,
              // after which nothing set to it counts.
              const inWindow = now - pick.entry.t < windowMs;
              const amount = log.amount(pick.handle);
              if (inWindow) expect(amount).toBe(pick.entry.n);
              if (amount === undefined) continue;
              expect(amount).toBe(pick.entry.n);
              const n = s.op === 'set' ? s.n : Math.max(0, amount + s.by);
              log.set(pick.handle, n);
              pick.entry.n = n;
            } else {
              now += s.dt;
              expect(log.used(now)).toBe(reference.used(now));
              expect(log.retryAfter(now, s.need, s.limit)).toBe(
                reference.retryAfter(now, s.need, s.limit),
              );
              expect(log.resetMs(now)).toBe(reference.resetMs(now));
            }
          }
          expect(log.used(now)).toBe(reference.used(now));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps handles valid across compaction and growth, and shrinks once emptied', () => {
    const log = new SlidingLog(100);
    const handles: number[] = [];
    // 3,000 entries within one window: the array grows past the shrink size.
    for (let i = 0; i < 3_000; i++) handles.push(log.add(0, 1));
    log.set(handles[0] as number, 10);
    log.set(handles[2_999] as number, 0);
    expect(log.used(99)).toBe(3_000 + 9 - 1);
    // All gone (pruned by the read); new entries start over in a small array, and an old
    // handle never aliases a new entry.
    expect(log.used(150)).toBe(0);
    const fresh = log.add(200, 7);
    expect(log.amount(handles[0] as number)).toBeUndefined();
    log.set(handles[0] as number, 1_000);
    expect(log.used(200)).toBe(7);
    expect(log.amount(fresh)).toBe(7);
  });
});
