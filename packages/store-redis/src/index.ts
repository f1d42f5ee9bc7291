/**
 * @tokenmeter/store-redis: the tokenmeter Store on Redis (standalone or Cluster), for
 * budgets and rate limits shared by every instance of an app.
 */
export {
  type RecommendedOptionsInput,
  recommendedClusterOptions,
  recommendedRedisOptions,
} from './client.js';
export { scopeRedisKey } from './keys.js';
export { createRedisStore } from './redis-store.js';
export type { RedisClient, RedisStore, RedisStoreLogger, RedisStoreOptions } from './types.js';
