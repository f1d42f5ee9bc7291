/**
 * A hand-driven clock for store tests: stores take their time from it, the test moves it,
 * so window edges and period boundaries can be hit to the millisecond.
 */
import { TokenmeterError } from '../errors.js';
import type { TestClock } from './types.js';

/**
 * Creates a clock standing at `startMs` that moves only when told.
 *
 * @example
 * const clock = createTestClock(Date.UTC(2026, 0, 1));
 * const store = createMemoryStore({ clock });
 * clock.advance(60_000);
 */
export function createTestClock(startMs: number = Date.UTC(2026, 0, 1)): TestClock {
  assertTime(startMs, 'startMs');
  let current = startMs;
  return {
    now: () => current,
    advance(ms: number) {
      assertTime(ms, 'advance(ms)');
      if (ms < 0) {
        throw new TokenmeterError('invalid_argument', 'A test clock only moves forward.');
      }
      current += ms;
      return current;
    },
    set(ms: number) {
      assertTime(ms, 'set(ms)');
      if (ms < current) {
        throw new TokenmeterError(
          'invalid_argument',
          `A test clock only moves forward: ${ms} is before ${current}. Start a new clock instead.`,
        );
      }
      current = ms;
    },
  };
}

function assertTime(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) {
    throw new TokenmeterError('invalid_argument', `${what} must be an integer number of ms.`);
  }
}
