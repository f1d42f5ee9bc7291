// @ts-check
/**
 * Where answers come from: the Anthropic API when ANTHROPIC_API_KEY is set, otherwise the
 * testkit's fake Claude in this process (realistic pacing, exact usage, no key needed).
 *
 * Fake pacing (environment): FAKE_TPS tokens/s (default 40), FAKE_TTFT_MS (default 250),
 * FAKE_TOKENS tokens per answer (default 180).
 */
import Anthropic from '@anthropic-ai/sdk';

/**
 * @typedef {object} Upstream
 * @property {Anthropic} client
 * @property {boolean} fake
 * @property {{ address: string, port: number }} server  for server.address / server.port
 * @property {string} description
 * @property {() => Promise<void>} close
 */

/**
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<Upstream>}
 */
export async function createUpstream(env = process.env) {
  if (env.ANTHROPIC_API_KEY) {
    const client = new Anthropic({ apiKey: env.ANTHROPIC_API_KEY, maxRetries: 0 });
    const url = new URL(client.baseURL);
    return {
      client,
      fake: false,
      server: { address: url.hostname, port: Number(url.port || 443) },
      description: `the Anthropic API (${url.host})`,
      close: async () => {},
    };
  }
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const fake = await startFakeLLM({
    tps: numberFrom(env.FAKE_TPS, 40),
    ttftMs: numberFrom(env.FAKE_TTFT_MS, 250),
    tokens: numberFrom(env.FAKE_TOKENS, 180),
    chunk: 2,
    text: 'plain',
  });
  return {
    client: new Anthropic({ baseURL: fake.url, apiKey: 'fake', maxRetries: 0 }),
    fake: true,
    server: { address: fake.host, port: fake.port },
    description: `a fake Claude in this process (${fake.url}); set ANTHROPIC_API_KEY for the real one`,
    close: () => fake.close(),
  };
}

/**
 * @param {string | undefined} value
 * @param {number} fallback
 */
function numberFrom(value, fallback) {
  const n = Number(value);
  return value === undefined || value === '' || !Number.isFinite(n) ? fallback : n;
}
