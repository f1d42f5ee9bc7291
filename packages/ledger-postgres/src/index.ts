export { escapeText, unescapeText } from './escape.js';
export { createPostgresLedger } from './ledger.js';
export {
  type ModelSpend,
  type PeriodSpend,
  type Range,
  type Reconciliation,
  reconcile,
  type ScopeRef,
  type Spender,
  type StreamRecord,
  spendByModel,
  spendByPeriod,
  streamRecord,
  topSpenders,
} from './queries.js';
export { MIGRATIONS, type Migration, migrate } from './schema.js';
export type {
  LedgerEntry,
  LedgerLogger,
  LedgerStats,
  PostgresLedger,
  PostgresLedgerOptions,
} from './types.js';
