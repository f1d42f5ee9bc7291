/**
 * The newcomer's path: clone the repository (what is committed, nothing else) into a temp
 * folder, run the demo command from the README's Quick start there — it installs with
 * npm ci on first run and builds — and check the page and POST /api/chat answer.
 * (`npm test`, the Quick start's other command, is what CI itself runs on a fresh clone.)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoKeys } from './helpers/demo-page.js';
import { freePort, REPO_ROOT, type Running, start, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

const SETUP_TIMEOUT_MS = 240_000;
/** What to clone: this repository, or another one to try uncommitted work (a local commit). */
const SOURCE = process.env.TOKENMETER_CLONE_SOURCE ?? REPO_ROOT;

/** The demo line of the first code block under "## Quick start", without its comment. */
function quickStartDemoCommand(readme: string): string {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Quick start'));
  if (!section) throw new Error('README.md has no "## Quick start" section');
  const block = /```(?:sh|bash|shell)?\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('the Quick start section has no code block');
  const line = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .find((l) => /\bdemo\b/.test(l));
  if (!line) throw new Error(`no demo command in the Quick start block:\n${block}`);
  return line;
}

let dir: string;
let clone: string;
let command: string;
let demo: Running;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenmeter-fresh-clone-'));
  clone = join(dir, 'c');
  execFileSync('git', ['clone', '--quiet', SOURCE, clone], { stdio: 'pipe' });
  command = quickStartDemoCommand(readFileSync(join(clone, 'README.md'), 'utf8'));
  const port = await freePort();
  demo = await start({
    command: 'sh',
    args: ['-c', command],
    cwd: clone,
    env: {
      PORT: String(port),
      TOKENMETER_DEMO_FAKE_TPS: '2000',
      TOKENMETER_DEMO_FAKE_TTFT_MS: '0',
    },
    timeoutMs: SETUP_TIMEOUT_MS,
  });
}, SETUP_TIMEOUT_MS + 20_000);

afterAll(async () => {
  await stopAll();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('a fresh clone, following the README', () => {
  it('runs the Quick start demo command: says what it does as it installs and builds, prints the URL', () => {
    expect(command).toMatch(/^npm run demo\b/);
    const output = demo.output();
    expect(output).toMatch(/installing dependencies \(npm ci\)/);
    expect(output).toMatch(/building the packages the demo needs/);
    expect(output).toMatch(/built in \d+ s; starting the demo/);
    expect(demo.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves the page and streams from POST /api/chat', async () => {
    const page = await fetch(`${demo.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>tokenmeter demo</title>');
    const result = await post(
      `${demo.url}/api/chat`,
      { prompt: 'Hello from a fresh clone' },
      // alice's key, as the demo printed it when it started.
      { authorization: `Bearer ${demoKeys(demo.output()).alice}` },
    );
    expect(result.status).toBe(200);
    expect(textOf(result.events).length).toBeGreaterThan(50);
    const done = eventOf(result.events, 'done') as {
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
    };
    expect(done.estimated).toBe(false);
    expect(done.costNanos).toBe(done.usage.inputTokens * 1_000 + done.usage.outputTokens * 5_000);
  });

  it('stops cleanly when `npm run demo` alone gets SIGTERM (as a service manager sends it): the port is freed', async () => {
    // The npm process only, not its process group: npm passes the signal on to the demo.
    const npm = execFileSync('pgrep', ['-g', String(demo.child.pid), '-f', '^npm run demo'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')[0];
    expect(npm).toMatch(/^\d+$/);
    const from = demo.output().length;
    process.kill(Number(npm), 'SIGTERM');
    // npm leaves as soon as it has passed the signal on; the demo says so and closes.
    expect(await closedAfter(demo, 'SIGTERM', from)).toBe(true);
    expect(demo.output().slice(from)).toMatch(/SIGTERM, shutting down/);
  });

  it('stops cleanly on Ctrl-C (SIGINT to the whole process group, as a terminal sends it), now built', async () => {
    const port = await freePort();
    const again = await start({
      command: 'sh',
      args: ['-c', command],
      cwd: clone,
      env: { PORT: String(port) },
      timeoutMs: 120_000,
    });
    // Installed and built already: no npm ci this time, the build is turbo's cache.
    expect(again.output()).not.toMatch(/installing dependencies/);
    expect(again.output()).toMatch(/built in \d+ s; starting the demo/);
    process.kill(-again.child.pid!, 'SIGINT');
    expect(await closedAfter(again, 'SIGINT', 0)).toBe(true);
    expect(again.output()).toMatch(/SIGINT, shutting down/);
    // The shell, npm and the demo all leave: nothing of the group is left running.
    for (let i = 0; i < 100 && again.child.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(again.child.exitCode !== null || again.child.signalCode !== null).toBe(true);
  }, 150_000);
});

/**
 * Whether a demo's port is closed within ~10 s after `signal` (which its output names once
 * it is handled, after `from`).
 */
async function closedAfter(running: Running, signal: string, from: number): Promise<boolean> {
  const port = Number(new URL(running.url).port);
  let open = true;
  for (let i = 0; i < 100 && (open || !running.output().slice(from).includes(signal)); i++) {
    open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) await new Promise((r) => setTimeout(r, 100));
  }
  return !open;
}
