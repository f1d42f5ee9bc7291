// The observability and lifecycle API: records, events, waits, configure/reset, record
// limits, health, and close() tearing down even a hanging stream.

import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { KnobError } from './knobs.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import type { RequestRecord } from './types.js';

const messages = [{ role: 'user' as const, content: 'hi' }];
const params = { model: 'claude-haiku-4-5', max_tokens: 100, messages };
const fakes: FakeLLM[] = [];

async function start(options: Parameters<typeof startFakeLLM>[0] = {}): Promise<FakeLLM> {
  const fake = await startFakeLLM(options);
  fakes.push(fake);
  return fake;
}

function client(fake: FakeLLM): Anthropic {
  return new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
}

afterEach(async () => {
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

describe('records and events', () => {
  it('emits request-start and request-end with the live record, and keeps it in requests', async () => {
    const fake = await start({ tokens: 5 });
    const starts: RequestRecord[] = [];
    const ends: RequestRecord[] = [];
    fake.on('request-start', (record) => starts.push(record));
    fake.on('request-end', (record) => ends.push(record));
    const { request_id } = await client(fake).messages.create(params).withResponse();
    await fake.waitForRequest(request_id!);
    expect(starts).toHaveLength(1);
    expect(ends).toEqual(starts);
    expect(fake.requests).toEqual(starts);
    expect(fake.lastRequest).toBe(starts[0]);
    expect(fake.request(request_id!)).toBe(starts[0]);
    const record = starts[0]!;
    expect(record.seq).toBe(1);
    expect(record.body).toEqual(params);
    expect(record.headers.authorization).toBe('Bearer test');
    expect(record.endedAt).toBeGreaterThanOrEqual(record.receivedAt);
    expect(record.knobs?.tokens).toBe(5);
    expect(fake.totals).toMatchObject({ requests: 1, tokensSent: 5, tokensGenerated: 5 });
    expect(fake.inFlight).toBe(0);
  });

  it('waitForRequest waits for a request that has not arrived yet, and times out clearly', async () => {
    const fake = await start({ tokens: 3 });
    const waiting = fake.waitForRequest('req_fake_future', { timeoutMs: 50 });
    await expect(waiting).rejects.toThrow(
      'fake LLM: request req_fake_future never arrived after 50 ms',
    );

    // Ids are predictable: the first request of this server gets the next id in sequence.
    const ids: string[] = [];
    fake.once('request-start', (record) => ids.push(record.id));
    await client(fake).messages.create(params);
    const again = fake.waitForRequest(ids[0]!);
    await expect(again).resolves.toMatchObject({ finishedNormally: true });
  });

  it('waitForIdle resolves once every open response has closed', async () => {
    const fake = await start({ tokens: 20, tps: 400 });
    const calls = [client(fake).messages.create(params), client(fake).messages.create(params)];
    await new Promise((resolve) => fake.once('request-start', resolve));
    await fake.waitForIdle();
    expect(fake.inFlight).toBe(0);
    expect(fake.requests.every((r) => r.endedAt !== undefined)).toBe(true);
    await Promise.all(calls);
  });

  it('configure changes server knobs for later requests; reset restores them and clears records', async () => {
    const fake = await start({ tokens: 4 });
    fake.configure({ tokens: 9, fault: 429 });
    await expect(client(fake).messages.create(params)).rejects.toBeInstanceOf(
      Anthropic.RateLimitError,
    );
    fake.configure({ fault: 'none' });
    const message = await client(fake).messages.create(params);
    expect(message.usage.output_tokens).toBe(9);
    expect(fake.requests).toHaveLength(2);

    fake.reset();
    expect(fake.requests).toHaveLength(0);
    expect(fake.totals.requests).toBe(0);
    expect(fake.knobs.tokens).toBe(4);
    const after = await client(fake).messages.create(params);
    expect(after.usage.output_tokens).toBe(4);
  });

  it('headerKnobs: false ignores x-fake-llm-* headers', async () => {
    const fake = await start({ tokens: 4, headerKnobs: false });
    const message = await client(fake).messages.create(params, {
      headers: { 'x-fake-llm-tokens': '50' },
    });
    expect(message.usage.output_tokens).toBe(4);
  });

  it('keeps at most maxRecords records, dropping the oldest; totals keep counting', async () => {
    const fake = await start({ tokens: 1, maxRecords: 2 });
    for (let i = 0; i < 3; i++) await client(fake).messages.create(params);
    expect(fake.requests.map((r) => r.seq)).toEqual([2, 3]);
    expect(fake.totals.requests).toBe(3);
  });

  it('recomputes the text of a record from its seed', async () => {
    const fake = await start({ tokens: 25, seed: 99 });
    const message = await client(fake).messages.create(params);
    const block = message.content[0]!;
    expect(block.type === 'text' && block.text).toBe(fake.lastRequest!.text);
  });
});

describe('lifecycle', () => {
  it('rejects an invalid option at creation with a message naming it', () => {
    expect(() => startFakeLLM({ chunk: 0 })).toThrow(KnobError);
    expect(() => startFakeLLM({ chunk: 0 })).toThrow('chunk: expected an integer >= 1, got 0');
    expect(() => startFakeLLM({ fault: 'explode' as never })).toThrow(
      'fault: expected an HTTP status',
    );
  });

  it('answers GET /health', async () => {
    const fake = await start();
    const response = await fetch(`${fake.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, inFlight: 0 });
  });

  it('close() destroys open connections, hanging streams included, and records why', async () => {
    const fake = await startFakeLLM();
    const response = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-llm-fault': 'hang' },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const paced = fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-fake-llm-tps': '10' },
      body: JSON.stringify({ ...params, stream: true }),
    });
    const pacedResponse = await paced;
    const hanging = fake.lastRequest!;
    const started = performance.now();
    await fake.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(response.text()).rejects.toThrow();
    await expect(pacedResponse.text()).rejects.toThrow();
    const records = fake.requests;
    expect(records.every((r) => r.endedAt !== undefined)).toBe(true);
    expect(records.find((r) => r.knobs?.tps === 10)?.stopCause).toBe('server-closed');
    expect(hanging.clientClosedAt).toBeUndefined();
    await expect(fetch(`${fake.url}/health`)).rejects.toThrow();
  });
});
