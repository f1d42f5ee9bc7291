// Server-Sent Events framing as the providers write it. Payloads are JSON, whose string
// escaping keeps newlines in model text from ever ending a field or an event.

/** Content type both providers use for streams. */
export const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** `event: <name>` + one `data:` line + blank line (Anthropic style). */
export function sseEvent(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

/** One `data:` line + blank line, no event name (OpenAI style). */
export function sseData(json: string): string {
  return `data: ${json}\n\n`;
}

/** A comment line, ignored by every SSE parser. */
export function sseComment(text: string): string {
  return `: ${text}\n\n`;
}
