/**
 * Every case of the store conformance suite, in one list. `runStoreConformance()` turns
 * them into vitest tests; a proof or a custom runner can await `run(factory)` directly.
 */
import { admissionCases, lifecycleCases } from './cases/admission.js';
import { admissionKeyCases } from './cases/admission-keys.js';
import { amountCases } from './cases/amounts.js';
import { clockCases } from './cases/clock.js';
import { concurrencyCases } from './cases/concurrency.js';
import { concurrencyLimitCases } from './cases/concurrency-limits.js';
import { expiryCases } from './cases/expiry.js';
import { multiScopeCases } from './cases/multi-scope.js';
import { onceCases } from './cases/once.js';
import { periodCases } from './cases/periods.js';
import { rateLimitCases } from './cases/rate-limits.js';
import { scopeIdCases } from './cases/scope-ids.js';
import { validationCases } from './cases/validation.js';
import type { ConformanceCase } from './types.js';

export const storeConformanceCases: readonly ConformanceCase[] = [
  ...admissionCases,
  ...lifecycleCases,
  ...expiryCases,
  ...periodCases,
  ...rateLimitCases,
  ...concurrencyCases,
  ...concurrencyLimitCases,
  ...multiScopeCases,
  ...admissionKeyCases,
  ...scopeIdCases,
  ...clockCases,
  ...validationCases,
  ...amountCases,
  ...onceCases,
];
