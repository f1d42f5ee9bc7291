/** Test helper: a client that reads an SSE response at ~10 KB/s, to hold a stream back. */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { FakeLLM, RequestRecord } from '@tokenmeter/testkit';

/**
 * Opens a stream for `planned` tokens (one per delta) and reads 1 KB every 100 ms until the
 * fake's generation stops moving for a second with a write blocked (every socket buffer
 * between the reader and the fake is full) or the answer complete, or `deadlineMs` (15 s)
 * pass. A pause alone is not enough: on a busy machine the process may just be starved.
 */
export async function slowRead(
  fake: FakeLLM,
  url: string,
  body: object,
  planned: number,
  headers: Record<string, string>,
  deadlineMs = 15_000,
): Promise<{ res: IncomingMessage; received: number; record: RequestRecord }> {
  const target = new URL(url);
  const payload = JSON.stringify(body);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-fake-llm-tokens': String(planned),
          'x-fake-llm-chunk': '1',
          'content-length': Buffer.byteLength(payload),
          ...headers,
        },
      },
      resolve,
    );
    req.on('error', reject);
    req.end(payload);
  });
  res.pause();
  let received = 0;
  let last = -1;
  let stableSince = performance.now();
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    received += (res.read(1024) as Buffer | null)?.length ?? 0;
    const record = fake.lastRequest;
    const generated = record?.tokensGenerated ?? 0;
    if (generated !== last) {
      last = generated;
      stableSince = performance.now();
    } else if (
      performance.now() - stableSince > 1_000 &&
      // Held back (a write blocked) or done: a pause of a starved process is neither.
      ((record?.writesBlocked ?? 0) > 0 || generated >= planned || record?.endedAt !== undefined)
    ) {
      break;
    }
  }
  return { res, received, record: fake.lastRequest! };
}
