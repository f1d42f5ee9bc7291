/**
 * Uploads from callers nobody identified: 200 uploads of 19 MiB (a nested-array body, the
 * worst to parse) with no valid key and the last byte withheld, while 100 metered streams
 * run through the same gateway process — on the Messages route, then on count_tokens. The
 * gateway answers each upload 401 from its headers and closes the connection without
 * reading the body, so the server's memory and event loop do not notice the attack, and
 * every honest stream completes. The figures the issue names (RSS growth, event-loop delay
 * p99) are measured by `npm run bench` (workload `abuse`); this test holds what a busy
 * machine cannot blur: the connections closed, the memory, the gateway's CPU time.
 *
 * The gateway runs in a process of its own (`fixtures/gateway-abuse-instance.mjs`) so its
 * RSS and event-loop delay are its own; the attackers and the fake upstream run here.
 */
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppProcess, startNodeApp } from '../helpers/processes.js';

const KEY = 'tm_abuse_honest_key';
const UPLOAD_BYTES = 19 * 1024 * 1024;
const UPLOADS = 200;
const STREAMS = 100;
/** One chunk the attackers send again and again: `[` nests an array per byte. */
const CHUNK = Buffer.alloc(64 * 1024, '[');

interface Stats {
  rss: number;
  peakRss: number;
  delayP99Ms: number;
  delayMaxMs: number;
  cpuMs: number;
  activeStreams: number;
}

let fake: FakeLLM;
let app: AppProcess;
let base: string;

beforeAll(async () => {
  // Paced: each honest stream runs ~2 s, so all of them are open while the uploads arrive.
  fake = await startFakeLLM({ tps: 100, tokens: 200, chunk: 20 });
  app = await startNodeApp(
    fileURLToPath(new URL('../fixtures/gateway-abuse-instance.mjs', import.meta.url)),
    { UPSTREAM_URL: fake.url, KEY },
  );
  base = `http://127.0.0.1:${app.port}`;
});

afterAll(async () => {
  await app?.stop();
  await fake?.close();
});

interface Upload {
  status: number | undefined;
  /** Body bytes the attacker managed to write before the server closed the connection. */
  sent: number;
  /** The server closed the connection (rather than waiting for the last byte). */
  closedByServer: boolean;
}

/** One attacker: headers that promise 19 MiB, then the body but its last byte, as fast as the socket takes it. */
function withheldUpload(path: string, key: string | undefined, giveUpMs: number): Promise<Upload> {
  return new Promise((resolve) => {
    const socket = connect(app.port, '127.0.0.1');
    let response = '';
    let sent = 0;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
      resolve({ status: match ? Number(match[1]) : undefined, sent, closedByServer });
    };
    const timer = setTimeout(() => finish(false), giveUpMs);
    socket.on('data', (data) => {
      response += data.toString('latin1');
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => {
      socket.write(
        `POST /llm${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${UPLOAD_BYTES}\r\n${key ? `x-api-key: ${key}\r\n` : ''}\r\n`,
      );
      const pump = () => {
        while (!done && sent < UPLOAD_BYTES - 1) {
          const n = Math.min(CHUNK.length, UPLOAD_BYTES - 1 - sent);
          sent += n;
          if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

/** One honest streamed answer through the gateway: true when it ended with message_stop. */
async function honestStream(): Promise<boolean> {
  const response = await fetch(`${base}/llm/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY },
    body: JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 1_000,
      stream: true,
      messages: [{ role: 'user', content: 'Tell me a long story.' }],
    }),
  });
  const text = await response.text();
  return response.status === 200 && text.includes('event: message_stop');
}

async function stats(reset = false): Promise<Stats> {
  const response = await fetch(`${base}/stats${reset ? '/reset' : ''}`, {
    method: reset ? 'POST' : 'GET',
  });
  return (await response.json()) as Stats;
}

describe('uploads from unidentified callers', () => {
  it.each([['/v1/messages'], ['/v1/messages/count_tokens']])(
    '%s: 200 withheld 19 MiB uploads beside 100 streams — memory and event loop unmoved, every stream completes',
    async (path) => {
      // Warm up: the streams' own memory is in the baseline, the attack's is what is measured.
      // Then the same streams alone, measured: what the machine does without the attack.
      expect(
        (await Promise.all(Array.from({ length: STREAMS }, honestStream))).every(Boolean),
      ).toBe(true);
      await stats(true);
      expect(
        (await Promise.all(Array.from({ length: STREAMS }, honestStream))).every(Boolean),
      ).toBe(true);
      const alone = await stats();
      const before = await stats(true);

      const uploads = Promise.all(
        Array.from({ length: UPLOADS }, (_, i) =>
          // Half send an unknown key, half none.
          withheldUpload(path, i % 2 === 0 ? `tm_stolen_${i}` : undefined, 60_000),
        ),
      );
      const streams = Promise.all(Array.from({ length: STREAMS }, honestStream));
      const [ups, completed] = await Promise.all([uploads, streams]);
      const after = await stats();

      const growthMb = (after.peakRss - before.rss) / 1e6;
      const answered401 = ups.filter((u) => u.status === 401).length;
      const meanSentMb = ups.reduce((sum, u) => sum + u.sent, 0) / ups.length / 1e6;
      console.log(
        `${path}: ${completed.filter(Boolean).length}/${STREAMS} streams completed; ` +
          `${answered401}/${UPLOADS} uploads answered 401, ${ups.filter((u) => u.closedByServer).length} closed by the server ` +
          `(mean ${meanSentMb.toFixed(2)} MB written of 19.9); RSS ${(before.rss / 1e6).toFixed(0)} MB, ` +
          `peak growth ${growthMb.toFixed(1)} MB; event-loop delay p99 ${after.delayP99Ms.toFixed(1)} ms, max ${after.delayMaxMs.toFixed(1)} ms ` +
          `(the streams alone: p99 ${alone.delayP99Ms.toFixed(1)} ms, max ${alone.delayMaxMs.toFixed(1)} ms); ` +
          `CPU ${after.cpuMs.toFixed(0)} ms (the streams alone: ${alone.cpuMs.toFixed(0)} ms)`,
      );

      expect(completed.every(Boolean)).toBe(true);
      // Nobody waited for the last byte: every upload was ended by the server.
      expect(ups.every((u) => u.closedByServer)).toBe(true);
      // The answer, where the client read it before the close, is the 401 (a client still
      // writing may see the reset first: how many do depends on the machine's timing).
      expect(ups.filter((u) => u.status !== undefined && u.status !== 401)).toEqual([]);
      expect(answered401).toBeGreaterThan(0);
      expect(growthMb).toBeLessThan(100);
      // The uploads cost the gateway next to no work: CPU time beside that of the streams
      // alone, measured in its process (the event-loop delay is logged; on a shared machine
      // it tells the scheduler's load as much as the gateway's, so the bench measures it).
      expect(after.cpuMs - alone.cpuMs).toBeLessThan(1_000);
      expect(after.activeStreams).toBe(0);
    },
    180_000,
  );
});
