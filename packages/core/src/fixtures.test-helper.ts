/** Test-only helpers: reading the recorded provider streams in `__fixtures__/*.sse`. */
import { readFileSync } from 'node:fs';
import { createParser } from 'eventsource-parser';

/** Parses a recorded `.sse` fixture into its JSON payloads, as a provider client would. */
export function readFixture(name: string): unknown[] {
  const text = readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');
  const out: unknown[] = [];
  const parser = createParser({
    onEvent(event) {
      if (event.data !== '[DONE]') out.push(JSON.parse(event.data));
    },
  });
  parser.feed(text);
  return out;
}
