/**
 * `@tokenmeter/core/testing`: the store conformance suite and its test clock. Imports
 * `vitest` (an optional peer dependency); production code never imports this entry.
 */
export { storeConformanceCases } from './conformance-cases.js';
export { runStoreConformance, type StoreConformanceOptions } from './run-store-conformance.js';
export { createTestClock } from './test-clock.js';
export type {
  ConformanceCase,
  ConformanceGroup,
  StoreFactory,
  StoreFactoryContext,
  TestClock,
} from './types.js';
