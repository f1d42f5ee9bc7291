// @ts-check
/**
 * tokenmeter with LangChain.js: the route's upstream is a `ChatAnthropic` model's
 * `.stream()`, handed to costTrackedSSE() as it is. The stream's chunks carry the text and
 * the provider's usage, so the charge is the exact one; the answer goes out in tokenmeter's
 * own SSE protocol (`meta`, `delta`, `usage`, `done` / `error`).
 *
 *   npm run --workspace examples example:langchain
 *   curl -N localhost:3000/api/chat -H 'authorization: Bearer key-ada' -H 'content-type: application/json' \
 *     -d '{"messages":[{"role":"user","content":"Hi"}]}'
 *
 * With ANTHROPIC_API_KEY set it calls the Anthropic API (ANTHROPIC_BASE_URL is honoured);
 * without, the testkit's fake Claude answers in this process.
 */
import { ChatAnthropic } from '@langchain/anthropic';
import { TokenmeterError } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';

const MODEL = 'claude-haiku-4-5';
const DEFAULT_MAX_TOKENS = 512;
const SYSTEM = 'You are a concise assistant.';

/** Bearer key → user id: stands in for your real auth. */
const KEYS = new Map([
  ['key-ada', 'u-ada'],
  ['key-grace', 'u-grace'],
]);

const anthropic = await anthropicSettings();
const app = express();

app.post(
  '/api/chat',
  express.json({ limit: '64kb' }),
  costTrackedSSE({
    store: createMemoryStore(),
    identify: (req) => {
      const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const user = key && KEYS.get(key);
      return user ? { user } : undefined; // 401 when undefined
    },
    budgets: { user: { limitUsd: '1.00', period: 'day' } },
    rateLimits: { user: [{ kind: 'requests', limit: 30, windowMs: 60_000 }] },
    maxTokensLimit: 2_048,
    // The body is `{ messages: [{ role, content }], max_tokens? }`; the model is the
    // server's choice. The input estimate sees what the model will be sent.
    request: (req) => {
      const { messages, max_tokens } = chatBody(req.body);
      return {
        model: MODEL,
        maxTokens: max_tokens ?? DEFAULT_MAX_TOKENS,
        provider: 'anthropic',
        input: { system: SYSTEM, messages },
      };
    },
    upstream: (req, meter) => {
      const model = new ChatAnthropic({
        ...anthropic,
        model: meter.model,
        maxTokens: meter.maxTokens, // what was reserved for
        maxRetries: 0, // one provider call per reservation
      });
      const { messages } = chatBody(req.body);
      // Stop, a closed connection or a budget cut aborts the provider call.
      return model.stream([{ role: 'system', content: SYSTEM }, ...messages], {
        signal: meter.signal,
      });
    },
    onSettle: ({ scopes, model, outcome, final }) => {
      console.log(
        `langchain: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
          `output=${final.usage.outputTokens} costNanos=${final.costNanos} ` +
          `${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
      );
    },
  }),
);

/**
 * The request body, checked: user and assistant turns of plain text (400 otherwise).
 * @param {unknown} body
 * @returns {{ messages: Array<{ role: 'user' | 'assistant', content: string }>, max_tokens?: number }}
 */
function chatBody(body) {
  const { messages, max_tokens } = /** @type {{ messages?: unknown, max_tokens?: unknown }} */ (
    body ?? {}
  );
  if (
    !Array.isArray(messages) ||
    messages.length === 0 ||
    messages.length > 100 ||
    !messages.every(
      (m) =>
        (m?.role === 'user' || m?.role === 'assistant') &&
        typeof m.content === 'string' &&
        m.content !== '',
    )
  ) {
    throw new TokenmeterError(
      'invalid_argument',
      'messages must be 1 to 100 { role: "user" | "assistant", content: "…" } turns.',
    );
  }
  if (max_tokens !== undefined && !(Number.isSafeInteger(max_tokens) && Number(max_tokens) > 0)) {
    throw new TokenmeterError('invalid_argument', 'max_tokens must be a positive integer.');
  }
  return max_tokens === undefined ? { messages } : { messages, max_tokens: Number(max_tokens) };
}

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`langchain: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * Claude when ANTHROPIC_API_KEY is set; otherwise the testkit's fake in this process (a
 * production app would not have this branch).
 * @returns {Promise<{ apiKey: string, anthropicApiUrl?: string }>}
 */
async function anthropicSettings() {
  const apiKey = process.env.ANTHROPIC_API_KEY;
  if (apiKey) {
    const url = process.env.ANTHROPIC_BASE_URL;
    return url ? { apiKey, anthropicApiUrl: url } : { apiKey };
  }
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`langchain: no ANTHROPIC_API_KEY, using the testkit's fake Claude at ${fake.url}`);
  return { apiKey: 'fake-key', anthropicApiUrl: fake.url };
}
