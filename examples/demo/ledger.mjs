// @ts-check
/**
 * The demo's spend ledger: with DATABASE_URL set, every settled stream is recorded in
 * PostgreSQL by `@tokenmeter/ledger-postgres` (tables created at start), and the page shows
 * the caller's spend history from it. Without it there is no ledger and no database. The
 * package is imported only when it is used.
 */
import { redactUrl } from './config.mjs';

/**
 * @param {import('./config.mjs').DemoConfig} config
 * @returns {Promise<{ ledger: import('@tokenmeter/ledger-postgres').PostgresLedger, description: string } | undefined>}
 */
export async function createLedger(config) {
  if (!config.databaseUrl) return undefined;
  const { createPostgresLedger } = await import('@tokenmeter/ledger-postgres');
  return {
    ledger: createPostgresLedger({ connectionString: config.databaseUrl }),
    description: `recorded in PostgreSQL at ${redactUrl(config.databaseUrl)} (DATABASE_URL is set)`,
  };
}
