// @ts-check
/** Display helpers. Money arrives as integer nano-dollars (or USD numbers with ≤ 9 decimals). */

/**
 * Same output as `formatUsd()` from @tokenmeter/core: at least 2 and at most 9 decimals,
 * trailing zeros dropped — `1_500_000_000` → "$1.50", `123_000` → "$0.000123".
 * @param {number} nanos
 */
export function formatNanos(nanos) {
  const negative = nanos < 0;
  const abs = Math.abs(Math.round(nanos));
  const whole = Math.floor(abs / 1e9)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = String(abs % 1e9)
    .padStart(9, '0')
    .replace(/0+$/, '')
    .padEnd(2, '0');
  return `${negative ? '-' : ''}$${whole}.${frac}`;
}

/** @param {number} usd */
export function usdToNanos(usd) {
  return Math.round(usd * 1e9);
}

/** @param {number} n */
export function formatCount(n) {
  return n.toLocaleString('en-US');
}

/**
 * "in 3 h 12 min" until an ISO time.
 * @param {string | null} iso
 */
export function formatUntil(iso) {
  if (!iso) return 'never';
  const ms = Date.parse(iso) - Date.now();
  if (ms <= 0) return 'now';
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 60) return `in ${minutes} min`;
  return `in ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
