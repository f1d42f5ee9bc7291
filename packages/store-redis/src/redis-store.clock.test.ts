/**
 * Time comes from Redis, not from the app: app instances whose clocks are 30 s apart
 * enforce one sliding window and agree on "now". The strongest proof runs the store in
 * separate Node processes whose `Date` and `performance.now()` are shifted by ±30 s (the
 * store's source is transpiled for them on the fly); a second test shows, in-process,
 * that without a `clock` option no result depends on the local clock.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RedisProcess, startRedis } from './redis-server.test-helper.js';
import { createRedisStore } from './redis-store.js';

const run = promisify(execFile);
const SRC = dirname(fileURLToPath(import.meta.url));
// Inside the package's node_modules, so the child resolves @tokenmeter/core and ioredis.
const BUILD = join(SRC, '..', 'node_modules', '.cache', `tokenmeter-clock-test-${process.pid}`);
const quiet = { warn: () => {} };

let server: RedisProcess;

beforeAll(async () => {
  server = await startRedis();
  mkdirSync(BUILD, { recursive: true });
  for (const file of readdirSync(SRC)) {
    if (!file.endsWith('.ts') || file.includes('.test')) continue;
    const { outputText } = ts.transpileModule(readFileSync(join(SRC, file), 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    });
    writeFileSync(join(BUILD, file.replace(/\.ts$/, '.js')), outputText);
  }
  writeFileSync(join(BUILD, 'package.json'), '{ "type": "module" }');
  writeFileSync(join(BUILD, 'skewed-instance.js'), SKEWED_INSTANCE);
}, 20_000);

afterAll(async () => {
  await server?.stop();
  rmSync(BUILD, { recursive: true, force: true });
});

/**
 * One app instance in its own process, its clock shifted by SKEW_MS: it admits ATTEMPTS
 * requests for SCOPE_ID under a 4-per-10-s window and prints what happened.
 */
const SKEWED_INSTANCE = `
const skew = Number(process.env.SKEW_MS);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
class SkewedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(realNow() + skew); else super(...args); }
  static now() { return realNow() + skew; }
}
globalThis.Date = SkewedDate;
const realPerformanceNow = performance.now.bind(performance);
performance.now = () => realPerformanceNow() + skew;

const { createRedisStore } = await import('./index.js');
const store = createRedisStore({ url: process.env.REDIS_URL, logger: { warn() {} } });
const rateLimits = [{ kind: 'requests', limit: 4, windowMs: 10000 }];
const results = [];
for (let i = 0; i < Number(process.env.ATTEMPTS); i++) {
  const result = await store.admit({ scope: { kind: 'user', id: process.env.SCOPE_ID },
    reserveNanos: 0, estimatedTokens: 0, ttlMs: 60000, rateLimits });
  results.push({ admitted: result.admitted, retryAfterMs: result.admitted ? 0 : result.retryAfterMs, now: result.now });
}
const storeNow = await store.now();
console.log(JSON.stringify({ results, storeNow, localNow: Date.now(), trueNow: realNow() }));
await store.shutdown();
`;

interface InstanceReport {
  results: { admitted: boolean; retryAfterMs: number | null; now: number }[];
  storeNow: number;
  localNow: number;
  trueNow: number;
}

async function skewedInstance(skewMs: number, scopeId: string, attempts: number) {
  const { stdout } = await run(process.execPath, [join(BUILD, 'skewed-instance.js')], {
    env: {
      ...process.env,
      SKEW_MS: String(skewMs),
      REDIS_URL: server.url,
      SCOPE_ID: scopeId,
      ATTEMPTS: String(attempts),
    },
    timeout: 15_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as InstanceReport;
}

describe('redis store clock', () => {
  it('processes with clocks 30 s apart enforce one sliding window and agree on now', async () => {
    const store = createRedisStore({ url: server.url, logger: quiet });
    const scope = { kind: 'user', id: `skew-${process.pid}` };
    const rateLimits = [{ kind: 'requests' as const, limit: 4, windowMs: 10_000 }];
    const request = { scope, reserveNanos: 0, estimatedTokens: 0, ttlMs: 60_000, rateLimits };
    expect((await store.admit(request)).admitted).toBe(true);
    expect((await store.admit(request)).admitted).toBe(true);

    // 30 s ahead: had it used its own clock, our two entries would be 30 s old — outside
    // the 10 s window — and it would admit all three.
    const ahead = await skewedInstance(30_000, scope.id, 3);
    expect(ahead.localNow - ahead.trueNow).toBeGreaterThanOrEqual(30_000);
    expect(ahead.results.map((r) => r.admitted)).toEqual([true, true, false]);
    const retry = ahead.results[2]?.retryAfterMs as number;
    expect(retry).toBeGreaterThan(5_000);
    expect(retry).toBeLessThanOrEqual(10_000);
    expect(Math.abs(ahead.storeNow - ahead.trueNow)).toBeLessThan(1_000);

    // 30 s behind: the window is full for it too, and it waits as long as everyone else.
    const behind = await skewedInstance(-30_000, scope.id, 1);
    expect(behind.trueNow - behind.localNow).toBeGreaterThanOrEqual(30_000);
    expect(behind.results[0]?.admitted).toBe(false);
    expect(Math.abs((behind.results[0]?.retryAfterMs as number) - retry)).toBeLessThan(3_000);
    expect(Math.abs(behind.storeNow - behind.trueNow)).toBeLessThan(1_000);

    const state = await store.getState(scope, { rateLimits });
    expect(state.rateLimits[0]?.used).toBe(4);
    await store.shutdown();
  }, 30_000);

  it('without a clock option, no result depends on the local clock', async () => {
    const store = createRedisStore({ url: server.url, logger: quiet });
    const scope = { kind: 'user', id: `local-clock-${process.pid}` };
    const budget = { limitNanos: 10_000, period: 'day' as const };
    const trueNow = Date.now();
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => trueNow + 30 * 86_400_000);
    try {
      const admitted = await store.admit({
        scope,
        budget,
        reserveNanos: 1_000,
        estimatedTokens: 1,
        ttlMs: 60_000,
      });
      expect(admitted.admitted).toBe(true);
      expect(Math.abs(admitted.now - trueNow)).toBeLessThan(1_000);
      expect(admitted.budget?.periodStart).toBe(Math.floor(trueNow / 86_400_000) * 86_400_000);
      expect(Math.abs((await store.now()) - trueNow)).toBeLessThan(1_000);
    } finally {
      spy.mockRestore();
    }
    await store.shutdown();
  });

  it('Redis time drives expiry: a 150 ms reservation expires (and is charged) after 150 ms of real time', async () => {
    const store = createRedisStore({ url: server.url, logger: quiet });
    const scope = { kind: 'user', id: `real-expiry-${process.pid}` };
    const budget = { limitNanos: 10_000, period: 'day' as const };
    const { reservation } = (await store.admit({
      scope,
      budget,
      reserveNanos: 3_000,
      estimatedTokens: 1,
      ttlMs: 150,
    })) as Extract<Awaited<ReturnType<typeof store.admit>>, { admitted: true }>;
    expect(reservation.expiresAt - reservation.createdAt).toBe(150);
    expect((await store.getState(scope, { budget })).reservations.open).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const state = await store.getState(scope, { budget });
    expect(state.reservations).toEqual({ open: 0, openNanos: 0, expired: 1, expiredNanos: 3_000 });
    expect(state.budget?.spentNanos).toBe(3_000);
    const late = await store.settle(reservation.id, { costNanos: 10, tokens: 1 });
    expect(late).toMatchObject({ ended: false, previously: 'expired' });
    await store.shutdown();
  });
});
