import { describe, expect, it } from 'vitest';
import { WebTransport } from './web-transport.js';

const text = new TextDecoder();
const kib = (n: number) => 'x'.repeat(n * 1024);

/** Opens a stream and returns its reader (the client side). */
async function opened(signal?: AbortSignal) {
  const transport = new WebTransport(signal);
  transport.open({ 'X-Request-Id': 'r1' }, 'event: meta\ndata: {}\n\n');
  const response = await transport.response;
  return { transport, response, reader: response.body!.getReader() };
}

describe('WebTransport', () => {
  it('opens with the SSE headers and the first event', async () => {
    const { response, reader } = await opened();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('x-request-id')).toBe('r1');
    const first = await reader.read();
    expect(text.decode(first.value)).toBe('event: meta\ndata: {}\n\n');
  });

  it('reports full at 16 KiB unread, and ready() resolves when the client pulls below it', async () => {
    const { transport, reader } = await opened();
    await reader.read(); // the first event
    expect(transport.write(kib(8))).toBe(true);
    expect(transport.write(kib(8))).toBe(false);
    expect(transport.full).toBe(true);
    let ready = false;
    const waiting = transport.ready().then(() => {
      ready = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(ready).toBe(false);
    expect(transport.waitingForClient).toBe(true);
    const chunk = await reader.read();
    expect(chunk.value!.length).toBe(8 * 1024);
    await waiting;
    expect(ready).toBe(true);
    expect(transport.full).toBe(false);
    expect(transport.backpressureWaits).toBe(1);
  });

  it('counts a stall from the first check while the client reads nothing, and resets on progress', async () => {
    const { transport, reader } = await opened();
    await reader.read();
    transport.write(kib(10));
    transport.write(kib(10));
    void transport.ready();
    expect(transport.stalledFor(1_000)).toBe(0);
    expect(transport.stalledFor(4_000)).toBe(3_000);
    await reader.read();
    expect(transport.stalledFor(5_000)).toBe(0);
  });

  it('delivers what is queued, then closes, when ended; finished once the client has it all', async () => {
    const { transport, reader } = await opened();
    transport.write('a');
    transport.end('b');
    expect(transport.closed).toBe(true);
    expect(transport.finished).toBe(false);
    let all = '';
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      all += text.decode(next.value);
    }
    expect(all).toBe('event: meta\ndata: {}\n\nab');
    expect(transport.finished).toBe(true);
  });

  it('a cancelled body is the client leaving: close listeners run once, a pending ready() resolves', async () => {
    const { transport, reader } = await opened();
    let closes = 0;
    transport.onClose(() => closes++);
    transport.write(kib(20));
    const waiting = transport.ready();
    await reader.cancel();
    await waiting;
    expect(closes).toBe(1);
    expect(transport.closed).toBe(true);
    expect(transport.write('more')).toBe(true);
    expect(closes).toBe(1);
  });

  it("the request's abort signal is the client leaving too", async () => {
    const controller = new AbortController();
    const { transport } = await opened(controller.signal);
    let closes = 0;
    transport.onClose(() => closes++);
    controller.abort();
    expect(closes).toBe(1);
    expect(transport.closed).toBe(true);
  });

  it('answers a whole response once, with Connection: close when the body was not read', async () => {
    const transport = new WebTransport();
    transport.closeAfterAnswer();
    transport.send(401, { 'Content-Type': 'application/json' }, '{"error":{}}');
    transport.send(500, {}, 'ignored');
    const response = await transport.response;
    expect(response.status).toBe(401);
    expect(response.headers.get('connection')).toBe('close');
    expect(await response.text()).toBe('{"error":{}}');
    expect(transport.headersSent).toBe(true);
  });

  it('destroy() errors the body: the client sees the stream fail, not end', async () => {
    const { transport, reader } = await opened();
    await reader.read();
    transport.destroy();
    await expect(reader.read()).rejects.toThrow(/destroyed/);
    expect(transport.finished).toBe(true);
  });
});
