/**
 * Test support: real `redis-server` processes on free loopback ports — one server, or a
 * 3-master Redis Cluster — started and killed by the tests themselves, never the
 * machine's shared Redis. A missing `redis-server` binary fails the tests loudly: these
 * tests exist to prove the store against a real Redis, so skipping would prove nothing.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REDIS_SERVER = 'redis-server';
const REDIS_CLI = 'redis-cli';
const live = new Set<ChildProcess>();

// A crashed test run must not leave servers behind.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A port nothing listens on now (and, with `clusterBus`, port + 10000 too). */
export async function freePort(clusterBus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (!clusterBus) return port;
    if (port + 10_000 <= 65_535 && (await isFree(port + 10_000))) return port;
  }
  throw new Error('could not find a free port (with a free cluster bus port) on 127.0.0.1');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
    });
  });
}

async function isFree(port: number): Promise<boolean> {
  try {
    await listenOnce(port);
    return true;
  } catch {
    return false;
  }
}

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** Stops the server (SIGKILL by default: a crash, not a clean shutdown) and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP / SIGCONT: the server keeps its connections but answers nothing (a hung Redis). */
  pause(): void;
  resume(): void;
}

/** Starts `redis-server` on `port` (a free one by default) and waits until it accepts connections. */
export async function startRedis(
  options: { port?: number; args?: readonly string[] } = {},
): Promise<RedisProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...(options.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => live.delete(child));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`redis-server on port ${port} did not start within 10 s:\n${output}`)),
      10_000,
    );
    function fail(error: Error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    }
    child.once('error', (error: NodeJS.ErrnoException) => {
      fail(
        error.code === 'ENOENT'
          ? new Error(
              `${REDIS_SERVER} is not installed or not on PATH. The Redis store tests need a real Redis: install it (e.g. apt-get install redis-server) — they do not skip.`,
            )
          : error,
      );
    });
    const onExit = (code: number | null) =>
      fail(new Error(`redis-server on port ${port} exited with ${code}:\n${output}`));
    child.once('exit', onExit);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid as number,
    async stop(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill(signal);
      await exited;
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
  };
}

/** Runs `redis-cli -p port ...args` and returns its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout;
}

export interface RedisClusterProcess {
  readonly nodes: readonly { host: string; port: number }[];
  readonly servers: readonly RedisProcess[];
  stop(): Promise<void>;
}

/** Starts a 3-master Redis Cluster (no replicas) and waits for `cluster_state:ok` on every node. */
export async function startCluster(): Promise<RedisClusterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = await freePort(true);
    if (!ports.includes(port)) ports.push(port);
  }
  const servers = await Promise.all(
    ports.map((port) =>
      startRedis({
        port,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
        ],
      }),
    ),
  );
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run(REDIS_CLI, [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      while (!(await redisCli(port, 'cluster', 'info')).includes('cluster_state:ok')) {
        if (Date.now() > deadline)
          throw new Error(`cluster node ${port} never reached cluster_state:ok`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), servers, stop };
}
