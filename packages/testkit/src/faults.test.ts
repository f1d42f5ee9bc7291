// Faults inside a stream — an error event, a hang, a reset, malformed SSE, a missing final
// usage, unknown events — and what each SDK actually raises for them.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 20, seed: 11 });
  // logLevel off: the SDKs log unparseable events before throwing; the test checks the throw.
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0, logLevel: 'off' });
  openai = new OpenAI({
    baseURL: `${fake.url}/v1`,
    apiKey: 'test',
    maxRetries: 0,
    logLevel: 'off',
  });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
});

const messages = [{ role: 'user' as const, content: 'hi' }];
const params = { model: 'claude-sonnet-4-6', max_tokens: 256, messages };

function faultHeaders(fault: string, after?: number): Record<string, string> {
  const headers: Record<string, string> = { 'x-fake-llm-fault': fault };
  if (after !== undefined) headers['x-fake-llm-fault-after'] = String(after);
  return headers;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/** Reads an Anthropic raw stream, returning the text received and what ended it. */
async function drainAnthropic(stream: AsyncIterable<Anthropic.MessageStreamEvent>) {
  let text = '';
  const types: string[] = [];
  try {
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text;
      }
    }
  } catch (error) {
    return { text, types, error };
  }
  return { text, types, error: undefined };
}

describe('error-mid-stream', () => {
  it('Anthropic: the SDK raises an APIError of type overloaded_error after N tokens', async () => {
    const { data: stream, request_id } = await anthropic.messages
      .create({ ...params, stream: true }, { headers: faultHeaders('error-mid-stream', 6) })
      .withResponse();
    const { text, error } = await drainAnthropic(stream);
    // An in-stream error has no HTTP status, so the SDK raises the base APIError (not its
    // 529 OverloadedError subclass) with `type` taken from the event.
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error).not.toBeInstanceOf(Anthropic.OverloadedError);
    const apiError = error as InstanceType<typeof Anthropic.APIError>;
    expect(apiError.type).toBe('overloaded_error');
    expect(apiError.status).toBeUndefined();
    expect(text).toBe(seededText({ seed: 11, tokens: 6 }));
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      tokensSent: 6,
      tokensGenerated: 6,
      stopCause: 'fault',
      finishedNormally: false,
      usage: undefined,
    });
  });

  it('Anthropic stream helper: finalMessage() rejects with the same overloaded_error', async () => {
    const stream = anthropic.messages.stream(params, { headers: faultHeaders('error-mid-stream') });
    const error = (await caught(stream.finalMessage())) as InstanceType<typeof Anthropic.APIError>;
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error.type).toBe('overloaded_error');
    // Default faultAfter: half of the planned tokens.
    expect((await fake.waitForRequest(stream.request_id!)).tokensSent).toBe(10);
  });

  it('Anthropic non-streaming: the answer is a 529 OverloadedError', async () => {
    const error = await caught(
      anthropic.messages.create(params, { headers: faultHeaders('error-mid-stream', 4) }),
    );
    expect(error).toBeInstanceOf(Anthropic.OverloadedError);
    const record = fake.lastRequest!;
    await fake.waitForRequest(record.id);
    expect(record).toMatchObject({ status: 529, tokensGenerated: 4, tokensSent: 0 });
  });

  it('OpenAI: the SDK raises an APIError from the {"error": …} chunk', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true },
      { headers: faultHeaders('error-mid-stream', 3) },
    );
    let text = '';
    const error = await caught(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })(),
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
    expect(text).toBe(seededText({ seed: 11, tokens: 3 }));
  });
});

describe('hang', () => {
  it('sends headers, then silence: a client-side timeout sees no body byte', async () => {
    const controller = new AbortController();
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...faultHeaders('hang') },
      body: JSON.stringify({ ...params, stream: true }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const id = response.headers.get('request-id')!;
    const reader = response.body!.getReader();
    const timer = setTimeout(() => controller.abort(), 150);
    const started = performance.now();
    const error = await caught(reader.read());
    clearTimeout(timer);
    expect((error as Error).name).toBe('AbortError');
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    const record = await fake.waitForRequest(id);
    expect(record.tokensSent).toBe(0);
    expect(record.clientClosedAt).toBeDefined();
    expect(record.stopCause).toBe('fault');
  });

  it('hang-mid-stream: N tokens arrive, then nothing until the client gives up', async () => {
    const controller = new AbortController();
    const stream = anthropic.messages.stream(params, {
      headers: faultHeaders('hang-mid-stream', 5),
      signal: controller.signal,
    });
    let received = '';
    stream.on('text', (delta) => {
      received += delta;
    });
    const timer = setTimeout(() => controller.abort(), 200);
    const error = await caught(stream.finalMessage());
    clearTimeout(timer);
    expect(error).toBeInstanceOf(Anthropic.APIUserAbortError);
    expect(received).toBe(seededText({ seed: 11, tokens: 5 }));
    const record = await fake.waitForRequest(stream.request_id!);
    expect(record.tokensGenerated).toBe(5);
    expect(record.clientClosedAt).toBeGreaterThan(record.generationStoppedAt!);
  });
});

describe('reset-mid-stream', () => {
  it('Anthropic: the raw stream fails with a connection error after N tokens', async () => {
    const { data: stream, request_id } = await anthropic.messages
      .create({ ...params, stream: true }, { headers: faultHeaders('reset-mid-stream', 7) })
      .withResponse();
    const { text, error } = await drainAnthropic(stream);
    // fetch reports the dropped socket as TypeError('terminated'), caused by a SocketError.
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('terminated');
    expect(((error as Error).cause as { code?: string }).code).toBe('UND_ERR_SOCKET');
    expect(text).toBe(seededText({ seed: 11, tokens: 7 }));
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ tokensSent: 7, stopCause: 'fault', finishedNormally: false });
    // The fake closed the socket itself: that is not a client disconnect.
    expect(record.clientClosedAt).toBeUndefined();
  });

  it('Anthropic stream helper wraps it in an AnthropicError; OpenAI raises the TypeError', async () => {
    const stream = anthropic.messages.stream(params, { headers: faultHeaders('reset-mid-stream') });
    const error = await caught(stream.finalMessage());
    expect(error).toBeInstanceOf(Anthropic.AnthropicError);
    expect((error as Error).cause).toBeInstanceOf(TypeError);

    const chat = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true },
      { headers: faultHeaders('reset-mid-stream', 2) },
    );
    const openaiError = await caught(
      (async () => {
        for await (const _ of chat) {
        }
      })(),
    );
    expect(openaiError).toBeInstanceOf(TypeError);
  });

  it('non-streaming: the SDK raises APIConnectionError', async () => {
    const error = await caught(
      anthropic.messages.create(params, { headers: faultHeaders('reset-mid-stream') }),
    );
    expect(error).toBeInstanceOf(Anthropic.APIConnectionError);
  });
});

describe('malformed-sse', () => {
  it('both SDKs raise a SyntaxError on the cut-off event', async () => {
    const { data: stream } = await anthropic.messages
      .create({ ...params, stream: true }, { headers: faultHeaders('malformed-sse', 3) })
      .withResponse();
    const { text, error } = await drainAnthropic(stream);
    expect(error).toBeInstanceOf(SyntaxError);
    expect(text).toBe(seededText({ seed: 11, tokens: 3 }));

    const chat = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true },
      { headers: faultHeaders('malformed-sse', 3) },
    );
    const openaiError = await caught(
      (async () => {
        for await (const _ of chat) {
        }
      })(),
    );
    expect(openaiError).toBeInstanceOf(SyntaxError);
  });

  it('writes an event whose data line stops inside a JSON string (raw bytes)', async () => {
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...faultHeaders('malformed-sse', 1) },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const raw = await response.text();
    const events = raw.split('\n\n').filter(Boolean);
    const last = events[events.length - 1]!;
    expect(last.startsWith('event: content_block_delta\ndata: {')).toBe(true);
    expect(() => JSON.parse(last.split('\n')[1]!.slice('data: '.length))).toThrow(SyntaxError);
  });
});

describe('no-message-delta', () => {
  it('Anthropic: content arrives, then the stream ends without message_delta or message_stop', async () => {
    const { data: stream, request_id } = await anthropic.messages
      .create({ ...params, stream: true }, { headers: faultHeaders('no-message-delta') })
      .withResponse();
    const { text, types, error } = await drainAnthropic(stream);
    expect(error).toBeUndefined();
    expect(text).toBe(seededText({ seed: 11, tokens: 20 }));
    expect(types.at(-1)).toBe('content_block_stop');
    expect(types).not.toContain('message_delta');
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ tokensSent: 20, usage: undefined, stopCause: 'fault' });
    expect(record.finishedNormally).toBe(false);
  });

  it('Anthropic stream helper: finalMessage() rejects, no Message was completed', async () => {
    const stream = anthropic.messages.stream(params, { headers: faultHeaders('no-message-delta') });
    const error = await caught(stream.finalMessage());
    expect(error).toBeInstanceOf(Anthropic.AnthropicError);
    expect((error as Error).message).toContain('stream ended without producing a Message');
  });

  it('OpenAI: no finish_reason, no usage chunk, no [DONE]', async () => {
    const response = await fetch(`${fake.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...faultHeaders('no-message-delta') },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const raw = await response.text();
    expect(raw).not.toContain('[DONE]');
    expect(raw).not.toContain('"finish_reason":"stop"');
    expect(raw).not.toContain('"prompt_tokens"');
    expect(raw).toContain('"content"');
  });
});

describe('unknown-events', () => {
  it('Anthropic: unknown event types reach the raw iterator; the helper still assembles the text', async () => {
    const { data: stream } = await anthropic.messages
      .create({ ...params, stream: true }, { headers: faultHeaders('unknown-events') })
      .withResponse();
    const { text, types, error } = await drainAnthropic(stream);
    expect(error).toBeUndefined();
    expect(types).toContain('fake_unknown_event');
    expect(text).toBe(seededText({ seed: 11, tokens: 20 }));

    const helper = anthropic.messages.stream(params, { headers: faultHeaders('unknown-events') });
    const message = await helper.finalMessage();
    expect(message.content[0]?.type === 'text' && message.content[0].text).toBe(
      seededText({ seed: 11, tokens: 20 }),
    );
    expect(message.usage.output_tokens).toBe(20);
  });

  it('OpenAI: comments and empty-choices chunks are interleaved; the text is intact', async () => {
    const stream = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } },
      { headers: faultHeaders('unknown-events') },
    );
    let text = '';
    let emptyChoices = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if (chunk.choices.length === 0 && !chunk.usage) emptyChoices += 1;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(emptyChoices).toBe(10);
    expect(text).toBe(seededText({ seed: 11, tokens: 20 }));
    expect(usage?.completion_tokens).toBe(20);
  });
});
