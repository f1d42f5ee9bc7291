import { describe, expect, it } from 'vitest';
import { Watchdog, type WatchdogFacts } from './watchdog.js';

const LIMITS = {
  totalTimeoutMs: 600_000,
  handoverTimeoutMs: 30_000,
  stallTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveMs: 15_000,
  usageIntervalMs: 250,
};

/** A stream reading its provider, handed over, headers sent, nothing queued. */
const streaming: WatchdogFacts = {
  handedOver: true,
  chunks: 0,
  writes: 0,
  reading: true,
  waitingForClient: false,
  stalledForMs: 0,
  wholeBody: false,
  headersSent: true,
  full: false,
};

describe('Watchdog: what a tick decides, in plain numbers', () => {
  it('the total timeout first, whatever else holds', () => {
    const dog = new Watchdog(LIMITS, 1_000);
    expect(dog.check(1_000 + 599_999, { ...streaming, chunks: 1 })).toBeUndefined();
    expect(dog.check(1_000 + 600_000, { ...streaming, chunks: 2, handedOver: false })).toBe(
      'timeout',
    );
  });

  it('a handler that never hands a stream over, at the handover deadline', () => {
    const dog = new Watchdog(LIMITS, 0);
    expect(dog.check(29_999, { ...streaming, handedOver: false, reading: false })).toBeUndefined();
    expect(dog.check(30_000, { ...streaming, handedOver: false, reading: false })).toBe('handover');
    expect(new Watchdog(LIMITS, 0).check(30_000, streaming)).toBeUndefined();
  });

  it('an idle provider: no new chunk for idleTimeoutMs while reading', () => {
    const dog = new Watchdog(LIMITS, 0);
    expect(dog.check(10_000, { ...streaming, chunks: 5, writes: 5 })).toBeUndefined();
    // Progress at 10 s: idle counts from there.
    expect(dog.check(69_999, { ...streaming, chunks: 5, writes: 6 })).toBeUndefined();
    expect(dog.check(70_000, { ...streaming, chunks: 5, writes: 7 })).toBe('idle');
    // Not reading (before the source resolved, after its end): never idle.
    expect(
      dog.check(70_000, { ...streaming, chunks: 5, writes: 8, reading: false }),
    ).toBeUndefined();
  });

  it('the idle clock starts when reading starts, not at admission', () => {
    const dog = new Watchdog(LIMITS, 0);
    // The first tick takes the counters as they are (progress, by definition).
    expect(dog.check(1_000, { ...streaming, reading: false })).toBeUndefined();
    dog.readingFrom(50_000);
    expect(dog.check(109_999, { ...streaming, writes: 1 })).toBeUndefined();
    expect(dog.check(110_000, { ...streaming, writes: 2 })).toBe('idle');
  });

  it('a client that reads nothing: stalled after stallTimeoutMs, and never idle meanwhile', () => {
    const dog = new Watchdog(LIMITS, 0);
    const waiting = { ...streaming, waitingForClient: true, writes: 1 };
    expect(dog.check(61_000, { ...waiting, stalledForMs: 29_999 })).toBeUndefined();
    expect(dog.check(62_000, { ...waiting, stalledForMs: 30_000 })).toBe('stalled');
    // Waiting counted as progress for the provider: once the client reads again, idle
    // counts from the last wait, not from the last chunk.
    expect(dog.check(62_001, { ...streaming, writes: 2 })).toBeUndefined();
  });

  it('a whole-body answer is bounded by the total timeout only: no idle, no keep-alive', () => {
    const dog = new Watchdog(LIMITS, 0);
    expect(dog.check(500_000, { ...streaming, wholeBody: true })).toBeUndefined();
  });

  it('a keep-alive after keepAliveMs without a write, only when headers went out and nothing is queued', () => {
    const dog = new Watchdog(LIMITS, 0);
    expect(
      dog.check(14_999, { ...streaming, chunks: 1, writes: 1, reading: false }),
    ).toBeUndefined();
    // Writes last seen at the first tick (1 ms): a ping is due 15 s later, not before.
    const quiet = { ...streaming, chunks: 1, writes: 0, reading: false };
    const ticked = () => {
      const d = new Watchdog(LIMITS, 0);
      d.check(1, quiet);
      return d;
    };
    expect(ticked().check(15_000, quiet)).toBeUndefined();
    expect(ticked().check(15_001, quiet)).toBe('ping');
    expect(ticked().check(15_001, { ...quiet, headersSent: false })).toBeUndefined();
    expect(ticked().check(15_001, { ...quiet, full: true })).toBeUndefined();
    // A write at 14,999 resets the count: no ping at 15,000 for that one.
    expect(
      dog.check(15_000, { ...streaming, chunks: 1, writes: 1, reading: false }),
    ).toBeUndefined();
  });

  it('a usage event is due every usageIntervalMs', () => {
    const dog = new Watchdog(LIMITS, 0);
    dog.check(249, streaming);
    expect(dog.usageDue).toBe(false);
    dog.check(250, streaming);
    expect(dog.usageDue).toBe(true);
    dog.usageDue = false;
    dog.check(400, streaming);
    expect(dog.usageDue).toBe(false);
    dog.check(500, streaming);
    expect(dog.usageDue).toBe(true);
  });
});
