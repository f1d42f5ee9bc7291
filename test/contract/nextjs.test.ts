/**
 * The Web adapter as a Next.js app serves it: `meteredSSE()` as a route handler's POST and
 * `anthropicGateway()` behind a catch-all route (`test/fixtures/nextjs-app`), built with
 * `next build` (Turbopack, no configuration: tokenmeter is bundled with the routes) and
 * served by `next start`, against the testkit's fake provider.
 * Next.js is installed from npm at a pinned version into a cache folder outside the
 * repository (the first run downloads it, ~20 s); tokenmeter's packages are copied in as
 * built, as an installed package would be.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, type Running, start } from '../examples/helpers/process.js';
import { eventData, postSSE } from '../helpers/sse-client.js';

const NEXT_VERSION = '16.5.0';
const REACT_VERSION = '19.3.1';
const APP = join('/tmp', `tokenmeter-nextjs-${NEXT_VERSION}`);
const PACKAGES = ['core', 'engine', 'web', 'store-memory'];
/** What the copied packages import, at the versions this repository runs. */
const THEIR_DEPENDENCIES = ['@anthropic-ai/sdk', '@opentelemetry/api', 'lru-cache'];

// claude-haiku-4-5: $1 / $5 per million tokens.
const hand = (input: number, output: number) => input * 1_000 + output * 5_000;
const ask = {
  model: 'claude-haiku-4-5',
  max_tokens: 300,
  messages: [{ role: 'user' as const, content: 'Tell me about tide pools.' }],
};

function installedVersion(name: string): string {
  const manifest = join(REPO_ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/** Next.js and the packages' dependencies, once per cache folder; tokenmeter's packages, fresh. */
function prepareApp(): void {
  mkdirSync(APP, { recursive: true });
  // The route files are ES modules.
  writeFileSync(
    join(APP, 'package.json'),
    `${JSON.stringify({ name: 'tokenmeter-nextjs', private: true, type: 'module' }, null, 2)}\n`,
  );
  if (!existsSync(join(APP, 'node_modules', 'next', 'package.json'))) {
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        '--no-save',
        `next@${NEXT_VERSION}`,
        `react@${REACT_VERSION}`,
        `react-dom@${REACT_VERSION}`,
        ...THEIR_DEPENDENCIES.map((name) => `${name}@${installedVersion(name)}`),
      ],
      { cwd: APP, stdio: 'pipe', timeout: 180_000 },
    );
  }
  rmSync(join(APP, 'app'), { recursive: true, force: true });
  rmSync(join(APP, 'next.config.mjs'), { force: true });
  rmSync(join(APP, '.next'), { recursive: true, force: true });
  cpSync(join(REPO_ROOT, 'test/fixtures/nextjs-app'), APP, { recursive: true });
  for (const name of PACKAGES) {
    const into = join(APP, 'node_modules/@tokenmeter', name);
    rmSync(into, { recursive: true, force: true });
    mkdirSync(into, { recursive: true });
    for (const part of ['package.json', 'dist']) {
      cpSync(join(REPO_ROOT, 'packages', name, part), join(into, part), { recursive: true });
    }
  }
  execFileSync(process.execPath, ['node_modules/next/dist/bin/next', 'build'], {
    cwd: APP,
    stdio: 'pipe',
    timeout: 180_000,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
}

let fake: FakeLLM;
let next: Running;
let url: string;
beforeAll(async () => {
  fake = await startFakeLLM({ tps: 0, tokens: 40, chunk: 2, seed: 11 });
  prepareApp();
  const port = await freePort();
  next = await start({
    command: process.execPath,
    args: ['node_modules/next/dist/bin/next', 'start', '-p', String(port), '-H', '127.0.0.1'],
    cwd: APP,
    env: { FAKE_URL: fake.url, NEXT_TELEMETRY_DISABLED: '1' },
    ready: /(Ready in)/,
    timeoutMs: 60_000,
  });
  url = `http://127.0.0.1:${port}`;
}, 300_000);
afterAll(async () => {
  await next?.stop();
  await fake?.close();
});

describe(`Next.js ${NEXT_VERSION} route handlers`, () => {
  it('meteredSSE() as POST: the exact text, meta first and done last, charged to the nano-dollar', async () => {
    const result = await postSSE(`${url}/api/chat`, ask, { headers: { 'x-user': 'ada' } });
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(result.text).toBe(record.text);
    expect(result.events[0]!.event).toBe('meta');
    const done = eventData<{ costNanos: number; estimated: boolean }>(result, 'done');
    const cost = hand(record.usage!.inputTokens, record.usage!.outputTokens);
    expect(done).toMatchObject({ costNanos: cost, estimated: false });
    await next.waitFor(
      new RegExp(`settled \\{"route":"chat","outcome":"completed","costNanos":${cost},`),
      5_000,
    );
  });

  it('an unknown caller gets 401 with a JSON body, the provider never called', async () => {
    const before = fake.requests.length;
    const result = await postSSE(`${url}/api/chat`, ask);
    expect(result.status).toBe(401);
    expect(result.body).toMatchObject({ error: { code: 'unauthenticated' } });
    expect(fake.requests.length).toBe(before);
  });

  it('a client that leaves closes the upstream within one chunk, and is charged once', async () => {
    const from = next.output().length;
    const result = await postSSE(`${url}/api/chat`, ask, {
      headers: {
        'x-user': 'ada',
        'x-fake-llm-tokens': '2000',
        'x-fake-llm-tps': '200',
        'x-fake-llm-chunk': '2',
      },
      abortWhen: (_event, all) => all.length >= 3,
    });
    expect(result.events.length).toBeGreaterThanOrEqual(3);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stopCause).toBe('client-closed');
    expect(record.tokensGenerated - record.tokensSentAtClientClose!).toBeLessThanOrEqual(2);
    expect(record.tokensGenerated).toBeLessThan(2000);
    await next.waitFor(/settled \{"route":"chat","outcome":"client_disconnected"/, 5_000, from);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      next
        .output()
        .slice(from)
        .match(/settled \{"route":"chat"/g),
    ).toHaveLength(1);
  });

  it('anthropicGateway() behind a catch-all route: the official SDK streams through it, charged exactly', async () => {
    const client = new Anthropic({ baseURL: `${url}/llm`, apiKey: 'key-ada', maxRetries: 0 });
    let text = '';
    const stream = client.messages.stream(ask);
    stream.on('text', (delta) => {
      text += delta;
    });
    const message = await stream.finalMessage();
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(text).toBe(record.text);
    expect(record.headers['x-api-key']).toBe('sk-fake');
    const cost = hand(message.usage.input_tokens, message.usage.output_tokens);
    await next.waitFor(
      new RegExp(`settled \\{"route":"gateway","outcome":"completed","costNanos":${cost},`),
      5_000,
    );
    const refused = await new Anthropic({
      baseURL: `${url}/llm`,
      apiKey: 'nope',
      maxRetries: 0,
    }).messages
      .create(ask)
      .catch((error) => error);
    expect(refused).toBeInstanceOf(Anthropic.AuthenticationError);
  });
});
