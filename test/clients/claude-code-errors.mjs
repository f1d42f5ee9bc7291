#!/usr/bin/env node
// Claude Code against anthropicGateway() when things go wrong: what a user of the agent sees,
// and how often it calls. Opt-in, never run by CI (it installs Claude Code from npm).
//
//   node test/clients/claude-code-errors.mjs        (after `npx turbo run build`)
//
// Runs the pinned Claude Code of record-clients.mjs (installed into the same scratch dir,
// reused when there) in print mode, offline (CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, no
// telemetry, no updates), against a gateway on 127.0.0.1 in front of the testkit's fake:
//   1. an unknown key: the gateway's 401 says `x-should-retry: false`, so Claude Code must
//      fail at once with the gateway's message, calling once (without the header it
//      retried for minutes);
//   2. the provider refusing the server's key: a fixed 502 with `x-should-retry: false`;
//      Claude Code must call once and show no part of the server's key;
//   3. the provider's error event mid-stream (overloaded): reported, not asserted — what
//      Claude Code does with it (it may retry an overloaded error by its own rule).
// Prints what it saw and exits non-zero when case 1 or 2 does not hold. Every step has a
// timeout; it stops by itself.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLIENTS, claudeEnv, freshScratch, install, run } from './record-clients.mjs';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { anthropicGateway } = await import(join(REPO, 'packages/express/dist/index.js'));
const { createMemoryStore } = await import(join(REPO, 'packages/store-memory/dist/index.js'));
const { startFakeLLM } = await import(join(REPO, 'packages/testkit/dist/index.js'));
const { default: express } = await import('express');

const SERVER_KEY = 'sk-ant-server-secret-key-9999';
const CALLER_KEY = 'tm-test-key';
const log = (...args) => console.log('[claude-code-errors]', ...args);

/** A gateway on a free port in front of `upstreamUrl`; counts the Messages calls it gets. */
async function startGateway(upstreamUrl) {
  const app = express();
  const calls = [];
  app.use('/', (req, _res, next) => {
    if (req.method === 'POST') calls.push(req.url);
    next();
  });
  app.use(
    '/',
    anthropicGateway({
      apiKey: SERVER_KEY,
      baseURL: upstreamUrl,
      store: createMemoryStore(),
      identify: (key) => (key === CALLER_KEY ? { key } : undefined),
      forwardHeaders: ['x-fake-llm-*'],
      logger: { warn() {}, error() {} },
    }),
  );
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function claude(ctx, name, gatewayUrl, env) {
  const scratch = freshScratch('claude-code', `errors-${name}`, ctx.dir);
  const started = Date.now();
  const result = await run(ctx.bin, ['-p', 'Say hello in one word'], {
    env: { ...claudeEnv(scratch, gatewayUrl), ...env },
    cwd: scratch.project,
    timeoutMs: 180_000,
  });
  const output = `${result.stdout}\n${result.stderr}`.trim();
  return { ...result, output, seconds: (Date.now() - started) / 1000 };
}

const failures = [];
function check(ok, what) {
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

const client = CLIENTS['claude-code'];
const ctx = await install('claude-code', client);
log(`Claude Code ${client.version}: ${ctx.bin}`);
const fake = await startFakeLLM({ host: '127.0.0.1', port: 0, tokens: 12, tps: 50 });
const strict = await startFakeLLM({ host: '127.0.0.1', port: 0, apiKey: 'sk-the-right-one' });
try {
  // 1. An unknown key.
  {
    const gateway = await startGateway(fake.url);
    const r = await claude(ctx, 'unknown-key', gateway.url, { ANTHROPIC_API_KEY: 'tm-nobody' });
    log(
      `unknown key: exit ${r.code} after ${r.seconds.toFixed(1)} s, ${gateway.calls.length} call(s)`,
    );
    log(`  output: ${r.output.slice(0, 600)}`);
    check(!r.timedOut && r.code !== 0, 'an unknown key ends the run with an error');
    check(gateway.calls.length === 1, 'an unknown key is tried once (no retries)');
    check(r.seconds < 60, 'an unknown key fails within a minute (it retried for minutes before)');
    check(/valid API key/i.test(r.output), "the gateway's message reaches the user");
    await gateway.close();
  }
  // 2. The provider refuses the server's key.
  {
    const gateway = await startGateway(strict.url);
    const r = await claude(ctx, 'upstream-auth', gateway.url, {});
    log(
      `upstream auth: exit ${r.code} after ${r.seconds.toFixed(1)} s, ${gateway.calls.length} call(s)`,
    );
    log(`  output: ${r.output.slice(0, 600)}`);
    check(gateway.calls.length === 1, "the provider refusing the server's key is tried once");
    check(!/9999|sk-ant/.test(r.output), "no part of the server's key is shown");
    check(/refused this gateway/i.test(r.output), "the gateway's fixed message reaches the user");
    await gateway.close();
  }
  // 3. The provider's error event mid-stream: reported.
  {
    const gateway = await startGateway(fake.url);
    const r = await claude(ctx, 'mid-stream-error', gateway.url, {
      ANTHROPIC_CUSTOM_HEADERS: 'x-fake-llm-fault: error-mid-stream',
    });
    log(
      `mid-stream error: exit ${r.code} after ${r.seconds.toFixed(1)} s, ${gateway.calls.length} call(s)`,
    );
    log(`  output: ${r.output.slice(0, 600)}`);
    await gateway.close();
  }
} finally {
  await fake.close();
  await strict.close();
}
if (failures.length > 0) {
  console.error(`[claude-code-errors] ${failures.length} check(s) failed`);
  process.exit(1);
}
log('all checks hold');
