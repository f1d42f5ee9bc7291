/**
 * A property, over bodies written as a hostile caller would write them: through either
 * gateway (OpenAI's Chat Completions and Responses routes both), in every reservation mode, for every catalogued model, a request is either
 * refused with a 4xx before anything is billed, or settles at or below what it reserved —
 * and what the provider billed is within that reservation and the caller's budget. The
 * fake provider bills the worst case: a token per byte of every string it reads.
 *
 * The generated bodies put blob-like and adversarial text in every string field (system,
 * messages, tool descriptions and inputs, tool results, schemas, unknown fields), add
 * documents by URL and files by id, server tools without limits, type-confused fields
 * (`stream: "true"`, `max_tokens: "100"`, `tools: {}`…), unpriced tiers, thinking
 * settings, and ask for whole-body and streamed answers.
 */

import { PricingCatalog, usd } from '@tokenmeter/core';
import { anthropicGateway, openaiGateway, type ReservationStrategy } from '@tokenmeter/express';
import { createMemoryStore, type MemoryStore } from '@tokenmeter/store-memory';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import express5 from 'express';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { billedNanos } from '../helpers/billing.js';
import { type Gateway, startGateway, waitForSettles } from '../helpers/gateway.js';

type Provider = 'anthropic' | 'openai';
/** The APIs a hostile caller can call: OpenAI's two through the same gateway. */
type Api = Provider | 'responses';
const PROVIDER_OF: Record<Api, Provider> = {
  anthropic: 'anthropic',
  openai: 'openai',
  responses: 'openai',
};
const PATH_OF: Record<Api, string> = {
  anthropic: '/v1/messages',
  openai: '/v1/chat/completions',
  responses: '/v1/responses',
};
const MODES: readonly ReservationStrategy[] = ['strict', 'fit', 'lease'];
const catalog = PricingCatalog.bundled();
const MODELS: Record<Provider, string[]> = {
  anthropic: catalog.modelIds().filter((id) => catalog.find(id)?.provider === 'anthropic'),
  openai: catalog.modelIds().filter((id) => catalog.find(id)?.provider === 'openai'),
};

let fake: FakeLLM;
const gateways = new Map<string, { gateway: Gateway; store: MemoryStore }>();
beforeAll(async () => {
  // The worst a tokenizer can do to any text: a token per byte.
  fake = await startFakeLLM({ tps: 0, chunk: 8, tokens: 40, seed: 3, inputCounting: 'bytes' });
  for (const provider of ['anthropic', 'openai'] as const) {
    for (const mode of MODES) {
      const store = createMemoryStore();
      const gateway = await startGateway(
        express5,
        provider === 'anthropic' ? anthropicGateway : openaiGateway,
        {
          apiKey: 'server-key',
          baseURL: provider === 'anthropic' ? fake.url : `${fake.url}/v1`,
          store,
          // Each caller's key names its budget: `<name>:<nano-dollars>`.
          identify: (key) => (key ? { user: key } : undefined),
          budgets: { user: (id) => ({ limitNanos: Number(id.split(':')[1]), period: 'day' }) },
          reservation: mode,
          forwardHeaders: ['x-fake-llm-*'],
        },
      );
      gateways.set(`${provider}:${String(mode)}`, { gateway, store });
    }
  }
});
afterAll(async () => {
  await Promise.all([...gateways.values()].map(({ gateway }) => gateway.close()));
  await fake?.close();
});

// ---- What a hostile caller writes ----------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Text shaped to tokenize badly, or to look like an attachment, or just anything. */
const hostileText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc
    .array(fc.constantFrom(...B64), { minLength: 1_024, maxLength: 4_000 })
    .map((chars) => chars.join('')),
  fc
    .array(fc.integer({ min: 0x3400, max: 0x4dbf }), { minLength: 100, maxLength: 1_500 })
    .map((codes) => String.fromCodePoint(...codes)),
  fc
    .array(fc.integer({ min: 1, max: 31 }), { minLength: 100, maxLength: 2_000 })
    .map((codes) => String.fromCharCode(...codes)),
);

/** A field of the wrong type, or of the right type and a hostile value. */
const confused = fc.oneof(
  fc.constant('true'),
  fc.constant(1),
  fc.constant(null),
  fc.constant({}),
  fc.constant([]),
  fc.integer({ min: -5, max: 10 ** 9 }),
  fc.double(),
);

function bodyOf(api: Api, model: string): fc.Arbitrary<Record<string, unknown>> {
  const maxTokens = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 20_000 }) },
    { weight: 1, arbitrary: confused },
  );
  const stream = fc.oneof(
    { weight: 6, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: confused },
  );
  const extra = fc.dictionary(
    fc.constantFrom('safeguards', 'x_future', 'hint', 'note'),
    fc.oneof(hostileText, confused),
    { maxKeys: 2 },
  );
  if (api === 'responses') return responsesBodyOf(model, { maxTokens, stream, extra });
  if (api === 'anthropic') {
    const block = fc.oneof(
      hostileText.map((text) => ({ type: 'text', text })),
      hostileText.map((q) => ({ type: 'tool_use', id: 't1', name: 'lookup', input: { q } })),
      hostileText.map((content) => ({ type: 'tool_result', tool_use_id: 't1', content })),
      fc.constant({ type: 'document', source: { type: 'url', url: 'https://x.example/a.pdf' } }),
      fc.constant({ type: 'document', source: { type: 'file', file_id: 'file_abc' } }),
      fc.constant({ type: 'image', source: { type: 'url', url: 'https://x.example/a.png' } }),
    );
    const tool = fc.oneof(
      hostileText.map((description) => ({
        name: 'lookup',
        description,
        input_schema: { type: 'object', description },
      })),
      fc.constant({ type: 'web_search_20250305', name: 'web_search' }),
      fc.constant({ type: 'web_fetch_20250910', name: 'web_fetch' }),
      fc.constant({ type: 'code_execution_20250825', name: 'code_execution' }),
    );
    return fc.record(
      {
        model: fc.constant(model),
        max_tokens: maxTokens,
        stream,
        system: hostileText,
        messages: fc
          .array(block, { minLength: 1, maxLength: 4 })
          .map((content) => [{ role: 'user', content }]),
        tools: fc.oneof({ weight: 4, arbitrary: fc.array(tool, { maxLength: 3 }) }, confused),
        thinking: fc.oneof(
          fc.constant({ type: 'adaptive', display: 'omitted' }),
          fc.constant({ type: 'enabled', budget_tokens: 2_048 }),
          confused,
        ),
        service_tier: fc.constantFrom('auto', 'standard_only', 'priority'),
        extra,
      },
      { requiredKeys: ['model', 'max_tokens', 'messages'] },
    );
  }
  const part = fc.oneof(
    hostileText.map((text) => ({ type: 'text', text })),
    fc.constant({ type: 'image_url', image_url: { url: 'https://x.example/a.png' } }),
    fc.constant({ type: 'file', file: { file_id: 'file-abc' } }),
  );
  return fc.record(
    {
      model: fc.constant(model),
      max_completion_tokens: maxTokens,
      stream,
      messages: fc
        .tuple(hostileText, fc.array(part, { minLength: 1, maxLength: 3 }))
        .map(([system, content]) => [
          { role: 'system', content: system },
          { role: 'user', content },
        ]),
      tools: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.array(
            hostileText.map((description) => ({
              type: 'function',
              function: { name: 'f', description, parameters: { type: 'object' } },
            })),
            { maxLength: 2 },
          ),
        },
        confused,
      ),
      response_format: hostileText.map((description) => ({
        type: 'json_schema',
        json_schema: { name: 'x', schema: { description } },
      })),
      service_tier: fc.constantFrom('auto', 'default', 'flex', 'priority', 'scale'),
      extra,
    },
    { requiredKeys: ['model', 'max_completion_tokens', 'messages'] },
  );
}

/**
 * A Responses API body: input items of every kind (text, images and files by URL or id,
 * tool calls and outputs, references to stored items), instructions, built-in tools with
 * and without fees, stored context, and the output limit often left out.
 */
function responsesBodyOf(
  model: string,
  parts: {
    maxTokens: fc.Arbitrary<unknown>;
    stream: fc.Arbitrary<unknown>;
    extra: fc.Arbitrary<Record<string, unknown>>;
  },
): fc.Arbitrary<Record<string, unknown>> {
  const item = fc.oneof(
    hostileText.map((text) => ({ role: 'user', content: [{ type: 'input_text', text }] })),
    hostileText.map((text) => ({ role: 'user', content: text })),
    hostileText.map((output) => ({ type: 'function_call_output', call_id: 'c1', output })),
    hostileText.map((args) => ({
      type: 'function_call',
      call_id: 'c1',
      name: 'f',
      arguments: args,
    })),
    fc.constant({
      role: 'user',
      content: [{ type: 'input_image', image_url: 'https://x.example/a.png' }],
    }),
    fc.constant({ role: 'user', content: [{ type: 'input_file', file_id: 'file-abc' }] }),
    fc.constant({ type: 'item_reference', id: 'msg_1' }),
  );
  const tool = fc.oneof(
    hostileText.map((description) => ({
      type: 'function',
      name: 'f',
      description,
      parameters: { type: 'object', description },
    })),
    fc.constant({ type: 'web_search' }),
    fc.constant({ type: 'web_search_preview' }),
    fc.constant({ type: 'file_search', vector_store_ids: ['vs_1'] }),
    fc.constant({ type: 'custom', name: 'apply_patch' }),
  );
  return fc.record(
    {
      model: fc.constant(model),
      max_output_tokens: parts.maxTokens,
      max_tool_calls: fc.oneof(fc.integer({ min: 1, max: 50 }), confused),
      stream: parts.stream,
      instructions: hostileText,
      input: fc.oneof(
        { weight: 4, arbitrary: fc.array(item, { minLength: 1, maxLength: 4 }) },
        hostileText,
      ),
      tools: fc.oneof({ weight: 4, arbitrary: fc.array(tool, { maxLength: 3 }) }, confused),
      previous_response_id: fc.constant('resp_abc'),
      reasoning: fc.constant({ effort: 'high', summary: 'auto' }),
      service_tier: fc.constantFrom('auto', 'default', 'flex', 'priority'),
      extra: parts.extra,
    },
    { requiredKeys: ['model', 'input'] },
  );
}

/** Flattens the generator's `extra` into top-level fields (unknown fields). */
function flatten(body: Record<string, unknown>): Record<string, unknown> {
  const { extra, ...rest } = body as { extra?: Record<string, unknown> };
  return { ...rest, ...extra };
}

// ---- One call and what must hold -------------------------------------------------------

let callers = 0;

async function check(
  api: Api,
  mode: ReservationStrategy,
  body: Record<string, unknown>,
  limitNanos: number,
) {
  const provider = PROVIDER_OF[api];
  const { gateway, store } = gateways.get(`${provider}:${String(mode)}`)!;
  const user = `caller${++callers}:${limitNanos}`;
  const before = gateway.settles.length;
  const seen = fake.requests.length;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (provider === 'anthropic') headers['x-api-key'] = user;
  else headers.authorization = `Bearer ${user}`;
  const response = await fetch(`${gateway.url}${PATH_OF[api]}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  const text = await response.text();
  // Refused (by the gateway or by the provider, free) or answered: never a server error.
  expect(response.status < 500, `${response.status} ${text.slice(0, 300)}`).toBe(true);
  // Token counts are free: the call is the one that is not a count.
  const called = fake.requests
    .slice(seen)
    .filter((r) => !r.path.endsWith('/count_tokens') && !r.path.endsWith('/input_tokens'));
  if (called.length === 0) return 'refused';
  const settles = (await waitForSettles(gateway, before + 1)).slice(before);
  expect(settles).toHaveLength(1);
  const settle = settles[0]!;
  const record = await fake.waitForRequest(called[0]!.id);
  const billed = record.status >= 400 ? 0 : billedNanos(record);
  expect(settle.final.costNanos, text.slice(0, 300)).toBeLessThanOrEqual(settle.reservedNanos);
  expect(billed).toBeLessThanOrEqual(settle.reservedNanos);
  const state = await store.getState(
    { kind: 'user', id: user },
    { budget: { limitNanos, period: 'day' } },
  );
  expect(state.budget!.spentNanos).toBeLessThanOrEqual(limitNanos);
  expect(billed).toBeLessThanOrEqual(limitNanos);
  return 'settled';
}

const limits = fc.oneof(
  fc.integer({ min: usd('0.0001'), max: usd('0.05') }),
  fc.integer({ min: usd('0.05'), max: usd('20') }),
);

describe('a hostile body settles within its reservation and its budget, or gets a 4xx', () => {
  for (const api of ['anthropic', 'openai', 'responses'] as const) {
    const models = MODELS[PROVIDER_OF[api]];
    it(`${api}: generated bodies, every mode, random models and budgets`, async () => {
      const outcomes = { refused: 0, settled: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...models).chain((model) => bodyOf(api, model)),
          fc.constantFrom(...MODES),
          limits,
          async (body, mode, limit) => {
            outcomes[await check(api, mode, flatten(body), limit)]++;
          },
        ),
        {
          numRuns: 300,
          seed: Number(
            process.env.TOKENMETER_PROPERTY_SEED ??
              { anthropic: 25, openai: 26, responses: 27 }[api],
          ),
        },
      );
      // The property is not vacuous: some calls were refused, some answered and settled.
      expect(outcomes.refused).toBeGreaterThan(10);
      expect(outcomes.settled).toBeGreaterThan(10);
    });

    it(`${api}: every catalogued model, one hostile body each, in every mode`, async () => {
      let settled = 0;
      for (const [i, model] of models.entries()) {
        const [body] = fc.sample(bodyOf(api, model), { seed: 100 + i, numRuns: 1 });
        // A well-formed call carrying the hostile text, so that each model is answered.
        const wellFormed = {
          ...flatten(body!),
          [{
            anthropic: 'max_tokens',
            openai: 'max_completion_tokens',
            responses: 'max_output_tokens',
          }[api]]: 300,
          stream: i % 2 === 0,
        };
        delete wellFormed.tools;
        delete wellFormed.thinking;
        delete wellFormed.service_tier;
        delete wellFormed.previous_response_id;
        if (api === 'responses')
          wellFormed.input = [{ role: 'user', content: String(body!.instructions) }];
        for (const mode of MODES) {
          if ((await check(api, mode, wellFormed, usd('5'))) === 'settled') settled++;
        }
      }
      expect(settled).toBeGreaterThan(models.length);
    });
  }
});
