/** The requests real clients sent, as recorded in `test/fixtures/clients/` (one file a scenario). */
import { readdirSync, readFileSync } from 'node:fs';

const DIR = new URL('../../test/fixtures/clients/', import.meta.url);

/** The names of the recordings (the file names without `.json`), sorted. */
export function recordingNames() {
  return readdirSync(DIR)
    .filter((name) => name.endsWith('.json'))
    .map((name) => name.slice(0, -'.json'.length))
    .sort();
}

/** The POST requests of recording `name`, as recorded (`method`, `path`, `headers`, `body`, …). */
export function recordedRequests(name) {
  const recording = JSON.parse(readFileSync(new URL(`${name}.json`, DIR), 'utf8'));
  return recording.requests.filter((r) => r.method === 'POST');
}

/** The largest JSON body of recording `name` (by its serialised length). */
export function largestRecordedBody(name) {
  return recordedRequests(name)
    .map((r) => r.body)
    .filter((b) => b && typeof b === 'object')
    .reduce((a, b) => (JSON.stringify(b).length > JSON.stringify(a).length ? b : a));
}
