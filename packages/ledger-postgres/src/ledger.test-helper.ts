/** Shared by the ledger's tests: settlements to write, and a logger that keeps what it was told. */
import { emptyUsage } from '@tokenmeter/core';
import type { LedgerEntry, LedgerLogger } from './types.js';

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
