/** Test helper: parses an SSE body (a string) with eventsource-parser, independent of the page's parser. */
import { createParser } from 'eventsource-parser';

export interface SseEvent {
  event: string;
  data: string;
  json: Record<string, unknown>;
}

export function parseSse(body: string): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createParser({
    onEvent(message) {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(message.data);
      } catch {
        // Left empty: the assertions on `data` will say what arrived.
      }
      events.push({ event: message.event ?? 'message', data: message.data, json });
    },
  });
  parser.feed(body);
  return events;
}

/** Concatenated `delta` texts. */
export function textOf(events: SseEvent[]): string {
  return events
    .filter((e) => e.event === 'delta')
    .map((e) => String(e.json.text))
    .join('');
}

export function eventOf(events: SseEvent[], name: string): Record<string, unknown> {
  const found = events.find((e) => e.event === name);
  if (!found) throw new Error(`no "${name}" event in ${events.map((e) => e.event).join(',')}`);
  return found.json;
}

/** POSTs JSON and reads the whole answer: SSE events, or the JSON error body. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; events: SseEvent[]; json: unknown; raw: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const raw = await response.text();
  const isSse = response.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
  let json: unknown;
  if (!isSse) {
    try {
      json = JSON.parse(raw);
    } catch {
      json = undefined;
    }
  }
  return {
    status: response.status,
    headers: response.headers,
    events: isSse ? parseSse(raw) : [],
    json,
    raw,
  };
}
