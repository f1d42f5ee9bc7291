#!/usr/bin/env node
// Records, as JSON fixtures, the HTTP requests that real coding agents send to an LLM API.
//
//   node test/clients/record-clients.mjs [client[:scenario]]...   (default: every scenario)
//     clients: claude-code (print-default, print-opus, interactive, interactive-nonessential),
//              opencode (run), codex (exec)
//
// Opt-in, never run by CI. What it does:
//   1. installs the pinned client versions (CLIENTS below) with npm into scratch dirs under
//      /tmp/tokenmeter-clients/install (reused when already there);
//   2. then goes on inside a private network namespace (`unshare --net`, loopback only), when
//      the machine allows one, so the clients cannot reach anything but 127.0.0.1;
//   3. per scenario, starts @tokenmeter/testkit's fake LLM and a recording proxy (node:http),
//      both on free 127.0.0.1 ports; the proxy records every request (method, path with query,
//      a few headers, the body, start/end times) and forwards it to the fake, which serves the
//      Anthropic Messages API and both OpenAI APIs (Chat Completions, Responses) and answers 404
//      for anything else; WebSocket upgrades (Codex's Responses WebSocket mode) are recorded
//      and passed to the fake, which answers them 426;
//   4. runs the client against the proxy with a scratch HOME and project dir and offline
//      settings (no telemetry, no update checks, no model-list fetch; see each client below);
//      Claude Code's interactive UI runs in a detached tmux session;
//   5. writes test/fixtures/clients/<client>-<scenario>.json: only the headers
//      anthropic-version, anthropic-beta, content-type, user-agent, x-app and x-stainless-*
//      (never authorization or x-api-key); the scratch paths in the bodies replaced by
//      /home/user/project, /home/user and /tmp; startMs/endMs relative to the first request;
//      then formats it with the repo's biome.
//
// Needs: Linux x64 (the clients are native binaries: Claude Code and opencode are Bun builds,
// Codex is Rust behind a Node launcher, so any Node >= 20 runs this script), the repo built
// (`npx turbo run build`, for packages/testkit/dist), the npm registry, tmux for Claude Code's
// interactive scenarios (`apt-get install -y tmux`), and for the namespace root (or
// unprivileged user namespaces) with `unshare` and `ip`; without it the scenarios still run on
// the host network but 'interactive-nonessential' is skipped. Every step has a timeout; the
// script stops by itself and kills only the processes it started.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const FIXTURES = join(REPO, 'test', 'fixtures', 'clients');
const SCRATCH = '/tmp/tokenmeter-clients';
const API_KEY = 'tm-test-key';
/** What the scratch dirs become in the fixtures (the project first: it is the longer path). */
const PLACEHOLDER_HOME = '/home/user';
const PLACEHOLDER_PROJECT = '/home/user/project';

/**
 * The fake's answer: a short plain-text reply after a realistic first-token delay, so that
 * requests a client sends alongside its main call show up as overlapping in time.
 */
const FAKE_KNOBS = { tokens: 12, text: 'plain', ttftMs: 400, tps: 50 };

const KEPT_HEADERS = ['anthropic-version', 'anthropic-beta', 'content-type', 'user-agent', 'x-app'];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log('[record]', ...args);

// ---------------------------------------------------------------------------------------------
// The clients: pinned versions, where their executable is, and the scenarios to record.

const CLIENTS = {
  'claude-code': {
    packages: ['@anthropic-ai/claude-code@2.1.332'],
    version: '2.1.332',
    // The npm package's postinstall copies this native binary over bin/claude.exe; running the
    // platform package's copy directly works whether or not install scripts ran.
    bin: 'node_modules/@anthropic-ai/claude-code-linux-x64/claude',
    scenarios: {
      'print-default': (c) => claudePrint(c, []),
      'print-opus': (c) => claudePrint(c, ['--model', 'opus']),
      // The documented offline settings, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC included: no
      // side request at all, only the main call.
      interactive: (c) => claudeInteractive(c, { nonessential: false }),
      // Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, to see the side requests (session
      // title, connectivity check). Only run inside the network namespace, where everything
      // but 127.0.0.1 is unreachable, so whatever else it tries fails at once.
      'interactive-nonessential': {
        isolatedOnly: true,
        run: (c) => claudeInteractive(c, { nonessential: true }),
      },
    },
  },
  opencode: {
    packages: ['opencode-ai@1.18.33'],
    version: '1.18.33',
    bin: 'node_modules/opencode-linux-x64/bin/opencode',
    scenarios: {
      run: (c) => opencodeRun(c),
    },
  },
  codex: {
    packages: ['@openai/codex@0.171.0'],
    version: '0.171.0',
    // A Node launcher that execs the native (Rust) binary of the platform package.
    bin: 'node_modules/@openai/codex/bin/codex.js',
    scenarios: {
      exec: (c) => codexExec(c),
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Processes: every one started here has a timeout and is killed (its process group) at the end.

/**
 * Runs a command in a process group of its own, to its end or `timeoutMs` (then the group is
 * killed); resolves { code, signal, stdout, stderr, timedOut }. Standard input is empty, and
 * with `inherit` the output goes to this process's.
 */
function run(cmd, args, { env, cwd, timeoutMs, inherit = false }) {
  return new Promise((resolve) => {
    const stdio = inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'];
    const child = spawn(cmd, args, { env, cwd, detached: true, stdio });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.stdin?.end();
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGTERM');
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), 3000).unref();
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${error}`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(child.pid, 'SIGKILL'); // whatever it left behind in its group
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Installs a client's pinned packages into its own scratch dir, once. */
async function install(name, client) {
  const dir = join(SCRATCH, 'install', `${name}-${client.version}`);
  const bin = join(dir, client.bin);
  if (existsSync(bin)) return { dir, bin };
  if (ISOLATED) throw new Error(`${bin} is missing (installs happen outside the namespace)`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
  log(`installing ${client.packages.join(' ')} into ${dir}`);
  const result = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--no-save', ...client.packages],
    { env: process.env, cwd: dir, timeoutMs: 10 * 60_000 },
  );
  if (result.code !== 0 || !existsSync(bin)) {
    throw new Error(`npm install failed (${result.code}): ${result.stderr.slice(-2000)}`);
  }
  return { dir, bin };
}

// ---------------------------------------------------------------------------------------------
// The fake upstream and the recording proxy.

async function startFake() {
  const { startFakeLLM } = await import(join(REPO, 'packages/testkit/dist/index.js')).catch(() => {
    throw new Error('packages/testkit/dist is missing: run `npx turbo run build` first');
  });
  return startFakeLLM({ host: '127.0.0.1', port: 0, ...FAKE_KNOBS });
}

function decodeBody(buffer, encoding) {
  if (!encoding || encoding === 'identity') return buffer;
  if (encoding === 'gzip') return zlib.gunzipSync(buffer);
  if (encoding === 'deflate') return zlib.inflateSync(buffer);
  if (encoding === 'br') return zlib.brotliDecompressSync(buffer);
  if (encoding === 'zstd' && zlib.zstdDecompressSync) return zlib.zstdDecompressSync(buffer);
  throw new Error(`cannot decode content-encoding ${encoding}`);
}

function keptHeaders(headers) {
  const kept = {};
  for (const name of Object.keys(headers).sort()) {
    if (KEPT_HEADERS.includes(name) || name.startsWith('x-stainless-')) kept[name] = headers[name];
  }
  return kept;
}

/**
 * A proxy in front of `upstreamUrl` that records every request. `requests` holds raw records
 * (absolute times, the body as text); `fixture()` turns them into the fixture's shape.
 */
function startProxy(upstreamUrl) {
  const upstream = new URL(upstreamUrl);
  const requests = [];
  const server = http.createServer((req, res) => {
    const record = {
      method: req.method,
      path: req.url,
      start: performance.now(),
      end: undefined,
      status: undefined,
      headers: keptHeaders(req.headers),
      otherHeaderNames: Object.keys(req.headers).filter(
        (n) => !KEPT_HEADERS.includes(n) && !n.startsWith('x-stainless-'),
      ),
      bodyBytes: 0,
      bodyText: '',
    };
    requests.push(record);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      record.bodyBytes = raw.length;
      try {
        record.bodyText = decodeBody(raw, req.headers['content-encoding']).toString('utf8');
        if (req.headers['content-encoding'])
          record.contentEncoding = req.headers['content-encoding'];
      } catch (error) {
        record.bodyText = `<${error.message}; base64> ${raw.toString('base64')}`;
      }
      const headers = { ...req.headers, host: upstream.host };
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
        },
        (up) => {
          record.status = up.statusCode;
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', (error) => {
        record.status = 502;
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
      forward.end(raw);
    });
    res.on('close', () => {
      record.end = performance.now();
    });
  });
  // WebSocket (or other) upgrade attempts: recorded and passed to the fake as they came, over
  // a raw connection (the fake answers a WebSocket upgrade 426, which makes Codex POST at once).
  server.on('upgrade', (req, socket, head) => {
    const record = {
      method: req.method,
      path: req.url,
      start: performance.now(),
      end: undefined,
      status: undefined,
      headers: keptHeaders(req.headers),
      otherHeaderNames: Object.keys(req.headers),
      bodyBytes: 0,
      bodyText: '',
      upgrade: req.headers.upgrade,
    };
    requests.push(record);
    const up = net.connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      }
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
    });
    up.once('data', (data) => {
      record.status = Number(/^HTTP\/1\.\d (\d{3})/.exec(data.toString('latin1'))?.[1]) || null;
    });
    const done = () => {
      record.end ??= performance.now();
      record.status ??= 502;
      up.destroy();
      socket.destroy();
    };
    for (const s of [up, socket]) {
      s.on('close', done);
      s.on('error', done);
    }
    up.pipe(socket);
    socket.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () => {
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** Waits until at least `min` requests were seen and none was open or new for `quietMs`. */
async function waitQuiet(proxy, { min = 1, quietMs = 3000, timeoutMs = 120_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reqs = proxy.requests;
    const open = reqs.some((r) => r.end === undefined);
    const last = Math.max(0, ...reqs.map((r) => r.end ?? performance.now()));
    if (reqs.length >= min && !open && performance.now() - last >= quietMs) return true;
    await sleep(200);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

/** Replaces every spelling of the scratch dirs in `text` with the placeholders. */
function scrub(text, scratch) {
  const pairs = [];
  for (const [path, placeholder] of [
    [scratch.project, PLACEHOLDER_PROJECT],
    [scratch.home, PLACEHOLDER_HOME],
    [join(scratch.root, 'tmp'), '/tmp'],
    [scratch.root, '/tmp/scratch'],
    [scratch.install, '/opt/client'],
  ]) {
    pairs.push([path, placeholder]);
    try {
      const real = realpathSync(path);
      if (real !== path) pairs.push([real, placeholder]);
    } catch {
      // not there
    }
  }
  // Claude Code also names per-project dirs after the path with every other character as '-'.
  const mangle = (path) => path.replace(/[^a-zA-Z0-9]/g, '-');
  for (const [path, placeholder] of [...pairs]) pairs.push([mangle(path), mangle(placeholder)]);
  let out = text;
  for (const [path, placeholder] of pairs) out = out.split(path).join(placeholder);
  return out;
}

function toFixture({ name, client, scenario, proxy, scratch }) {
  const sorted = [...proxy.requests].sort((a, b) => a.start - b.start);
  const t0 = sorted[0]?.start ?? 0;
  const ms = (t) => (t === undefined ? null : Math.round(t - t0));
  return {
    client: name,
    version: client.version,
    // The Node.js that ran this recorder (the proxy, the fake, codex's launcher): the clients
    // themselves are native binaries (Claude Code and opencode: Bun builds; Codex: Rust).
    node: process.version,
    recordedAt: new Date().toISOString(),
    scenario,
    requests: sorted.map((r) => {
      const text = scrub(r.bodyText, scratch);
      let body = null;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
      }
      return {
        method: r.method,
        path: r.path,
        startMs: ms(r.start),
        endMs: ms(r.end),
        status: r.status ?? null,
        headers: r.headers,
        body,
      };
    }),
  };
}

function writeFixture(fixture) {
  mkdirSync(FIXTURES, { recursive: true });
  const file = join(FIXTURES, `${fixture.client}-${fixture.scenario}.json`);
  writeFileSync(file, `${JSON.stringify(fixture, null, 2)}\n`);
  // In the repo's own format, so `biome ci` stays green (the data is unchanged).
  const biome = join(REPO, 'node_modules', '.bin', 'biome');
  if (existsSync(biome)) spawnSync(biome, ['format', '--write', file], { timeout: 30_000 });
  log(`wrote ${file} (${fixture.requests.length} requests)`);
}

/** A few lines per request, for the person running this. */
function summarize(fixture, proxy) {
  const raw = [...proxy.requests].sort((a, b) => a.start - b.start);
  fixture.requests.forEach((r, i) => {
    const b = r.body && typeof r.body === 'object' ? r.body : {};
    const tools = (b.tools ?? []).map((t) => t.type ?? 'custom');
    log(
      `  ${r.method} ${r.path} -> ${r.status}, ${r.startMs}-${r.endMs} ms, ${raw[i].bodyBytes} B` +
        `${raw[i].contentEncoding ? ` (${raw[i].contentEncoding})` : ''}, model ${b.model},` +
        ` max_tokens ${b.max_tokens ?? b.max_output_tokens}, stream ${b.stream},` +
        ` tools ${tools.length}${tools.some((t) => t !== 'custom') ? ` [${tools.join(' ')}]` : ''}`,
    );
    log(`    fields: ${Object.keys(b).join(' ')}`);
    log(`    other headers: ${raw[i].otherHeaderNames.join(' ')}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Scratch dirs and the environment every client gets.

function freshScratch(name, scenario, installDir) {
  const root = join(SCRATCH, 'runs', `${name}-${scenario}`);
  rmSync(root, { recursive: true, force: true });
  const home = join(root, 'home');
  const project = join(root, 'project');
  mkdirSync(home, { recursive: true });
  mkdirSync(project, { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  writeFileSync(join(project, 'README.md'), '# project\n\nA scratch project.\n');
  return { root, home, project, install: installDir };
}

/** A minimal environment: nothing of the caller's but PATH, LANG and TERM. */
function baseEnv(scratch) {
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    TERM: 'xterm-256color',
    HOME: scratch.home,
    USER: 'user',
    SHELL: '/bin/bash',
    TMPDIR: join(scratch.root, 'tmp'),
    XDG_CONFIG_HOME: join(scratch.home, '.config'),
    XDG_DATA_HOME: join(scratch.home, '.local', 'share'),
    XDG_STATE_HOME: join(scratch.home, '.local', 'state'),
    XDG_CACHE_HOME: join(scratch.home, '.cache'),
    NO_PROXY: '127.0.0.1,localhost',
  };
}

// ---------------------------------------------------------------------------------------------
// Claude Code.

function claudeEnv(scratch, proxyUrl, { nonessential = false } = {}) {
  return {
    ...baseEnv(scratch),
    ANTHROPIC_BASE_URL: proxyUrl,
    ANTHROPIC_API_KEY: API_KEY,
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    ...(nonessential ? {} : { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' }),
  };
}

async function claudePrint(ctx, extraArgs) {
  const result = await run(ctx.bin, ['-p', 'Say hello in one word', ...extraArgs], {
    env: claudeEnv(ctx.scratch, ctx.proxy.url),
    cwd: ctx.scratch.project,
    timeoutMs: 120_000,
  });
  return result;
}

/**
 * Pre-answers the first-run screens of the interactive UI: onboarding (theme), "use this API
 * key?" (keys are remembered by their last 20 characters) and "trust this folder?".
 */
function seedClaudeConfig(scratch) {
  const config = {
    hasCompletedOnboarding: true,
    theme: 'dark',
    customApiKeyResponses: { approved: [API_KEY.trim().slice(-20)], rejected: [] },
    projects: {
      [scratch.project]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true },
    },
  };
  writeFileSync(join(scratch.home, '.claude.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** Drives the interactive UI in a detached tmux session on a socket of its own. */
async function claudeInteractive(ctx, { nonessential }) {
  if (spawnSync('tmux', ['-V']).status !== 0) {
    return { code: null, stdout: '', stderr: 'tmux not installed: skipped' };
  }
  seedClaudeConfig(ctx.scratch);
  const env = claudeEnv(ctx.scratch, ctx.proxy.url, { nonessential });
  const launcher = join(ctx.scratch.root, 'launch.sh');
  const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'`);
  writeFileSync(launcher, ['#!/bin/sh', ...exports, `exec '${ctx.bin}'`, ''].join('\n'), {
    mode: 0o755,
  });
  const socket = `tm-record-${process.pid}`;
  const tmux = (...args) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-t', 'cc').stdout ?? '';
  const screens = [];
  const snap = (label) => screens.push(`--- ${label}\n${screen()}`);
  try {
    const started = tmux(
      'new-session',
      '-d',
      '-s',
      'cc',
      '-x',
      '160',
      '-y',
      '50',
      '-c',
      ctx.scratch.project,
      launcher,
    );
    if (started.status !== 0) throw new Error(`tmux: ${started.stderr}`);
    // Startup: wait for the input box, and let the startup requests (if any) finish.
    await waitFor(() => /\u276f|>\s/.test(screen()), 30_000);
    await waitQuiet(ctx.proxy, { min: 0, quietMs: 3000, timeoutMs: 30_000 });
    snap('ready');
    const before = ctx.proxy.requests.length;
    tmux('send-keys', '-t', 'cc', '-l', 'Say hello in one word');
    await sleep(500);
    tmux('send-keys', '-t', 'cc', 'Enter');
    await waitQuiet(ctx.proxy, { min: before + 1, quietMs: 5000, timeoutMs: 90_000 });
    snap('answered');
    tmux('send-keys', '-t', 'cc', '-l', '/exit');
    await sleep(500);
    tmux('send-keys', '-t', 'cc', 'Enter');
    await waitFor(() => tmux('has-session', '-t', 'cc').status !== 0, 10_000);
    return { code: 0, stdout: screens.join('\n'), stderr: '' };
  } finally {
    tmux('kill-server');
  }
}

async function waitFor(predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await sleep(250);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// opencode.

/**
 * `opencode run` with the built-in anthropic provider pointed at the proxy through the project's
 * opencode.json; its bundled models.dev snapshot is used (no fetch), so the models, their limits
 * and the small model it picks for titles are the release's own.
 */
async function opencodeRun(ctx) {
  const config = {
    $schema: 'https://opencode.ai/config.json',
    autoupdate: false,
    share: 'disabled',
    provider: {
      anthropic: { options: { baseURL: `${ctx.proxy.url}/v1`, apiKey: API_KEY } },
    },
  };
  writeFileSync(join(ctx.scratch.project, 'opencode.json'), `${JSON.stringify(config, null, 2)}\n`);
  const env = {
    ...baseEnv(ctx.scratch),
    OPENCODE_DISABLE_AUTOUPDATE: '1',
    OPENCODE_DISABLE_MODELS_FETCH: '1',
    OPENCODE_DISABLE_SHARE: '1',
    OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
  };
  return run(ctx.bin, ['run', 'Say hello'], {
    env,
    cwd: ctx.scratch.project,
    timeoutMs: 120_000,
  });
}

// ---------------------------------------------------------------------------------------------
// Codex.

/**
 * `codex exec` with a custom Responses-API provider pointed at the proxy, from a scratch
 * CODEX_HOME. The fake serves /v1/responses, so Codex gets its answer and exits 0; a custom
 * provider makes no WebSocket attempt (the built-in provider, pointed elsewhere with
 * `openai_base_url`, tries one first: see agents-through-gateway.mjs). Retries are off, so the
 * fixture holds exactly what one run sends.
 */
async function codexExec(ctx) {
  const codexHome = join(ctx.scratch.home, '.codex');
  mkdirSync(codexHome, { recursive: true });
  const toml = [
    'model_provider = "tokenmeter"',
    'check_for_update_on_startup = false',
    '',
    '[model_providers.tokenmeter]',
    'name = "tokenmeter"',
    `base_url = "${ctx.proxy.url}/v1"`,
    'env_key = "TOKENMETER_API_KEY"',
    'wire_api = "responses"',
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
  ].join('\n');
  writeFileSync(join(codexHome, 'config.toml'), toml);
  const env = { ...baseEnv(ctx.scratch), CODEX_HOME: codexHome, TOKENMETER_API_KEY: API_KEY };
  return run(process.execPath, [ctx.bin, 'exec', '--skip-git-repo-check', 'Say hello'], {
    env,
    cwd: ctx.scratch.project,
    timeoutMs: 60_000,
  });
}

// ---------------------------------------------------------------------------------------------

async function recordClient(name, only) {
  const client = CLIENTS[name];
  const { dir, bin } = await install(name, client);
  for (const [scenario, spec] of Object.entries(client.scenarios)) {
    if (only && scenario !== only) continue;
    const { run: runScenario, isolatedOnly } = typeof spec === 'function' ? { run: spec } : spec;
    if (isolatedOnly && !ISOLATED) {
      log(`${name} ${scenario}: skipped (needs the network namespace, see unshare above)`);
      continue;
    }
    log(`${name} ${scenario}`);
    const fake = await startFake();
    const proxy = await startProxy(fake.url);
    const scratch = freshScratch(name, scenario, dir);
    try {
      const result = await runScenario({ bin, scratch, proxy, fake });
      log(`  exit ${result.code}${result.timedOut ? ' (timed out)' : ''}`);
      if (result.stdout) log(`  stdout: ${result.stdout.trim().slice(0, 5000)}`);
      if (result.stderr) log(`  stderr: ${result.stderr.trim().slice(0, 1500)}`);
      await waitQuiet(proxy, { min: 0, quietMs: 500, timeoutMs: 10_000 });
      if (proxy.requests.length === 0) {
        log('  no request recorded: no fixture written');
        process.exitCode = 1;
        continue;
      }
      const fixture = toFixture({ name, client, scenario, proxy, scratch });
      summarize(fixture, proxy);
      writeFixture(fixture);
    } finally {
      await proxy.close();
      await fake.close();
    }
  }
}

/**
 * Flags of `unshare` that give a private network namespace with only a loopback interface, or
 * null where that is not possible (then the clients run on the host's network, relying on
 * their env settings to stay offline, and the isolated-only scenarios are skipped).
 */
function unshareFlags() {
  for (const flags of [['--net'], ['--net', '--map-root-user']]) {
    const probe = spawnSync('unshare', [...flags, 'sh', '-c', 'ip link set lo up'], {
      timeout: 10_000,
      stdio: 'ignore',
    });
    if (probe.status === 0) return flags;
  }
  return null;
}

const ISOLATED = process.env.TOKENMETER_RECORD_ISOLATED === '1';

async function main() {
  // Arguments: clients, or client:scenario; none = every client.
  const wanted = process.argv.slice(2).map((arg) => arg.split(':'));
  for (const [name, scenario] of wanted) {
    if (!CLIENTS[name] || (scenario && !CLIENTS[name].scenarios[scenario])) {
      console.error(`unknown ${name}:${scenario ?? ''}; clients and scenarios:`);
      for (const [n, c] of Object.entries(CLIENTS)) {
        console.error(`  ${n}: ${Object.keys(c.scenarios).join(', ')}`);
      }
      process.exit(2);
    }
  }
  const targets = wanted.length ? wanted : Object.keys(CLIENTS).map((name) => [name]);

  if (!ISOLATED) {
    // Install first (this needs the npm registry), then record inside a network namespace.
    for (const name of new Set(targets.map(([n]) => n))) await install(name, CLIENTS[name]);
    const flags = unshareFlags();
    if (flags) {
      log(`recording inside a network namespace (unshare ${flags.join(' ')}): loopback only`);
      const child = await run(
        'unshare',
        [
          ...flags,
          'sh',
          '-c',
          'ip link set lo up && exec "$0" "$@"',
          process.execPath,
          fileURLToPath(import.meta.url),
          ...process.argv.slice(2),
        ],
        {
          env: { ...process.env, TOKENMETER_RECORD_ISOLATED: '1' },
          cwd: REPO,
          timeoutMs: 28 * 60_000,
          inherit: true,
        },
      );
      process.exitCode = child.code ?? 1;
      return;
    }
    log('unshare --net is not available: recording on the host network (env settings only)');
  }

  for (const [name, scenario] of targets) {
    try {
      await recordClient(name, scenario);
    } catch (error) {
      console.error(`[record] ${name} failed: ${error.stack ?? error}`);
      process.exitCode = 1;
    }
  }
}

// Run as a script; imported (by claude-code-errors.mjs, agents-through-gateway.mjs), it only
// lends its helpers.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const overall = setTimeout(() => {
    console.error('[record] overall timeout (30 min): giving up');
    process.exit(1);
  }, 30 * 60_000);
  overall.unref();
  await main();
  clearTimeout(overall);
}

export { baseEnv, CLIENTS, claudeEnv, freshScratch, install, run };
