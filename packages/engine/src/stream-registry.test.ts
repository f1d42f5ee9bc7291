import { afterEach, describe, expect, it, vi } from 'vitest';
import { StreamRegistry } from './registry.js';
import type { Transport } from './transport.js';

/** Only what the registry reads of a transport: whether it finished (or was destroyed). */
function response() {
  const transport = {
    finished: false,
    destroy: vi.fn(() => {
      transport.finished = true;
    }),
  };
  return transport;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('StreamRegistry: ended responses the client has not taken', () => {
  it('destroys one still unfinished at its deadline, leaves one that finished, then stops its timer', async () => {
    vi.useFakeTimers();
    const registry = new StreamRegistry(50);
    const unread = response();
    const taken = response();
    const now = performance.now();
    registry.destroyUnlessFinished(unread as unknown as Transport, now + 1_000);
    registry.destroyUnlessFinished(taken as unknown as Transport, now + 1_000);
    // One timer for both, however many responses wait.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(200);
    taken.finished = true;
    await vi.advanceTimersByTimeAsync(700);
    expect(unread.destroy).not.toHaveBeenCalled();
    // Checked by the shared tick: at the deadline, within one tick (50 ms here).
    await vi.advanceTimersByTimeAsync(150);
    expect(unread.destroy).toHaveBeenCalledTimes(1);
    expect(taken.destroy).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(0);
    expect(registry.size).toBe(0);
  });

  it('forgets a response destroyed by someone else (the client left) without touching it', async () => {
    vi.useFakeTimers();
    const registry = new StreamRegistry(50);
    const gone = response();
    registry.destroyUnlessFinished(gone as unknown as Transport, performance.now() + 500);
    gone.finished = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(gone.destroy).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});
