/**
 * The upstream of every variant: the testkit's fake Anthropic API, started with
 * `startFakeLLM()` in a process of its own, plus a small admin server on a second port
 * that the harness uses to set the knobs of the next workload and to read what the fake
 * generated. (The `tokenmeter-fake-llm` CLI has no query API, and its records are the
 * honest source for "tokens generated after a disconnect" and "what was spent".)
 *
 * Prints `upstream <apiPort> <adminPort>` once both listen.
 *   GET  /__totals     → { totals, inFlight, ended }  (ended: sums over finished requests)
 *   GET  /__marks      → per-request timing of requests whose prompt ends in `[bench-stream <n>]`
 *   POST /__configure  ← knobs (JSON) for every following request
 *   POST /__reset      → forget records and totals
 */
import { createServer } from 'node:http';
import { startFakeLLM } from '@tokenmeter/testkit';

const fake = await startFakeLLM({
  port: 0,
  host: '127.0.0.1',
  text: 'plain',
  tps: 0,
  ttftMs: 0,
  tokens: 100,
  // Totals survive dropping records; a small bound keeps the fake's own memory flat.
  maxRecords: 200,
});

function emptyEnded() {
  return {
    requests: 0,
    inputTokens: 0,
    tokensGenerated: 0,
    tokensSent: 0,
    clientCloses: 0,
    /** Tokens generated after the relay closed the upstream connection (≤ 1 chunk). */
    generatedAfterUpstreamClose: 0,
    byModel: {},
  };
}
let ended = emptyEnded();
/** Requests the load generator tagged, with epoch-ms times comparable across processes. */
let marks = [];
const MARK = /\[bench-stream (\d+)\]/;
const epoch = (t) => (t === undefined ? null : performance.timeOrigin + t);
fake.on('request-end', (record) => {
  if (record.path !== '/v1/messages') return;
  const content = record.body?.messages?.[0]?.content;
  const mark = typeof content === 'string' ? MARK.exec(content) : null;
  if (mark && marks.length < 100_000) {
    marks.push({
      stream: Number(mark[1]),
      firstTokenAt: epoch(record.firstTokenAt),
      msPerToken: record.knobs?.tps > 0 ? 1_000 / record.knobs.tps : 0,
      tokensGenerated: record.tokensGenerated,
      upstreamClosedAt: epoch(record.clientClosedAt),
      tokensSentAtUpstreamClose: record.tokensSentAtClientClose ?? null,
      generationStoppedAt: epoch(record.generationStoppedAt),
      stopCause: record.stopCause,
    });
  }
  ended.requests++;
  ended.inputTokens += record.inputTokens;
  ended.tokensGenerated += record.tokensGenerated;
  ended.tokensSent += record.tokensSent;
  if (record.clientClosedAt !== undefined) {
    ended.clientCloses++;
    ended.generatedAfterUpstreamClose +=
      record.tokensGenerated - (record.tokensSentAtClientClose ?? 0);
  }
  const model = record.model ?? '(none)';
  ended.byModel[model] ??= { requests: 0, inputTokens: 0, outputTokens: 0 };
  const byModel = ended.byModel[model];
  byModel.requests++;
  byModel.inputTokens += record.inputTokens;
  byModel.outputTokens += record.tokensGenerated;
});

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      try {
        resolve(body === '' ? {} : JSON.parse(body));
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

const admin = createServer(async (req, res) => {
  const reply = (status, value) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  try {
    if (req.method === 'GET' && req.url === '/__totals') {
      // Records are live: open requests count what they generated so far.
      let generatedByOpen = 0;
      for (const record of fake.requests) {
        if (record.endedAt === undefined) generatedByOpen += record.tokensGenerated;
      }
      return reply(200, { totals: fake.totals, inFlight: fake.inFlight, ended, generatedByOpen });
    }
    if (req.method === 'GET' && req.url === '/__marks') return reply(200, marks);
    if (req.method === 'POST' && req.url === '/__configure') {
      fake.configure(await readJson(req));
      return reply(200, { knobs: fake.knobs });
    }
    if (req.method === 'POST' && req.url === '/__reset') {
      fake.reset();
      fake.configure({ text: 'plain', tps: 0, ttftMs: 0, tokens: 100 });
      ended = emptyEnded();
      marks = [];
      return reply(200, { ok: true });
    }
    reply(404, { error: 'not found' });
  } catch (error) {
    reply(400, { error: String(error) });
  }
});
admin.listen(0, '127.0.0.1', () => {
  process.stdout.write(`upstream ${fake.port} ${admin.address().port}\n`);
});

const stop = () => {
  admin.close();
  void fake.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
