// The `tokenmeter-fake-llm` command: parses flags (one per server knob, plus --port,
// --host, --api-key…), starts the fake, prints where it listens, logs each request, and
// closes every connection on SIGINT / SIGTERM. Kept apart from cli.ts so tests can run it
// in-process with their own output and signal source.

import { parseArgs } from 'node:util';
import { KNOB_SPECS, KnobError, knobsFromFlags } from './knobs.js';
import { type FakeLLM, startFakeLLM } from './server.js';
import type { FakeLLMOptions, KnobOptions } from './types.js';

/**
 * Defaults of the CLI that differ from the library's: a person watching a demo wants to see
 * tokens arrive, tests want them at once.
 */
export const CLI_DEFAULTS: Readonly<KnobOptions> = Object.freeze({ tps: 40, ttftMs: 250 });

const SERVER_FLAGS = {
  port: { type: 'string', doc: 'port to listen on; 0 picks a free one (default 4010)' },
  host: { type: 'string', doc: 'interface to listen on (default 127.0.0.1)' },
  'api-key': { type: 'string', doc: 'require this API key (default: accept any)' },
  'max-records': { type: 'string', doc: 'request records kept in memory (default 10000)' },
  'no-header-knobs': { type: 'boolean', doc: 'ignore x-fake-llm-* request headers' },
  quiet: { type: 'boolean', doc: 'do not log each request' },
  help: { type: 'boolean', doc: 'show this help' },
} as const;

/** Where the CLI writes and which signals stop it (process by default). */
export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  signals: {
    once(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
    off(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  };
}

/** A running CLI server. */
export interface CliHandle {
  fake: FakeLLM;
  /** Resolves once a signal closed the server. */
  stopped: Promise<void>;
}

export function usage(): string {
  const lines = ['Usage: tokenmeter-fake-llm [options]', '', 'Server:'];
  for (const [flag, spec] of Object.entries(SERVER_FLAGS)) {
    lines.push(`  --${flag.padEnd(20)} ${spec.doc}`);
  }
  lines.push('', 'Knobs (defaults for every request; x-fake-llm-<flag> headers override):');
  for (const knob of KNOB_SPECS) lines.push(`  --${knob.flag.padEnd(20)} ${knob.doc}`);
  lines.push(`  (the CLI defaults to --tps ${CLI_DEFAULTS.tps} --ttft-ms ${CLI_DEFAULTS.ttftMs})`);
  return `${lines.join('\n')}\n`;
}

/** Parses argv into server options; throws `KnobError` (or a parseArgs TypeError). */
export function parseCliArgs(argv: readonly string[]): {
  options: FakeLLMOptions;
  help: boolean;
  quiet: boolean;
} {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [flag, spec] of Object.entries(SERVER_FLAGS)) options[flag] = { type: spec.type };
  for (const knob of KNOB_SPECS) options[knob.flag] = { type: 'string' };
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });

  const port = values.port === undefined ? 4010 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new KnobError(
      `--port: expected an integer from 0 to 65535, got ${JSON.stringify(values.port)}`,
    );
  }
  const maxRecords =
    values['max-records'] === undefined ? undefined : Number(values['max-records']);
  if (maxRecords !== undefined && !(Number.isInteger(maxRecords) && maxRecords >= 0)) {
    throw new KnobError(
      `--max-records: expected a non-negative integer, got ${JSON.stringify(values['max-records'])}`,
    );
  }
  const parsed: FakeLLMOptions = {
    ...CLI_DEFAULTS,
    ...knobsFromFlags(values),
    port,
    headerKnobs: values['no-header-knobs'] !== true,
  };
  if (typeof values.host === 'string') parsed.host = values.host;
  if (typeof values['api-key'] === 'string') parsed.apiKey = values['api-key'];
  if (maxRecords !== undefined) parsed.maxRecords = maxRecords;
  return { options: parsed, help: values.help === true, quiet: values.quiet === true };
}

/**
 * Runs the CLI. Resolves with a handle once listening, or with an exit code when it did not
 * start (0 after --help, 2 on bad flags, 1 when the port could not be bound).
 */
export async function runCli(
  argv: readonly string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr, signals: process },
): Promise<CliHandle | number> {
  let parsed: ReturnType<typeof parseCliArgs>;
  try {
    parsed = parseCliArgs(argv);
  } catch (error) {
    io.stderr.write(`tokenmeter-fake-llm: ${(error as Error).message}\n\n${usage()}`);
    return 2;
  }
  if (parsed.help) {
    io.stdout.write(usage());
    return 0;
  }

  let fake: FakeLLM;
  try {
    fake = await startFakeLLM(parsed.options);
  } catch (error) {
    io.stderr.write(`tokenmeter-fake-llm: cannot listen: ${(error as Error).message}\n`);
    return 1;
  }
  io.stdout.write(
    `tokenmeter fake LLM listening on ${fake.url}\n` +
      `  Anthropic: new Anthropic({ baseURL: '${fake.url}', apiKey: 'any' })  (messages)\n` +
      `  OpenAI:    new OpenAI({ baseURL: '${fake.url}/v1', apiKey: 'any' })  (chat.completions, responses)\n`,
  );
  if (!parsed.quiet) {
    fake.on('request-end', (record) => {
      const ms = Math.round((record.endedAt ?? performance.now()) - record.receivedAt);
      io.stdout.write(
        `${record.method} ${record.path} ${record.status} ${record.model ?? '-'} ` +
          `${record.stream ? 'stream' : 'json'} tokens=${record.tokensSent}/${record.tokensPlanned} ` +
          `${record.stopCause ?? '-'} ${ms}ms\n`,
      );
    });
  }

  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      io.signals.off('SIGINT', stop);
      io.signals.off('SIGTERM', stop);
      io.stdout.write('tokenmeter fake LLM shutting down\n');
      void fake.close().then(resolve);
    };
    io.signals.once('SIGINT', stop);
    io.signals.once('SIGTERM', stop);
  });
  return { fake, stopped };
}
