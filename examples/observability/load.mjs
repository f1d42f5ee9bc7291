// @ts-check
/**
 * Traffic for the dashboard: a few users streaming answers, some leaving early, some
 * asking for more than their budget, an occasional upstream fault (fake upstream only).
 *
 *   node examples/observability/load.mjs            # against http://localhost:3000
 *   TARGET=http://localhost:3000 USERS=8 DURATION_S=300 node examples/observability/load.mjs
 */
const target = process.env.TARGET ?? 'http://localhost:3000';
const users = Number(process.env.USERS ?? 6);
const durationMs = Number(process.env.DURATION_S ?? 600) * 1000;
const deadline = Date.now() + durationMs;
const models = ['claude-haiku-4-5', 'claude-sonnet-4-6'];
const counts = /** @type {Record<string, number>} */ ({});

/** @param {string} user @param {number} i */
async function once(user, i) {
  const roll = Math.random();
  /** @type {Record<string, string>} */
  const headers = { 'content-type': 'application/json', 'x-user': user };
  if (roll < 0.05) headers['x-fake-llm-fault'] = 'error-mid-stream';
  const leaveEarly = roll > 0.85;
  const controller = new AbortController();
  const body = {
    model: models[i % models.length],
    // Now and then a request whose worst case is beyond a small daily budget.
    max_tokens: roll > 0.8 && roll <= 0.85 ? 2_000 : 400,
    messages: [{ role: 'user', content: `Question ${i} from ${user}: tell me about tides.` }],
  };
  try {
    const res = await fetch(`${target}/api/chat`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      const json = /** @type {{ error?: { code?: string } }} */ (await res.json());
      return `rejected:${json.error?.code ?? res.status}`;
    }
    const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader();
    let bytes = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      if (leaveEarly && bytes > 600) {
        controller.abort();
        return 'left early';
      }
    }
    return 'streamed';
  } catch (error) {
    return controller.signal.aborted ? 'left early' : `failed:${String(error)}`;
  }
}

/** @param {string} user */
async function userLoop(user) {
  for (let i = 0; Date.now() < deadline; i++) {
    const result = await once(user, i);
    counts[result] = (counts[result] ?? 0) + 1;
    await new Promise((r) => setTimeout(r, 500 + Math.random() * 2_000));
  }
}

const timer = setInterval(() => console.log(JSON.stringify(counts)), 5_000);
process.on('SIGINT', () => {
  console.log(JSON.stringify(counts));
  process.exit(0);
});
await Promise.all(Array.from({ length: users }, (_, n) => userLoop(`user-${n + 1}`)));
clearInterval(timer);
console.log(JSON.stringify(counts));
