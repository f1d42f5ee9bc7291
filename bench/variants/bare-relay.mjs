/**
 * The bare relay both bare variants run: SSE headers, the upstream call through the
 * official SDK's raw stream (`stream: true`, like every other variant), one `delta` event
 * per text chunk, `res.write()` with a wait on `'drain'` or `'close'`, the upstream aborted
 * when the client leaves. Nothing else: no admission, no metering, no usage events — the
 * limit a metered relay is compared with.
 */
import { anthropic, deltaEvent, SSE_HEADERS } from './common.mjs';

const DONE = 'event: done\ndata: {}\n\n';

/** Resolves when `res` drained or closed (never on 'drain' alone: a closed socket never drains). */
export function drainOrClose(res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export async function bareRelay(body, res) {
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.on('close', onClose);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  try {
    const stream = await anthropic.messages.create(
      { model: body.model, max_tokens: body.max_tokens, messages: body.messages, stream: true },
      { signal: controller.signal },
    );
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        if (!res.write(deltaEvent(event.delta.text))) await drainOrClose(res);
        if (res.closed || res.destroyed) break;
      }
    }
    if (!res.closed && !res.destroyed) res.end(DONE);
  } catch (error) {
    if (!res.closed && !res.destroyed) {
      res.end(`event: error\ndata: ${JSON.stringify({ message: String(error?.message) })}\n\n`);
    }
  } finally {
    res.off('close', onClose);
  }
}
