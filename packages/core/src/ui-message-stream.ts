/**
 * The Vercel AI SDK's UI message stream protocol (v1), as an `SseEncoder`: what
 * `useChat()` / `DefaultChatTransport` and `readUIMessageStream()` read. Each event is one
 * `data:` line holding one JSON chunk (`start`, `text-start` / `text-delta` / `text-end`,
 * `reasoning-*`, `tool-input-*`, `finish`, `error`, `data-*`), the stream ends with `data: [DONE]`, and the
 * response carries `x-vercel-ai-ui-message-stream: v1`.
 *
 * tokenmeter's own figures ride along where the AI SDK alone has none:
 * - `start.messageMetadata.tokenmeter`: request id, model, reservation, budget (the `meta`
 *   event of tokenmeter's protocol);
 * - a `data-tokenmeter` part (one part, id `tokenmeter`, updated in place): the running
 *   usage and estimated cost while streaming, then the final usage, cost (`costUsd`,
 *   `costNanos`), `estimated`, remaining budget and, when cut short, `code` and `limit`;
 * - the same final figures as `finish.messageMetadata.tokenmeter` — or, on a failed or
 *   cut-short answer, as a `message-metadata` chunk before the `error` chunk, so the
 *   message keeps them although the AI SDK client stops reading at the error.
 *
 * Model text only ever sits inside a JSON string, so no text can forge a chunk or end the
 * stream.
 */

import { finishReason } from './finish-reason.js';
import type { SseDeltaData, SseEncoder, SseToolCallData } from './sse-encoder.js';
import { encodeComment } from './sse-encoder.js';

/** The response header that tells the AI SDK client which protocol it reads. */
export const UI_MESSAGE_STREAM_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-vercel-ai-ui-message-stream': 'v1',
  // Proxies must not buffer the stream (the AI SDK sets the same).
  'x-accel-buffering': 'no',
});

/** The id of the one `data-tokenmeter` part a message carries. */
export const TOKENMETER_DATA_PART_ID = 'tokenmeter';

const DONE = 'data: [DONE]\n\n';

function chunk(value: object): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** The GenAI conventions' finish reasons, as the AI SDK names them. */
const UI_FINISH: Readonly<Record<string, string>> = {
  stop: 'stop',
  length: 'length',
  tool_call: 'tool-calls',
  content_filter: 'content-filter',
};

/** A provider stop reason → the AI SDK's `finishReason` (through the telemetry's mapping). */
export function uiFinishReason(stopReason: unknown): string {
  if (typeof stopReason !== 'string') return 'other';
  return UI_FINISH[finishReason(stopReason)] ?? 'other';
}

/** The per-stream state: which text or reasoning part is open. */
class UiMessageStreamEncoder implements SseEncoder {
  readonly headers = UI_MESSAGE_STREAM_HEADERS;
  private parts = 0;
  private text: string | undefined;
  private reasoningId: string | undefined;

  forStream(): SseEncoder {
    return new UiMessageStreamEncoder();
  }

  meta(data: object): string {
    const requestId = (data as { requestId?: unknown }).requestId;
    return (
      chunk({
        type: 'start',
        ...(typeof requestId === 'string' ? { messageId: requestId } : {}),
        messageMetadata: { tokenmeter: data },
      }) + chunk({ type: 'start-step' })
    );
  }

  delta(data: SseDeltaData): string {
    let out = '';
    if (this.reasoningId !== undefined) out += this.closeReasoning();
    if (this.text === undefined) {
      this.text = `text-${this.parts++}`;
      out += chunk({ type: 'text-start', id: this.text });
    }
    return out + chunk({ type: 'text-delta', id: this.text, delta: data.text });
  }

  reasoning(data: SseDeltaData): string {
    let out = '';
    if (this.text !== undefined) out += this.closeText();
    if (this.reasoningId === undefined) {
      this.reasoningId = `reasoning-${this.parts++}`;
      out += chunk({ type: 'reasoning-start', id: this.reasoningId });
    }
    return out + chunk({ type: 'reasoning-delta', id: this.reasoningId, delta: data.text });
  }

  toolCall(data: SseToolCallData): string {
    const call = { toolCallId: data.id, toolName: data.name };
    return (
      this.closeAll() +
      chunk({ type: 'tool-input-start', ...call }) +
      chunk({ type: 'tool-input-available', ...call, input: data.input })
    );
  }

  usage(data: object): string {
    return chunk({ type: 'data-tokenmeter', id: TOKENMETER_DATA_PART_ID, data });
  }

  done(data: object): string {
    const final = { ...data, final: true };
    return (
      this.closeAll() +
      chunk({ type: 'data-tokenmeter', id: TOKENMETER_DATA_PART_ID, data: final }) +
      chunk({ type: 'finish-step' }) +
      chunk({
        type: 'finish',
        finishReason: uiFinishReason((data as { stopReason?: unknown }).stopReason),
        messageMetadata: { tokenmeter: final },
      }) +
      DONE
    );
  }

  error(data: object): string {
    const final = { ...data, final: true };
    const message = (data as { message?: unknown }).message;
    return (
      this.closeAll() +
      chunk({ type: 'data-tokenmeter', id: TOKENMETER_DATA_PART_ID, data: final }) +
      chunk({ type: 'message-metadata', messageMetadata: { tokenmeter: final } }) +
      chunk({
        type: 'error',
        errorText: typeof message === 'string' ? message : 'The answer was cut short.',
      }) +
      DONE
    );
  }

  comment(text?: string): string {
    return encodeComment(text);
  }

  private closeText(): string {
    const id = this.text;
    this.text = undefined;
    return chunk({ type: 'text-end', id });
  }

  private closeReasoning(): string {
    const id = this.reasoningId;
    this.reasoningId = undefined;
    return chunk({ type: 'reasoning-end', id });
  }

  private closeAll(): string {
    let out = '';
    if (this.reasoningId !== undefined) out += this.closeReasoning();
    if (this.text !== undefined) out += this.closeText();
    return out;
  }
}

/**
 * The AI SDK UI message stream protocol: pass it as `costTrackedSSE({ encoder })` and the
 * page's `useChat()` (or `readUIMessageStream()`) reads the metered stream unchanged.
 *
 * @example
 * app.post('/api/chat', costTrackedSSE({ ...options, encoder: uiMessageStreamEncoder,
 *   upstream: (req, meter) => streamText({ model, messages, abortSignal: meter.signal }) }));
 * // page: const { messages } = useChat(); message.metadata?.tokenmeter?.costUsd
 */
export const uiMessageStreamEncoder: SseEncoder = new UiMessageStreamEncoder();
