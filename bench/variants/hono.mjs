/**
 * Variants `bare-hono` and `web-memory` (BENCH_HONO=bare|metered): a Hono app on
 * `@hono/node-server`, Web-standard `Request` → `Response`.
 * - bare: Hono's own `streamSSE()`, one `delta` event per text chunk of the SDK's raw
 *   stream, each write awaited (Hono's backpressure), the upstream aborted on `onAbort`;
 *   nothing else — the baseline of the Web adapter.
 * - metered: `honoSSE()` from `@tokenmeter/web/hono` with the same settings as
 *   `tokenmeter-memory`, on the memory store.
 */
import { createServer } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { addStats, anthropic, listen, METERED, statsHandler } from './common.mjs';

const app = new Hono();
const outcomes = {};

if (process.env.BENCH_HONO === 'metered') {
  const { honoSSE } = await import('@tokenmeter/web/hono');
  const { createMemoryStore } = await import('@tokenmeter/store-memory');
  const store = createMemoryStore();
  app.post(
    '/chat',
    honoSSE({
      store,
      ...METERED,
      identify: (c) => {
        const user = c.req.header('x-user');
        return user ? { user } : undefined;
      },
      upstream: (_c, meter) =>
        anthropic.messages.create(
          { messages: meter.body.messages, ...meter.params, stream: true },
          { signal: meter.signal },
        ),
      onSettle: ({ outcome }) => {
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      },
      logger: { warn: () => {}, error: (message) => console.error('error', message) },
    }),
  );
  addStats(() => ({ outcomes, store: 'memory' }));
} else {
  app.post('/chat', async (c) => {
    const body = await c.req.json();
    return streamSSE(c, async (stream) => {
      const controller = new AbortController();
      stream.onAbort(() => controller.abort());
      try {
        const upstream = await anthropic.messages.create(
          { model: body.model, max_tokens: body.max_tokens, messages: body.messages, stream: true },
          { signal: controller.signal },
        );
        for await (const event of upstream) {
          if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
            await stream.writeSSE({
              event: 'delta',
              data: JSON.stringify({ text: event.delta.text }),
            });
            if (stream.aborted) break;
          }
        }
        if (!stream.aborted) await stream.writeSSE({ event: 'done', data: '{}' });
      } catch (error) {
        if (!stream.aborted) {
          await stream.writeSSE({
            event: 'error',
            data: JSON.stringify({ message: String(error?.message) }),
          });
        }
      }
    });
  });
}

const honoListener = getRequestListener(app.fetch);
listen(
  createServer((req, res) => {
    if (req.url?.startsWith('/__stats')) statsHandler(req, res);
    else honoListener(req, res);
  }),
);
