// @ts-check
/**
 * The demo's store: in memory (one process) by default; Redis when REDIS_URL is set, so
 * several demo processes share one set of budgets. The Redis package is imported only
 * when it is used.
 */
import { createMemoryStore } from '@tokenmeter/store-memory';
import { redactUrl } from './config.mjs';

/**
 * @param {import('./config.mjs').DemoConfig} config
 * @returns {Promise<{ store: import('@tokenmeter/core').Store, description: string }>}
 */
export async function createStore(config) {
  if (config.redisUrl) {
    const { createRedisStore } = await import('@tokenmeter/store-redis');
    return {
      store: createRedisStore({ url: config.redisUrl }),
      description: `Redis at ${redactUrl(config.redisUrl)} (REDIS_URL is set)`,
    };
  }
  return {
    store: createMemoryStore(),
    description: 'in memory (set REDIS_URL to share budgets between processes)',
  };
}
