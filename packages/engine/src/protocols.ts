/**
 * The wire protocols, behind one interface (`WireProtocol`): how a request is refused, how
 * its stream opens, how each chunk reaches the client, and the answer when a stream ends
 * before any header. Two of them: tokenmeter's own SSE events (`meta`, `delta`,
 * `reasoning`, tool calls and paced `usage`, in the route's encoder — the JSON protocol or
 * the AI SDK's UI message stream), and a provider's events relayed as their bytes came (the
 * gateways, in `gateway/wire.ts`). Both meter every event on the way; the read loop, the
 * lease and the end are the stream's, the same for both.
 */
import { type MeterEvent, nanosToUsd, type SseEncoder, type StreamOutcome } from '@tokenmeter/core';
import type { StreamMeter } from '@tokenmeter/core/meter';
import { createEventTranslator, promptTokens } from '@tokenmeter/core/providers';
import type { Admission } from './admission-result.js';
import type { StreamTrace } from './events.js';
import { sendJsonError } from './http-errors.js';
import type { Lease } from './lease.js';
import { budgetJson } from './settlement.js';
import type { Transport } from './transport.js';
import type { UpstreamFailure } from './upstream-errors.js';
import type { Watchdog } from './watchdog.js';

/**
 * One item of a relayed source (gateways): the bytes to send as they came, and what they
 * mean to the meter — provider events to translate (`event`, or `batch`: every event of
 * one upstream read, whose bytes `wire` holds together, sent in one write), or events
 * already normalised.
 */
export interface RelayItem {
  wire: string;
  event?: unknown;
  batch?: readonly unknown[];
  events?: readonly MeterEvent[];
}

/** The shape of an Anthropic `content_block_delta` with text, read without translation. */
interface AnthropicTextDelta {
  type?: unknown;
  delta?: { type?: unknown; text?: unknown };
}

/** Writes one chunk of a source to the client. */
export interface ChunkWriter {
  /** Meters and writes a chunk; false when the client must read before the next. */
  write(raw: unknown): boolean;
  /** Writes a usage event if one is due (after the chunk's checks); absent in a relay. */
  usage?(): void;
}

/** What a writer works with: the stream's meter, response, trace and clocks. */
export interface WriterParts {
  meter: StreamMeter;
  transport: Transport;
  trace: StreamTrace;
  encoder: SseEncoder;
  lease: Lease;
  watchdog: Watchdog;
  /** `usageIntervalMs` 0: a usage event after every chunk. */
  everyChunk: boolean;
}

/** Answer text or thinking: what makes a provider chunk an output chunk (telemetry's `chunk()`). */
function isOutput(event: MeterEvent): boolean {
  return event.type === 'text' || event.type === 'thinking';
}

/** tokenmeter's protocol: events in the route's encoder, with paced usage estimates. */
export function sseWriter(parts: WriterParts): ChunkWriter {
  const { meter, transport, encoder, lease, watchdog, everyChunk } = parts;
  const content = parts.trace.recordsContent ? parts.trace : undefined;
  const chunks = parts.trace.recordsChunks ? parts.trace : undefined;
  const translate = createEventTranslator();
  let lastUsageOutput = -1;
  /** The running estimate as a `usage` event; empty when nothing changed since the last one. */
  const usageEvent = (): string => {
    watchdog.usageDue = false;
    const output = meter.outputTokensEstimate;
    if (output === lastUsageOutput) return '';
    lastUsageOutput = output;
    const { usage, costNanos } = meter.estimate();
    return encoder.usage({
      inputTokens: promptTokens(usage),
      outputTokens: usage.outputTokens,
      costUsd: nanosToUsd(costNanos),
      estimated: true,
    });
  };
  return {
    write(raw) {
      // Fast path for the common case, an Anthropic text delta: no event objects.
      const delta =
        (raw as AnthropicTextDelta).type === 'content_block_delta'
          ? (raw as AnthropicTextDelta).delta
          : undefined;
      if (delta?.type === 'text_delta' && typeof delta.text === 'string') {
        if (delta.text === '') return true;
        meter.observeText(delta.text);
        content?.output(delta.text);
        chunks?.chunk();
        // A due usage event rides in the same write as the delta: one syscall, not two.
        let chunk = encoder.delta({ text: delta.text });
        if (watchdog.usageDue || everyChunk) chunk += usageEvent();
        return transport.write(chunk);
      }
      let mayWrite = true;
      let output = false;
      for (const event of translate(raw)) {
        if (event.type === 'request') {
          // Covered (or the stream stopped) before the next chunk is read: see the read loop.
          lease.announce(event, meter.estimate().costNanos);
        }
        meter.observe(event);
        if (isOutput(event)) output = true;
        if (event.type === 'text') {
          content?.output(event.text);
          mayWrite = transport.write(encoder.delta({ text: event.text })) && mayWrite;
        } else if (event.type === 'thinking' && encoder.reasoning) {
          mayWrite = transport.write(encoder.reasoning({ text: event.text })) && mayWrite;
        } else if (event.type === 'tool_call' && encoder.toolCall) {
          mayWrite = transport.write(encoder.toolCall(event)) && mayWrite;
        }
      }
      // One provider chunk, however many events it held.
      if (output) chunks?.chunk();
      return mayWrite;
    },
    usage() {
      if (watchdog.usageDue || everyChunk) transport.write(usageEvent());
    },
  };
}

/**
 * A gateway's protocol: the provider's events go to the client as they came (their bytes,
 * `wire`), and are metered on the way.
 */
export function relayWriter(parts: WriterParts): ChunkWriter {
  const { meter, transport } = parts;
  const content = parts.trace.recordsContent ? parts.trace : undefined;
  const chunks = parts.trace.recordsChunks ? parts.trace : undefined;
  const translate = createEventTranslator();
  /** Meters one provider chunk's events; a chunk with text or thinking is an output chunk. */
  const observeAll = (events: readonly MeterEvent[]) => {
    let output = false;
    for (const event of events) {
      meter.observe(event);
      if (event.type === 'text') content?.output(event.text);
      if (isOutput(event)) output = true;
    }
    if (output) chunks?.chunk();
  };
  return {
    write(value) {
      const item = value as RelayItem;
      if (item.events) observeAll(item.events);
      if (item.event !== undefined) observeAll(translate(item.event));
      if (item.batch) for (const raw of item.batch) observeAll(translate(raw));
      return item.wire === '' || transport.write(item.wire);
    },
  };
}

/** tokenmeter's first event: what was reserved, for what, and the budget left. */
export function metaEvent(
  encoder: SseEncoder,
  admission: Admission,
  reservedNanos: number,
): string {
  const budget = admission.budget;
  return encoder.meta({
    requestId: admission.requestId,
    model: admission.model,
    maxTokens: admission.maxTokens,
    inputTokens: admission.inputTokens,
    reservedUsd: nanosToUsd(reservedNanos),
    // What the reservation priced: the prompt's upper bound (with server-tool results)
    // and the output it covers, so a client can check reservedUsd by hand.
    reservedInputTokens: admission.bound.promptTokens,
    reservedOutputTokens: admission.reservedOutputTokens,
    // max_tokens was lowered to what the budget (or the cost cap) covers.
    ...(admission.fittedTo
      ? { requestedMaxTokens: admission.requestedMaxTokens, fittedTo: admission.fittedTo }
      : {}),
    budget: budget ? budgetJson(budget) : null,
  });
}

/** The headers of a relayed answer: the provider's own, then ours. */
export function relayHeaders(source: unknown, admission: Admission): Record<string, string> {
  const upstream = (source as { headers?: Record<string, string> } | null)?.headers ?? {};
  return {
    ...upstream,
    ...(admission.relay === 'json' ? { 'Content-Type': 'application/json' } : {}),
    ...admission.headers,
  };
}

/**
 * What differs between tokenmeter's own SSE protocol and a gateway speaking a provider's
 * API; everything else (admission, the stream's read loop, its end) is shared.
 * @internal
 */
export interface WireProtocol {
  /** A plain error answer before any byte of a stream (admission, bad input). */
  reject(
    transport: Transport,
    status: number,
    code: string,
    message: string,
    details?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): void;
  /**
   * For a gateway: how the admitted request is answered — `'sse'` (a stream relayed event
   * by event) or `'json'` (one provider body) — read from the request. Undefined: the
   * SSE headers and `meta` go out at admission (tokenmeter's protocol).
   */
  relay?: (body: unknown) => 'sse' | 'json';
  /**
   * The stream opens at admission: headers and the first event (tokenmeter's `meta`). A
   * relay sends nothing yet: it opens with the provider's answer (`sourceOpened`).
   */
  open(
    transport: Transport,
    encoder: SseEncoder,
    admission: Admission,
    headers: Record<string, string>,
    reservedNanos: number,
  ): void;
  /** The provider answered (its headers are known, no chunk read yet). */
  sourceOpened?(transport: Transport, source: unknown, admission: Admission): void;
  /** How each chunk of the source reaches the client (false: the client must read first). */
  writer(parts: WriterParts): ChunkWriter;
  /** The answer when a stream ends before any header went out. */
  endBeforeHeaders(
    transport: Transport,
    outcome: StreamOutcome,
    failure: UpstreamFailure | undefined,
  ): void;
}

/** tokenmeter's own protocol: JSON errors, SSE with `meta` at admission, paced `usage`. */
export const TOKENMETER_WIRE: WireProtocol = {
  reject: (transport, status, code, message, details, headers) =>
    sendJsonError(transport, status, code, message, details, headers),
  open(transport, encoder, admission, headers, reservedNanos) {
    transport.open(
      encoder.headers ? { ...encoder.headers, ...headers } : headers,
      metaEvent(encoder, admission, reservedNanos),
    );
  },
  writer: (parts) => sseWriter(parts),
  endBeforeHeaders: (transport) =>
    sendJsonError(transport, 500, 'internal_error', 'Internal error.'),
};

/** The relay's side of a gateway's protocol: opens with the provider's answer, relays its bytes. */
export const RELAY_STREAM: Pick<WireProtocol, 'open' | 'sourceOpened' | 'writer'> = {
  open() {},
  sourceOpened(transport, source, admission) {
    transport.open(relayHeaders(source, admission));
  },
  writer: (parts) => relayWriter(parts),
};
