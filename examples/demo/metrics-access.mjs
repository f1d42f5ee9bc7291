// @ts-check
/**
 * Who may read `GET /metrics`. The metrics name models, outcomes and spend, so they are not
 * for everyone who can reach the page: with TOKENMETER_DEMO_METRICS_TOKEN set, any caller
 * that sends it as `Authorization: Bearer <token>` (a Prometheus scrape job's
 * `authorization` setting); without it, callers on this machine only. A request relayed by
 * a proxy (it carries `Forwarded` or `X-Forwarded-For`) is not a caller on this machine,
 * even when the proxy connects from loopback.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * 127.0.0.0/8, ::1 and their IPv4-mapped forms.
 * @param {string | undefined} address A socket's `remoteAddress`.
 */
export function isLoopback(address) {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

/**
 * The verdict for one request: `undefined` lets it through; otherwise the refusal to send.
 * @param {{ token: string | undefined }} options
 */
export function metricsAccess({ token }) {
  const expected = token === undefined ? undefined : digest(token);
  /**
   * @param {{ remoteAddress: string | undefined, authorization: string | undefined, forwarded: boolean }} request
   * @returns {{ status: 401 | 403, code: string, message: string } | undefined}
   */
  return function check({ remoteAddress, authorization, forwarded }) {
    if (expected) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      // Digests of equal length, compared in constant time: the token's length leaks nothing.
      if (match?.[1] && timingSafeEqual(digest(match[1]), expected)) return undefined;
      return {
        status: 401,
        code: 'unauthenticated',
        message: 'GET /metrics needs Authorization: Bearer <TOKENMETER_DEMO_METRICS_TOKEN>.',
      };
    }
    if (isLoopback(remoteAddress) && !forwarded) return undefined;
    return {
      status: 403,
      code: 'forbidden',
      message:
        'GET /metrics answers callers on this machine only; set TOKENMETER_DEMO_METRICS_TOKEN to scrape it from elsewhere with that bearer token.',
    };
  };
}

/** @param {string} text */
function digest(text) {
  return createHash('sha256').update(text).digest();
}
