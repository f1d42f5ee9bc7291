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
import { fileURLToPath } from 'node:url';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayStats, honestStream, withheldUpload } from '../fixtures/abuse-clients.mjs';
import { type AppProcess, startNodeApp } from '../helpers/processes.js';

const KEY = 'tm_abuse_honest_key';
const UPLOADS = 200;
const STREAMS = 100;

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

describe('uploads from unidentified callers', () => {
  it.each([['/v1/messages'], ['/v1/messages/count_tokens']])(
    '%s: 200 withheld 19 MiB uploads beside 100 streams — memory and event loop unmoved, every stream completes',
    async (path) => {
      // Warm up: the streams' own memory is in the baseline, the attack's is what is measured.
      // Then the same streams alone, measured: what the machine does without the attack.
      expect(
        (await Promise.all(Array.from({ length: STREAMS }, () => honestStream(base, KEY)))).every(
          Boolean,
        ),
      ).toBe(true);
      await gatewayStats(base, true);
      expect(
        (await Promise.all(Array.from({ length: STREAMS }, () => honestStream(base, KEY)))).every(
          Boolean,
        ),
      ).toBe(true);
      const alone = await gatewayStats(base);
      const before = await gatewayStats(base, true);

      const uploads = Promise.all(
        Array.from({ length: UPLOADS }, (_, i) =>
          // Half send an unknown key, half none.
          withheldUpload(app.port, path, i % 2 === 0 ? `tm_stolen_${i}` : undefined, 60_000),
        ),
      );
      const streams = Promise.all(Array.from({ length: STREAMS }, () => honestStream(base, KEY)));
      const [ups, completed] = await Promise.all([uploads, streams]);
      const after = await gatewayStats(base);

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
