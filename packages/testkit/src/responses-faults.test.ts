// Every fault knob on the Responses route, and what the official OpenAI SDK makes of it:
// HTTP errors, an in-stream `error` event, hangs, resets, malformed SSE, a stream without
// response.completed, tolerated extra events, and a client that leaves.

import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';

let fake: FakeLLM;
let client: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 20, seed: 13 });
  // logLevel off: the SDK logs unparseable events before throwing; the tests check the throw.
  client = new OpenAI({
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

const body = { model: 'gpt-5-mini', input: 'hi' };

function faultHeaders(fault: string | number, after?: number): Record<string, string> {
  const headers: Record<string, string> = { 'x-fake-llm-fault': String(fault) };
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

/** Reads a raw stream: the text received, the event types, and what ended it. */
async function drain(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  let text = '';
  const types: string[] = [];
  try {
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
  } catch (error) {
    return { text, types, error };
  }
  return { text, types, error: undefined };
}

describe('HTTP errors', () => {
  it.each([
    [401, OpenAI.AuthenticationError],
    [404, OpenAI.NotFoundError],
    [429, OpenAI.RateLimitError],
    [500, OpenAI.InternalServerError],
  ])('%i raises %o, in OpenAI error shape', async (status, ErrorClass) => {
    const error = (await caught(
      client.responses.create({ ...body, stream: true }, { headers: faultHeaders(status) }),
    )) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error.status).toBe(status);
    expect(error.requestID).toMatch(/^req_/);
    expect(error.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    const record = await fake.waitForRequest(error.requestID!);
    expect(record).toMatchObject({ status, stopCause: 'rejected', path: '/v1/responses' });
  });

  it('429 carries retry-after and x-ratelimit-* headers', async () => {
    const error = (await caught(
      client.responses.create(body, {
        headers: { ...faultHeaders(429), 'x-fake-llm-retry-after': '4' },
      }),
    )) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.headers?.get('retry-after')).toBe('4');
    expect(error.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
  });
});

describe('error-mid-stream', () => {
  it('sends an `event: error` after N tokens; the SDK raises an APIError', async () => {
    const { data: stream, request_id } = await client.responses
      .create({ ...body, stream: true }, { headers: faultHeaders('error-mid-stream', 6) })
      .withResponse();
    const { text, error } = await drain(stream);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.type).toBe('server_error');
    expect(apiError.code).toBe('server_error');
    expect(apiError.status).toBeUndefined();
    expect(text).toBe(seededText({ seed: 13, tokens: 6 }));
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      tokensSent: 6,
      stopCause: 'fault',
      finishedNormally: false,
      usage: undefined,
    });
  });

  it('the event carries the documented flat fields and a sequence number', async () => {
    const response = await fetch(`${fake.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...faultHeaders('error-mid-stream', 2) },
      body: JSON.stringify({ ...body, stream: true }),
    });
    const events = (await response.text()).split('\n\n').filter(Boolean);
    const last = events.at(-1)!;
    expect(last.split('\n')[0]).toBe('event: error');
    const data = JSON.parse(last.split('\n')[1]!.slice('data: '.length));
    expect(data).toMatchObject({
      type: 'error',
      code: 'server_error',
      message: expect.any(String),
      param: null,
      sequence_number: events.length - 1,
    });
  });

  it('the stream helper rejects with it; not streaming it is a 500', async () => {
    const stream = client.responses.stream(body, { headers: faultHeaders('error-mid-stream') });
    const error = await caught(stream.finalResponse());
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((await fake.waitForRequest(fake.lastRequest!.id)).tokensSent).toBe(10);

    const whole = await caught(
      client.responses.create(body, { headers: faultHeaders('error-mid-stream', 4) }),
    );
    expect(whole).toBeInstanceOf(OpenAI.InternalServerError);
    await fake.waitForIdle();
    expect(fake.lastRequest).toMatchObject({ status: 500, tokensGenerated: 4, tokensSent: 0 });
  });
});

describe('hangs, resets, malformed SSE', () => {
  it('hang-mid-stream: N tokens, then silence until the client aborts', async () => {
    const controller = new AbortController();
    const stream = client.responses.stream(body, {
      headers: faultHeaders('hang-mid-stream', 5),
      signal: controller.signal,
    });
    let received = '';
    stream.on('response.output_text.delta', (event) => {
      received += event.delta;
    });
    const timer = setTimeout(() => controller.abort(), 150);
    const error = await caught(stream.finalResponse());
    clearTimeout(timer);
    expect(error).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(received).toBe(seededText({ seed: 13, tokens: 5 }));
    await fake.waitForIdle();
    expect(fake.lastRequest).toMatchObject({ tokensGenerated: 5, stopCause: 'fault' });
    expect(fake.lastRequest?.clientClosedAt).toBeDefined();
  });

  it('reset-mid-stream: the raw stream fails with TypeError terminated; not a client close', async () => {
    const { data: stream, request_id } = await client.responses
      .create({ ...body, stream: true }, { headers: faultHeaders('reset-mid-stream', 7) })
      .withResponse();
    const { text, error } = await drain(stream);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('terminated');
    expect(text).toBe(seededText({ seed: 13, tokens: 7 }));
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({ tokensSent: 7, stopCause: 'fault', clientClosedAt: undefined });
  });

  it('malformed-sse: a delta event cut inside its JSON raises a SyntaxError', async () => {
    const { data: stream } = await client.responses
      .create({ ...body, stream: true }, { headers: faultHeaders('malformed-sse', 3) })
      .withResponse();
    const { text, error } = await drain(stream);
    expect(error).toBeInstanceOf(SyntaxError);
    expect(text).toBe(seededText({ seed: 13, tokens: 3 }));
  });
});

describe('no-message-delta', () => {
  it('the stream ends after the content without response.completed: no usage anywhere', async () => {
    const { data: stream, request_id } = await client.responses
      .create({ ...body, stream: true }, { headers: faultHeaders('no-message-delta') })
      .withResponse();
    const { text, types, error } = await drain(stream);
    expect(error).toBeUndefined();
    expect(text).toBe(seededText({ seed: 13, tokens: 20 }));
    expect(types.at(-1)).toBe('response.output_item.done');
    expect(types).not.toContain('response.completed');
    const record = await fake.waitForRequest(request_id!);
    expect(record).toMatchObject({
      tokensSent: 20,
      usage: undefined,
      stopCause: 'fault',
      finishedNormally: false,
    });

    // The helper resolves with its snapshot, still in progress and without usage.
    const snapshot = await client.responses
      .stream(body, { headers: faultHeaders('no-message-delta') })
      .finalResponse();
    expect(snapshot.status).toBe('in_progress');
    expect(snapshot.usage).toBeNull();
    expect(snapshot.output_text).toBe(seededText({ seed: 13, tokens: 20 }));
  });
});

describe('unknown-events', () => {
  it('keepalive events, comments and id/retry blocks are interleaved; the SDK tolerates them', async () => {
    const { data: stream } = await client.responses
      .create({ ...body, stream: true }, { headers: faultHeaders('unknown-events') })
      .withResponse();
    const events: Array<{ type: string; sequence_number: number }> = [];
    for await (const event of stream) events.push(event);
    // The raw iterator yields the keepalives (7 of the 20 extras; the rest carry no data).
    expect(events.filter((e) => (e.type as string) === 'keepalive')).toHaveLength(7);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));

    const response = await client.responses
      .stream(body, { headers: faultHeaders('unknown-events') })
      .finalResponse();
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe(seededText({ seed: 13, tokens: 20 }));
    expect(response.usage?.output_tokens).toBe(20);
  });
});

describe('client close', () => {
  it('breaking out of the stream stops generation within one chunk', async () => {
    const { data: stream, request_id } = await client.responses
      .create(
        { ...body, stream: true },
        { headers: { 'x-fake-llm-tokens': '100000', 'x-fake-llm-tps': '2000' } },
      )
      .withResponse();
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta' && ++deltas === 3) break;
    }
    const record = await fake.waitForRequest(request_id!);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(1);
    expect(record.usage).toBeUndefined();
    const generated = record.tokensGenerated;
    await sleep(50);
    expect(record.tokensGenerated).toBe(generated);
  });
});
