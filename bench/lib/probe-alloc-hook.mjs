/**
 * Loaded into a variant by `probe-per-stream.mjs --alloc` (`node --import`): between two
 * SIGUSR2 signals, V8's sampling heap profiler records every allocation sampled (including
 * objects the GC has since collected), and at the second writes the profile to
 * `PROBE_ALLOC_FILE` (a `.heapprofile`, readable by Chrome DevTools). With
 * `PROBE_ALLOC_SURVIVORS=1`, objects the young-generation GC collected are left out: what is
 * left is what lived long enough to be promoted (or still lives), which is what makes the
 * young-generation GC copy and the old generation grow.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((resolve, reject) =>
    session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
  );
let sampling = false;
process.on('SIGUSR2', async () => {
  if (!sampling) {
    sampling = true;
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: process.env.PROBE_ALLOC_SURVIVORS !== '1',
    });
    return;
  }
  sampling = false;
  const { profile } = await post('HeapProfiler.stopSampling');
  writeFileSync(process.env.PROBE_ALLOC_FILE, JSON.stringify(profile));
  process.stderr.write('PROBE_ALLOC written\n');
});
