/**
 * Loaded into a variant by `probe-per-stream.mjs --count` (`node --import`): counts the async
 * resources the process creates (promises, timers, ticks…) between two SIGUSR2 signals and
 * prints the tally to stderr as `PROBE {json}` at the second.
 */
import { createHook } from 'node:async_hooks';

const tally = {};
let counting = false;
createHook({
  init(_id, type) {
    if (counting) tally[type] = (tally[type] ?? 0) + 1;
  },
}).enable();
process.on('SIGUSR2', () => {
  counting = !counting;
  if (!counting) process.stderr.write(`PROBE ${JSON.stringify(tally)}\n`);
});
