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
import { fileURLToPath } from 'node:url';
import {
  honestStream,
  gatewayStats as stats,
  withheldUpload,
} from '../../test/fixtures/abuse-clients.mjs';
import { spawnChild, stopChild, waitForLine } from './processes.mjs';

const SERVER = fileURLToPath(
  new URL('../../test/fixtures/gateway-abuse-instance.mjs', import.meta.url),
);
const KEY = 'tm_bench_honest_key';
const ROUTES = ['/v1/messages', '/v1/messages/count_tokens'];

const streamsDone = (base, n) =>
  Promise.all(Array.from({ length: n }, () => honestStream(base, KEY)));

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
              withheldUpload(port, path, i % 2 === 0 ? `tm_stolen_${i}` : undefined, 60_000),
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
