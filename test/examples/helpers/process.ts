/**
 * Test helper: runs an example (or `npm run demo`) as a child process the way a user
 * would, on a free port, and waits for its "listening on http://…" line. Every process is
 * started in its own process group and killed with the whole group (npm → sh → node), so
 * nothing outlives a test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const EXAMPLES_DIR = `${REPO_ROOT}examples/`;
export const LISTENING = /listening on (http:\/\/\S+)/;

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Running {
  readonly child: ChildProcess;
  /** The first capture group of `ready` (the URL for LISTENING). */
  readonly url: string;
  /** Everything the process wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** Resolves when `pattern` appears in the output after `from` (an output length). */
  waitFor(pattern: RegExp, timeoutMs?: number, from?: number): Promise<RegExpMatchArray>;
  /** Kills the whole process group: SIGTERM, then SIGKILL after 3 s. */
  stop(): Promise<void>;
}

export interface StartOptions {
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** What means "ready"; its first group becomes `url`. Defaults to LISTENING. */
  ready?: RegExp;
  timeoutMs?: number;
}

const running = new Set<Running>();

/** Kills every process started by `start()` that is still running (for afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

export async function start(options: StartOptions): Promise<Running> {
  const env = userShellEnv();
  // A real key in the developer's shell must not leak into tests (real money, real network).
  delete env.ANTHROPIC_API_KEY;
  delete env.ANTHROPIC_BASE_URL;
  delete env.OPENAI_API_KEY;
  delete env.OPENAI_BASE_URL;
  delete env.REDIS_URL;
  delete env.DATABASE_URL;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const child = spawn(options.command, options.args, {
    cwd: options.cwd ?? REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
    for (const listener of listeners) listener();
  });
  child.once('error', (error) => {
    // Spawning failed (e.g. the command is not installed): no 'exit' will follow.
    output += `\n[could not start ${options.command}: ${error.message}]`;
    exitCode = -2;
    for (const listener of listeners) listener();
  });

  const waitFor: Running['waitFor'] = (pattern, timeoutMs = 30_000, from = 0) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const match = output.slice(from).match(pattern);
        if (match) {
          done();
          resolve(match);
        } else if (exitCode !== undefined) {
          done();
          reject(
            new Error(
              `${options.command} ${options.args.join(' ')} exited (${exitCode}) before printing ${pattern}:\n${output}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output:\n${output}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  let stopping: Promise<void> | undefined;
  const handle: Running = {
    child,
    url: '',
    output: () => output,
    waitFor,
    stop() {
      stopping ??= (async () => {
        running.delete(handle);
        if (exitCode === undefined && child.pid !== undefined) {
          killGroup(child.pid, 'SIGTERM');
          const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3_000));
          if ((await Promise.race([exited, timeout])) === 'timeout') {
            killGroup(child.pid, 'SIGKILL');
            await exited;
          }
        }
        // Children of npm (sh, node) may outlive it for a moment: take the group down too.
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      })();
      return stopping;
    },
  };
  running.add(handle);
  try {
    const match = await waitFor(options.ready ?? LISTENING, options.timeoutMs ?? 30_000);
    (handle as { url: string }).url = match[1] ?? '';
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

/**
 * The environment of a user's shell: this process's, without what npm, turbo and vitest
 * add for their children (npm_config_local_prefix, npm_package_*, INIT_CWD, NODE_ENV=test,
 * node_modules/.bin on PATH…), which would otherwise steer a nested `npm run`.
 */
function userShellEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_|^INIT_CWD$|^VITEST|^NODE_ENV$/.test(name)) continue;
    if (name.startsWith('TURBO_') && name !== 'TURBO_TELEMETRY_DISABLED') continue;
    env[name] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !/node_modules[/\\]\.bin$|node-gyp-bin$/.test(dir))
    .join(':');
  env.NO_COLOR = '1';
  env.FORCE_COLOR = '0';
  return env;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** `node <file>` for an example file under examples/, on a free port. */
export async function startExample(
  file: string,
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Promise<Running> {
  const port = await freePort();
  return start({
    command: process.execPath,
    args: [`${EXAMPLES_DIR}${file}`],
    cwd: EXAMPLES_DIR,
    env: { PORT: String(port), ...env },
    timeoutMs,
  });
}
