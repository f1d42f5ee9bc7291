import type { Attributes, Meter, Span, Tracer } from '@opentelemetry/api';
import { emptyUsage, type FinalUsage, Pricing, PricingCatalog } from '@tokenmeter/core';
import { describe, expect, it } from 'vitest';
import type { StreamEndInfo } from '../events.js';
import { Telemetry } from './telemetry.js';

/** Every record made on any instrument: what an SDK would aggregate into series. */
interface MetricRecord {
  instrument: string;
  attributes: Attributes;
}

interface FakeSpan {
  name: string;
  attributes: Attributes;
}

/** A meter and tracer that keep what they are given (no SDK in this package). */
function recorder() {
  const records: MetricRecord[] = [];
  const spans: FakeSpan[] = [];
  const instrument = (name: string) => {
    const keep = (_value: number, attributes: Attributes = {}) => {
      records.push({ instrument: name, attributes });
    };
    return { add: keep, record: keep };
  };
  const meter = {
    createCounter: instrument,
    createUpDownCounter: instrument,
    createHistogram: instrument,
    createObservableGauge: () => ({}),
    addBatchObservableCallback: () => {},
  } as unknown as Meter;
  const tracer = {
    startSpan(name: string, options: { attributes?: Attributes } = {}): Span {
      const span: FakeSpan = { name, attributes: { ...options.attributes } };
      spans.push(span);
      const self = {
        isRecording: () => true,
        setAttributes(attributes: Attributes) {
          Object.assign(span.attributes, attributes);
          return self;
        },
        setAttribute(key: string, value: unknown) {
          span.attributes[key] = value as Attributes[string];
          return self;
        },
        addEvent: () => self,
        setStatus: () => self,
        end: () => {},
        spanContext: () => ({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 1 }),
      };
      return self as unknown as Span;
    },
  } as unknown as Tracer;
  /** Distinct attribute sets of one instrument: its series. */
  const series = (instrument: string) =>
    new Set(
      records
        .filter((r) => r.instrument === instrument)
        .map((r) => JSON.stringify(Object.entries(r.attributes).sort())),
    );
  /** Every value one attribute takes on any metric. */
  const values = (attribute: string) =>
    new Set(records.map((r) => r.attributes[attribute]).filter((v) => v !== undefined));
  return { records, spans, meter, tracer, series, values };
}

const pricing = new Pricing();
function final(model: string, responseModel: string | undefined): FinalUsage {
  const usage = { ...emptyUsage(), inputTokens: 100, outputTokens: 20 };
  const cost = pricing.costOf(usage, model);
  return {
    usage,
    cost,
    costNanos: cost.nanos,
    estimated: false,
    outcome: 'completed',
    inputSource: 'provider',
    outputSource: 'provider',
    ...(responseModel ? { responseModel } : {}),
  };
}

function ended(
  model: string,
  responseModel: string | undefined,
  extra: Partial<StreamEndInfo> = {},
): StreamEndInfo {
  return {
    outcome: 'completed',
    final: final(pricing.canPrice(model) ? model : 'claude-haiku-4-5', responseModel),
    durationMs: 1_200,
    timeToFirstTokenMs: 300,
    backpressureWaits: 0,
    backpressureMs: 0,
    recorded: true,
    budgetRemainingNanos: null,
    reservationEnds: { settled: 1 },
    ...extra,
  };
}

function stream(telemetry: Telemetry, model: string, responseModel = model, end = ended) {
  const trace = telemetry.startStream(telemetry.begin(), {
    requestId: `req-${model}`,
    model,
    provider: 'anthropic',
    maxTokens: 1_000,
    reservedNanos: 1_000_000,
    reservations: 1,
  });
  trace.end(end(model, responseModel));
}

const REQUEST = 'gen_ai.request.model';
const RESPONSE = 'gen_ai.response.model';

describe('metric attributes are bounded whatever model names callers send', () => {
  it('300 calls with dated aliases and made-up names make one series per catalog id, plus _OTHER', () => {
    const otel = recorder();
    const telemetry = new Telemetry({ tracer: otel.tracer, meter: otel.meter });
    const sent: string[] = [];
    for (let i = 0; i < 150; i++) {
      // Distinct 8-digit "dates": every one resolves to claude-sonnet-4-5 in the catalog.
      sent.push(`claude-sonnet-4-5-2025${String(1000 + i).padStart(4, '0')}`);
    }
    for (let i = 0; i < 150; i++) {
      const garbage = Math.random().toString(36).slice(2);
      // Some look dated too: an uncatalogued family must not resolve.
      sent.push(i % 2 === 0 ? `zz-${garbage}-${i}` : `zz-${garbage}-${i}-20250101`);
    }
    expect(new Set(sent).size).toBe(300);
    for (const [i, model] of sent.entries()) {
      const known = pricing.canPrice(model);
      if (i % 3 === 0) {
        // Refused before the provider (rate limited), as in the abuse test.
        telemetry.rejected(telemetry.begin(), {
          reason: 'rate_limited',
          status: 429,
          model,
          provider: 'anthropic',
          modelPriced: known,
        });
      } else {
        stream(telemetry, model, model, (m, r) =>
          ended(m, r, {
            outcome: 'upstream_error',
            // The upstream's error type is free text too.
            failure: { type: `weird_${i}`, message: 'boom' },
          }),
        );
      }
    }

    expect(otel.values(REQUEST)).toEqual(new Set(['claude-sonnet-4-5', '_OTHER']));
    expect(otel.values(RESPONSE)).toEqual(new Set(['claude-sonnet-4-5', '_OTHER']));
    expect(otel.values('error.type')).toEqual(new Set(['upstream_error']));
    // Active streams: one series per catalog id seen + 1 for _OTHER.
    expect(otel.series('tokenmeter.streams.active').size).toBe(2);
    expect(otel.series('tokenmeter.streams').size).toBe(2);
    expect(otel.series('gen_ai.client.operation.duration').size).toBe(2);
    // Rejections: the catalog id, and the unpriced ones without a model attribute.
    expect(otel.series('tokenmeter.admission.rejections').size).toBe(2);
    const everything = JSON.stringify(otel.records);
    for (const model of sent) expect(everything).not.toContain(model);
    expect(everything).not.toContain('weird_');
    // Spans keep what was sent.
    expect(otel.spans.filter((s) => sent.includes(String(s.attributes[REQUEST])))).toHaveLength(
      300,
    );
  });

  it('a dated alias is its catalog id on metrics; the span keeps the exact strings', () => {
    const otel = recorder();
    const telemetry = new Telemetry({ tracer: otel.tracer, meter: otel.meter });
    stream(telemetry, 'claude-haiku-4-5-20251001', 'claude-haiku-4-5-20251001');

    const span = otel.spans.find((s) => s.name === 'chat claude-haiku-4-5-20251001');
    expect(span?.attributes[REQUEST]).toBe('claude-haiku-4-5-20251001');
    expect(span?.attributes[RESPONSE]).toBe('claude-haiku-4-5-20251001');
    const cost = otel.records.filter((r) => r.instrument === 'tokenmeter.cost');
    expect(cost).toHaveLength(1);
    expect(cost[0]!.attributes).toMatchObject({
      [REQUEST]: 'claude-haiku-4-5',
      [RESPONSE]: 'claude-haiku-4-5',
    });
    expect(otel.values(REQUEST)).toEqual(new Set(['claude-haiku-4-5']));
    expect(otel.values(RESPONSE)).toEqual(new Set(['claude-haiku-4-5']));
  });

  it('an uncatalogued model is _OTHER on metrics; a model the app priced is its own id', () => {
    const otel = recorder();
    const catalog = PricingCatalog.bundled().extend([
      { id: 'my-finetune', provider: 'anthropic', rates: { input: '3', output: '15' } },
    ]);
    const telemetry = new Telemetry({ tracer: otel.tracer, meter: otel.meter }, catalog);
    stream(telemetry, 'totally-made-up', 'totally-made-up-v2');
    stream(telemetry, 'my-finetune', 'my-finetune');
    // A snapshot the catalog lists apart stays itself.
    stream(telemetry, 'gpt-4o-2024-05-13', 'gpt-4o-2024-05-13');

    const active = otel.records.filter((r) => r.instrument === 'tokenmeter.streams.active');
    // Each stream goes up at its start and down at its end, with the same set.
    expect(active.map((r) => r.attributes[REQUEST])).toEqual([
      '_OTHER',
      '_OTHER',
      'my-finetune',
      'my-finetune',
      'gpt-4o-2024-05-13',
      'gpt-4o-2024-05-13',
    ]);
    const streams = otel.records.filter((r) => r.instrument === 'tokenmeter.streams');
    expect(streams.map((r) => [r.attributes[REQUEST], r.attributes[RESPONSE]])).toEqual([
      ['_OTHER', '_OTHER'],
      ['my-finetune', 'my-finetune'],
      ['gpt-4o-2024-05-13', 'gpt-4o-2024-05-13'],
    ]);
    expect(JSON.stringify(otel.records)).not.toContain('made-up');
    expect(otel.spans[0]!.attributes).toMatchObject({
      [REQUEST]: 'totally-made-up',
      [RESPONSE]: 'totally-made-up-v2',
    });

    // The bundled catalog alone does not know the app's model.
    const bundledOnly = new Telemetry({ meter: recorder().meter });
    expect(bundledOnly.metricModel('my-finetune')).toBe('_OTHER');
    expect(telemetry.metricModel('my-finetune-20260101')).toBe('my-finetune');
  });

  it('error.type on metrics is a published provider type, an HTTP status or the outcome', () => {
    const otel = recorder();
    const telemetry = new Telemetry({ tracer: otel.tracer, meter: otel.meter });
    const failures: Array<StreamEndInfo['failure']> = [
      { type: 'overloaded_error', status: 529 },
      { type: 'my proxy said <script>', status: 502 },
      { type: 'another made-up type' },
      { status: 1e9 },
      { status: 503 },
    ];
    for (const failure of failures) {
      stream(telemetry, 'claude-haiku-4-5', 'claude-haiku-4-5', (m, r) =>
        ended(m, r, { outcome: 'upstream_error', ...(failure ? { failure } : {}) }),
      );
    }
    const duration = otel.records.filter(
      (r) => r.instrument === 'gen_ai.client.operation.duration',
    );
    expect(duration.map((r) => r.attributes['error.type'])).toEqual([
      'overloaded_error',
      '502',
      'upstream_error',
      'upstream_error',
      '503',
    ]);
    // The span says what the upstream said.
    expect(otel.spans.map((s) => s.attributes['error.type'])).toEqual([
      'overloaded_error',
      'my proxy said <script>',
      'another made-up type',
      '1000000000',
      '503',
    ]);
  });
});

describe('telemetry.conventions', () => {
  it("is 'previous' or 'latest'; anything else is refused with what to write", () => {
    expect(new Telemetry({ enabled: false, conventions: 'latest' }).conventions).toBe('latest');
    expect(new Telemetry({ enabled: false, conventions: 'previous' }).conventions).toBe('previous');
    expect(
      () => new Telemetry({ enabled: false, conventions: 'v0.1.0' as unknown as 'latest' }),
    ).toThrow(/telemetry\.conventions must be 'previous' or 'latest'/);
  });
});
