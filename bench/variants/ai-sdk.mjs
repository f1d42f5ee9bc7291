/**
 * Variants `bare-ai-sdk` and `ai-sdk-memory` (BENCH_AI_SDK): the same answer through the
 * Vercel AI SDK (`streamText()` with `@ai-sdk/anthropic`), relayed as tokenmeter's `delta`
 * events like every other variant.
 * - `bare`: the AI SDK relay alone: `fullStream` text parts → `res.write()` with a wait on
 *   `'drain'`, `abortSignal` aborted when the client leaves (what an app without tokenmeter
 *   runs; the baseline of the AI SDK path);
 * - `metered`: `costTrackedSSE()` with the memory store and the same budget and limits as
 *   `tokenmeter-memory`, the `streamText()` result handed over as the source.
 */
import { createServer } from 'node:http';
import { createAnthropic } from '@ai-sdk/anthropic';
import { streamText } from 'ai';
import express from 'express';
import { drainOrClose } from './bare-relay.mjs';
import {
  addStats,
  deltaEvent,
  listen,
  METERED,
  SSE_HEADERS,
  settings,
  statsHandler,
} from './common.mjs';

const provider = createAnthropic({ baseURL: `${settings.upstreamUrl}/v1`, apiKey: 'bench' });
const call = (body, maxTokens, signal) =>
  streamText({
    model: provider(body.model),
    messages: body.messages,
    maxOutputTokens: maxTokens,
    abortSignal: signal,
    maxRetries: 0,
    onError: () => {},
  });

const app = express();
app.get('/__stats', statsHandler);

if (process.env.BENCH_AI_SDK === 'metered') {
  const { costTrackedSSE } = await import('@tokenmeter/express');
  const { createMemoryStore } = await import('@tokenmeter/store-memory');
  const store = createMemoryStore();
  const outcomes = {};
  app.post(
    '/chat',
    express.json(),
    costTrackedSSE({
      store,
      ...METERED,
      upstream: (req, meter) => call(req.body, meter.maxTokens, meter.signal),
      onSettle: ({ outcome }) => {
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      },
      logger: { warn: (m) => console.error('warn', m), error: (m) => console.error('error', m) },
    }),
  );
  addStats(() => ({ outcomes }));
  listen(createServer(app), () => store.shutdown());
} else {
  app.post('/chat', express.json(), async (req, res) => {
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) controller.abort();
    };
    res.on('close', onClose);
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    try {
      const result = call(req.body, req.body.max_tokens, controller.signal);
      for await (const part of result.fullStream) {
        if (part.type === 'text-delta') {
          if (!res.write(deltaEvent(part.text))) await drainOrClose(res);
          if (res.closed || res.destroyed) break;
        }
      }
      if (!res.closed && !res.destroyed) res.end('event: done\ndata: {}\n\n');
    } catch (error) {
      if (!res.closed && !res.destroyed) {
        res.end(`event: error\ndata: ${JSON.stringify({ message: String(error?.message) })}\n\n`);
      }
    } finally {
      res.off('close', onClose);
    }
  });
  listen(createServer(app));
}
