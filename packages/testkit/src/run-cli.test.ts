// The CLI: flags map onto server options, it prints the real bound URL, serves, and shuts
// down on SIGTERM / SIGINT.

import { EventEmitter } from 'node:events';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { CLI_DEFAULTS, type CliHandle, parseCliArgs, runCli } from './run-cli.js';

function io() {
  let out = '';
  let err = '';
  const signals = new EventEmitter();
  return {
    io: {
      stdout: { write: (text: string) => (out += text) },
      stderr: { write: (text: string) => (err += text) },
      signals,
    },
    signals,
    out: () => out,
    err: () => err,
  };
}

describe('parseCliArgs', () => {
  it('maps flags onto server options, with the CLI pacing defaults', () => {
    const { options, quiet } = parseCliArgs([
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--tokens',
      '300',
      '--chunk',
      '3',
      '--seed',
      '9',
      '--cache-read',
      '100',
      '--fault',
      'error-mid-stream',
      '--fault-after',
      '5',
      '--quiet',
    ]);
    expect(options).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      tokens: 300,
      chunk: 3,
      seed: 9,
      cacheReadTokens: 100,
      fault: 'error-mid-stream',
      faultAfter: 5,
      tps: CLI_DEFAULTS.tps,
      ttftMs: CLI_DEFAULTS.ttftMs,
      headerKnobs: true,
    });
    expect(quiet).toBe(true);
    expect(parseCliArgs(['--tps', '0']).options).toMatchObject({ tps: 0, port: 4010 });
  });

  it('maps --text, --searches, --search-result-tokens and the tool loop flags', () => {
    const { options } = parseCliArgs([
      '--text',
      'vietnamese',
      '--searches',
      '2',
      '--search-result-tokens',
      '300',
    ]);
    expect(options).toMatchObject({ text: 'vietnamese', searches: 2, searchResultTokens: 300 });
    const loop = parseCliArgs(['--tool-turns', '3', '--tool-name', 'Glob']).options;
    expect(loop).toMatchObject({ toolTurns: 3, toolName: 'Glob' });
    expect(() => parseCliArgs(['--text', 'hex'])).toThrow('--text: expected one of');
    expect(() => parseCliArgs(['--search-result-tokens=-1'])).toThrow(
      '--search-result-tokens: expected a non-negative integer',
    );
  });
});

describe('runCli', () => {
  it('prints the bound URL, serves requests, and closes on SIGTERM', async () => {
    const cli = io();
    const handle = (await runCli(
      ['--port', '0', '--tps', '0', '--ttft-ms', '0', '--tokens', '6'],
      cli.io,
    )) as CliHandle;
    expect(typeof handle).toBe('object');
    const match = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(cli.out());
    expect(match?.[2]).toBe(String(handle.fake.port));
    expect(handle.fake.port).toBeGreaterThan(0);

    const client = new OpenAI({ baseURL: `${match![1]}/v1`, apiKey: 'x', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.usage?.completion_tokens).toBe(6);
    await handle.fake.waitForIdle();
    expect(cli.out()).toContain(
      'POST /v1/chat/completions 200 gpt-4o-mini json tokens=6/6 completed',
    );
    const response = await client.responses.create({
      model: 'gpt-5-mini',
      input: 'hi',
      stream: true,
    });
    for await (const _ of response) {
    }
    await handle.fake.waitForIdle();
    expect(cli.out()).toContain('POST /v1/responses 200 gpt-5-mini stream tokens=6/6 completed');
    expect(cli.out()).toContain('(chat.completions, responses)');

    cli.signals.emit('SIGTERM');
    await handle.stopped;
    expect(cli.out()).toContain('shutting down');
    await expect(fetch(`${match![1]}/health`)).rejects.toThrow();
    expect(cli.signals.listenerCount('SIGINT')).toBe(0);
  });

  it('exits with 2 and the usage on a bad flag, 0 on --help', async () => {
    const bad = io();
    expect(await runCli(['--tokens', 'many'], bad.io)).toBe(2);
    expect(bad.err()).toContain('--tokens: expected a non-negative integer');
    expect(bad.err()).toContain('Usage: tokenmeter-fake-llm');
    const unknown = io();
    expect(await runCli(['--nope'], unknown.io)).toBe(2);
    const help = io();
    expect(await runCli(['--help'], help.io)).toBe(0);
    expect(help.out()).toContain('--ttft-ms');
    expect(help.out()).toContain('--cache-write-1h');
    expect(help.out()).toContain('--searches');
    expect(help.out()).toContain('--search-result-tokens');
    expect(help.out()).toContain('mixed | plain | emoji | vietnamese | cjk | base64 | repeat');
    expect(help.out()).toContain('--tool-turns');
    expect(help.out()).toContain('--tool-name');
  });
});
