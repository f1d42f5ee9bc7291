/** Test helper: reads an SSE response with Node's fetch and an independent parser. */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface ParsedEvent {
  event: string;
  data: string;
  /** JSON.parse(data) when it parses. */
  json: unknown;
  /** performance.now() when the event was parsed. */
  at: number;
}

export interface SseResult {
  status: number;
  headers: Headers;
  events: ParsedEvent[];
  /** Concatenated `delta` texts. */
  text: string;
  /** For non-SSE responses: the parsed JSON body. */
  body?: unknown;
  comments: string[];
}

export interface PostOptions {
  headers?: Record<string, string>;
  /** Abort the request when this returns true (checked after every event). */
  abortWhen?: (event: ParsedEvent, all: ParsedEvent[]) => boolean;
  signal?: AbortSignal;
}

export async function postSSE(
  url: string,
  body: unknown,
  options: PostOptions = {},
): Promise<SseResult> {
  const controller = new AbortController();
  options.signal?.addEventListener('abort', () => controller.abort());
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: controller.signal,
  });
  const result: SseResult = {
    status: response.status,
    headers: response.headers,
    events: [],
    text: '',
    comments: [],
  };
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const raw = await response.text();
    try {
      result.body = JSON.parse(raw);
    } catch {
      result.body = raw;
    }
    return result;
  }
  let aborted = false;
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      // After aborting, events still buffered in the same chunk are not "received".
      if (aborted) return;
      let json: unknown;
      try {
        json = JSON.parse(message.data);
      } catch {
        json = undefined;
      }
      const event: ParsedEvent = {
        event: message.event ?? 'message',
        data: message.data,
        json,
        at: performance.now(),
      };
      result.events.push(event);
      if (event.event === 'delta') result.text += (json as { text: string }).text;
      if (!aborted && options.abortWhen?.(event, result.events)) {
        aborted = true;
        controller.abort();
      }
    },
    onComment(comment) {
      result.comments.push(comment);
    },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (aborted) break;
    }
  } catch (error) {
    if (!aborted) throw error;
  }
  return result;
}

/** The data of the first event named `name`, parsed. */
export function eventData<T = Record<string, unknown>>(result: SseResult, name: string): T {
  const found = result.events.find((e) => e.event === name);
  if (!found)
    throw new Error(`no "${name}" event in ${result.events.map((e) => e.event).join(',')}`);
  return found.json as T;
}
