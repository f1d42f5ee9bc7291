// `npm run demo` until the demo app lands (issue 8): shows what works today by pricing a
// sample stream with the built @tokenmeter/core.
const core = await import('@tokenmeter/core');
const { costOf, emptyUsage, formatUsd, PricingCatalog } = core;
const usage = { ...emptyUsage(), inputTokens: 1_200, cacheReadTokens: 8_000, outputTokens: 640 };
const cost = costOf(usage, 'claude-sonnet-4-6');
console.log('tokenmeter: the demo app is not built yet (issue 8). What works today:');
console.log(
  `- pricing catalog ${PricingCatalog.bundled().version}, ${PricingCatalog.bundled().modelIds().length} models`,
);
console.log(
  `- a claude-sonnet-4-6 answer with 1,200 input, 8,000 cache-read and 640 output tokens costs ${formatUsd(cost.nanos)} (${cost.nanos} nano-dollars)`,
);
