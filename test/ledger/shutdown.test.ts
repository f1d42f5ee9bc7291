/**
 * A shutdown while Postgres is unreachable: `await ledger.close()` is the last thing the
 * process waits on. It must hold the process until its deadline and say what was not
 * written — not let the event loop empty and the process exit in silence.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const CHILD = `
import { createPostgresLedger } from '@tokenmeter/ledger-postgres';
const ledger = createPostgresLedger({
  connectionString: 'postgres://postgres@127.0.0.1:1/unreachable',
  migrate: false,
  retry: { minMs: 50, maxMs: 200 },
  logger: {
    warn: (message, fields) => console.log(JSON.stringify({ level: 'warn', message, fields })),
    error: (message, fields) => console.log(JSON.stringify({ level: 'error', message, fields })),
  },
});
const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWrite5mTokens: 0,
  cacheWrite1hTokens: 0, reasoningTokens: 0, webSearchRequests: 0, webFetchRequests: 0 };
for (let i = 0; i < 7; i++) {
  ledger.onSettle({ requestId: 'r' + i, scopes: [{ kind: 'user', id: 'ada' }], model: 'm',
    outcome: 'completed', final: { usage, costNanos: 1, estimated: false }, durationMs: 1 });
}
const started = Date.now();
const stats = await ledger.close(1_500);
console.log(JSON.stringify({ closed: stats, ms: Date.now() - started }));
`;

it('close() on shutdown holds the process to its deadline and logs how many settlements were not written', async () => {
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), timeout: 20_000 },
      (error, stdout) => resolve({ code: error ? ((error.code as number) ?? -1) : 0, stdout }),
    );
  });
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(code).toBe(0);
  expect(lines).toContainEqual({
    level: 'error',
    message: 'tokenmeter ledger: closing with settlements not written',
    fields: expect.objectContaining({ notWritten: 7, deadlineMs: 1_500 }),
  });
  const last = lines.at(-1) as { closed: { queued: number; retries: number }; ms: number };
  expect(last.closed.queued).toBe(7);
  expect(last.closed.retries).toBeGreaterThan(0);
  // It waited for its deadline (retrying meanwhile), not a moment less.
  expect(last.ms).toBeGreaterThanOrEqual(1_400);
}, 30_000);
