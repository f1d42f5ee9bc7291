// @ts-check
/**
 * tokenmeter with the OpenAI SDK, on both of OpenAI's APIs: Chat Completions streamed with
 * `stream_options: { include_usage: true }`, so the final chunk carries the exact usage
 * (without it, OpenAI never sends usage on a stream and every charge is an estimate), and
 * the Responses API, whose last event always carries it.
 *
 *   npm run --workspace examples example:openai
 *   curl -N localhost:3000/api/chat -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"model":"gpt-5-mini","max_completion_tokens":300,"messages":[{"role":"user","content":"Hi"}]}'
 *   curl -N localhost:3000/api/responses -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"model":"gpt-5-mini","max_output_tokens":300,"input":"Hi"}'
 *
 * With OPENAI_API_KEY set it calls OpenAI (OPENAI_BASE_URL is honoured); without, the
 * OpenAI endpoint of the fake from @tokenmeter/testkit runs in this process.
 */
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import OpenAI from 'openai';

/** Bearer key → user id: stands in for your real auth. */
const KEYS = new Map([
  ['key-ada', 'u-ada'],
  ['key-grace', 'u-grace'],
]);

const openai = await openaiClient();
const app = express();

/**
 * What both routes share: one store, so a user's budget covers both APIs.
 * @satisfies {Partial<import('@tokenmeter/express').CostTrackedSSEOptions>}
 */
const metering = {
  store: createMemoryStore(),
  identify: (req) => {
    const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user = key && KEYS.get(key);
    return user ? { user } : undefined; // 401 when undefined
  },
  budgets: { user: { limitUsd: '1.00', period: 'day' } },
  rateLimits: { user: [{ kind: 'requests', limit: 30, windowMs: 60_000 }] },
  maxTokensLimit: 4_096,
  onSettle: ({ scopes, model, outcome, final }) => {
    console.log(
      `openai: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
        `output=${final.usage.outputTokens} costNanos=${final.costNanos} ${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
    );
  },
};

app.post(
  '/api/chat',
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    ...metering,
    // The default `request` reads an OpenAI body: model, max_completion_tokens (or
    // max_tokens) and messages; the provider is guessed from the model.
    upstream: (req, meter) => {
      const body = /** @type {{ messages: OpenAI.ChatCompletionMessageParam[] }} */ (req.body);
      return openai.chat.completions.create(
        {
          model: meter.model,
          max_completion_tokens: meter.maxTokens,
          messages: body.messages,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: meter.signal },
      );
    },
  }),
);

app.post(
  '/api/responses',
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    ...metering,
    // The default `request` reads a Responses body too (`input`, `max_output_tokens`): it
    // is admitted on the Responses API's terms.
    upstream: (req, meter) => {
      const body = /** @type {{ input: OpenAI.Responses.ResponseInput | string }} */ (req.body);
      return openai.responses.create(
        { model: meter.model, max_output_tokens: meter.maxTokens, input: body.input, stream: true },
        { signal: meter.signal },
      );
    },
  }),
);

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`openai: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/** OpenAI when OPENAI_API_KEY is set; otherwise the testkit's fake in this process. */
async function openaiClient() {
  if (process.env.OPENAI_API_KEY) return new OpenAI();
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`openai: no OPENAI_API_KEY, using the fake OpenAI endpoint at ${fake.url}/v1`);
  return new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'fake-key' });
}
