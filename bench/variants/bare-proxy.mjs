/**
 * Variant `bare-proxy` (and `bare-proxy-chat`, `bare-proxy-responses`): the passthrough
 * baseline of the gateway — an Express 5 route that forwards the body to the upstream's
 * provider API (`BENCH_API`: `/v1/messages`, `/v1/chat/completions`, `/v1/responses`) with
 * fetch and pipes the answer back (backpressure by `pipe`, the upstream aborted when the
 * client leaves). No identity, no metering, no parsing of events. The loadgen's request
 * (`POST /chat`, `x-user`) is mapped to the API exactly as the gateway variant maps it, so
 * both pay the same.
 */
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import express from 'express';
import { listen, PROVIDER_API, settings, statsHandler } from './common.mjs';

const app = express();
app.get('/__stats', statsHandler);
app.post('/chat', express.json(), async (req, res) => {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  try {
    const upstream = await fetch(`${settings.upstreamUrl}${PROVIDER_API.path}`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', ...PROVIDER_API.headers },
      body: JSON.stringify(PROVIDER_API.body(req.body)),
    });
    res.writeHead(upstream.status, {
      'content-type': upstream.headers.get('content-type') ?? 'text/event-stream',
    });
    Readable.fromWeb(upstream.body)
      .on('error', () => res.destroy())
      .pipe(res);
  } catch {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  }
});
listen(createServer(app));
