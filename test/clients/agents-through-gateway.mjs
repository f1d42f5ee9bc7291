#!/usr/bin/env node
// Codex and Claude Code, the real binaries, through anthropicGateway() and openaiGateway():
// whether each call an agent makes is admitted, relayed, settled once and charged exactly
// what the provider billed. Part of `npm test` through clients/agents.test.ts; by hand:
//
//   node test/clients/agents-through-gateway.mjs        (after `npx turbo run build`)
//
// Runs the pinned clients of record-clients.mjs (installed into the same scratch dir, reused
// when there), offline (no telemetry, no update checks, no feedback or analytics), against one
// Express 5 app on 127.0.0.1 with both gateways mounted at /llm (the Anthropic one with
// `unknownRoutes: 'next'`), a memory store, budgets, one issued key, `forwardHeaders:
// ['x-fake-llm-*']`, in front of the testkit's fake. Every call's charge is checked against a
// hand computation: the fake's record (prompt tokens, every token it generated, hidden ones
// included, its cache knobs) times the published rates written below.
//   a. `codex exec`, custom provider (`model_providers`, `wire_api = "responses"`): one POST
//      /v1/responses, no WebSocket attempt; sent without max_output_tokens, forwarded with it;
//   b. `codex exec`, built-in provider pointed at the gateway (`openai_base_url`, the key in
//      CODEX_API_KEY): the WebSocket GET is answered 426, then one POST (the delay is shown);
//   c. `codex exec` through the fake's tool loop (knobs in the provider's `http_headers`):
//      two calls of `get_goal` (harmless: it reads the thread's goal) then text, reasoning
//      summaries streamed; Codex runs the tool and sends its output back;
//   d. `claude -p` through the tool loop (knobs in ANTHROPIC_CUSTOM_HEADERS): two `Read`
//      calls of a file made in the scratch project then text, with thinking billed unseen and
//      cache reads and writes; Claude Code sends back what Read returned.
// Prints a short report and exits non-zero when a check fails. Every step has a timeout; the
// script stops by itself and kills only the processes it started (their process groups).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { baseEnv, CLIENTS, claudeEnv, freshScratch, install, run } from './record-clients.mjs';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { anthropicGateway, openaiGateway } = await import(
  join(REPO, 'packages/express/dist/index.js')
);
const { usd } = await import(join(REPO, 'packages/core/dist/index.js'));
const { createMemoryStore } = await import(join(REPO, 'packages/store-memory/dist/index.js'));
const { seededToolInput, startFakeLLM } = await import(
  join(REPO, 'packages/testkit/dist/index.js')
);
const { default: express } = await import('express');

const SERVER_KEY = 'sk-server-secret-key-0000';
const ISSUED_KEY = 'tm-agent-key-1';
const SUBJECT = { key: 'agent-key-1', user: 'alice' };
const BUDGETS = {
  key: { limitUsd: '5', period: 'day' },
  user: { limitUsd: '20', period: 'day' },
};
/**
 * Codex's model: a catalogued one whose rates are below. Codex 0.171 has no metadata for it and
 * falls back to its generic tool set, sent in `tools` (exec_command, view_image, get_goal…),
 * where the fake's tool loop finds them; with its default model (gpt-6.2-sol) every tool
 * rides in namespaces of an `additional_tools` input item, which the fake does not read, so
 * its tool loop would answer text only.
 */
const CODEX_MODEL = 'gpt-5';
/** The fake's answers: plain text, 12 tokens, a small first-token delay. */
const FAKE = { tokens: 12, text: 'plain', ttftMs: 100, tps: 200 };
const log = (...args) => console.log('[agents]', ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Published rates in nano-dollars per token ($ per million tokens × 1,000), written by hand
 * from the providers' price pages (not read from the catalog): the charges are checked against
 * these. Claude Code 2.1 calls Opus by default; Sonnet and Haiku are here for its side calls.
 */
const RATES = {
  // $1.25 input, $0.125 cached input, $10 output
  'gpt-5': { input: 1_250, cacheRead: 125, output: 10_000 },
  // $4 input, $5 / $8 cache writes (5 min / 1 h), $0.20 cache reads, $20 output
  'claude-opus-5-5': {
    input: 4_000,
    cacheWrite5m: 5_000,
    cacheWrite1h: 8_000,
    cacheRead: 200,
    output: 20_000,
  },
  // $2, $2.50 / $4, $0.10, $10
  'claude-sonnet-5-5': {
    input: 2_000,
    cacheWrite5m: 2_500,
    cacheWrite1h: 4_000,
    cacheRead: 100,
    output: 10_000,
  },
  // $1, $1.25 / $2, $0.10, $5
  'claude-haiku-4-5': {
    input: 1_000,
    cacheWrite5m: 1_250,
    cacheWrite1h: 2_000,
    cacheRead: 100,
    output: 5_000,
  },
};

/** What the provider billed for one fake record, by hand. */
function handCost(record) {
  const model = (record.model ?? '').replace(/-\d{8}$/, '');
  const rate = RATES[model];
  if (!rate) throw new Error(`no hand-written rate for ${record.model}`);
  if (record.searches > 0) throw new Error('web searches are not part of these scenarios');
  const knobs = record.knobs ?? {};
  const output = record.tokensGenerated + record.reasoningTokens; // hidden ones included
  const parts = {
    input: record.inputTokens * rate.input, // the prompt alone (OpenAI: cached ones apart)
    cacheRead: (knobs.cacheReadTokens ?? 0) * rate.cacheRead,
    cacheWrite:
      record.provider === 'anthropic'
        ? (knobs.cacheWrite5mTokens ?? 0) * rate.cacheWrite5m +
          (knobs.cacheWrite1hTokens ?? 0) * rate.cacheWrite1h
        : 0,
    output: output * rate.output,
  };
  return { nanos: parts.input + parts.cacheRead + parts.cacheWrite + parts.output, output };
}

const usdOf = (nanos) => `$${(nanos / 1e9).toFixed(6)}`;

// ---------------------------------------------------------------------------------------------
// The app: both gateways at /llm, and what reached them.

/**
 * A copy of the body as the client sent it, without consuming the request: the gateway reads
 * the body itself. Node's HTTP parser hands the body to `req.push()`, after the request event
 * (where this runs); anything already buffered is copied first.
 */
function tapBody(req) {
  const chunks = [];
  for (const chunk of req.readableBuffer ?? []) chunks.push(Buffer.from(chunk));
  const push = req.push;
  req.push = function tapped(chunk, encoding) {
    if (chunk !== null && chunk !== undefined) chunks.push(Buffer.from(chunk, encoding));
    return push.call(this, chunk, encoding);
  };
  return () => {
    const raw = Buffer.concat(chunks);
    const encoding = req.headers['content-encoding'];
    try {
      let decoded = raw;
      if (encoding === 'gzip') decoded = zlib.gunzipSync(raw);
      else if (encoding === 'br') decoded = zlib.brotliDecompressSync(raw);
      else if (encoding === 'deflate') decoded = zlib.inflateSync(raw);
      else if (encoding === 'zstd' && zlib.zstdDecompressSync) {
        decoded = zlib.zstdDecompressSync(raw);
      } else if (encoding && encoding !== 'identity') return { undecoded: encoding };
      return raw.length ? JSON.parse(decoded.toString('utf8')) : null;
    } catch (error) {
      return { unreadable: String(error) };
    }
  };
}

async function startApp(fakeUrl) {
  const app = express();
  const hits = [];
  const settles = [];
  const store = createMemoryStore();
  app.use('/llm', (req, res, next) => {
    const hit = {
      method: req.method,
      path: req.originalUrl,
      upgrade: req.headers.upgrade,
      at: performance.now(),
      status: undefined,
      userAgent: req.headers['user-agent'],
      auth: req.headers.authorization
        ? 'authorization'
        : req.headers['x-api-key']
          ? 'x-api-key'
          : 'none',
      knobHeaders: Object.keys(req.headers).filter((h) => h.startsWith('x-fake-llm-')),
      headerNames: Object.keys(req.headers),
      body: undefined,
    };
    const body = req.method === 'POST' ? tapBody(req) : () => null;
    hits.push(hit);
    res.on('close', () => {
      hit.status = res.statusCode;
      hit.body = body();
    });
    next();
  });
  const metering = {
    baseURL: fakeUrl,
    apiKey: SERVER_KEY,
    store,
    identify: (key) => (key === ISSUED_KEY ? SUBJECT : undefined),
    budgets: BUDGETS,
    forwardHeaders: ['x-fake-llm-*'],
    onSettle: (info) => {
      settles.push(info);
    },
    logger: { warn() {}, error: (message, fields) => log('gateway error:', message, fields) },
  };
  app.use('/llm', anthropicGateway({ ...metering, unknownRoutes: 'next' }));
  app.use('/llm', openaiGateway({ ...metering, baseURL: `${fakeUrl}/v1` }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}/llm`,
    hits,
    settles,
    store,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Waits (up to 10 s) until `n` settlements arrived since `from`; returns those. */
async function settlesSince(app, from, n) {
  const deadline = Date.now() + 10_000;
  while (app.settles.length - from < n && Date.now() < deadline) await sleep(50);
  await sleep(300); // and none more
  return app.settles.slice(from);
}

// ---------------------------------------------------------------------------------------------
// Checks and the report.

const failures = [];
const report = [];
function check(ok, what) {
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
  return ok;
}

/**
 * Pairs each answered call with its settlement (in order: the agents here call one at a
 * time) and checks the charge against the hand computation. Returns one line per call.
 */
function checkCharges(label, records, settles) {
  check(
    settles.length === records.length,
    `${label}: ${records.length} call(s) answered, ${settles.length} settled (each once)`,
  );
  const byStart = [...settles].sort((a, b) => a.startedAt - b.startedAt);
  const lines = [];
  let total = 0;
  records.forEach((record, i) => {
    const settle = byStart[i];
    if (!settle) return;
    const hand = handCost(record);
    total += settle.final.costNanos;
    const same =
      settle.model === record.model && settle.final.usage.inputTokens === record.inputTokens;
    check(same, `${label} #${i + 1}: settlement ${settle.model} is the call to the fake`);
    check(
      settle.final.costNanos === hand.nanos && settle.final.estimated === false,
      `${label} #${i + 1}: charged ${usdOf(settle.final.costNanos)}, by hand ${usdOf(hand.nanos)}, estimated ${settle.final.estimated}`,
    );
    const knobs = record.knobs ?? {};
    const cache =
      record.provider === 'anthropic'
        ? ` + cache read ${knobs.cacheReadTokens ?? 0}, write ${knobs.cacheWrite5mTokens ?? 0}`
        : '';
    const thinking = record.blocks.find((b) => b.kind === 'thinking')?.tokens ?? 0;
    let hidden = '';
    if (record.provider === 'anthropic' && thinking > 0) {
      hidden = ` (thinking ${thinking}${record.body?.thinking?.display === 'omitted' ? ', unseen' : ''})`;
    } else if (record.reasoningTokens > 0)
      hidden = ` (reasoning ${record.reasoningTokens}, hidden)`;
    else if (thinking > 0) hidden = ` (reasoning ${thinking}, streamed as the summary)`;
    const tool = record.blocks.find((b) => b.kind === 'tool_use')?.toolName;
    lines.push(
      `#${i + 1} ${record.model} ${record.stopReason}${tool ? ` ${tool}` : ''}: in ${record.inputTokens}${cache},` +
        ` out ${hand.output}${hidden} → ${usdOf(settle.final.costNanos)}`,
    );
  });
  return { lines, total };
}

/** The store's spend for the issued key matches the settlements' sum. */
async function checkSpent(app, label) {
  const sum = app.settles.reduce((s, i) => s + i.final.costNanos, 0);
  const state = await app.store.getState(
    { kind: 'key', id: SUBJECT.key },
    { budget: { limitNanos: usd(BUDGETS.key.limitUsd), period: BUDGETS.key.period } },
  );
  check(
    state.budget.spentNanos === sum,
    `${label}: the key's spend today (${usdOf(state.budget.spentNanos)}) is the sum of its charges`,
  );
}

const squash = (text) => text.replace(/\s+/g, ' ').trim();
const pathOf = (hit) => hit.path.split('?')[0];
/** The request headers a client sent beyond the usual ones, for the log. */
const unusualHeaders = (hit) =>
  hit.headerNames
    .filter(
      (h) =>
        !/^(host|accept|accept-encoding|connection|content-length|content-type|user-agent|authorization|x-api-key|anthropic-version|x-fake-llm-.*|x-stainless-.*)$/.test(
          h,
        ),
    )
    .join(' ');

// ---------------------------------------------------------------------------------------------
// Codex.

function codexConfig(lines) {
  return [
    'check_for_update_on_startup = false',
    `model = "${CODEX_MODEL}"`,
    ...lines,
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
  ].join('\n');
}

function customProvider(gatewayUrl, headers = {}) {
  const table = Object.entries(headers)
    .map(([k, v]) => `"${k}" = "${v}"`)
    .join(', ');
  return [
    'model_provider = "gw"',
    '',
    '[model_providers.gw]',
    'name = "gw"',
    `base_url = "${gatewayUrl}/v1"`,
    'wire_api = "responses"',
    'env_key = "GW_API_KEY"',
    ...(table ? [`http_headers = { ${table} }`] : []),
  ];
}

async function codex(ctx, scenario, toml, env) {
  const scratch = freshScratch('codex', `gateway-${scenario}`, ctx.dir);
  const codexHome = join(scratch.home, '.codex');
  mkdirSync(codexHome, { recursive: true });
  writeFileSync(join(codexHome, 'config.toml'), toml);
  const started = Date.now();
  const result = await run(
    process.execPath,
    [ctx.bin, 'exec', '--skip-git-repo-check', 'Say hello'],
    {
      env: { ...baseEnv(scratch), CODEX_HOME: codexHome, ...env },
      cwd: scratch.project,
      timeoutMs: 120_000,
    },
  );
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

/** What every Codex scenario checks: the run, the calls, the body sent and forwarded. */
function checkCodexCalls(label, r, { app, hitsFrom, fake, recordsFrom, calls }) {
  const hits = app.hits.slice(hitsFrom);
  const posts = hits.filter((h) => h.method === 'POST' && pathOf(h) === '/llm/v1/responses');
  const records = fake.requests.slice(recordsFrom).filter((q) => q.path === '/v1/responses');
  log(
    `${label}: exit ${r.code} after ${r.seconds.toFixed(1)} s; gateway saw ${hits
      .map(
        (h) => `${h.method} ${h.path}${h.upgrade ? ` (upgrade ${h.upgrade})` : ''} → ${h.status}`,
      )
      .join(', ')}`,
  );
  if (posts[0]) log(`  ${posts[0].userAgent}; other headers: ${unusualHeaders(posts[0])}`);
  check(!r.timedOut && r.code === 0, `${label}: codex exec exits 0`);
  if (r.code !== 0) log(`  stderr: ${r.stderr.trim().slice(-1500)}`);
  check(
    posts.length === calls && records.length === calls,
    `${label}: ${calls} POST /v1/responses reached the gateway and the fake (saw ${posts.length} and ${records.length}: no retries)`,
  );
  const last = records.at(-1);
  if (last) {
    check(
      squash(r.stdout).includes(squash(last.text)),
      `${label}: the answer's text is printed (${JSON.stringify(squash(last.text))})`,
    );
  }
  posts.forEach((hit, i) => {
    const sent = hit.body?.max_output_tokens;
    const forwarded = records[i]?.body?.max_output_tokens;
    check(
      hit.body?.model === CODEX_MODEL && sent === undefined && Number.isInteger(forwarded),
      `${label} #${i + 1}: sent without max_output_tokens, forwarded with ${forwarded}`,
    );
  });
  return { hits, posts, records };
}

// ---------------------------------------------------------------------------------------------
// Claude Code.

/**
 * The file the fake's Read calls name: the fake writes the smallest valid input of Read's
 * schema with seeded words in `file_path` (`seededToolInput`); Claude Code trims it and reads
 * it relative to the working directory. The schema is the one the pinned version sent when
 * recorded (test/fixtures/clients/claude-code-print-default.json).
 */
function readTarget(toolTokens, seed) {
  const url = new URL('../fixtures/clients/claude-code-print-default.json', import.meta.url);
  const fixture = JSON.parse(readFileSync(url, 'utf8'));
  if (fixture.version !== CLIENTS['claude-code'].version) {
    throw new Error(`the fixture is of Claude Code ${fixture.version}: re-record it`);
  }
  const body = fixture.requests.find((r) => r.method === 'POST').body;
  const read = body.tools.find((t) => t.name === 'Read');
  const input = JSON.parse(seededToolInput(seed, toolTokens, undefined, read.input_schema));
  return input.file_path.trim();
}

const PROMPT_CLAUDE = 'Read the notes file and summarise it';
const MARKER = 'tokenmeter-agents-marker-7f3a';

/** Text of a tool_result's content (a string, or text blocks). */
function resultText(block) {
  const content = block.content;
  if (typeof content === 'string') return content;
  return (content ?? []).map((c) => c.text ?? '').join('');
}

function toolResults(body) {
  return (body?.messages ?? []).flatMap((m) =>
    Array.isArray(m.content) ? m.content.filter((c) => c.type === 'tool_result') : [],
  );
}

// ---------------------------------------------------------------------------------------------

const overall = setTimeout(() => {
  console.error('[agents] overall timeout (15 min): giving up');
  process.exit(1);
}, 15 * 60_000);
overall.unref();

const codexCtx = await install('codex', CLIENTS.codex);
const claudeCtx = await install('claude-code', CLIENTS['claude-code']);
log(`Codex ${CLIENTS.codex.version}, Claude Code ${CLIENTS['claude-code'].version}`);
const fake = await startFakeLLM({ host: '127.0.0.1', port: 0, ...FAKE });
const app = await startApp(fake.url);
try {
  // a. Codex, custom provider.
  {
    const label = 'codex custom provider';
    const mark = { hitsFrom: app.hits.length, recordsFrom: fake.requests.length };
    const settlesFrom = app.settles.length;
    const r = await codex(codexCtx, 'custom', codexConfig(customProvider(app.url)), {
      GW_API_KEY: ISSUED_KEY,
    });
    const { hits, records } = checkCodexCalls(label, r, { app, fake, ...mark, calls: 1 });
    check(
      hits.every((h) => !h.upgrade),
      `${label}: no WebSocket attempt`,
    );
    const settles = await settlesSince(app, settlesFrom, records.length);
    const { lines } = checkCharges(label, records, settles);
    report.push(
      `a. ${label}: exit ${r.code}, ${r.seconds.toFixed(1)} s, ${hits.length} request(s)`,
    );
    report.push(...lines.map((l) => `     ${l}`));
  }

  // b. Codex, built-in provider at the gateway: the WebSocket attempt, then the POST.
  {
    const label = 'codex openai_base_url';
    const mark = { hitsFrom: app.hits.length, recordsFrom: fake.requests.length };
    const settlesFrom = app.settles.length;
    const toml = codexConfig([`openai_base_url = "${app.url}/v1"`]);
    const r = await codex(codexCtx, 'builtin', toml, { CODEX_API_KEY: ISSUED_KEY });
    const { hits, posts, records } = checkCodexCalls(label, r, { app, fake, ...mark, calls: 1 });
    const upgrades = hits.filter((h) => h.method === 'GET' && h.upgrade);
    check(
      upgrades.length >= 1 && upgrades.every((h) => h.status === 426),
      `${label}: the WebSocket GET /v1/responses is answered 426 (${upgrades.length} attempt(s))`,
    );
    const gap = posts[0] && upgrades[0] ? posts[0].at - upgrades[0].at : Number.NaN;
    check(gap < 2_000, `${label}: the POST follows at once (${gap.toFixed(0)} ms after the GET)`);
    check(posts[0]?.auth === 'authorization', `${label}: the key is sent (Authorization)`);
    const settles = await settlesSince(app, settlesFrom, records.length);
    const { lines } = checkCharges(label, records, settles);
    report.push(
      `b. ${label}: exit ${r.code}, ${r.seconds.toFixed(1)} s, ${upgrades.length} WebSocket GET → 426,` +
        ` POST ${gap.toFixed(0)} ms later`,
    );
    report.push(...lines.map((l) => `     ${l}`));
  }

  // c. Codex through the fake's tool loop: get_goal twice, then text.
  {
    const label = 'codex tool loop';
    const mark = { hitsFrom: app.hits.length, recordsFrom: fake.requests.length };
    const settlesFrom = app.settles.length;
    const knobs = {
      'x-fake-llm-tool-turns': '2',
      'x-fake-llm-tool-name': 'get_goal',
      'x-fake-llm-reasoning-tokens': '30',
    };
    const r = await codex(codexCtx, 'tools', codexConfig(customProvider(app.url, knobs)), {
      GW_API_KEY: ISSUED_KEY,
    });
    const { posts, records } = checkCodexCalls(label, r, { app, fake, ...mark, calls: 3 });
    const offered = (records[0]?.body?.tools ?? []).map((t) => t.name ?? t.type);
    check(offered.includes('get_goal'), `${label}: Codex offers get_goal (top-level tools)`);
    check(
      records.map((q) => q.blocks.find((b) => b.kind === 'tool_use')?.toolName ?? 'text').join() ===
        'get_goal,get_goal,text',
      `${label}: the answers are get_goal, get_goal, text`,
    );
    const outputs = posts.map((h) =>
      (h.body?.input ?? []).filter((item) => item.type === 'function_call_output'),
    );
    check(
      outputs.map((o) => o.length).join() === '0,1,2' &&
        outputs.flat().every((o) => String(o.output).includes('"goal"')),
      `${label}: Codex ran get_goal and sent its output back (${JSON.stringify(outputs[1]?.[0]?.output)})`,
    );
    const reasoningBack = posts.map(
      (h) => (h.body?.input ?? []).filter((item) => item.type === 'reasoning').length,
    );
    const settles = await settlesSince(app, settlesFrom, records.length);
    const { lines, total } = checkCharges(label, records, settles);
    report.push(
      `c. ${label}: exit ${r.code}, ${r.seconds.toFixed(1)} s, ${posts.length} POSTs,` +
        ` reasoning items sent back ${reasoningBack.join('/')}, total ${usdOf(total)}`,
    );
    report.push(...lines.map((l) => `     ${l}`));
  }

  // d. Claude Code, print mode, a 3-turn tool loop: Read, Read, text.
  {
    const label = 'claude code tool loop';
    const hitsFrom = app.hits.length;
    const recordsFrom = fake.requests.length;
    const settlesFrom = app.settles.length;
    const scratch = freshScratch('claude-code', 'gateway-tools', claudeCtx.dir);
    const target = readTarget(12, 1);
    writeFileSync(join(scratch.project, target), `Notes\n${MARKER}\n`);
    const headers = [
      'x-fake-llm-tool-turns: 2',
      'x-fake-llm-tool-name: Read',
      'x-fake-llm-tool-tokens: 12',
      'x-fake-llm-thinking-tokens: 48',
      'x-fake-llm-cache-read: 4000',
      'x-fake-llm-cache-write-5m: 600',
    ].join('\n');
    const started = Date.now();
    const r = await run(claudeCtx.bin, ['-p', PROMPT_CLAUDE], {
      env: {
        ...claudeEnv(scratch, app.url),
        ANTHROPIC_API_KEY: ISSUED_KEY,
        ANTHROPIC_CUSTOM_HEADERS: headers,
      },
      cwd: scratch.project,
      timeoutMs: 180_000,
    });
    const seconds = (Date.now() - started) / 1000;
    await fake.waitForIdle({ timeoutMs: 10_000 });
    const hits = app.hits.slice(hitsFrom);
    const records = fake.requests.slice(recordsFrom).filter((q) => q.path === '/v1/messages');
    const counted = fake.requests.slice(recordsFrom).length - records.length;
    const isMain = (q) =>
      Array.isArray(q.body?.tools) &&
      q.body.tools.length > 0 &&
      JSON.stringify(q.body.messages?.[0] ?? '').includes(PROMPT_CLAUDE);
    const main = records.filter(isMain);
    const side = records.filter((q) => !isMain(q));
    log(
      `${label}: exit ${r.code} after ${seconds.toFixed(1)} s; gateway saw ${hits
        .map((h) => `${h.method} ${h.path} → ${h.status}`)
        .join(', ')}`,
    );
    if (hits[0]) log(`  ${hits[0].userAgent}; other headers: ${unusualHeaders(hits[0])}`);
    check(!r.timedOut && r.code === 0, `${label}: claude -p exits 0`);
    if (r.code !== 0) log(`  output: ${`${r.stdout}\n${r.stderr}`.trim().slice(-1500)}`);
    check(
      main.map((q) => q.stopReason).join() === 'tool_use,tool_use,end_turn',
      `${label}: the main conversation made 3 calls: ${main.map((q) => q.stopReason).join(', ')}`,
    );
    check(
      main
        .slice(0, 2)
        .every((q) => q.blocks.some((b) => b.kind === 'tool_use' && b.toolName === 'Read')),
      `${label}: the two tool calls are Read (file_path "${target}")`,
    );
    const results = main.map((q) => toolResults(q.body));
    check(
      results.map((x) => x.length).join() === '0,1,2' &&
        results.flat().every((b) => !b.is_error && resultText(b).includes(MARKER)),
      `${label}: Claude Code ran Read and sent the file back in tool_result blocks (turns 2 and 3)`,
    );
    const last = main.at(-1);
    if (last) {
      check(
        squash(r.stdout).includes(squash(last.text)),
        `${label}: the final text is printed (${JSON.stringify(squash(last.text))})`,
      );
    }
    const posts = hits.filter((h) => h.method === 'POST' && pathOf(h) === '/llm/v1/messages');
    check(
      posts.length === records.length,
      `${label}: every POST /v1/messages reached the fake once (${posts.length} sent, ${records.length} answered)`,
    );
    const settles = await settlesSince(app, settlesFrom, records.length);
    const { lines, total } = checkCharges(label, records, settles);
    report.push(
      `d. ${label}: exit ${r.code}, ${seconds.toFixed(1)} s, ${main.length} main call(s),` +
        ` ${side.length} side call(s), ${counted} count_tokens by the gateway, total ${usdOf(total)}`,
    );
    report.push(...lines.map((l) => `     ${l}`));
    const sentMax = [...new Set(records.map((q) => q.body?.max_tokens))].join('/');
    report.push(
      `     max_tokens forwarded ${sentMax} (Claude Code asked ${posts[0]?.body?.max_tokens})`,
    );
  }
  await checkSpent(app, 'all scenarios');
} finally {
  await app.close();
  await fake.close();
}

console.log('\n[agents] report');
for (const line of report) console.log(`  ${line}`);
clearTimeout(overall);
if (failures.length > 0) {
  console.error(`[agents] ${failures.length} check(s) failed`);
  process.exit(1);
}
log('all checks hold');
