/**
 * Plain JSON error responses for everything decided before the stream starts:
 * `{ error: { code, message, ...details } }` with a stable `code`.
 */
import type { Transport } from './transport.js';

export function sendJsonError(
  transport: Transport,
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  if (transport.headersSent) return;
  transport.send(
    status,
    {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
    },
    JSON.stringify({ error: { code, message, ...details } }),
  );
}
