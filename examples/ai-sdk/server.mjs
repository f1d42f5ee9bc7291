// @ts-check
/**
 * tokenmeter with the Vercel AI SDK: `POST /api/chat` returns `streamText()` (from
 * `@ai-sdk/anthropic`) to costTrackedSSE(), which meters it against a per-user daily
 * budget and answers in the AI SDK's UI message stream protocol — what `useChat()` reads.
 * The page at / is framework-free: the AI SDK's own `DefaultChatTransport` and
 * `readUIMessageStream`, bundled for the browser with esbuild when the server starts.
 *
 *   npm run --workspace examples example:ai-sdk      # then open http://127.0.0.1:3000
 *
 * With ANTHROPIC_API_KEY set it calls the Anthropic API (ANTHROPIC_BASE_URL is honoured,
 * written as for the Anthropic SDK: without /v1); without, the testkit's fake Claude
 * answers in this process.
 */
import { fileURLToPath } from 'node:url';
import { createAnthropic } from '@ai-sdk/anthropic';
import { TokenmeterError, uiMessageStreamEncoder, usd } from '@tokenmeter/core';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { convertToModelMessages, streamText } from 'ai';
import { build } from 'esbuild';
import express from 'express';

const MODEL = 'claude-haiku-4-5';
const MAX_TOKENS = 1_024;

/** Bearer key → user and daily budget: stands in for your real auth and plans. */
const USERS = new Map([
  ['key-ada', { id: 'ada', dailyUsd: '1.00' }],
  ['key-bob', { id: 'bob', dailyUsd: '0.006' }],
]);
const BUDGETS = new Map([...USERS.values()].map((u) => [u.id, u.dailyUsd]));

const anthropic = await anthropicProvider();
const store = createMemoryStore();
const page = await bundlePage();

/** @param {import('node:http').IncomingMessage} req */
function userOf(req) {
  const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  return key ? USERS.get(key)?.id : undefined;
}

const app = express();
app.get('/chat.js', (_req, res) => {
  res.type('text/javascript').set('cache-control', 'no-store').send(page);
});
app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url))));

app.post(
  '/api/chat',
  express.json({ limit: '256kb' }),
  costTrackedSSE({
    store,
    identify: (req) => {
      const user = userOf(req);
      return user ? { user } : undefined; // 401 when undefined
    },
    budgets: { user: (id) => ({ limitUsd: BUDGETS.get(id) ?? '0', period: 'day' }) },
    rateLimits: { user: [{ kind: 'requests', limit: 20, windowMs: 60_000 }] },
    encoder: uiMessageStreamEncoder,
    // The transport posts { id, messages: UIMessage[], trigger, messageId }: say what will
    // be called, and give the text that goes to the model for the input estimate.
    request: (req) => ({
      model: MODEL,
      maxTokens: MAX_TOKENS,
      provider: 'anthropic',
      input: { messages: promptOf(req.body) },
    }),
    upstream: async (req, meter) =>
      streamText({
        model: anthropic(meter.model),
        messages: await convertToModelMessages(
          /** @type {{ messages: import('ai').UIMessage[] }} */ (req.body).messages,
        ),
        maxOutputTokens: meter.maxTokens, // without it the AI SDK asks for the model's maximum
        abortSignal: meter.signal, // Stop, a closed tab or a budget cut ends the provider call
        maxRetries: 0, // one provider call per reservation
        onError: () => {}, // tokenmeter reports the failure (the AI SDK would also log it)
      }),
    onSettle: ({ scopes, model, outcome, final }) => {
      console.log(
        `ai-sdk: settled ${scopes.map((s) => `${s.kind}=${s.id}`).join(' ')} model=${model} ` +
          `output=${final.usage.outputTokens} costNanos=${final.costNanos} ` +
          `${final.estimated ? 'estimated' : 'exact'} outcome=${outcome}`,
      );
    },
  }),
);

// The page shows the budget before the first answer and after a Stop (whose final figures
// never reach it: the connection is gone).
app.get('/api/budget', async (req, res) => {
  const user = userOf(req);
  if (!user) {
    res.status(401).json({ error: { code: 'unauthenticated', message: 'Unknown key.' } });
    return;
  }
  const { budget } = await store.getState(
    { kind: 'user', id: user },
    { budget: { limitNanos: usd(BUDGETS.get(user) ?? '0'), period: 'day' } },
  );
  res.set('cache-control', 'no-store').json({ user, budget });
});

/**
 * The text of a UI message history, as `{ role, content }` for the input estimate. Only
 * what the estimate can see goes through: user text, and the assistant's text and
 * reasoning (its `data-tokenmeter` and `step-start` parts are not sent to the model).
 * Anything else (files, tools, another role) is a 400 here: it would reach the provider
 * without being reserved for.
 * @param {unknown} body
 */
function promptOf(body) {
  const messages = /** @type {{ messages?: unknown } | null | undefined} */ (body)?.messages;
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > 200) {
    throw new TokenmeterError('invalid_argument', 'messages must be 1 to 200 UI messages.');
  }
  return messages.map((message) => {
    const { role, parts } = /** @type {{ role?: unknown, parts?: unknown }} */ (message ?? {});
    if ((role !== 'user' && role !== 'assistant') || !Array.isArray(parts)) {
      throw new TokenmeterError('invalid_argument', 'Each message needs a role and parts.');
    }
    let content = '';
    for (const part of parts) {
      const { type, text } = /** @type {{ type?: unknown, text?: unknown }} */ (part ?? {});
      const sent = type === 'text' || (role === 'assistant' && type === 'reasoning');
      const dropped = role === 'assistant' && (type === 'step-start' || type === 'data-tokenmeter');
      if (sent && typeof text === 'string') content += text;
      else if (!dropped) {
        throw new TokenmeterError('invalid_argument', `A ${role} message cannot hold ${type}.`);
      }
    }
    return { role, content };
  });
}

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  console.log(`ai-sdk: listening on http://127.0.0.1:${actual}`);
});
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * The page's script with `ai` bundled in, built in memory (nothing is written to disk).
 * @returns {Promise<string>}
 */
async function bundlePage() {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./client/chat.js', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  return result.outputFiles[0]?.text ?? '';
}

/**
 * Claude when ANTHROPIC_API_KEY is set; otherwise the testkit's fake in this process (a
 * production app would not have this branch).
 */
async function anthropicProvider() {
  const apiKey = process.env.ANTHROPIC_API_KEY;
  if (apiKey) {
    // The AI SDK's base URL includes /v1; ANTHROPIC_BASE_URL, as the Anthropic SDK and
    // the other examples read it, does not.
    const base = (process.env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com').replace(
      /\/+$/,
      '',
    );
    return createAnthropic({ apiKey, baseURL: base.endsWith('/v1') ? base : `${base}/v1` });
  }
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({ tps: 40, ttftMs: 300, text: 'plain', tokens: 120 });
  console.log(`ai-sdk: no ANTHROPIC_API_KEY, using the testkit's fake Claude at ${fake.url}`);
  return createAnthropic({ apiKey: 'fake-key', baseURL: `${fake.url}/v1` });
}
