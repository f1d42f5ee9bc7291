/** Runs the load generator (loadgen.mjs) as a child process, bounded in time. */
import { fileURLToPath } from 'node:url';
import { spawnChild, stopChild } from './processes.mjs';

const script = fileURLToPath(new URL('./loadgen.mjs', import.meta.url));

/**
 * Runs one load-generator job and resolves with its `RESULT`. `onLine` sees every stdout
 * line (hold mode prints `OPEN`); `child.stdin` is open for hold mode's `close`.
 */
export function runLoad(config, { timeoutMs, onStart } = {}) {
  const child = spawnChild(
    process.execPath,
    ['--max-old-space-size=4096', script, JSON.stringify(config)],
    {
      name: `loadgen(${config.mode})`,
      stdin: 'pipe',
    },
  );
  onStart?.(child);
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
    });
    const timer = setTimeout(() => {
      void stopChild(child, 500);
      reject(new Error(`load generator (${config.mode}) took longer than ${timeoutMs} ms; killed`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) {
        reject(
          new Error(
            `load generator (${config.mode}) failed (exit ${code}):\n${child.output.slice(-3_000)}`,
          ),
        );
        return;
      }
      resolve(JSON.parse(line.slice('RESULT '.length)));
    });
  });
}
