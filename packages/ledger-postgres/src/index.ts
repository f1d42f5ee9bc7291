export {
  createPostgresLedger,
  type LedgerEntry,
  type LedgerLogger,
  type LedgerStats,
  type PostgresLedger,
  type PostgresLedgerOptions,
} from './ledger.js';
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
