/**
 * The caller's request headers, whatever the framework: its key (who pays), and the few
 * headers the provider may see. Auth, cookies and hop-by-hop headers never go through.
 */

/** A request's headers as `[name, value]` pairs, names in lower case (a Web `Headers` is one). */
export type HeaderList = Iterable<readonly [name: string, value: string]>;

/** Node's `req.headers` as a header list (repeated headers, which arrive as arrays, are left out). */
export function* nodeHeaders(
  headers: Record<string, string | string[] | undefined>,
): Generator<readonly [string, string]> {
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === 'string') yield [name, value];
  }
}

/** Never forwarded, whatever the options say. */
const NEVER_FORWARD = new Set([
  'authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'accept-encoding',
]);

/** The caller's key: `x-api-key`, or the token of `Authorization: Bearer`. */
export function callerKey(headers: HeaderList): string | undefined {
  let bearer: string | undefined;
  for (const [name, value] of headers) {
    if (name === 'x-api-key' && value !== '') return value;
    if (name === 'authorization') bearer = /^Bearer\s+(.+)$/i.exec(value.trim())?.[1];
  }
  return bearer || undefined;
}

/** The headers of the caller's request the provider may see: `allow` by name, or by prefix (`x-trace-*`). */
export function forwarded(headers: HeaderList, allow: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (NEVER_FORWARD.has(name)) continue;
    const ok = allow.some((rule) =>
      rule.endsWith('*') ? name.startsWith(rule.slice(0, -1)) : name === rule,
    );
    if (ok) out[name] = value;
  }
  return out;
}

/** True when the request asks to become a WebSocket (`Upgrade: websocket`). */
export function asksForWebSocket(headers: HeaderList): boolean {
  for (const [name, value] of headers) {
    if (name === 'upgrade' && value.trim().toLowerCase() === 'websocket') return true;
  }
  return false;
}
