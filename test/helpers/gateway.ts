/** Test helper: a gateway mounted at `/llm` of an Express (4 or 5) app on loopback. */
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayOptions, SettleInfo } from '@tokenmeter/express';
import type express5 from 'express';
import type { ExpressFactory } from './app.js';

export interface Gateway {
  /** `http://127.0.0.1:<port>/llm` (OpenAI callers add `/v1`). */
  url: string;
  settles: SettleInfo[];
  /** Requests that reached the gateway's mount point (before it answered). */
  hits: number;
  close(): Promise<void>;
}

export async function startGateway(
  express: ExpressFactory,
  create: (options: GatewayOptions) => unknown,
  options: GatewayOptions,
): Promise<Gateway> {
  const app = (express as typeof express5)();
  const settles: SettleInfo[] = [];
  const gateway: Gateway = { url: '', settles, hits: 0, close: async () => {} };
  app.use('/llm', (_req: unknown, _res: unknown, next: () => void) => {
    gateway.hits++;
    next();
  });
  app.use(
    '/llm',
    create({
      logger: { warn() {}, error() {} },
      ...options,
      onSettle: (info) => {
        settles.push(info);
        return options.onSettle?.(info);
      },
    }) as never,
  );
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  gateway.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/llm`;
  gateway.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return gateway;
}

/** Waits (up to 5 s) until `n` streams have settled; settlement lands after the response. */
export async function waitForSettles(gateway: Gateway, n: number): Promise<SettleInfo[]> {
  const deadline = Date.now() + 5_000;
  while (gateway.settles.length < n && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return gateway.settles;
}

/**
 * Asks `url` to become a WebSocket, as Codex does first (`GET` with `Upgrade: websocket`;
 * fetch cannot send Upgrade): the status and body of the answer.
 */
export function askForWebSocket(
  url: string,
  key: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          authorization: `Bearer ${key}`,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}
