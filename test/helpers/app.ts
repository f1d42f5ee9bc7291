/** Test helper: an Express (4 or 5) app with costTrackedSSE on a real loopback socket. */

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import {
  type CostTrackedSSEOptions,
  costTrackedSSE,
  type MeteredStream,
  type SettleInfo,
} from '@tokenmeter/express';
import express5 from 'express';
import express4 from 'express4';

export const EXPRESS_VERSIONS = [
  ['express 4', express4],
  ['express 5', express5],
] as const;

export type ExpressFactory = typeof express5 | typeof express4;

export interface TestApp {
  url: string;
  settles: SettleInfo[];
  warnings: string[];
  errors: string[];
  /** Streams the middleware has open right now. */
  activeStreams(): number;
  /** Resolves when `n` streams have settled. */
  waitForSettles(n: number, timeoutMs?: number): Promise<SettleInfo[]>;
  close(): Promise<void>;
}

export interface AppOptions {
  express: ExpressFactory;
  middleware: Omit<CostTrackedSSEOptions, 'onSettle' | 'logger'> & {
    onSettle?: CostTrackedSSEOptions['onSettle'];
  };
  /** Route handler after the middleware (non-terminal mode), called from an async wrapper. */
  handler?: (req: express5.Request, res: express5.Response, meter: MeteredStream) => unknown;
  /** A route handler mounted as it is (a plain function: sync throws reach Express itself). */
  rawHandler?: (req: express5.Request, res: express5.Response) => unknown;
  /** Extra middleware mounted before the route (e.g. compression()). */
  before?: express5.RequestHandler[];
}

/** Who pays in tests: the `x-user` header (tests only: apps must use real auth). */
export const identifyByHeader = (req: { headers: Record<string, unknown> }) => {
  const user = req.headers['x-user'];
  return typeof user === 'string' ? { user } : undefined;
};

export async function startApp(options: AppOptions): Promise<TestApp> {
  const app = (options.express as typeof express5)();
  const log = settlementLog();
  for (const m of options.before ?? []) app.use(m);
  const middleware = costTrackedSSE({
    ...options.middleware,
    logger: log.logger,
    onSettle: async (info) => {
      log.onSettle(info);
      await options.middleware.onSettle?.(info);
    },
  });
  const handlers: express5.RequestHandler[] = [
    express5.json({ limit: '1mb' }) as express5.RequestHandler,
    middleware as unknown as express5.RequestHandler,
  ];
  if (options.handler) {
    const handler = options.handler;
    handlers.push(async (req, res) => {
      await handler(req, res, res.locals.tokenmeter as MeteredStream);
    });
  }
  if (options.rawHandler) handlers.push(options.rawHandler as express5.RequestHandler);
  app.post('/chat', ...handlers);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/chat`,
    settles: log.settles,
    warnings: log.warnings,
    errors: log.errors,
    activeStreams: () => middleware.activeStreams,
    waitForSettles: log.waitForSettles,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/**
 * What a test app records of its route: settlements (and a wait for them), and what the
 * route logged — given to any adapter as its `logger` and `onSettle`.
 */
export function settlementLog() {
  const settles: SettleInfo[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  const waiters: Array<() => void> = [];
  return {
    settles,
    warnings,
    errors,
    logger: {
      warn: (message: string) => {
        warnings.push(message);
      },
      error: (message: string) => {
        errors.push(message);
      },
    },
    onSettle(info: SettleInfo) {
      settles.push(info);
      for (const w of waiters.splice(0)) w();
    },
    async waitForSettles(n: number, timeoutMs = 15_000): Promise<SettleInfo[]> {
      const deadline = Date.now() + timeoutMs;
      while (settles.length < n) {
        if (Date.now() > deadline)
          throw new Error(`only ${settles.length} of ${n} streams settled`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return settles;
    },
  };
}

/** An Anthropic SDK client pointed at the fake upstream. */
export function anthropicClient(baseURL: string): Anthropic {
  return new Anthropic({ baseURL, apiKey: 'test-key', maxRetries: 0 });
}
