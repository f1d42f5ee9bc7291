/**
 * Codex and Claude Code themselves, through both gateways: `agents-through-gateway.mjs` run
 * as it is run by hand. It installs the pinned clients from npm into
 * `/tmp/tokenmeter-clients` on the first run (about 10 s with npm's cache, reused after),
 * runs `codex exec` (a custom provider; `openai_base_url` with its WebSocket attempt; a
 * tool loop) and `claude -p` through a 3-turn tool loop against the testkit, and checks
 * every call was settled once at exactly the hand-computed price. Any failed check fails
 * this test, with the script's output (its report of each call's charge) as the message.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./agents-through-gateway.mjs', import.meta.url));

describe('real coding agents through the gateways', () => {
  it('Codex (Responses API) and Claude Code (a 3-turn tool loop): every call answered and charged exactly', () => {
    const run = spawnSync(process.execPath, [SCRIPT], {
      encoding: 'utf8',
      timeout: 280_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output.slice(-6_000)).toBe(0);
    expect(output).toContain('all checks hold');
    // Each scenario ran and reported its charges.
    expect(output).toMatch(/a\. codex custom provider: exit 0/);
    expect(output).toMatch(/b\. codex openai_base_url: exit 0, .* 1 WebSocket GET → 426/);
    expect(output).toMatch(/c\. codex tool loop: exit 0, .* 3 POSTs/);
    expect(output).toMatch(/d\. claude code tool loop: exit 0, .* 3 main call\(s\)/);
  }, 300_000);
});
