/**
 * Test helper: one metered route, served by each adapter on a real loopback socket —
 * `costTrackedSSE()` on Express 4 and 5, `honoSSE()` on Hono (`@hono/node-server`),
 * `fastifySSE()` on Fastify 5, and `meteredSSE()` as a bare `fetch` handler (the shape of a Next.js route handler, Bun's and
 * Deno's `serve`). The route is described once, without any framework's request type, so
 * one suite can hold every adapter to the same HTTP contract. The gateways likewise: each
 * adapter's `anthropicGateway()` / `openaiGateway()` mounted at `/llm`.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { BudgetInput, MeteredStream, SettleInfo } from '@tokenmeter/express';
import * as express from '@tokenmeter/express';
import { costTrackedSSE } from '@tokenmeter/express';
import * as fastify from '@tokenmeter/fastify';
import { fastifySSE } from '@tokenmeter/fastify';
import * as web from '@tokenmeter/web';
import { type MeteredOptions, meteredSSE } from '@tokenmeter/web';
import { honoSSE } from '@tokenmeter/web/hono';
import express5 from 'express';
import express4 from 'express4';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { settlementLog } from './app.js';

/** A route's options, whatever the framework: the upstream sees the admitted stream and the request's headers. */
export type RouteSpec = Omit<
  MeteredOptions<unknown>,
  'identify' | 'upstream' | 'request' | 'logger' | 'onSettle' | 'budgets'
> & {
  budgets?: Record<string, { limitUsd?: string | number; limitNanos?: number; period?: 'day' }>;
  /** The provider call, from the admitted stream and the request's headers. */
  upstream: (meter: MeteredStream, header: (name: string) => string | undefined) => unknown;
};

export interface ServedRoute {
  url: string;
  settles: SettleInfo[];
  errors: string[];
  activeStreams(): number;
  waitForSettles(n: number, timeoutMs?: number): Promise<SettleInfo[]>;
  close(): Promise<void>;
}

type Header = (name: string) => string | undefined;
/** Who pays in tests: the `x-user` header (tests only: apps must use real auth). */
const userFrom = (header: Header) => {
  const user = header('x-user');
  return user ? { user } : undefined;
};

interface Listening {
  address(): AddressInfo | string | null;
  close(callback: () => void): void;
  closeAllConnections?(): void;
}

function served(
  server: Listening,
  record: ReturnType<typeof settlementLog>,
  activeStreams: () => number,
): ServedRoute {
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/chat`,
    settles: record.settles,
    errors: record.errors,
    activeStreams,
    waitForSettles: record.waitForSettles,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function startExpress(express: typeof express5 | typeof express4) {
  return async (spec: RouteSpec): Promise<ServedRoute> => {
    const record = settlementLog();
    const { upstream, ...options } = spec;
    const middleware = costTrackedSSE({
      ...options,
      logger: record.logger,
      onSettle: record.onSettle,
      identify: (req) => userFrom((name) => req.headers[name] as string | undefined),
      upstream: (req, meter) => upstream(meter, (name) => req.headers[name] as string | undefined),
    });
    const app = (express as typeof express5)();
    // No body parser: the middleware reads the JSON body itself, after identify, as the
    // Web adapters do.
    app.post('/chat', middleware as unknown as express5.Handler);
    const server = await new Promise<ReturnType<typeof app.listen>>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    return served(server, record, () => middleware.activeStreams);
  };
}

/** Serves a fetch handler with `@hono/node-server` on loopback. */
async function listen(fetch: (request: Request, env: unknown) => Response | Promise<Response>) {
  return new Promise<Listening>((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () =>
      resolve(server as unknown as Listening),
    );
  });
}

async function startHono(spec: RouteSpec): Promise<ServedRoute> {
  const record = settlementLog();
  const { upstream, ...options } = spec;
  const handler = honoSSE({
    ...options,
    logger: record.logger,
    onSettle: record.onSettle,
    identify: (c) => userFrom((name) => c.req.header(name)),
    upstream: (c, meter) => upstream(meter, (name) => c.req.header(name)),
  });
  const app = new Hono();
  app.post('/chat', handler);
  const server = await listen(app.fetch);
  return served(server, record, () => handler.activeStreams);
}

async function startFetchHandler(spec: RouteSpec): Promise<ServedRoute> {
  const record = settlementLog();
  const { upstream, ...options } = spec;
  const handler = meteredSSE({
    ...options,
    logger: record.logger,
    onSettle: record.onSettle,
    identify: (request) => userFrom((name) => request.headers.get(name) ?? undefined),
    upstream: (request, meter) => upstream(meter, (name) => request.headers.get(name) ?? undefined),
  });
  const server = await listen((request) =>
    new URL(request.url).pathname === '/chat' && request.method === 'POST'
      ? handler(request)
      : new Response('not found', { status: 404 }),
  );
  return served(server, record, () => handler.activeStreams);
}

async function startFastify(spec: RouteSpec): Promise<ServedRoute> {
  const record = settlementLog();
  const { upstream, ...options } = spec;
  const plugin = fastifySSE({
    ...options,
    logger: record.logger,
    onSettle: record.onSettle,
    url: '/chat',
    identify: (request) => userFrom((name) => request.headers[name] as string | undefined),
    upstream: (request, meter) =>
      upstream(meter, (name) => request.headers[name] as string | undefined),
  });
  const app = Fastify();
  await app.register(plugin);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return served(
    {
      address: () => app.server.address(),
      close: (callback) => {
        app.server.closeAllConnections();
        void app.close().then(callback);
      },
    },
    record,
    () => plugin.activeStreams,
  );
}

/** Every adapter, by name: `describe.each(ADAPTERS)`. */
export const ADAPTERS = [
  ['express 4', startExpress(express4)],
  ['express 5', startExpress(express5)],
  ['web: Hono on Node', startHono],
  ['web: a bare fetch handler', startFetchHandler],
  ['fastify', startFastify],
] as const satisfies ReadonlyArray<readonly [string, (spec: RouteSpec) => Promise<ServedRoute>]>;

/** The provider API a gateway serves. */
export type GatewayKind = 'anthropic' | 'openai';

/** A gateway's options, whatever the framework: `identify` gets the caller's key only. */
export type GatewaySpec = Omit<
  web.WebGatewayOptions,
  'identify' | 'logger' | 'onSettle' | 'basePath' | 'clientAddress' | 'budgets'
> & {
  identify: (key: string | undefined) => ReturnType<web.WebGatewayOptions['identify']>;
  budgets?: Record<string, BudgetInput | ((id: string) => BudgetInput | undefined)>;
};

export interface ServedGateway extends Omit<ServedRoute, 'url'> {
  /** The mount point, `http://127.0.0.1:<port>/llm`: the Anthropic SDK's `baseURL` (OpenAI's adds `/v1`). */
  url: string;
}

/** Each adapter's two gateways. */
const GATEWAYS = {
  express: { anthropic: express.anthropicGateway, openai: express.openaiGateway },
  web: { anthropic: web.anthropicGateway, openai: web.openaiGateway },
  fastify: { anthropic: fastify.anthropicGateway, openai: fastify.openaiGateway },
} as const;

function mountedAt(server: Listening, served_: ServedRoute): ServedGateway {
  const { port } = server.address() as AddressInfo;
  return { ...served_, url: `http://127.0.0.1:${port}/llm` };
}

function gatewayOnExpress(express: typeof express5 | typeof express4) {
  return async (kind: GatewayKind, spec: GatewaySpec): Promise<ServedGateway> => {
    const record = settlementLog();
    const { identify, ...options } = spec;
    const gateway = GATEWAYS.express[kind]({
      ...options,
      logger: record.logger,
      onSettle: record.onSettle,
      identify: (key) => identify(key),
    });
    const app = (express as typeof express5)();
    app.use('/llm', gateway as unknown as express5.Handler);
    const server = await new Promise<ReturnType<typeof app.listen>>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    return mountedAt(
      server,
      served(server, record, () => gateway.activeStreams),
    );
  };
}

function webGateway(kind: GatewayKind, spec: GatewaySpec) {
  const record = settlementLog();
  const { identify, ...options } = spec;
  const gateway = GATEWAYS.web[kind]({
    ...options,
    basePath: '/llm',
    logger: record.logger,
    onSettle: record.onSettle,
    identify: (key) => identify(key),
  });
  return { record, gateway };
}

async function gatewayOnHono(kind: GatewayKind, spec: GatewaySpec): Promise<ServedGateway> {
  const { record, gateway } = webGateway(kind, spec);
  const app = new Hono();
  app.all('/llm/*', (c) => gateway(c.req.raw));
  const server = await listen(app.fetch);
  return mountedAt(
    server,
    served(server, record, () => gateway.activeStreams),
  );
}

async function gatewayAsFetchHandler(kind: GatewayKind, spec: GatewaySpec): Promise<ServedGateway> {
  const { record, gateway } = webGateway(kind, spec);
  const server = await listen((request) =>
    new URL(request.url).pathname.startsWith('/llm/')
      ? gateway(request)
      : new Response('not found', { status: 404 }),
  );
  return mountedAt(
    server,
    served(server, record, () => gateway.activeStreams),
  );
}

async function gatewayOnFastify(kind: GatewayKind, spec: GatewaySpec): Promise<ServedGateway> {
  const record = settlementLog();
  const { identify, ...options } = spec;
  const plugin = GATEWAYS.fastify[kind]({
    ...options,
    logger: record.logger,
    onSettle: record.onSettle,
    identify: (key) => identify(key),
  });
  const app = Fastify();
  await app.register(plugin, { prefix: '/llm' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const server: Listening = {
    address: () => app.server.address(),
    close: (callback) => {
      app.server.closeAllConnections();
      void app.close().then(callback);
    },
  };
  return mountedAt(
    server,
    served(server, record, () => plugin.activeStreams),
  );
}

/** Every adapter's gateways, by name: `describe.each(GATEWAY_ADAPTERS)`. */
export const GATEWAY_ADAPTERS = [
  ['express 4', gatewayOnExpress(express4)],
  ['express 5', gatewayOnExpress(express5)],
  ['web: Hono on Node', gatewayOnHono],
  ['web: a bare fetch handler', gatewayAsFetchHandler],
  ['fastify', gatewayOnFastify],
] as const satisfies ReadonlyArray<
  readonly [string, (kind: GatewayKind, spec: GatewaySpec) => Promise<ServedGateway>]
>;

/** The fake upstream's `x-fake-llm-*` knob headers of the test request, to forward. */
export function knobs(header: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['tokens', 'tps', 'chunk', 'fault', 'fault-after', 'ttft-ms']) {
    const value = header(`x-fake-llm-${name}`);
    if (value !== undefined) out[`x-fake-llm-${name}`] = value;
  }
  return out;
}
