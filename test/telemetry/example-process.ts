/**
 * Test helper: runs examples/observability/server.mjs as a child process on loopback (the
 * in-process fake upstream, as fast as possible), with its OTLP trace export pointed at a
 * local sink that keeps every request body.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));
export const OBSERVABILITY_DIR = fileURLToPath(
  new URL('../../examples/observability/', import.meta.url),
);

/** An OTLP/HTTP receiver: keeps the JSON bodies posted to /v1/traces. */
export interface OtlpSink {
  url: string;
  bodies: unknown[];
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    bodies,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ExampleApp {
  url: string;
  output: string[];
  stop(): Promise<void>;
}

/** Starts the example app; resolves once it listens. */
export async function startExample(env: Record<string, string>): Promise<ExampleApp> {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    // The example reads these; the test decides them.
    if (value !== undefined && !key.startsWith('OTEL_') && key !== 'ANTHROPIC_API_KEY') {
      clean[key] = value;
    }
  }
  const child: ChildProcess = spawn(process.execPath, ['observability/server.mjs'], {
    cwd: EXAMPLES_DIR,
    env: {
      ...clean,
      PORT: '0',
      HOST: '127.0.0.1',
      FAKE_TPS: '0',
      FAKE_TTFT_MS: '5',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the example did not start:\n${output.join('')}`)),
      15_000,
    );
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output.join(''));
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the example exited (${code}):\n${output.join('')}`));
    });
  });
  return {
    url,
    output,
    stop: () => stopProcess(child),
  };
}

/** SIGTERM (the example flushes its spans), then SIGKILL after 3 s. */
export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
