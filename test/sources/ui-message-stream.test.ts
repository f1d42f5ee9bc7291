/**
 * The AI SDK's UI message stream protocol end to end: a route with
 * `encoder: uiMessageStreamEncoder` and a `streamText()` upstream, read by the AI SDK's
 * own client (`DefaultChatTransport` → `readUIMessageStream`, what `useChat` runs):
 * - the message's text is the provider's answer exactly (adversarial text included);
 * - tokenmeter's figures arrive as the `data-tokenmeter` part and the message metadata,
 *   equal to the settlement and to a hand computation — on a budget cut-off too;
 * - model text cannot forge a part, a cost or the end of the stream;
 * - a rejection comes before any byte, as JSON the transport reports.
 */

import { createAnthropic } from '@ai-sdk/anthropic';
import { type MeterEvent, TOKENMETER_DATA_PART_ID, uiMessageStreamEncoder } from '@tokenmeter/core';
import type { MeteredRequest, MeteredStream } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import {
  convertToModelMessages,
  DefaultChatTransport,
  jsonSchema,
  readUIMessageStream,
  streamText,
  tool,
  type UIMessage,
} from 'ai';
import express from 'express';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { anthropicClient, identifyByHeader, startApp, type TestApp } from '../helpers/app.js';
import { knobHeaders } from '../helpers/upstream.js';

const SONNET_4_6 = { input: 3_000, output: 15_000 };

interface TokenmeterData {
  final?: boolean;
  costNanos?: number;
  costUsd?: number;
  estimated: boolean;
  code?: string;
  limit?: string;
  outputTokens?: number;
  budget?: { remainingUsd: number } | null;
}

type Message = UIMessage<{ tokenmeter?: TokenmeterData & { requestId?: string } }>;

let fake: FakeLLM;
let app: TestApp;
let store: MemoryStore;

beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, chunk: 3, tokens: 60, seed: 21 });
});
afterAll(() => fake.close());
afterEach(async () => {
  await app?.close();
  await store?.shutdown?.();
  fake.reset();
});

/** The user's text of a UI message history, for the admission estimate. */
function promptOf(req: MeteredRequest) {
  const messages = (req.body as { messages: UIMessage[] }).messages;
  return {
    messages: messages.map((m) => ({
      role: m.role,
      content: m.parts.map((p) => (p.type === 'text' ? p.text : '')).join(''),
    })),
  };
}

async function start(options: {
  upstream?: (req: MeteredRequest, meter: MeteredStream) => unknown;
  middleware?: Record<string, unknown>;
}): Promise<void> {
  store = createMemoryStore();
  const anthropic = createAnthropic({ baseURL: `${fake.url}/v1`, apiKey: 'test-key' });
  app = await startApp({
    express,
    middleware: {
      store,
      identify: identifyByHeader,
      budgets: { user: { limitUsd: '5.00', period: 'day' } },
      encoder: uiMessageStreamEncoder,
      request: (req) => ({
        model: 'claude-sonnet-4-6',
        maxTokens: 1_024,
        provider: 'anthropic',
        input: promptOf(req),
      }),
      upstream:
        options.upstream ??
        (async (req, meter) =>
          streamText({
            model: anthropic(meter.model),
            messages: await convertToModelMessages(
              (req.body as { messages: UIMessage[] }).messages,
            ),
            maxOutputTokens: meter.maxTokens,
            headers: knobHeaders(req),
            abortSignal: meter.signal,
            maxRetries: 0,
            onError: () => {},
          })),
      ...options.middleware,
    },
  });
}

/** What useChat does: send the history through the transport, read the message stream. */
async function chat(headers: Record<string, string>, text = 'Schreib mir ein Gedicht 🌊') {
  const transport = new DefaultChatTransport<Message>({ api: app.url, headers });
  const messages: Message[] = [{ id: 'u1', role: 'user', parts: [{ type: 'text', text }] }];
  const stream = await transport.sendMessages({
    trigger: 'submit-message',
    chatId: 'chat-1',
    messageId: undefined,
    messages,
    abortSignal: undefined,
  });
  let last: Message | undefined;
  const errors: unknown[] = [];
  for await (const message of readUIMessageStream<Message>({
    stream,
    onError: (error) => errors.push(error),
  })) {
    last = message;
  }
  return { message: last!, errors };
}

const textOf = (m: Message) => m.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
const dataPart = (m: Message) =>
  m.parts.find((p) => p.type === 'data-tokenmeter') as
    | { type: 'data-tokenmeter'; id: string; data: TokenmeterData }
    | undefined;

describe('useChat reads a metered stream', () => {
  it('reconstructs the exact text and sees the final cost, equal to the settlement and by hand', async () => {
    await start({});
    const { message, errors } = await chat({
      'x-user': 'ana',
      'x-fake-llm-text': 'mixed',
      'x-fake-llm-input-tokens': '321',
    });
    expect(errors).toEqual([]);
    const record = fake.lastRequest!;
    expect(textOf(message)).toBe(record.text);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('completed');
    const hand = 321 * SONNET_4_6.input + record.usage!.outputTokens * SONNET_4_6.output;
    expect(settle!.final.costNanos).toBe(hand);
    // One data part, updated in place to the final figures.
    expect(message.parts.filter((p) => p.type === 'data-tokenmeter')).toHaveLength(1);
    const data = dataPart(message)!;
    expect(data.id).toBe(TOKENMETER_DATA_PART_ID);
    expect(data.data).toMatchObject({ final: true, costNanos: hand, estimated: false });
    expect(message.metadata?.tokenmeter).toMatchObject({ costNanos: hand, estimated: false });
    expect(message.metadata?.tokenmeter?.budget?.remainingUsd).toBe((5e9 - hand) / 1e9);
    expect(message.id).toBe(settle!.requestId);
  });

  it("the next turn sends the answer back to the model without tokenmeter's figures", async () => {
    await start({});
    const first = await chat({ 'x-user': 'two' }, 'Erste Frage');
    const transport = new DefaultChatTransport<Message>({
      api: app.url,
      headers: { 'x-user': 'two' },
    });
    const stream = await transport.sendMessages({
      trigger: 'submit-message',
      chatId: 'chat-1',
      messageId: undefined,
      messages: [
        { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Erste Frage' }] },
        first.message,
        { id: 'u2', role: 'user', parts: [{ type: 'text', text: 'Zweite Frage' }] },
      ],
      abortSignal: undefined,
    });
    for await (const _ of readUIMessageStream<Message>({ stream })) {
      // read to the end
    }
    const sent = JSON.stringify(fake.lastRequest!.body);
    expect(sent).toContain(JSON.stringify(textOf(first.message)).slice(1, -1));
    expect(sent).not.toContain('tokenmeter');
    expect(sent).not.toContain('costNanos');
  });

  it.each(['AI SDK (tool without execute)', 'raw Anthropic stream', 'raw OpenAI stream'] as const)(
    'a tool the page runs arrives as a tool part with its input: %s',
    async (source) => {
      const anthropic = createAnthropic({ baseURL: `${fake.url}/v1`, apiKey: 'test-key' });
      const messages = [{ role: 'user' as const, content: 'Wetter in Paris?' }];
      const schema = { type: 'object' as const, properties: {} };
      await start({
        middleware: {
          request: (req: MeteredRequest) => ({
            model: source === 'raw OpenAI stream' ? 'gpt-4o-mini' : 'claude-sonnet-4-6',
            maxTokens: 1_024,
            input: promptOf(req),
          }),
        },
        upstream: (req, meter) => {
          const options = { signal: meter.signal, headers: knobHeaders(req) };
          if (source === 'raw Anthropic stream') {
            return anthropicClient(fake.url).messages.create(
              {
                model: meter.model,
                max_tokens: meter.maxTokens,
                messages,
                tools: [{ name: 'get_weather', input_schema: schema }],
                tool_choice: { type: 'tool', name: 'get_weather' },
                stream: true,
              },
              options,
            );
          }
          if (source === 'raw OpenAI stream') {
            const openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'k', maxRetries: 0 });
            return openai.chat.completions.create(
              {
                model: meter.model,
                max_completion_tokens: meter.maxTokens,
                messages,
                tools: [
                  { type: 'function', function: { name: 'get_weather', parameters: schema } },
                ],
                tool_choice: { type: 'function', function: { name: 'get_weather' } },
                stream: true,
                stream_options: { include_usage: true },
              },
              options,
            );
          }
          return streamText({
            model: anthropic(meter.model),
            messages,
            tools: { get_weather: tool({ inputSchema: jsonSchema(schema) }) },
            toolChoice: { type: 'tool', toolName: 'get_weather' },
            maxOutputTokens: meter.maxTokens,
            headers: knobHeaders(req),
            abortSignal: meter.signal,
            maxRetries: 0,
          });
        },
      });
      const { message, errors } = await chat({ 'x-user': 'tools', 'x-fake-llm-tool-tokens': '20' });
      expect(errors).toEqual([]);
      const record = await fake.waitForRequest(fake.lastRequest!.id);
      const call = message.parts.find((p) => p.type === 'tool-get_weather') as
        | { toolCallId: string; state: string; input: unknown }
        | undefined;
      expect(call).toBeDefined();
      expect(call!.state).toBe('input-available');
      expect(call!.input).toEqual(JSON.parse(record.toolInput));
      expect(call!.toolCallId).toMatch(/\S/);
      // Priced with the tool input as output, as the provider billed it.
      const [settle] = await app.waitForSettles(1);
      expect(settle!.final.estimated).toBe(false);
      expect(settle!.final.usage.outputTokens).toBe(record.usage!.outputTokens);
      expect(message.metadata?.tokenmeter?.costNanos).toBe(settle!.final.costNanos);
    },
  );

  it('streams reasoning as a reasoning part before the answer', async () => {
    const anthropic = createAnthropic({ baseURL: `${fake.url}/v1`, apiKey: 'test-key' });
    await start({
      upstream: async (req, meter) =>
        streamText({
          model: anthropic(meter.model),
          messages: await convertToModelMessages((req.body as { messages: UIMessage[] }).messages),
          maxOutputTokens: meter.maxTokens - 512,
          providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 512 } } },
          headers: knobHeaders(req),
          abortSignal: meter.signal,
          maxRetries: 0,
        }),
    });
    const { message } = await chat({ 'x-user': 'rea', 'x-fake-llm-thinking-tokens': '24' });
    const record = fake.lastRequest!;
    const kinds = message.parts.map((p) => p.type).filter((t) => t !== 'step-start');
    expect(kinds).toEqual(['reasoning', 'text', 'data-tokenmeter']);
    const reasoning = message.parts.find((p) => p.type === 'reasoning') as { text: string };
    expect(reasoning.text).toBe(record.thinking);
    expect(textOf(message)).toBe(record.text);
  });

  it('model text cannot forge a part, a cost or the end of the stream', async () => {
    const hostile = [
      '"}\n\ndata: {"type":"data-tokenmeter","id":"tokenmeter","data":{"costNanos":0,"final":true}}\n\n',
      'data: {"type":"finish"}\n\ndata: [DONE]\n\n',
      '\r\ndata: {"type":"text-delta","id":"text-0","delta":"FORGED"}\r\n\r\n',
      '\u2028\u2029 \\"}] 🧨 لا \u0000',
    ];
    const text = hostile.join('');
    await start({
      upstream: () =>
        (async function* () {
          yield { type: 'start', provider: 'anthropic', usage: { ...zeroUsage, inputTokens: 10 } };
          for (const piece of hostile) yield { type: 'text', text: piece } satisfies MeterEvent;
          yield {
            type: 'usage',
            usage: { ...zeroUsage, inputTokens: 10, outputTokens: 40 },
            final: true,
          } satisfies MeterEvent;
          yield { type: 'stop', reason: 'end_turn' } satisfies MeterEvent;
        })(),
    });
    const { message, errors } = await chat({ 'x-user': 'eve' });
    expect(errors).toEqual([]);
    expect(textOf(message)).toBe(text);
    const hand = 10 * SONNET_4_6.input + 40 * SONNET_4_6.output;
    expect(message.parts.filter((p) => p.type === 'data-tokenmeter')).toHaveLength(1);
    expect(dataPart(message)!.data.costNanos).toBe(hand);
    expect(message.metadata?.tokenmeter?.costNanos).toBe(hand);
  });

  it('a budget cut-off keeps the text so far and reports what it cost and why it stopped', async () => {
    await start({ middleware: { maxCostPerRequestUsd: '0.003' } });
    const { message, errors } = await chat({
      'x-user': 'cut',
      'x-fake-llm-tokens': '900',
      'x-fake-llm-input-tokens': '100',
    });
    expect(errors).toHaveLength(1);
    const [settle] = await app.waitForSettles(1);
    expect(settle!.outcome).toBe('budget_exceeded');
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.text.startsWith(textOf(message))).toBe(true);
    expect(textOf(message).length).toBeGreaterThan(0);
    const data = dataPart(message)!.data;
    expect(data).toMatchObject({
      final: true,
      code: 'budget_exceeded',
      limit: 'max_cost_per_request',
      costNanos: settle!.final.costNanos,
      estimated: true,
    });
    // The cap, plus what was in flight when the cut reached it (one 3-token chunk, counted
    // on the conservative bound), as the README states for every source.
    expect(data.costNanos).toBeLessThanOrEqual(3_000_000 + 8 * SONNET_4_6.output);
    expect(message.metadata?.tokenmeter).toMatchObject({
      code: 'budget_exceeded',
      costNanos: settle!.final.costNanos,
    });
  });

  it('a rejection comes before any byte: the transport reports the JSON answer', async () => {
    await start({ middleware: { budgets: { user: { limitUsd: '0.000001', period: 'day' } } } });
    const requests = fake.requests.length;
    const error = await chat({ 'x-user': 'poor' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(JSON.parse((error as Error).message)).toMatchObject({
      error: { code: 'budget_exceeded' },
    });
    expect(fake.requests.length).toBe(requests);
  });

  it('sends the protocol header the AI SDK client checks', async () => {
    await start({});
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user': 'hdr' },
      body: JSON.stringify({
        messages: [{ id: 'u', role: 'user', parts: [{ type: 'text', text: 'hi' }] }],
      }),
    });
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const body = await response.text();
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

const zeroUsage = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWrite5mTokens: 0,
  cacheWrite1hTokens: 0,
  reasoningTokens: 0,
  webSearchRequests: 0,
  webFetchRequests: 0,
};
