// The Responses API stream: `event: <type>` + `data: {"type": <type>, "sequence_number": n, …}`
// events in the real order — response.created, response.in_progress, then per output item
// output_item.added, its content events (content_part / output_text, reasoning_summary_part /
// reasoning_summary_text, function_call_arguments), output_item.done — and at the end
// response.completed or response.incomplete carrying the whole Response with its usage. No
// `[DONE]` line: the Responses API sends none.

import type { ResponseContext, StreamEncoder } from './protocol.js';
import {
  doneStatus,
  finalOutput,
  finalStatus,
  itemId,
  type OutputSlot,
  outputItem,
  outputSlots,
  outputTextPart,
  responseObject,
  usageObject,
} from './responses-object.js';
import { sseComment } from './sse.js';

const SERVER_ERROR_MESSAGE =
  'The server had an error while processing your request. Sorry about that!';

export class ResponsesStreamEncoder implements StreamEncoder {
  readonly #ctx: ResponseContext;
  /** Every output item, the unseen reasoning (no plan block) included. */
  readonly #all: OutputSlot[];
  /** The output item of each plan block, and its output index. */
  readonly #slots: OutputSlot[] = [];
  readonly #outputIndex: number[] = [];
  /** Text streamed so far in each block: the `.done` events and the final Response carry it. */
  readonly #texts: string[];
  /** `"item_id":…,"output_index":…` of each block, built once. */
  readonly #where: string[] = [];
  #seq = 0;

  constructor(ctx: ResponseContext) {
    this.#ctx = ctx;
    this.#all = outputSlots(ctx.plan);
    this.#all.forEach((slot, outputIndex) => {
      if (slot.block < 0) return;
      this.#slots[slot.block] = slot;
      this.#outputIndex[slot.block] = outputIndex;
      this.#where[slot.block] =
        `"item_id":${JSON.stringify(itemId(ctx, slot.kind))},"output_index":${outputIndex}`;
    });
    this.#texts = ctx.plan.blocks.map(() => '');
  }

  /** One event; `fields` is the JSON after `type` and `sequence_number`, without braces. */
  #event(type: string, fields = ''): string {
    const rest = fields === '' ? '' : `,${fields}`;
    return `event: ${type}\ndata: {"type":"${type}","sequence_number":${this.#seq++}${rest}}\n\n`;
  }

  #item(type: 'added' | 'done', slot: OutputSlot, outputIndex: number): string {
    const ctx = this.#ctx;
    const text = slot.block >= 0 ? (this.#texts[slot.block] ?? '') : '';
    const status = type === 'added' ? 'in_progress' : doneStatus(ctx.plan, slot.block);
    const item = JSON.stringify(outputItem(ctx, slot, text, status));
    return this.#event(
      `response.output_item.${type}`,
      `"output_index":${outputIndex},"item":${item}`,
    );
  }

  open(): string {
    const ctx = this.#ctx;
    const response = JSON.stringify(responseObject(ctx, 'in_progress', [], null));
    let out =
      this.#event('response.created', `"response":${response}`) +
      this.#event('response.in_progress', `"response":${response}`);
    const first = this.#all[0];
    if (first && first.block < 0) {
      // Reasoning billed but not summarised: an item with an empty summary, nothing streamed.
      out += this.#item('added', first, 0) + this.#item('done', first, 0);
    }
    return out + this.blockStart(0);
  }

  blockStart(index: number): string {
    const slot = this.#slots[index];
    if (!slot) return '';
    const where = this.#where[index]!;
    let out = this.#item('added', slot, this.#outputIndex[index]!);
    if (slot.kind === 'message') {
      out += this.#event(
        'response.content_part.added',
        `${where},"content_index":0,"part":${JSON.stringify(outputTextPart(''))}`,
      );
    } else if (slot.kind === 'reasoning') {
      out += this.#event(
        'response.reasoning_summary_part.added',
        `${where},"summary_index":0,"part":{"type":"summary_text","text":""}`,
      );
    }
    return out;
  }

  #deltaFields(index: number, text: string): [type: string, fields: string] {
    const where = this.#where[index]!;
    const delta = JSON.stringify(text);
    switch (this.#slots[index]?.kind) {
      case 'reasoning':
        return [
          'response.reasoning_summary_text.delta',
          `${where},"summary_index":0,"delta":${delta}`,
        ];
      case 'function_call':
        return ['response.function_call_arguments.delta', `${where},"delta":${delta}`];
      default:
        return [
          'response.output_text.delta',
          `${where},"content_index":0,"delta":${delta},"logprobs":[]`,
        ];
    }
  }

  delta(index: number, text: string): string {
    this.#texts[index] += text;
    const [type, fields] = this.#deltaFields(index, text);
    return this.#event(type, fields);
  }

  blockStop(index: number): string {
    const slot = this.#slots[index];
    if (!slot) return '';
    const where = this.#where[index]!;
    const text = JSON.stringify(this.#texts[index] ?? '');
    let out = '';
    if (slot.kind === 'message') {
      const part = JSON.stringify(outputTextPart(this.#texts[index] ?? ''));
      out =
        this.#event(
          'response.output_text.done',
          `${where},"content_index":0,"text":${text},"logprobs":[]`,
        ) + this.#event('response.content_part.done', `${where},"content_index":0,"part":${part}`);
    } else if (slot.kind === 'reasoning') {
      const part = `{"type":"summary_text","text":${text}}`;
      out =
        this.#event(
          'response.reasoning_summary_text.done',
          `${where},"summary_index":0,"text":${text}`,
        ) +
        this.#event(
          'response.reasoning_summary_part.done',
          `${where},"summary_index":0,"part":${part}`,
        );
    } else {
      const name = JSON.stringify(this.#ctx.plan.blocks[index]?.toolName ?? '');
      out = this.#event(
        'response.function_call_arguments.done',
        `${where},"arguments":${text},"name":${name}`,
      );
    }
    return out + this.#item('done', slot, this.#outputIndex[index]!);
  }

  finish(tokensSent: number): string {
    const ctx = this.#ctx;
    const status = finalStatus(ctx.plan);
    const response = responseObject(
      ctx,
      status,
      finalOutput(ctx, this.#texts),
      usageObject(ctx, tokensSent),
    );
    return this.#event(`response.${status}`, `"response":${JSON.stringify(response)}`);
  }

  error(): string {
    // The reference documents the fields flat; the live API nests them under `error` too,
    // which is what makes the SDK raise an APIError: both are sent.
    const error = {
      type: 'server_error',
      code: 'server_error',
      message: SERVER_ERROR_MESSAGE,
      param: null,
    };
    return this.#event(
      'error',
      `"code":"server_error","message":${JSON.stringify(SERVER_ERROR_MESSAGE)},"param":null,"error":${JSON.stringify(error)}`,
    );
  }

  malformed(index: number): string {
    // The data line stops inside a JSON string; the blank line then dispatches it as is.
    const [type, fields] = this.#deltaFields(index, 'cut off here');
    const event = this.#event(type, fields);
    return `${event.slice(0, event.indexOf('cut off here') + 'cut off here'.length)}\n\n`;
  }

  unknown(seq: number): string {
    switch (seq % 3) {
      case 0:
        // Sent during long pauses; the SDK's stream helper skips it.
        return this.#event('keepalive');
      case 1:
        return sseComment('fake-llm comment');
      default:
        // Fields other than event/data must be ignored; with no data nothing is dispatched.
        return `id: ${seq}\nretry: 3000\n\n`;
    }
  }
}
