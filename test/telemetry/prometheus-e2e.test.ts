/**
 * End to end with a real Prometheus server: it scrapes the observability example on
 * loopback every second, and the cost and token series are read back through its HTTP
 * query API. Every query of the Grafana dashboard is also run against it. Twice: with the
 * previous GenAI metric names (the default) and with the latest
 * (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`).
 *
 * Needs the `prometheus` binary (Debian/Ubuntu: `apt-get install -y prometheus`; or set
 * PROMETHEUS_BIN). Without it this test fails: it never skips.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { expand, readDashboard } from './dashboard.js';
import { startExample, stopProcess } from './example-process.js';

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

interface Done {
  costNanos: number;
  usage: { inputTokens: number; outputTokens: number };
}
interface QueryResult {
  status: string;
  error?: string;
  data: {
    resultType: string;
    result: Array<{ metric: Record<string, string>; value: [number, string] }>;
  };
}

let exampleUrl: string;
let prometheusUrl: string;
const prometheusLog: string[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function query(promql: string): Promise<QueryResult> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  return (await response.json()) as QueryResult;
}

/** Polls a query until `accept` passes on its vector result. */
async function waitForQuery(
  promql: string,
  accept: (values: number[]) => boolean,
  timeoutMs = 8_000,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let last: number[] = [];
  while (Date.now() < deadline) {
    const result = await query(promql);
    if (result.status === 'success') {
      last = result.data.result.map((r) => Number(r.value[1]));
      if (accept(last)) return last;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `"${promql}" never matched; last ${JSON.stringify(last)}\nprometheus log:\n${prometheusLog.join('').slice(-2_000)}`,
  );
}

const prompt = (content: string) => ({
  model: 'claude-haiku-4-5',
  max_tokens: 300,
  messages: [{ role: 'user', content }],
});

async function startBoth(env: Record<string, string>): Promise<() => Promise<void>> {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(
      `Prometheus is required for this test and was not found at ${PROMETHEUS}. ` +
        'Install it (Debian/Ubuntu: apt-get install -y prometheus) or set PROMETHEUS_BIN.',
    );
  }
  const example = await startExample({
    OTEL_TRACES_EXPORTER: 'none',
    TOKENMETER_RECORD_SUBJECTS: 'user',
    ...env,
  });
  exampleUrl = example.url;
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-prometheus-'));
  const target = new URL(example.url).host;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: tokenmeter-example',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: ["${target}"]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  const prometheus: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (c: Buffer) => prometheusLog.push(c.toString()));
  prometheus.stderr?.on('data', (c: Buffer) => prometheusLog.push(c.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (prometheus.exitCode !== null) {
      throw new Error(`prometheus exited (${prometheus.exitCode}):\n${prometheusLog.join('')}`);
    }
    const ready = await fetch(`${prometheusUrl}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`prometheus not ready:\n${prometheusLog.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return async () => {
    await stopProcess(prometheus);
    await example.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}

describe.each([
  ['previous', {}],
  ['latest', { OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest_experimental' }],
] as const)('Prometheus scraping the observability example, %s GenAI names', (conventions, env) => {
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    prometheusLog.length = 0;
    stop = await startBoth(env);
  }, 30_000);
  afterAll(async () => {
    await stop?.();
  });

  it('reads back the exact cost and token totals, and runs every dashboard query', async () => {
    const stream = async (user: string, content: string) =>
      eventData<Done>(
        await postSSE(`${exampleUrl}/api/chat`, prompt(content), { headers: { 'x-user': user } }),
        'done',
      );
    const ada1 = await stream('ada', 'Tell me about tides.');
    const grace = await stream('grace', 'And about lighthouses?');
    // Once Prometheus has the series, another stream on one of them makes its rates move.
    await waitForQuery('tokenmeter_cost_total', (v) => v.length === 2);
    const ada2 = await stream('ada', 'And about harbours?');
    const rejected = await postSSE(`${exampleUrl}/api/chat`, prompt('Who pays?'));
    expect(rejected.status).toBe(401);

    const all = [ada1, grace, ada2];
    const cost = all.reduce((sum, d) => sum + d.costNanos, 0) / 1e9;
    await waitForQuery(
      'sum(tokenmeter_cost_total)',
      (v) => v.length === 1 && Math.abs(v[0]! - cost) < 1e-12,
    );
    const output = all.reduce((sum, d) => sum + d.usage.outputTokens, 0);
    const input = all.reduce((sum, d) => sum + d.usage.inputTokens, 0);
    if (conventions === 'previous') {
      await waitForQuery(
        'sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})',
        (v) => v[0] === output,
      );
      await waitForQuery(
        'sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})',
        (v) => v[0] === input,
      );
      await waitForQuery('count(gen_ai_client_operation_duration_count)', (v) => v[0]! > 0);
      expect((await query('count(gen_ai_client_inference_duration_count)')).data.result).toEqual(
        [],
      );
    } else {
      await waitForQuery(
        'sum(gen_ai_client_inference_usage_output_tokens_total{gen_ai_token_modality="unknown"})',
        (v) => v[0] === output,
      );
      await waitForQuery(
        'sum(gen_ai_client_inference_usage_input_tokens_total{gen_ai_token_modality="unknown"})',
        (v) => v[0] === input,
      );
      await waitForQuery(
        'sum(gen_ai_client_inference_operation_output_tokens_sum)',
        (v) => v[0] === output,
      );
      await waitForQuery('sum(gen_ai_client_inference_duration_count)', (v) => v[0] === 3);
      // Each call's cost, in the proposed cost metric's shape: its sum is the spend.
      await waitForQuery(
        'sum(tokenmeter_client_operation_cost_sum{tokenmeter_cost_currency="USD",tokenmeter_cost_source="local"})',
        (v) => v.length === 1 && Math.abs(v[0]! - cost) < 1e-12,
      );
      expect((await query('count(gen_ai_client_token_usage_count)')).data.result).toEqual([]);
    }
    await waitForQuery(
      'sum(tokenmeter_cost_total{tokenmeter_subject_user="ada"})',
      (v) => Math.abs((v[0] ?? 0) - (ada1.costNanos + ada2.costNanos) / 1e9) < 1e-12,
    );
    await waitForQuery(
      'sum(tokenmeter_cost_total{tokenmeter_subject_user="grace"})',
      (v) => Math.abs((v[0] ?? 0) - grace.costNanos / 1e9) < 1e-12,
    );
    await waitForQuery(
      'sum(tokenmeter_admission_rejections_total{tokenmeter_rejection_reason="unauthenticated"})',
      (v) => v[0] === 1,
    );
    // rate() needs two samples of a series: wait for a second scrape of the newest one.
    await waitForQuery('sum(rate(tokenmeter_cost_total[30s]))', (v) => (v[0] ?? 0) > 0);
    await waitForQuery(
      'count_over_time(tokenmeter_admission_rejections_total[30s])',
      (v) => v.length > 0 && v.every((n) => n >= 2),
    );

    const { queries } = readDashboard();
    const empty: string[] = [];
    for (const q of queries) {
      const result = await query(expand(q.expr));
      expect(result.status, `${q.panel}: ${q.expr}: ${result.error}`).toBe('success');
      if (result.data.result.length === 0) empty.push(q.panel);
    }
    // Panels that must show data after three streams and a rejection (the others chart
    // faults, store errors and expiries, which this run has none of).
    for (const panel of [
      'Spend today',
      'Active streams',
      'Spend per model (USD per hour)',
      'Tokens per second',
      'Time to first token p50 / p99',
      'Stream duration p50 / p99',
      'Streams by outcome (per minute)',
      'Rejections by reason (per minute)',
      'Top subjects by spend (opted in)',
      'Reservations opened and ended (per minute)',
      'Reservations in the store (observed scopes)',
      'Store latency p99',
    ]) {
      expect(empty, `panel "${panel}" has no data`).not.toContain(panel);
    }
    const spend = await query(
      expand(queries.find((q) => q.panel.startsWith('Spend per model'))!.expr),
    );
    expect(Number(spend.data.result[0]!.value[1])).toBeGreaterThan(0);
  });
});
