/**
 * A provider's answer as the gateways relay it: the call (the server's key, the caller's
 * allowed headers), its SSE byte stream split into events with each event's bytes kept,
 * and the in-stream encoder that says nothing of tokenmeter's own protocol.
 */
import { encodeComment, type SseEncoder } from '@tokenmeter/core';
import { responseEvents } from '@tokenmeter/core/providers';
import { uncountedFieldTokens } from '@tokenmeter/core/tokens';
import type { RelayItem } from '../protocols.js';
import { ProviderHttpError } from '../upstream-errors.js';

/** The named headers a response has, as a plain record. */
function copied(headers: Headers, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null) out[name] = value;
  }
  return out;
}

/** One parsed SSE event as it came: its bytes, its `event:` name and its JSON data. */
export interface SseBlock {
  wire: string;
  name: string | undefined;
  data: string | undefined;
}

const EVENT_END = /\r\n\r\n|\n\n|\r\r/g;

/**
 * Splits a provider's SSE byte stream into events, keeping each one's bytes: one array per
 * upstream read (the events it completed), so a read of many events is relayed in one write.
 */
export async function* sseBlocks(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseBlock[]> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    const blocks: SseBlock[] = [];
    let start = 0;
    for (;;) {
      EVENT_END.lastIndex = start;
      const match = EVENT_END.exec(buffer);
      if (!match) break;
      const end = match.index + match[0].length;
      blocks.push(parseBlock(buffer.slice(start, end)));
      start = end;
    }
    buffer = buffer.slice(start);
    if (blocks.length > 0) yield blocks;
  }
  buffer += decoder.decode();
  if (buffer.trim() !== '') yield [parseBlock(buffer)];
}

function parseBlock(wire: string): SseBlock {
  let name: string | undefined;
  const data: string[] = [];
  for (const line of wire.split(/\r\n|\n|\r/)) {
    if (line.startsWith('event:')) name = line.slice(6).trimStart();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  return { wire, name, data: data.length > 0 ? data.join('\n') : undefined };
}

/** What a provider answered, ready for the relay: headers, then items. */
export interface RelaySource extends AsyncIterable<RelayItem> {
  headers: Record<string, string>;
}

/** How one provider's stream events are relayed (OpenAI may drop or rewrite some). */
export type RelayFilter = (
  block: SseBlock,
  json: unknown,
) => { wire: string; event: unknown } | undefined;

/** Calls the provider and turns its answer into a relay source, or throws its HTTP error. */
export async function callProvider(options: {
  fetch: typeof fetch;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  stream: boolean;
  signal: AbortSignal;
  /** Response headers passed on to the caller (the provider's request id). */
  passHeaders: readonly string[];
  filter?: RelayFilter;
}): Promise<RelaySource> {
  const response = await options.fetch(options.url, {
    method: 'POST',
    headers: { ...options.headers, 'content-type': 'application/json' },
    body: JSON.stringify(options.body),
    signal: options.signal,
  });
  const headers = copied(response.headers, options.passHeaders);
  if (!response.ok) {
    const text = await response.text();
    throw new ProviderHttpError({
      status: response.status,
      headers: {
        ...headers,
        'content-type': response.headers.get('content-type') ?? 'application/json',
        ...copied(response.headers, ['retry-after', 'x-should-retry']),
      },
      body: text,
    });
  }
  if (!options.stream) {
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return {
      headers,
      async *[Symbol.asyncIterator]() {
        yield { wire: text, events: responseEvents(json) };
      },
    };
  }
  const body = response.body as unknown as AsyncIterable<Uint8Array> | null;
  const filter = options.filter;
  return {
    headers: { ...headers, 'content-type': 'text/event-stream; charset=utf-8' },
    async *[Symbol.asyncIterator]() {
      if (!body) return;
      for await (const blocks of sseBlocks(body)) {
        let wire = '';
        const batch: unknown[] = [];
        for (const block of blocks) {
          let json: unknown;
          if (block.data !== undefined && block.data !== '[DONE]') {
            try {
              json = JSON.parse(block.data);
            } catch {
              json = undefined;
            }
          }
          const item = filter ? filter(block, json) : { wire: block.wire, event: json };
          if (!item) continue;
          wire += item.wire;
          if (item.event !== undefined) batch.push(item.event);
        }
        yield { wire, batch };
      }
    },
  };
}

/**
 * The in-stream encoder of a gateway: nothing of tokenmeter's own protocol (the provider's
 * events are relayed as they came), keep-alive comments, and an early end as the provider's
 * own error event, `errorEvent(code, message)`.
 */
export function providerEncoder(errorEvent: (code: string, message: string) => string): SseEncoder {
  return {
    meta: () => '',
    delta: () => '',
    usage: () => '',
    done: () => '',
    error: (data) => {
      const d = data as { code?: string; message?: string };
      return errorEvent(d.code ?? 'internal_error', d.message ?? 'The stream ended early.');
    },
    comment: (text) => encodeComment(text),
  };
}

/**
 * A provider's own count of a request's input tokens, where it is free (Anthropic's
 * count_tokens, the Responses API's input_tokens): the fields it takes are sent, and the
 * bytes of those it does not take (they may still be read into the prompt) are added.
 */
export async function providerCount(options: {
  fetch: typeof fetch;
  url: string;
  /** The caller's allowed headers and the server's key, as the provider wants them. */
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** The fields the count endpoint takes. */
  fields: readonly string[];
  signal: AbortSignal;
}): Promise<number> {
  const { body, fields } = options;
  const counted: Record<string, unknown> = {};
  for (const field of fields) {
    if (body[field] !== undefined && body[field] !== null) counted[field] = body[field];
  }
  const response = await options.fetch(options.url, {
    method: 'POST',
    headers: { ...options.headers, 'content-type': 'application/json' },
    body: JSON.stringify(counted),
    signal: options.signal,
  });
  const text = await response.text();
  const name = new URL(options.url).pathname;
  if (!response.ok) throw new Error(`${name} answered ${response.status}: ${text.slice(0, 200)}`);
  const tokens = (JSON.parse(text) as { input_tokens?: unknown }).input_tokens;
  if (typeof tokens !== 'number' || !Number.isSafeInteger(tokens) || tokens < 0) {
    throw new Error(`${name} answered without a valid input_tokens`);
  }
  return tokens + uncountedFieldTokens(body, fields);
}
