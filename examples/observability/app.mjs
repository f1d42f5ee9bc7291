// @ts-check
/**
 * The observability example's Express app: one metered route, POST /api/chat, with
 * tokenmeter's telemetry on, the Prometheus scrape endpoint GET /metrics, and a tiny page
 * at GET / to try it from a browser.
 *
 * Who pays is the `x-user` header — a stand-in for your auth (never trust a header in a
 * real app). Each user has a small daily budget and a rate limit, so a little traffic
 * shows completions, rejections by reason and spend per subject on the dashboard.
 */
import { trace } from '@opentelemetry/api';
import { costTrackedSSE } from '@tokenmeter/express';
import { createMemoryStore } from '@tokenmeter/store-memory';
import express from 'express';
import { httpServerSpan } from './http-server-span.mjs';

const USER = /^[A-Za-z0-9_-]{1,32}$/;
const GLOBAL = { kind: 'global', id: 'all' };

/**
 * @typedef {object} AppOptions
 * @property {import('./upstream.mjs').Upstream} upstream
 * @property {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void} metricsHandler
 * @property {NodeJS.ProcessEnv} [env]
 * @property {(line: string) => void} [log]
 */

/** @param {AppOptions} options */
export function createObservabilityApp({ upstream, metricsHandler, env = process.env, log }) {
  const store = createMemoryStore();
  // tokenmeter records through the global tracer and meter providers the SDK registered
  // (pass `tracer` / `meter` in `telemetry` to use others); this one is for the HTTP span.
  const tracer = trace.getTracer('tokenmeter-example');
  const recordSubjects = (env.TOKENMETER_RECORD_SUBJECTS ?? '')
    .split(',')
    .map((kind) => kind.trim())
    .filter(Boolean);

  const app = express();
  app.disable('x-powered-by');
  app.use(httpServerSpan(tracer));
  app.get('/metrics', (req, res) => metricsHandler(req, res));
  app.get('/', (_req, res) => {
    res.type('html').send(PAGE);
  });
  app.post(
    '/api/chat',
    express.json({ limit: '64kb' }),
    costTrackedSSE({
      store,
      identify: (req) => {
        const user = req.headers['x-user'];
        return typeof user === 'string' && USER.test(user)
          ? [{ kind: 'user', id: user }, GLOBAL]
          : undefined;
      },
      budgets: {
        user: { limitUsd: env.USER_BUDGET_USD ?? '0.05', period: 'day' },
        global: { limitUsd: env.GLOBAL_BUDGET_USD ?? '5.00', period: 'day' },
      },
      rateLimits: { user: [{ kind: 'requests', limit: 30, windowMs: 60_000 }] },
      maxTokensLimit: 2_048,
      upstream: (req, meter) => {
        const body = /** @type {{ messages?: unknown, system?: unknown }} */ (req.body);
        return upstream.client.messages.create(
          {
            model: meter.model,
            max_tokens: meter.maxTokens,
            messages: /** @type {import('@anthropic-ai/sdk').default.MessageParam[]} */ (
              body.messages
            ),
            ...(typeof body.system === 'string' ? { system: body.system } : {}),
            stream: true,
          },
          { signal: meter.signal, headers: upstream.fake ? knobHeaders(req) : {} },
        );
      },
      telemetry: {
        server: upstream.server,
        // Per-subject series only when asked: TOKENMETER_RECORD_SUBJECTS=user
        recordSubjects,
        recordContent: env.TOKENMETER_RECORD_CONTENT === '1',
        // Store-side reservation counts (open, expired) of the shared global scope.
        observeScopes: [GLOBAL],
      },
      onSettle: (info) =>
        log?.(
          `${info.requestId} ${info.outcome} ${info.final.usage.outputTokens} tokens ` +
            `$${(info.final.costNanos / 1e9).toFixed(6)}${info.final.estimated ? ' (estimated)' : ''}`,
        ),
    }),
  );
  return { app, store };
}

/**
 * With the fake upstream, `x-fake-llm-*` request headers pass through, so a load
 * generator can ask for slow answers or faults.
 * @param {import('node:http').IncomingMessage} req
 */
function knobHeaders(req) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-fake-llm-') && typeof value === 'string') out[name] = value;
  }
  return out;
}

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>tokenmeter observability example</title>
<style>body{font:16px system-ui;max-width:44rem;margin:2rem auto}pre{white-space:pre-wrap;background:#f4f4f4;padding:1rem}</style>
<h1>tokenmeter observability example</h1>
<form id="f">
  <label>user <input name="user" value="ada"></label>
  <label>prompt <input name="prompt" value="Tell me about lighthouses." size="40"></label>
  <button>Send</button>
</form>
<pre id="out"></pre>
<p><a href="/metrics">/metrics</a></p>
<script type="module">
const out = document.getElementById('out');
document.getElementById('f').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  out.textContent = '';
  const res = await fetch('/api/chat', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user': form.get('user') },
    body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 400,
      messages: [{ role: 'user', content: form.get('prompt') }] }),
  });
  if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
    out.textContent = res.status + ' ' + await res.text();
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1];
      const data = block.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
      if (name === 'delta') out.textContent += JSON.parse(data).text;
      else if (name === 'done' || name === 'error') out.textContent += '\\n\\n[' + name + '] ' + data;
    }
  }
});
</script>
`;
