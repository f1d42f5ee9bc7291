/**
 * The demo's HTTP contract, as curl would see it: POST /api/chat (SSE or a JSON error),
 * GET /api/me, GET /api/budget, GET /api/requests/:id, GET /metrics; no route lists a key,
 * and /metrics answers loopback callers or the bearer of its token. The demo runs as a child
 * process (node examples/demo/server.mjs). A second instance is pointed at a fake started
 * here through ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL, which covers the real-SDK path.
 */
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossedAlerts, demoKeys, demoLink } from './helpers/demo-page.js';
import { EXAMPLES_DIR, type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;
/** Keys set in TOKENMETER_DEMO_USERS; dave's is drawn at start and read from the log. */
const GIVEN_KEYS: Record<string, string> = {
  alice: 'key-alice-0123456789',
  bob: 'key-bob-0123456789ab',
  carol: 'key-carol-0123456789',
};
const keys: Record<string, string> = { ...GIVEN_KEYS };
/** The bearer header of a demo user; an unknown name is sent as it is. */
const auth = (user: string) => ({ authorization: `Bearer ${keys[user] ?? user}` });
const { isLoopback } = (await import(`${EXAMPLES_DIR}demo/metrics-access.mjs`)) as {
  isLoopback(address: string | undefined): boolean;
};

interface Done {
  stopReason: string;
  usage: { inputTokens: number; outputTokens: number };
  costNanos: number;
  costUsd: number;
  estimated: boolean;
  budget: { remainingUsd: number; periodEnd: string };
}

interface BudgetBody {
  budget: { spentNanos: number; remainingNanos: number };
}

afterAll(stopAll);

describe('demo HTTP contract (in-process fake)', () => {
  let demo: Running;
  let chat: string;
  beforeAll(async () => {
    demo = await startExample('demo/server.mjs', {
      TOKENMETER_DEMO_USERS: `alice:1.00:${GIVEN_KEYS.alice},bob:0.0025:${GIVEN_KEYS.bob},carol:5:${GIVEN_KEYS.carol},dave:5`,
      TOKENMETER_DEMO_RPM: '3',
      // bob's one answer spends about 40 % of his $0.0025.
      TOKENMETER_DEMO_ALERTS: '100,25,40',
      TOKENMETER_DEMO_FAKE_TPS: '5000',
      TOKENMETER_DEMO_FAKE_TTFT_MS: '0',
    });
    chat = `${demo.url}/api/chat`;
    Object.assign(keys, demoKeys(demo.output()));
  });

  it('describes itself at GET /api/demo and logs that it uses the fake', async () => {
    const info = (await (await fetch(`${demo.url}/api/demo`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({
      upstream: 'fake',
      store: 'memory',
      model: 'claude-haiku-4-5',
      maxTokens: 300,
      requestsPerMinute: 3,
      alerts: [25, 40, 100],
      ledger: false,
    });
    expect(info).not.toHaveProperty('users');
    expect(demo.output()).toContain("answers from the testkit's fake Claude in this process");
    expect(demo.output()).toContain('budgets and rate limits in memory');
    expect(demo.output()).toContain('spend not recorded (set DATABASE_URL');
  });

  it('lists no key anywhere: the log prints only the keys it drew, the routes and the page none', async () => {
    // dave's key was drawn at start and printed once; the keys given in the settings never are.
    expect(keys.dave).toMatch(/^tmdemo_[\w-]{24}$/);
    expect(demo.output()).toContain(
      'keys of alice, bob, carol from TOKENMETER_DEMO_USERS (not printed)',
    );
    for (const key of Object.values(GIVEN_KEYS)) expect(demo.output()).not.toContain(key);
    // The link after the URL carries dave's key in its fragment, which no request sends.
    expect(await demoLink(demo)).toBe(`${demo.url}/#keys=${keys.dave}`);
    for (const path of ['/api/demo', '/', '/app.js', '/index.html', '/api/nothing-here']) {
      const text = await (await fetch(`${demo.url}${path}`)).text();
      for (const key of Object.values(keys)) expect(text).not.toContain(key);
    }
    // A user id is not a key, and an unknown key learns nothing about the others.
    for (const path of ['/api/me', '/api/budget', '/api/alerts']) {
      const response = await fetch(`${demo.url}${path}`, {
        headers: { authorization: 'Bearer alice' },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('unauthenticated');
      expect(body.error.message).toContain('printed when it started');
    }
    expect((await post(chat, { prompt: 'hi' }, { authorization: 'Bearer bob' })).status).toBe(401);
  });

  it('says whose a key is at GET /api/me', async () => {
    for (const [user, dailyBudgetUsd] of [
      ['alice', '1.00'],
      ['dave', '5'],
    ] as const) {
      const response = await fetch(`${demo.url}/api/me`, { headers: auth(user) });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ user, dailyBudgetUsd });
    }
    expect((await fetch(`${demo.url}/api/me`)).status).toBe(401);
  });

  it('without DATABASE_URL there is no spend history: 404 no_ledger, the rest works', async () => {
    const response = await fetch(`${demo.url}/api/spend`, { headers: auth('alice') });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 'no_ledger' } });
    expect((await fetch(`${demo.url}/api/spend`)).status).toBe(401);
    const alerts = await fetch(`${demo.url}/api/alerts`, { headers: auth('dave') });
    expect(await alerts.json()).toEqual({ user: 'dave', alerts: [] });
  });

  it('streams meta, deltas and done with the exact cost; the budget and the log agree', async () => {
    const result = await post(chat, { prompt: 'What is a nano-dollar?' }, auth('alice'));
    expect(result.status).toBe(200);
    expect(result.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(result.events[0]!.event).toBe('meta');
    expect(result.events.at(-1)!.event).toBe('done');
    const meta = eventOf(result.events, 'meta') as { requestId: string; model: string };
    expect(meta.model).toBe('claude-haiku-4-5');
    const done = eventOf(result.events, 'done') as unknown as Done;
    expect(textOf(result.events).length).toBeGreaterThan(100);
    expect(done.estimated).toBe(false);
    expect(done.stopReason).toBe('end_turn');
    expect(done.costNanos).toBe(haikuNanos(done.usage.inputTokens, done.usage.outputTokens));
    expect(done.costUsd).toBe(done.costNanos / 1e9);

    const budget = await fetch(`${demo.url}/api/budget`, { headers: auth('alice') });
    expect(budget.status).toBe(200);
    const state = (await budget.json()) as {
      user: string;
      budget: Record<string, number | string>;
      rateLimit: { limit: number; remaining: number };
    };
    const tomorrow = new Date();
    tomorrow.setUTCHours(24, 0, 0, 0);
    expect(state).toMatchObject({
      user: 'alice',
      budget: {
        limitNanos: 1_000_000_000,
        spentNanos: done.costNanos,
        reservedNanos: 0,
        remainingNanos: 1_000_000_000 - done.costNanos,
        limitUsd: 1,
        spentUsd: done.costNanos / 1e9,
        periodEnd: tomorrow.toISOString(),
      },
      rateLimit: { limit: 3, remaining: 2 },
    });
    expect(done.budget.remainingUsd).toBe((1_000_000_000 - done.costNanos) / 1e9);

    const settled = await fetch(`${demo.url}/api/requests/${meta.requestId}`, {
      headers: auth('alice'),
    });
    expect(await settled.json()).toMatchObject({
      requestId: meta.requestId,
      user: 'alice',
      outcome: 'completed',
      costNanos: done.costNanos,
      estimated: false,
      usage: { inputTokens: done.usage.inputTokens, outputTokens: done.usage.outputTokens },
    });
    // Another key cannot read it.
    const foreign = await fetch(`${demo.url}/api/requests/${meta.requestId}`, {
      headers: auth('carol'),
    });
    expect(foreign.status).toBe(404);
    await demo.waitFor(
      new RegExp(
        `settled user=alice model=claude-haiku-4-5 input=${done.usage.inputTokens} output=${done.usage.outputTokens} cost=\\$0\\.\\d+ exact outcome=completed duration=\\d+\\.\\d\\ds`,
      ),
      5_000,
    );
  });

  it('answers JSON errors: 401, 415, 400 invalid_json, 413, 400 for bad fields and models', async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ['no key', { body: '{"prompt":"hi"}' }, 401, 'unauthenticated'],
      [
        'unknown key',
        { body: '{"prompt":"hi"}', headers: auth('mallory') },
        401,
        'unauthenticated',
      ],
      [
        'form body',
        {
          body: 'prompt=hi',
          headers: { ...auth('alice'), 'content-type': 'application/x-www-form-urlencoded' },
        },
        415,
        'unsupported_media_type',
      ],
      ['broken JSON', { body: '{"prompt":', headers: auth('alice') }, 400, 'invalid_json'],
      [
        'too large',
        { body: JSON.stringify({ prompt: 'x'.repeat(20_000) }), headers: auth('alice') },
        413,
        'body_too_large',
      ],
      ['array body', { body: '[1]', headers: auth('alice') }, 400, 'invalid_request'],
      ['empty prompt', { body: '{"prompt":"  "}', headers: auth('alice') }, 400, 'invalid_request'],
      [
        'not a Claude model',
        { body: '{"prompt":"hi","model":"gpt-4o"}', headers: auth('alice') },
        400,
        'invalid_request',
      ],
      [
        'unknown model',
        { body: '{"prompt":"hi","model":"claude-nonexistent-9"}', headers: auth('alice') },
        400,
        'unknown_model',
      ],
      [
        'maxTokens too large',
        { body: '{"prompt":"hi","maxTokens":5000}', headers: auth('alice') },
        400,
        'invalid_request',
      ],
      [
        'maxTokens not a number',
        { body: '{"prompt":"hi","maxTokens":"100"}', headers: auth('alice') },
        400,
        'invalid_request',
      ],
    ];
    for (const [name, init, status, code] of cases) {
      const response = await fetch(chat, {
        method: 'POST',
        ...init,
        headers: { 'content-type': 'application/json', ...(init.headers as object) },
      });
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect({ name, status: response.status, code: body.error.code }).toEqual({
        name,
        status,
        code,
      });
      expect(body.error.message.length).toBeGreaterThan(10);
    }
    // None of them was charged or counted.
    const state = (await (
      await fetch(`${demo.url}/api/budget`, { headers: auth('dave') })
    ).json()) as BudgetBody;
    expect(state.budget.spentNanos).toBe(0);
    expect((await fetch(`${demo.url}/api/budget`)).status).toBe(401);
    expect((await fetch(`${demo.url}/api/nothing-here`)).status).toBe(404);
  });

  it('rejects with 402 once the tiny budget cannot cover the worst case', async () => {
    const statuses: number[] = [];
    let rejection: { error: { code: string; requiredUsd: number } } | undefined;
    const costs: number[] = [];
    for (let i = 0; i < 5 && !rejection; i++) {
      const result = await post(chat, { prompt: `Question ${i}` }, auth('bob'));
      statuses.push(result.status);
      if (result.status !== 200) rejection = result.json as typeof rejection;
      else costs.push((eventOf(result.events, 'done') as unknown as Done).costNanos);
    }
    expect(statuses.at(-1)).toBe(402);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    expect(rejection!.error.code).toBe('budget_exceeded');
    // Worst case for 300 output tokens at $5/M, plus the input.
    expect(rejection!.error.requiredUsd).toBeGreaterThan(0.0015);
    const state = (await (
      await fetch(`${demo.url}/api/budget`, { headers: auth('bob') })
    ).json()) as BudgetBody;
    expect(state.budget.spentNanos).toBeLessThanOrEqual(2_500_000);
    expect(state.budget.remainingNanos).toBeLessThan(rejection!.error.requiredUsd * 1e9);

    // Budget alerts at 25 / 40 / 100 % of $0.0025: each threshold the running spend
    // crossed, once, with the spend after the stream that crossed it (by hand).
    const expected = crossedAlerts(costs, 2_500_000, [25, 40, 100]);
    expect(costs.reduce((a, b) => a + b, 0)).toBe(state.budget.spentNanos);
    expect(expected.length).toBeGreaterThanOrEqual(1);
    let listed: Array<{ percent: number; spentNanos: number; limitNanos: number }> = [];
    for (let i = 0; i < 50 && listed.length < expected.length; i++) {
      const body = (await (
        await fetch(`${demo.url}/api/alerts`, { headers: auth('bob') })
      ).json()) as {
        alerts: typeof listed;
      };
      listed = body.alerts;
      if (listed.length < expected.length) await new Promise((r) => setTimeout(r, 20));
    }
    // Newest first.
    expect(listed.map(({ percent, spentNanos }) => ({ percent, spentNanos }))).toEqual(
      [...expected].reverse(),
    );
    expect(listed.every((a) => a.limitNanos === 2_500_000)).toBe(true);
    for (const { percent } of expected) {
      await demo.waitFor(new RegExp(`budget alert user=bob reached=${percent}%`), 2_000);
    }
  });

  it('rejects with 429, Retry-After and RateLimit headers after TOKENMETER_DEMO_RPM requests', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await post(chat, { prompt: 'hi' }, auth('carol'))).status).toBe(200);
    }
    const limited = await post(chat, { prompt: 'hi' }, auth('carol'));
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ error: { code: 'rate_limited', scope: 'user' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-policy')).toBe('"user-requests-60s";q=3;w=60');
  });

  it('serves Prometheus text at GET /metrics to callers on this machine only', async () => {
    // Relayed by a proxy (even one on loopback): not a caller on this machine.
    for (const header of <Record<string, string>[]>[
      { 'x-forwarded-for': '203.0.113.7' },
      { forwarded: 'for=203.0.113.7' },
    ]) {
      const relayed = await fetch(`${demo.url}/metrics`, { headers: header });
      expect(relayed.status).toBe(403);
      const body = (await relayed.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('forbidden');
      expect(body.error.message).toContain('TOKENMETER_DEMO_METRICS_TOKEN');
    }
    expect(demo.output()).toContain('/metrics answers callers on this machine only');
    // The rule the route applies to the socket's peer address.
    for (const address of ['127.0.0.1', '127.10.0.2', '::1', '::ffff:127.0.0.1']) {
      expect({ address, loopback: isLoopback(address) }).toEqual({ address, loopback: true });
    }
    for (const address of [
      undefined,
      '',
      '10.0.0.1',
      '::ffff:10.0.0.1',
      '192.168.1.20',
      'fe80::1',
      '::',
      '0.0.0.0',
    ]) {
      expect({ address, loopback: isLoopback(address) }).toEqual({ address, loopback: false });
    }
    const response = await fetch(`${demo.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^# HELP target_info Target metadata$/m);
    expect(text).toMatch(/telemetry_sdk_name="opentelemetry"/);
    // Once the middleware reports OpenTelemetry metrics, the streams above show up here.
    if (/gen_ai_client_/.test(text)) {
      expect(text).toMatch(/^gen_ai_client_token_usage_(bucket|count|sum)\{.*\} \d+/m);
    }
  });

  it('stops at start with a message that says what to write for a bad setting', async () => {
    await expect(
      startExample('demo/server.mjs', { TOKENMETER_DEMO_ALERTS: '50,fifty' }),
    ).rejects.toThrow(
      /TOKENMETER_DEMO_ALERTS: "50,fifty" is not a list of whole percentages from 1 to 1000/,
    );
    // A key short enough to guess, or a metrics token, is refused.
    await expect(
      startExample('demo/server.mjs', { TOKENMETER_DEMO_USERS: 'alice:1.00:alice' }),
    ).rejects.toThrow(/the key of "alice" must be 16 to 128 characters/);
    await expect(
      startExample('demo/server.mjs', { TOKENMETER_DEMO_METRICS_TOKEN: 'secret' }),
    ).rejects.toThrow(/TOKENMETER_DEMO_METRICS_TOKEN must be at least 16 characters/);
  });

  it('serves the page at /', async () => {
    const response = await fetch(`${demo.url}/`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('<title>tokenmeter demo</title>');
    const script = await fetch(`${demo.url}/app.js`);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
  });
});

describe('demo with ANTHROPIC_API_KEY: the real SDK path, pointed at a fake by ANTHROPIC_BASE_URL', () => {
  const METRICS_TOKEN = 'metrics-token-0123456789';
  let fake: FakeLLM;
  let demo: Running;
  let drawn: Record<string, string>;
  beforeAll(async () => {
    fake = await startFakeLLM({ apiKey: 'sk-demo-test', tokens: 80, seed: 11, text: 'plain' });
    demo = await startExample('demo/server.mjs', {
      ANTHROPIC_API_KEY: 'sk-demo-test',
      ANTHROPIC_BASE_URL: fake.url,
      TOKENMETER_DEMO_METRICS_TOKEN: METRICS_TOKEN,
    });
    drawn = demoKeys(demo.output());
  });
  afterAll(() => fake?.close());

  it('draws new keys for the default users at every start and prints the link that carries them', async () => {
    expect(Object.keys(drawn)).toEqual(['alice', 'bob']);
    // Not the first instance's key for the same id: drawn at this start.
    expect(drawn.alice).not.toBe(keys.alice);
    expect(drawn.alice).not.toBe(drawn.bob);
    expect(await demoLink(demo)).toBe(`${demo.url}/#keys=${drawn.alice},${drawn.bob}`);
    const me = await fetch(`${demo.url}/api/me`, { headers: auth(drawn.bob!) });
    expect(await me.json()).toEqual({ user: 'bob', dailyBudgetUsd: '0.0025' });
  });

  it('with TOKENMETER_DEMO_METRICS_TOKEN, /metrics answers its bearer only, wherever it calls from', async () => {
    expect(demo.output()).toContain(
      '/metrics needs the bearer token TOKENMETER_DEMO_METRICS_TOKEN',
    );
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: 'Bearer metrics-token-0123456780' },
      { authorization: `Bearer ${drawn.alice}` },
    ]) {
      const refused = await fetch(`${demo.url}/metrics`, { headers });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer');
      expect(await refused.json()).toMatchObject({ error: { code: 'unauthenticated' } });
    }
    for (const headers of <Record<string, string>[]>[
      { authorization: `Bearer ${METRICS_TOKEN}` },
      { authorization: `Bearer ${METRICS_TOKEN}`, 'x-forwarded-for': '203.0.113.7' },
    ]) {
      const scraped = await fetch(`${demo.url}/metrics`, { headers });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/^# HELP target_info Target metadata$/m);
    }
  });

  it('streams exactly what the upstream generated and charges its reported usage', async () => {
    expect(demo.output()).toContain(`answers from the Anthropic API at ${fake.url}`);
    const result = await post(
      `${demo.url}/api/chat`,
      { prompt: 'Hello there' },
      auth(drawn.alice!),
    );
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(record.stream).toBe(true);
    expect(record.model).toBe('claude-haiku-4-5');
    expect(record.maxTokens).toBe(300);
    expect(record.body).toMatchObject({ messages: [{ role: 'user', content: 'Hello there' }] });
    expect(textOf(result.events)).toBe(record.text);
    const done = eventOf(result.events, 'done') as unknown as Done;
    expect(done.usage).toMatchObject({
      inputTokens: record.usage!.inputTokens,
      outputTokens: 80,
    });
    expect(done.costNanos).toBe(haikuNanos(record.usage!.inputTokens, 80));
    expect(done.estimated).toBe(false);
  });
});
