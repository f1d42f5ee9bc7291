/**
 * Workload `abuse`: uploads from callers nobody identified, beside honest streams. A gateway
 * (anthropicGateway() on a memory store, in a process of its own: the test fixture
 * `test/fixtures/gateway-abuse-instance.mjs`) in front of the bench's fake upstream gets
 * `uploads` connections that promise 19 MiB bodies of nested `[` with no valid key and
 * withhold the last byte, while `streams` honest streams run through it — on the Messages
 * route, then on count_tokens. Per round, measured in the gateway's process: peak RSS over
 * the baseline, event-loop delay p99 and max, CPU time; and the same streams alone just
 * before, so what the attack adds is told apart from what the machine does anyway.
 */
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnChild, stopChild, waitForLine } from './processes.mjs';

const SERVER = fileURLToPath(
  new URL('../../test/fixtures/gateway-abuse-instance.mjs', import.meta.url),
);
const KEY = 'tm_bench_honest_key';
const UPLOAD_BYTES = 19 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, '[');
const ROUTES = ['/v1/messages', '/v1/messages/count_tokens'];

/** One attacker: headers promising 19 MiB, then the body but its last byte. */
function withheldUpload(port, path, key) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let head = '';
    let sent = 0;
    let done = false;
    const finish = (closedByServer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({ status: status ? Number(status) : undefined, closedByServer });
    };
    const timer = setTimeout(() => finish(false), 60_000);
    socket.on('data', (data) => {
      if (head.length < 64) head += data.toString('latin1');
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

async function honestStream(base) {
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

async function stats(base, reset = false) {
  const response = await fetch(`${base}/stats${reset ? '/reset' : ''}`, {
    method: reset ? 'POST' : 'GET',
  });
  return response.json();
}

const streamsDone = (base, n) => Promise.all(Array.from({ length: n }, () => honestStream(base)));

export async function abuse(ctx) {
  const { streams, uploads, reps } = ctx.plan.abuse;
  const rounds = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const path of ROUTES) {
      // Each stream runs ~2 s: all are open while the uploads arrive.
      await ctx.upstream.prepare({ tokens: 200, tps: 100, chunk: 20, ttftMs: 0 });
      const child = spawnChild(process.execPath, [SERVER], {
        env: { UPSTREAM_URL: ctx.upstream.url, KEY },
        name: 'gateway-abuse',
      });
      try {
        const line = await waitForLine(child, /listening (\d+)/, 15_000);
        const port = Number(/listening (\d+)/.exec(line)[1]);
        const base = `http://127.0.0.1:${port}`;
        // Warm, then the streams alone (measured), then the streams beside the uploads.
        await streamsDone(base, streams);
        await stats(base, true);
        const aloneOk = await streamsDone(base, streams);
        const alone = await stats(base);
        const before = await stats(base, true);
        const [ups, ok] = await Promise.all([
          Promise.all(
            Array.from({ length: uploads }, (_, i) =>
              withheldUpload(port, path, i % 2 === 0 ? `tm_stolen_${i}` : undefined),
            ),
          ),
          streamsDone(base, streams),
        ]);
        const after = await stats(base);
        const round = {
          rep,
          path,
          streams,
          uploads,
          completed: ok.filter(Boolean).length,
          closedByServer: ups.filter((u) => u.closedByServer).length,
          answered401: ups.filter((u) => u.status === 401).length,
          baselineRssMb: before.rss / 1e6,
          rssGrowthMb: (after.peakRss - before.rss) / 1e6,
          delayP99Ms: after.delayP99Ms,
          delayMaxMs: after.delayMaxMs,
          aloneDelayP99Ms: alone.delayP99Ms,
          aloneDelayMaxMs: alone.delayMaxMs,
          cpuMs: after.cpuMs,
          aloneCpuMs: alone.cpuMs,
        };
        ctx.log(
          `abuse ${path} rep ${rep + 1}: RSS +${round.rssGrowthMb.toFixed(1)} MB, loop delay p99 ` +
            `${round.delayP99Ms.toFixed(1)} ms (streams alone ${round.aloneDelayP99Ms.toFixed(1)} ms), ` +
            `CPU ${round.cpuMs.toFixed(0)} ms (alone ${round.aloneCpuMs.toFixed(0)} ms), ` +
            `${round.closedByServer}/${uploads} uploads closed by the server, ${ok.filter(Boolean).length}/${streams} streams completed`,
        );
        if (!aloneOk.every(Boolean) || !ok.every(Boolean))
          ctx.problem(`abuse ${path}: an honest stream did not complete`);
        rounds.push(round);
      } finally {
        await stopChild(child);
      }
    }
  }
  return rounds;
}
