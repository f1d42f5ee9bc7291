/**
 * Shared by the ledger's tests: a private PostgreSQL for the file, settlements to write,
 * and a logger that keeps what it was told.
 */
import { emptyUsage } from '@tokenmeter/core';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { type PrivatePostgres, startPostgres } from './testing.js';
import type { LedgerEntry, LedgerLogger } from './types.js';

/**
 * Starts a private PostgreSQL cluster and a pool on it before the file's tests (handed to
 * `use`), and ends both after them.
 */
export function usePrivatePostgres(use: (db: PrivatePostgres, pool: pg.Pool) => void): void {
  let db: PrivatePostgres | undefined;
  let pool: pg.Pool | undefined;
  beforeAll(async () => {
    db = await startPostgres();
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on('error', () => {});
    use(db, pool);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    db?.destroy();
  });
}

let seq = 0;

/** A settlement of one user, with a fresh request id. */
export function entry(overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    requestId: `req-${process.pid}-${++seq}`,
    scopes: [{ kind: 'user', id: 'ada' }],
    model: 'claude-haiku-4-5',
    provider: 'anthropic',
    outcome: 'completed',
    final: {
      usage: { ...emptyUsage(), inputTokens: 100, outputTokens: 50 },
      costNanos: 350_000,
      estimated: false,
    },
    reservedNanos: 5_220_000,
    durationMs: 1_200,
    timeToFirstTokenMs: 150,
    recorded: true,
    ...overrides,
  };
}

export interface LogLine {
  level: 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): LedgerLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    warn: (message, fields = {}) => lines.push({ level: 'warn', message, fields }),
    error: (message, fields = {}) => lines.push({ level: 'error', message, fields }),
  };
}
