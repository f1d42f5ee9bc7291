/**
 * examples/existing-app: tokenmeter mounted in an app that already has API-key auth and
 * other routes. The example runs as a child process against a fake Claude started here
 * (ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL), so the test knows exactly what was generated.
 */
import { type FakeLLM, startFakeLLM } from '@tokenmeter/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startExample, stopAll } from './helpers/process.js';
import { eventOf, post, textOf } from './helpers/sse.js';

const haikuNanos = (input: number, output: number) => input * 1_000 + output * 5_000;
const body = (max_tokens: number) => ({
  model: 'claude-haiku-4-5',
  max_tokens,
  messages: [{ role: 'user', content: 'Summarise our roadmap.' }],
});

let fake: FakeLLM;
let app: Running;
beforeAll(async () => {
  fake = await startFakeLLM({ apiKey: 'sk-existing', tokens: 90, seed: 5 });
  app = await startExample('existing-app/server.mjs', {
    ANTHROPIC_API_KEY: 'sk-existing',
    ANTHROPIC_BASE_URL: fake.url,
  });
});
afterAll(async () => {
  await stopAll();
  await fake?.close();
});

describe('examples/existing-app', () => {
  it('leaves the existing routes and auth as they were', async () => {
    expect(await (await fetch(`${app.url}/health`)).json()).toEqual({ ok: true });
    expect((await fetch(`${app.url}/api/me`)).status).toBe(401);
    const me = await fetch(`${app.url}/api/me`, { headers: { 'x-api-key': 'key-ada' } });
    expect(await me.json()).toMatchObject({ id: 'u-ada', teamId: 'team-research', plan: 'pro' });
    const note = await post(`${app.url}/api/notes`, { text: 'hi' }, { 'x-api-key': 'key-ada' });
    expect(note.status).toBe(201);
    // The chat route is behind the same auth: its 401 is the app's, before tokenmeter.
    const anonymous = await post(`${app.url}/api/chat`, body(100));
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toEqual({
      error: { code: 'unauthenticated', message: 'Send x-api-key.' },
    });
    expect(fake.requests).toHaveLength(0);
  });

  it('streams the upstream text and charges user and team the exact cost', async () => {
    const result = await post(`${app.url}/api/chat`, body(300), { 'x-api-key': 'key-ada' });
    expect(result.status).toBe(200);
    const record = await fake.waitForRequest(fake.lastRequest!.id);
    expect(textOf(result.events)).toBe(record.text);
    expect(record.maxTokens).toBe(300);
    const done = eventOf(result.events, 'done') as {
      costNanos: number;
      estimated: boolean;
      usage: { inputTokens: number; outputTokens: number };
      budget: { limitUsd: number; remainingUsd: number };
    };
    const cost = haikuNanos(record.usage!.inputTokens, 90);
    expect(done).toMatchObject({ costNanos: cost, estimated: false });
    expect(done.usage).toMatchObject({ inputTokens: record.usage!.inputTokens, outputTokens: 90 });
    // The tightest budget is reported: Ada's $5 a day (the team has $50 a month).
    expect(done.budget).toMatchObject({ limitUsd: 5, remainingUsd: (5e9 - cost) / 1e9 });

    const usage = (await (
      await fetch(`${app.url}/api/usage`, { headers: { 'x-api-key': 'key-ada' } })
    ).json()) as { user: { spentNanos: number }; team: { spentNanos: number; period: string } };
    expect(usage.user.spentNanos).toBe(cost);
    expect(usage.team).toMatchObject({ spentNanos: cost, period: 'month' });
  });

  it("applies each user's plan: the free plan's large request is fitted to its budget, pro's is not", async () => {
    // 4,096 output tokens at $5/M ≈ $0.02: more than the free plan's $0.01 a day. The
    // request is admitted with the max_tokens $0.01 covers (reservation: 'fit').
    const free = await post(`${app.url}/api/chat`, body(4_096), { 'x-api-key': 'key-linus' });
    expect(free.status).toBe(200);
    const freeMeta = eventOf(free.events, 'meta') as {
      maxTokens: number;
      fittedTo: string;
      reservedInputTokens: number;
    };
    expect(freeMeta.fittedTo).toBe('budget');
    expect(freeMeta.maxTokens).toBe(
      Math.floor((10_000_000 - freeMeta.reservedInputTokens * 1_000) / 5_000),
    );
    expect((fake.requests.at(-1)!.body as { max_tokens?: number }).max_tokens).toBe(
      freeMeta.maxTokens,
    );
    const pro = await post(`${app.url}/api/chat`, body(4_096), { 'x-api-key': 'key-ada' });
    expect(pro.status).toBe(200);
    expect(pro.events.at(-1)!.event).toBe('done');
    expect(eventOf(pro.events, 'meta')).toMatchObject({ maxTokens: 4_096 });
    expect(eventOf(pro.events, 'meta')).not.toHaveProperty('fittedTo');
    // Both users share the team budget: Linus's usage shows Ada's team spend.
    const usage = (await (
      await fetch(`${app.url}/api/usage`, { headers: { 'x-api-key': 'key-linus' } })
    ).json()) as { user: { spentNanos: number }; team: { spentNanos: number } };
    expect(usage.user.spentNanos).toBeGreaterThan(0);
    expect(usage.team.spentNanos).toBeGreaterThan(usage.user.spentNanos);
  });
});
