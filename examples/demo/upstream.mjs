// @ts-check
/**
 * Where the demo's answers come from: the real Anthropic API when ANTHROPIC_API_KEY is set
 * (the SDK also honours ANTHROPIC_BASE_URL), otherwise the testkit's fake Claude started
 * in this process. Both are reached through the same official SDK client, so the demo's
 * code path is the one a production app runs.
 */
import { createHash } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';

/**
 * @typedef {object} Upstream
 * @property {Anthropic} client
 * @property {'anthropic' | 'fake'} kind
 * @property {string} description For the startup log.
 * @property {(prompt: string) => Record<string, string>} headersFor Per-request headers
 *   (the fake's knobs: a seed and a length derived from the prompt, so answers vary).
 * @property {() => Promise<void>} close
 */

/**
 * @param {import('./config.mjs').DemoConfig} config
 * @returns {Promise<Upstream>}
 */
export async function createUpstream(config) {
  if (config.anthropicApiKey) {
    const client = new Anthropic({ apiKey: config.anthropicApiKey, maxRetries: 1 });
    return {
      client,
      kind: 'anthropic',
      description: `the Anthropic API at ${client.baseURL} (ANTHROPIC_API_KEY is set)`,
      headersFor: () => ({}),
      close: async () => {},
    };
  }
  // Loaded only when needed: a production app would not ship the testkit.
  const { startFakeLLM } = await import('@tokenmeter/testkit');
  const { tps, ttftMs, tokens } = config.fake;
  const fake = await startFakeLLM({ tps, ttftMs, tokens, chunk: 1, text: 'plain' });
  const client = new Anthropic({ baseURL: fake.url, apiKey: 'fake-key', maxRetries: 0 });
  return {
    client,
    kind: 'fake',
    description:
      `the testkit's fake Claude in this process (${fake.url}, ~${tps} tokens/s, first token after ${ttftMs} ms); ` +
      'set ANTHROPIC_API_KEY to use the real API',
    headersFor(prompt) {
      const hash = createHash('sha256').update(prompt).digest();
      // Between 60% and 140% of the configured answer length; the seed picks the words.
      const length = Math.max(1, Math.round(tokens * (0.6 + (0.8 * (hash[0] ?? 0)) / 255)));
      return {
        'x-fake-llm-seed': String(hash.readUInt32BE(1)),
        'x-fake-llm-tokens': String(length),
      };
    },
    close: () => fake.close(),
  };
}
