/**
 * @tokenmeter/store-memory: the single-process tokenmeter store on lru-cache.
 */
export {
  createMemoryStore,
  type MemoryStore,
  type MemoryStoreStats,
} from './memory-store.js';
export type { MemoryStoreOptions } from './options.js';
