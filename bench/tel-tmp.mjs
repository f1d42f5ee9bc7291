process.env.BENCH_TELEMETRY = 'on';
const { startTelemetry } = await import('./variants/common.mjs');
await startTelemetry();
const { Telemetry } = await import('../packages/engine/dist/telemetry/telemetry.js');
const { emptyUsage, Pricing } = await import('@tokenmeter/core');
const pricing = new Pricing();
const telemetry = new Telemetry({});
const usage = { ...emptyUsage(), inputTokens: 12, outputTokens: 100 };
const cost = pricing.costOf(usage, 'claude-haiku-4-5');
const endInfo = () => ({
  outcome: 'completed',
  final: { usage, cost, costNanos: cost.nanos, estimated: false, outcome: 'completed', inputSource: 'provider', outputSource: 'provider', responseModel: 'claude-haiku-4-5', stopReason: 'end_turn', responseId: 'msg_1' },
  durationMs: 120, timeToFirstTokenMs: 3, backpressureWaits: 0, backpressureMs: 0, recorded: true,
  budgetRemainingNanos: 1e12, reservationEnds: { settled: 1 },
});
const info = (i) => ({ requestId: `req-${i}`, model: 'claude-haiku-4-5', provider: 'anthropic', maxTokens: 1024, reservedNanos: 5_000_000, reservations: 1, budgetRemainingNanos: 1e12, scopes: [{ kind: 'user', id: `u${i % 50}` }], modelPriced: true });
const one = (i) => { const t = telemetry.startStream(telemetry.begin(), info(i)); t.run(() => 1); t.end(endInfo()); };
for (let r = 0; r < 6; r++) {
  const n = 50_000; const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) { one(i); if (i % 1000 === 0) await new Promise((r) => setImmediate(r)); }
  const c = process.cpuUsage(c0);
  console.log(((c.user + c.system) / n).toFixed(2), 'µs CPU per stream (telemetry only)');
}
process.exit(0);
