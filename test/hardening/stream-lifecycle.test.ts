/**
 * Every path of a stream ends cleanly. One stream is driven through each await point of
 * its life — admission, open, first event, a write, a drain wait, settlement, onSettle,
 * telemetry, the handler — with a throw, a hang or the client leaving injected there, on
 * Express 4 and 5, in upstream and handler style, on the memory and Redis stores. For every
 * combination:
 *
 * - the client saw a plain JSON rejection, or an SSE stream ending with exactly one `done`
 *   or `error` event, or a closed socket (when it left, or stopped reading);
 * - `onSettle` fired exactly once for an admitted request (never for a rejected one);
 * - the store holds no open reservation and nothing reserved; spend equals the settled cost;
 * - no unhandled rejection;
 * - nothing left behind: no stream in the middleware (so no tick timer), and once the app,
 *   store and fake are closed, `process.getActiveResourcesInfo()` back to where it was
 *   (timers that hold the process, sockets, servers).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { cpus, loadavg } from 'node:os';
import type { Span, Tracer } from '@opentelemetry/api';
import { jsonSseEncoder, type SseEncoder, type Store } from '@tokenmeter/core';
import type { AdmitRequest } from '@tokenmeter/core/store';
import type { MeteredStream, SettleInfo } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import { createRedisStore } from '@tokenmeter/store-redis';
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anthropicClient,
  EXPRESS_VERSIONS,
  type ExpressFactory,
  identifyByHeader,
  startApp,
  type TestApp,
} from '../helpers/app.js';
import { type RedisServer, startRedisServer } from '../helpers/processes.js';
import { knobHeaders } from '../helpers/upstream.js';

const BUDGET = { limitNanos: 50_000_000_000, period: 'day' as const };
/**
 * Store, idle, stall and handover timeouts: short, so hangs end fast — 300 ms on a machine
 * with a core to spare, longer in proportion to the load (runnable processes per core over
 * the last minute), so a busy machine's pauses are not taken for a hang.
 */
const TIMEOUT_MS = 300 * Math.max(1, Math.ceil(loadavg()[0]! / cpus().length));

type Style = 'upstream' | 'handler';
type StoreKind = 'memory' | 'redis';

/** Where a fault is injected, and how: the cases of the matrix. */
interface Case {
  name: string;
  styles?: readonly Style[];
  /** Express 4 does not catch a handler's rejected promise (the app's own unhandled rejection). */
  express5Only?: boolean;
  fault?: {
    store?: { op: 'admit' | 'settle'; how: 'throw' | 'hang' | 'slow' };
    encoder?: { op: 'meta' | 'delta' | 'done'; nth?: number };
    /** What the provider does (fake knobs, or a source of our own). */
    upstream?: Record<string, string> | 'throw-at-first' | 'absurd-usage';
    /** The upstream function (upstream style) or the handler (handler style) misbehaves. */
    handler?: 'throw-sync' | 'reject' | 'never-hand-over' | 'stream-twice' | 'throw-after-stream';
    onSettle?: 'throw' | 'hang';
    tracer?: 'throw-on-end';
  };
  client:
    | 'read'
    | 'close-during-admit'
    | 'close-after-meta'
    | 'close-after-deltas'
    | 'stall'
    | 'stall-then-close';
  /** The outcome onSettle reports; undefined when the request is refused before admission. */
  outcome?: string;
  /** The JSON status when the answer is a rejection before any SSE byte. */
  status?: number;
  /** Nothing may be charged. */
  free?: boolean;
  /** The code of the final `error` event when it differs from the outcome. */
  finalCode?: string;
}

const CASES: readonly Case[] = [
  {
    name: 'admission: the store throws',
    fault: { store: { op: 'admit', how: 'throw' } },
    client: 'read',
    status: 503,
  },
  {
    name: 'admission: the store hangs',
    fault: { store: { op: 'admit', how: 'hang' } },
    client: 'read',
    status: 503,
  },
  {
    name: 'admission: the client leaves',
    fault: { store: { op: 'admit', how: 'slow' } },
    client: 'close-during-admit',
  },
  {
    name: 'open: the encoder throws on meta',
    fault: { encoder: { op: 'meta' } },
    client: 'read',
    status: 500,
    outcome: 'internal_error',
    free: true,
  },
  {
    name: 'first event: the source throws',
    fault: { upstream: 'throw-at-first' },
    client: 'read',
    outcome: 'upstream_error',
  },
  {
    name: 'first event: the provider hangs',
    fault: { upstream: { fault: 'hang' } },
    client: 'read',
    outcome: 'upstream_idle',
  },
  {
    name: 'first event: the client leaves',
    fault: { upstream: { 'ttft-ms': '200' } },
    client: 'close-after-meta',
    outcome: 'client_disconnected',
  },
  {
    name: 'a write: the encoder throws',
    fault: { encoder: { op: 'delta', nth: 3 } },
    client: 'read',
    outcome: 'internal_error',
  },
  {
    name: 'a write: the provider hangs mid-stream',
    fault: { upstream: { fault: 'hang-mid-stream', 'fault-after': '6' } },
    client: 'read',
    outcome: 'upstream_idle',
  },
  {
    name: 'a write: the client leaves',
    fault: { upstream: { tps: '200' } },
    client: 'close-after-deltas',
    outcome: 'client_disconnected',
  },
  {
    name: 'drain wait: the client stops reading',
    fault: { upstream: { tokens: '2000000', chunk: '100' } },
    client: 'stall',
    outcome: 'client_stalled',
  },
  {
    name: 'drain wait: the client leaves',
    fault: { upstream: { tokens: '2000000', chunk: '100' } },
    client: 'stall-then-close',
    outcome: 'client_disconnected',
  },
  {
    name: 'settlement: the store throws once',
    fault: { store: { op: 'settle', how: 'throw' } },
    client: 'read',
    outcome: 'completed',
  },
  {
    name: 'settlement: the store hangs once',
    fault: { store: { op: 'settle', how: 'hang' } },
    client: 'read',
    outcome: 'completed',
  },
  {
    name: 'settlement: the usage cannot be priced',
    fault: { upstream: 'absurd-usage' },
    client: 'read',
    outcome: 'completed',
  },
  {
    // Completed (and settled as such); the client's last event is the fallback error.
    name: 'final event: the encoder throws',
    fault: { encoder: { op: 'done' } },
    client: 'read',
    outcome: 'completed',
    finalCode: 'internal_error',
  },
  { name: 'onSettle throws', fault: { onSettle: 'throw' }, client: 'read', outcome: 'completed' },
  { name: 'onSettle hangs', fault: { onSettle: 'hang' }, client: 'read', outcome: 'completed' },
  {
    name: 'telemetry: the span throws',
    fault: { tracer: 'throw-on-end' },
    client: 'read',
    outcome: 'completed',
  },
  {
    name: 'handler: throws before calling the provider',
    fault: { handler: 'throw-sync' },
    client: 'read',
    outcome: 'handler_error',
    free: true,
  },
  {
    name: 'handler: rejects before calling the provider',
    styles: ['handler'],
    express5Only: true,
    fault: { handler: 'reject' },
    client: 'read',
    outcome: 'handler_error',
    free: true,
  },
  {
    name: 'handler: never hands a stream over',
    styles: ['handler'],
    fault: { handler: 'never-hand-over' },
    client: 'read',
    outcome: 'handler_error',
    free: true,
  },
  {
    name: 'handler: calls stream() twice',
    styles: ['handler'],
    fault: { handler: 'stream-twice' },
    client: 'read',
    outcome: 'completed',
  },
  {
    name: 'handler: throws after handing the stream over',
    styles: ['handler'],
    fault: { handler: 'throw-after-stream', upstream: { tps: '100' } },
    client: 'read',
    outcome: 'handler_error',
  },
];

let redis: RedisServer;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  redis = await startRedisServer();
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await redis?.stop();
});

/** Counts of the resource kinds a leak would show up as. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'Timeout' || kind === 'TCPSocketWrap' || kind === 'TCPServerWrap') {
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
  }
  return counts;
}

/** A store that misbehaves once, at one operation. */
function faulty(inner: Store, fault: NonNullable<Case['fault']>['store']): Store {
  let armed = fault !== undefined;
  const once = <T>(op: string, call: () => Promise<T>): Promise<T> => {
    if (!armed || fault?.op !== op) return call();
    armed = false;
    if (fault.how === 'throw') return Promise.reject(new Error(`injected: ${op} failed`));
    if (fault.how === 'hang') return new Promise<T>(() => {});
    return new Promise<T>((resolve, reject) => setTimeout(() => call().then(resolve, reject), 150));
  };
  return {
    admit: (request: AdmitRequest) => once('admit', () => inner.admit(request)),
    settle: (id, actual) => once('settle', () => inner.settle(id, actual)),
    extend: (id, request) => inner.extend(id, request),
    release: (id) => inner.release(id),
    getState: (scope, policy) => inner.getState(scope, policy),
    now: () => inner.now(),
    ...(inner.releaseByKey
      ? { releaseByKey: (scope, key) => inner.releaseByKey!(scope, key) }
      : {}),
  } as Store;
}

/** The JSON encoder, throwing at one call of one event kind. */
function faultyEncoder(fault: NonNullable<Case['fault']>['encoder']): SseEncoder {
  if (!fault) return jsonSseEncoder;
  let calls = 0;
  const maybeThrow = (op: string) => {
    if (op === fault.op && ++calls === (fault.nth ?? 1)) throw new Error(`injected: encoder ${op}`);
  };
  return {
    ...jsonSseEncoder,
    meta: (data) => {
      maybeThrow('meta');
      return jsonSseEncoder.meta(data);
    },
    delta: (data) => {
      maybeThrow('delta');
      return jsonSseEncoder.delta(data);
    },
    done: (data) => {
      maybeThrow('done');
      return jsonSseEncoder.done(data);
    },
  };
}

/** A tracer whose spans throw when ended. */
function throwingTracer(): Tracer {
  const span = {
    setAttribute: () => span,
    setAttributes: () => span,
    addEvent: () => span,
    addLink: () => span,
    addLinks: () => span,
    setStatus: () => span,
    updateName: () => span,
    recordException: () => {},
    isRecording: () => true,
    spanContext: () => ({
      traceId: `${'0'.repeat(31)}1`,
      spanId: `${'0'.repeat(15)}1`,
      traceFlags: 1,
    }),
    end: () => {
      throw new Error('injected: span end');
    },
  } as unknown as Span;
  return {
    startSpan: () => span,
    startActiveSpan: ((_name: string, ...rest: unknown[]) =>
      (rest.at(-1) as (s: Span) => unknown)(span)) as Tracer['startActiveSpan'],
  };
}

/** Yields an Anthropic stream whose final usage no price can be put on. */
async function* absurdUsage() {
  yield {
    type: 'message_start',
    message: {
      id: 'msg_x',
      model: 'claude-haiku-4-5',
      usage: { input_tokens: 10, output_tokens: 1 },
    },
  };
  yield { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } };
  yield { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } };
  yield { type: 'content_block_stop', index: 0 };
  yield {
    type: 'message_delta',
    delta: { stop_reason: 'end_turn' },
    usage: { input_tokens: 10, output_tokens: 1e12 },
  };
  yield { type: 'message_stop' };
}

/** A source that fails before its first event (a reset connection). */
function throwAtFirst(): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        Promise.reject(
          Object.assign(new Error('injected: connection reset'), { code: 'ECONNRESET' }),
        ),
    }),
  };
}

interface ClientResult {
  status: number;
  json?: { error?: { code?: string } };
  events: Array<{ event: string; data: Record<string, unknown> }>;
  /** The server closed the connection before the response ended. */
  cut: boolean;
  /** The client closed it. */
  left: boolean;
}

/** A raw HTTP client: reads, leaves or stops reading at the case's point. */
function runClient(
  url: string,
  user: string,
  mode: Case['client'],
  knobs: Record<string, string>,
  released: () => boolean,
) {
  return new Promise<ClientResult>((resolve) => {
    const result: ClientResult = { status: 0, events: [], cut: false, left: false };
    const body = JSON.stringify({
      model: 'claude-haiku-4-5',
      max_tokens: 2_000_000,
      messages: [{ role: 'user', content: 'Tell me about tide pools.' }],
    });
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-user': user,
    };
    for (const [k, v] of Object.entries(knobs)) headers[`x-fake-llm-${k}`] = v;
    const req = httpRequest(url, { method: 'POST', headers });
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      resolve(result);
    };
    const leave = () => {
      result.left = true;
      req.destroy();
      finish();
    };
    req.on('error', () => finish());
    req.on('close', () => finish());
    req.on('response', (res: IncomingMessage) => {
      result.status = res.statusCode ?? 0;
      const isSse = String(res.headers['content-type']).startsWith('text/event-stream');
      let raw = '';
      let deltas = 0;
      const parser = createParser({
        onEvent(message) {
          let data: Record<string, unknown> = {};
          try {
            data = JSON.parse(message.data);
          } catch {}
          result.events.push({ event: message.event ?? 'message', data });
          if (message.event === 'meta') {
            if (mode === 'close-after-meta') leave();
            if (mode === 'stall') {
              // A paused reader cannot see the server close the connection until it reads
              // again: once the server let it go, read what is left, and the cut.
              res.pause();
              const check = setInterval(() => {
                if (!released()) return;
                clearInterval(check);
                res.resume();
              }, 50);
            }
            if (mode === 'stall-then-close') {
              res.pause();
              setTimeout(leave, TIMEOUT_MS / 2);
            }
          }
          if (message.event === 'delta' && ++deltas === 3 && mode === 'close-after-deltas') leave();
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (isSse) parser.feed(chunk);
        else raw += chunk;
      });
      res.on('end', () => {
        if (!isSse) {
          try {
            result.json = JSON.parse(raw);
          } catch {}
        }
        finish();
      });
      res.on('aborted', () => {
        result.cut = true;
      });
      res.on('close', () => {
        if (!res.complete && !result.left) result.cut = true;
        finish();
      });
    });
    req.end(body);
    if (mode === 'close-during-admit') setTimeout(leave, 30);
  });
}

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    value = await read();
  }
  return value;
}

async function runCase(
  c: Case,
  express: ExpressFactory,
  style: Style,
  storeKind: StoreKind,
  n: number,
) {
  const user = `life-${n}`;
  const fake: FakeLLM = await startFakeLLM({ tps: 0, tokens: 30, chunk: 2, seed: n });
  const inner =
    storeKind === 'memory'
      ? createMemoryStore()
      : createRedisStore({ url: redis.url, prefix: `life${n}:`, logger: { warn() {} } });
  const store = faulty(inner, c.fault?.store);
  const client = anthropicClient(fake.url);
  const errors: string[] = [];
  let secondStreamError: unknown;
  const f = c.fault ?? {};
  const provider = (req: { headers: Record<string, unknown> }, meter: MeteredStream) => {
    if (f.upstream === 'throw-at-first') return throwAtFirst();
    if (f.upstream === 'absurd-usage') return absurdUsage();
    return client.messages.create(
      {
        model: meter.model,
        max_tokens: meter.maxTokens,
        messages: [{ role: 'user', content: 'Tell me about tide pools.' }],
        stream: true,
      },
      { signal: meter.signal, headers: knobHeaders(req as never) },
    );
  };
  let app: TestApp | undefined;
  try {
    app = await startApp({
      express,
      middleware: {
        store,
        identify: identifyByHeader,
        budgets: { user: BUDGET },
        maxTokensLimit: 2_000_000,
        storeTimeoutMs: TIMEOUT_MS,
        idleTimeoutMs: TIMEOUT_MS,
        stallTimeoutMs: TIMEOUT_MS,
        handoverTimeoutMs: TIMEOUT_MS,
        encoder: faultyEncoder(f.encoder),
        ...(f.tracer ? { telemetry: { tracer: throwingTracer() } } : {}),
        ...(f.onSettle === 'throw'
          ? {
              onSettle: () => {
                throw new Error('injected: onSettle');
              },
            }
          : f.onSettle === 'hang'
            ? { onSettle: () => new Promise<void>(() => {}) }
            : {}),
        ...(style === 'upstream'
          ? {
              upstream: (req, meter) => {
                if (f.handler === 'throw-sync') throw new Error('injected: upstream function');
                return provider(req as never, meter);
              },
            }
          : {}),
      },
      ...(style === 'handler'
        ? {
            // A plain function, so a synchronous throw reaches Express 4's own catch as it
            // would in an app; an async one would be Express 4's unhandled rejection.
            rawHandler: (req, res) => {
              const meter = res.locals.tokenmeter as MeteredStream;
              switch (f.handler) {
                case 'throw-sync':
                  throw new Error('injected: handler');
                case 'reject':
                  return (async () => {
                    await Promise.resolve();
                    throw new Error('injected: handler rejected');
                  })();
                case 'never-hand-over':
                  return undefined;
                case 'stream-twice': {
                  const done = meter.stream(provider(req as never, meter));
                  try {
                    meter.stream(provider(req as never, meter));
                  } catch (error) {
                    secondStreamError = error;
                  }
                  return done;
                }
                case 'throw-after-stream':
                  void meter.stream(provider(req as never, meter));
                  throw new Error('injected: handler failed after handing over');
                default:
                  return meter.stream(provider(req as never, meter));
              }
            },
          }
        : {}),
    });
    const knobs = typeof f.upstream === 'object' ? f.upstream : {};
    const settledApp = app;
    const result = await runClient(app.url, user, c.client, knobs, () =>
      settledApp.settles.some((x) => x.scopes.some((scope) => scope.id === user)),
    );

    // What the client saw.
    const ends = result.events.filter((e) => e.event === 'done' || e.event === 'error');
    if (c.status !== undefined) {
      expect(result.status, 'a plain JSON rejection').toBe(c.status);
      expect(typeof result.json?.error?.code).toBe('string');
      expect(result.events).toHaveLength(0);
    } else if (result.left || c.client === 'stall') {
      // It left, or stopped reading and was let go: nothing after one final event at most.
      expect(ends.length).toBeLessThanOrEqual(1);
      if (c.client === 'stall') expect(result.cut).toBe(true);
    } else {
      expect(result.status).toBe(200);
      expect(ends, 'exactly one done or error event').toHaveLength(1);
      expect(result.events.at(-1), 'and it is the last').toBe(ends[0]);
      if (c.finalCode) expect((ends[0]!.data as { code?: string }).code).toBe(c.finalCode);
      else if (c.outcome === 'completed') expect(ends[0]!.event).toBe('done');
      else expect((ends[0]!.data as { code?: string }).code).toBe(c.outcome);
    }

    // onSettle: exactly once when admitted, never when refused.
    const expected = c.outcome === undefined ? 0 : 1;
    const settles = await poll(
      async () => app!.settles.filter((s) => s.scopes.some((x) => x.id === user)),
      (list) => list.length >= expected,
      20_000,
    );
    await new Promise((r) => setTimeout(r, 50));
    const mine: SettleInfo[] = app.settles.filter((s) => s.scopes.some((x) => x.id === user));
    expect(mine).toHaveLength(expected);
    void settles;
    if (expected === 1) {
      expect(mine[0]!.outcome).toBe(c.outcome);
      if (c.free) expect(mine[0]!.final.costNanos).toBe(0);
    }
    if (c.outcome === 'client_stalled') {
      // Let go: the upstream call was closed too (the fake saw its client leave).
      const record = await poll(
        async () => fake.lastRequest,
        (r) => r?.stopCause !== undefined,
        20_000,
      );
      expect(record?.stopCause).toBe('client-closed');
      expect(record!.tokensGenerated).toBeLessThan(2_000_000);
    }
    if (f.handler === 'stream-twice') {
      expect(String(secondStreamError)).toMatch(/stream\(\) was called twice/);
    }

    // The books: nothing open or reserved, spend = what was settled and recorded.
    const state = await poll(
      () => inner.getState({ kind: 'user', id: user }, { budget: BUDGET }),
      (s) => s.reservations.open === 0 && s.budget!.reservedNanos === 0,
      20_000,
    );
    expect(state.reservations.open).toBe(0);
    expect(state.budget!.reservedNanos).toBe(0);
    expect(state.budget!.spentNanos).toBe(
      mine.reduce((sum, s) => sum + (s.recorded ? s.final.costNanos : 0), 0),
    );
    // Nothing of the stream left in the middleware: no stream, so no tick timer either.
    expect(
      await poll(
        async () => app!.activeStreams(),
        (n) => n === 0,
        20_000,
      ),
    ).toBe(0);
    errors.push(...app.errors);
  } finally {
    await app?.close();
    await inner.shutdown?.();
    await fake.close();
  }
}

let counter = 0;
let before: Record<string, number>;
beforeAll(() => {
  before = resources();
});

// Cases run a few at a time (each has its own fake, app and store), so the waits on
// timeouts overlap; what no single case may leave behind is checked once they all ended.
describe.each(EXPRESS_VERSIONS)('%s', (expressName, express) => {
  for (const storeKind of ['memory', 'redis'] as const) {
    for (const style of ['upstream', 'handler'] as const) {
      describe.concurrent(`${storeKind} store, ${style} style`, () => {
        for (const c of CASES) {
          if (c.styles && !c.styles.includes(style)) continue;
          if (c.express5Only && expressName === 'express 4') continue;
          it(c.name, async () => {
            await runCase(c, express, style, storeKind, ++counter);
          });
        }
      });
    }
  }
});

describe('after every case', () => {
  it('no unhandled rejection, and nothing left running: no more timers, sockets or servers than before', async () => {
    expect(unhandled, 'no unhandled rejection').toEqual([]);
    const grown = (now: Record<string, number>) =>
      Object.entries(now).filter(([kind, count]) => count > (before[kind] ?? 0));
    const after = await poll(
      async () => resources(),
      (r) => grown(r).length === 0,
      20_000,
    );
    expect(
      grown(after),
      `resources left: ${JSON.stringify(after)} (before ${JSON.stringify(before)})`,
    ).toEqual([]);
  });
});
