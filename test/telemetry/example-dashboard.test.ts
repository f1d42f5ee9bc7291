/**
 * The observability example as users run it (a child process: OTel SDK, OTLP trace export,
 * Prometheus exporter at /metrics), checked from outside: its traces reach an OTLP/HTTP
 * receiver with the stream's real cost, and every metric name the Grafana dashboard
 * queries is one the app really exports — under the previous GenAI names (the default) and
 * the latest (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`): the dashboard's
 * GenAI panels query both, so it works with either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventData, postSSE } from '../helpers/sse-client.js';
import { CONVENTIONS } from './conventions.js';
import { metricNamesIn, metricOfVariable, readDashboard } from './dashboard.js';
import { type ExampleApp, type OtlpSink, startExample, startOtlpSink } from './example-process.js';
import { exportedNames, parseExposition, select } from './prom-text.js';

const prompt = {
  model: 'claude-haiku-4-5',
  max_tokens: 300,
  messages: [{ role: 'user', content: 'Tell me about lighthouses.' }],
};

/** Whether a Prometheus series name is one of a GenAI metric of these conventions. */
function ofConventions(name: string, conventions: 'previous' | 'latest'): boolean {
  return Object.keys(CONVENTIONS[conventions].metrics).some((metric) =>
    name.startsWith(metric.replaceAll('.', '_')),
  );
}

interface OtlpAttribute {
  key: string;
  value: {
    stringValue?: string;
    intValue?: number | string;
    doubleValue?: number;
    boolValue?: boolean;
  };
}
interface OtlpSpan {
  name: string;
  kind: number;
  spanId: string;
  parentSpanId?: string;
  attributes: OtlpAttribute[];
}

function otlpSpans(bodies: unknown[]): OtlpSpan[] {
  return (
    bodies as Array<{ resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }>
  ).flatMap((b) => b.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
}

function attr(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (!value) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.doubleValue ?? value.boolValue;
}

describe.each(['previous', 'latest'] as const)(
  'examples/observability, %s GenAI names',
  (conventions) => {
    let sink: OtlpSink;
    let example: ExampleApp;
    beforeAll(async () => {
      sink = await startOtlpSink();
      example = await startExample({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: sink.url,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        TOKENMETER_RECORD_SUBJECTS: 'user',
        ...(conventions === 'latest'
          ? { OTEL_SEMCONV_STABILITY_OPT_IN: 'gen_ai_latest_experimental' }
          : {}),
      });
    });
    afterAll(async () => {
      await example?.stop();
      await sink?.close();
    });
    let done: { costNanos: number; usage: { outputTokens: number } };

    it('streams, and exports the `chat {model}` span over OTLP with the real cost', async () => {
      const result = await postSSE(`${example.url}/api/chat`, prompt, {
        headers: { 'x-user': 'ada' },
      });
      expect(result.status).toBe(200);
      done = eventData(result, 'done');
      expect(done.costNanos).toBeGreaterThan(0);
      // A rejection, so the rejection metric exists too.
      const anonymous = await postSSE(`${example.url}/api/chat`, prompt);
      expect(anonymous.status).toBe(401);

      const deadline = Date.now() + 5_000;
      let chat: OtlpSpan | undefined;
      while (!chat && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        chat = otlpSpans(sink.bodies).find((s) => s.name === 'chat claude-haiku-4-5');
      }
      expect(chat, `no chat span among ${otlpSpans(sink.bodies).map((s) => s.name)}`).toBeDefined();
      expect(chat!.kind).toBe(3); // SPAN_KIND_CLIENT
      expect(attr(chat!, 'tokenmeter.cost.nanos')).toBe(done.costNanos);
      expect(attr(chat!, 'gen_ai.usage.output_tokens')).toBe(done.usage.outputTokens);
      expect(attr(chat!, 'tokenmeter.outcome')).toBe('completed');
      expect(attr(chat!, 'tokenmeter.subject.user')).toBe('ada');
      expect(attr(chat!, 'server.address')).toBe('127.0.0.1');
      // One trace: POST /api/chat → chat {model} → the Anthropic SDK's own call span.
      const spans = otlpSpans(sink.bodies);
      const server = spans.find(
        (s) => s.name === 'POST /api/chat' && s.spanId === chat!.parentSpanId,
      );
      expect(server, 'the chat span is a child of the HTTP server span').toBeDefined();
      const sdkCall = spans.find((s) => s.name === 'anthropic.messages.create');
      expect(sdkCall?.parentSpanId).toBe(chat!.spanId);
    });

    it('every metric the Grafana dashboard queries is exported by the app', async () => {
      expect(done).toBeDefined(); // the stream above ran
      const response = await fetch(`${example.url}/metrics`);
      expect(response.status).toBe(200);
      const scraped = parseExposition(await response.text());
      const exported = exportedNames(scraped);
      // The scrape holds the stream that just ran.
      expect(
        select(scraped, 'tokenmeter_cost_total', { tokenmeter_subject_user: 'ada' }).map(
          (s) => s.value,
        ),
      ).toEqual([done.costNanos / 1e9]);

      const { queries, variables, panels } = readDashboard();
      expect(panels).toBeGreaterThanOrEqual(10);
      const missing: string[] = [];
      const other = conventions === 'latest' ? 'previous' : 'latest';
      for (const query of queries) {
        const names = metricNamesIn(query.expr);
        expect(names.length, `no metric in "${query.panel}": ${query.expr}`).toBeGreaterThan(0);
        // The other conventions' GenAI names are the `or` alternative this app does not emit.
        for (const name of names) {
          if (!exported.has(name) && !ofConventions(name, other)) {
            missing.push(`${query.panel}: ${name}`);
          }
        }
        expect(
          names.some((name) => exported.has(name)),
          `"${query.panel}" shows nothing under the ${conventions} names`,
        ).toBe(true);
      }
      // What this app exports of the GenAI metrics is all of its conventions' names.
      for (const name of exported) {
        if (name.startsWith('gen_ai_')) expect(ofConventions(name, conventions), name).toBe(true);
      }
      for (const variable of variables) {
        const name = metricOfVariable(variable);
        expect(name, `variable query ${variable}`).toBeDefined();
        if (!exported.has(name!)) missing.push(`variable: ${name}`);
      }
      expect(missing).toEqual([]);
      // The panels the issue asks for are there.
      const used = new Set(queries.flatMap((q) => metricNamesIn(q.expr)));
      for (const name of [
        'tokenmeter_cost_total',
        'gen_ai_client_token_usage_sum',
        'gen_ai_client_inference_usage_output_tokens_total',
        'gen_ai_client_operation_time_to_first_chunk_bucket',
        'gen_ai_client_inference_time_to_first_chunk_bucket',
        'tokenmeter_admission_rejections_total',
        'tokenmeter_streams_active',
      ]) {
        expect(used).toContain(name);
      }
      expect(queries.some((q) => q.expr.includes('tokenmeter_subject_user'))).toBe(true);
    });

    it('the metric-name extraction finds names and ignores labels and functions', () => {
      expect(
        metricNamesIn(
          'histogram_quantile(0.99, sum by (le, gen_ai_request_model) (rate(gen_ai_client_operation_duration_bucket{gen_ai_request_model=~"$model"}[$__rate_interval])))',
        ),
      ).toEqual(['gen_ai_client_operation_duration_bucket']);
      expect(metricNamesIn('sum(rate(a_total[5m])) / sum(rate(b_total{x="y"}[5m])) * 60')).toEqual([
        'a_total',
        'b_total',
      ]);
    });
  },
);
