// HTTP errors before any stream: each status raises the SDKs' typed error, with the
// provider's error body, request id and rate-limit headers; invalid requests get a 400.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeLLM({ tokens: 5 });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

const messages = [{ role: 'user' as const, content: 'hi' }];

function anthropicCall(fault: string | number, extra: Record<string, string> = {}) {
  return anthropic.messages.create(
    { model: 'claude-sonnet-4-6', max_tokens: 64, messages, stream: true },
    { headers: { 'x-fake-llm-fault': String(fault), ...extra } },
  );
}

function openaiCall(fault: string | number, extra: Record<string, string> = {}) {
  return openai.chat.completions.create(
    { model: 'gpt-4o-mini', messages, stream: true },
    { headers: { 'x-fake-llm-fault': String(fault), ...extra } },
  );
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('Anthropic SDK', () => {
  it.each([
    [401, Anthropic.AuthenticationError, 'authentication_error'],
    [403, Anthropic.PermissionDeniedError, 'permission_error'],
    [404, Anthropic.NotFoundError, 'not_found_error'],
    [429, Anthropic.RateLimitError, 'rate_limit_error'],
    [500, Anthropic.InternalServerError, 'api_error'],
    [529, Anthropic.OverloadedError, 'overloaded_error'],
  ])('status %i raises %o with error.type %s', async (status, ErrorClass, type) => {
    const error = (await caught(anthropicCall(status))) as InstanceType<typeof Anthropic.APIError>;
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error.status).toBe(status);
    expect(error.type).toBe(type);
    expect(error.error).toMatchObject({ type: 'error', error: { type } });
    expect(error.requestID).toMatch(/^req_/);
    const record = await fake.waitForRequest(error.requestID!);
    expect(record).toMatchObject({ status, stopCause: 'rejected', tokensGenerated: 0 });
    expect(record.error?.type).toBe(type);
  });

  it('429 carries retry-after and anthropic-ratelimit-* headers', async () => {
    const error = (await caught(
      anthropicCall(429, { 'x-fake-llm-retry-after': '7' }),
    )) as InstanceType<typeof Anthropic.RateLimitError>;
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(error.headers?.get('retry-after')).toBe('7');
    expect(error.headers?.get('anthropic-ratelimit-requests-remaining')).toBe('0');
    expect(
      Date.parse(error.headers?.get('anthropic-ratelimit-requests-reset') ?? ''),
    ).toBeGreaterThan(Date.now());
    expect(error.headers?.get('anthropic-ratelimit-tokens-limit')).toBe('100000');
  });

  it('missing max_tokens is a BadRequestError (invalid_request_error)', async () => {
    const body = {
      model: 'claude-sonnet-4-6',
      messages,
    } as unknown as Anthropic.MessageCreateParamsNonStreaming;
    const error = (await caught(anthropic.messages.create(body))) as InstanceType<
      typeof Anthropic.APIError
    >;
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain('max_tokens: Field required');
  });

  it('an empty messages list is a BadRequestError', async () => {
    const error = await caught(
      anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 5, messages: [] }),
    );
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
  });

  it('an unparseable knob header is a BadRequestError naming the header', async () => {
    const error = await caught(anthropicCall('none', { 'x-fake-llm-tokens': 'lots' }));
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect((error as Error).message).toContain(
      'x-fake-llm-tokens: expected a non-negative integer',
    );
  });

  it('an unknown path is a NotFoundError', async () => {
    const error = (await caught(anthropic.models.list())) as InstanceType<
      typeof Anthropic.APIError
    >;
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect(error.type).toBe('not_found_error');
  });
});

describe('OpenAI SDK', () => {
  it.each([
    [401, OpenAI.AuthenticationError, 'invalid_api_key'],
    [403, OpenAI.PermissionDeniedError, 'model_not_allowed'],
    [404, OpenAI.NotFoundError, 'model_not_found'],
    [429, OpenAI.RateLimitError, 'rate_limit_exceeded'],
    [500, OpenAI.InternalServerError, null],
  ])('status %i raises %o with code %s', async (status, ErrorClass, code) => {
    const error = (await caught(openaiCall(status))) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.requestID).toMatch(/^req_/);
    expect(error.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
  });

  it('429 carries retry-after and x-ratelimit-* headers', async () => {
    const error = (await caught(
      openaiCall(429, { 'x-fake-llm-retry-after': '2' }),
    )) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.headers?.get('retry-after')).toBe('2');
    expect(error.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(error.headers?.get('x-ratelimit-reset-requests')).toBe('2s');
  });

  it('an unknown path is a NotFoundError in the OpenAI error shape', async () => {
    const error = (await caught(openai.models.list())) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.type).toBe('invalid_request_error');
  });

  it('stream_options without stream is a BadRequestError', async () => {
    const error = (await caught(
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream_options: { include_usage: true },
      }),
    )) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.param).toBe('stream_options');
  });
});

describe('apiKey option', () => {
  it('rejects a wrong key with 401 and accepts the right one, for both SDKs', async () => {
    const guarded = await startFakeLLM({ apiKey: 'sk-right', tokens: 3 });
    try {
      const wrongA = new Anthropic({ baseURL: guarded.url, apiKey: 'sk-wrong', maxRetries: 0 });
      const rightA = new Anthropic({ baseURL: guarded.url, apiKey: 'sk-right', maxRetries: 0 });
      const wrongO = new OpenAI({
        baseURL: `${guarded.url}/v1`,
        apiKey: 'sk-wrong',
        maxRetries: 0,
      });
      const rightO = new OpenAI({
        baseURL: `${guarded.url}/v1`,
        apiKey: 'sk-right',
        maxRetries: 0,
      });
      const body = { model: 'claude-sonnet-4-6', max_tokens: 10, messages };
      await expect(wrongA.messages.create(body)).rejects.toBeInstanceOf(
        Anthropic.AuthenticationError,
      );
      await expect(rightA.messages.create(body)).resolves.toMatchObject({ type: 'message' });
      const chat = { model: 'gpt-4o-mini', messages };
      await expect(wrongO.chat.completions.create(chat)).rejects.toBeInstanceOf(
        OpenAI.AuthenticationError,
      );
      await expect(rightO.chat.completions.create(chat)).resolves.toMatchObject({
        object: 'chat.completion',
      });
    } finally {
      await guarded.close();
    }
  });
});
