/**
 * The memory store against the full store conformance suite, unchanged.
 */
import { runStoreConformance } from '@tokenmeter/core/testing';
import { createMemoryStore } from './index.js';

runStoreConformance('memory', (ctx) =>
  createMemoryStore({ clock: ctx.clock, onExpiry: ctx.onExpiry }),
);
