/**
 * The provider registry: every API whose streams and answers tokenmeter meters. A stream's
 * first chunk picks its adapter; a chunk no adapter (and no source: the AI SDK, LangChain.js,
 * normalised events) recognises is an error, never an empty translation.
 */
import { TokenmeterError } from '../errors.js';
import { anthropicMessages } from './anthropic.js';
import { openaiChat } from './openai-chat.js';
import { openaiResponses } from './openai-responses.js';
import type { ProviderAdapter, RequestRules } from './provider.js';

const REGISTRY: ProviderAdapter[] = [openaiChat, openaiResponses, anthropicMessages];

/** The adapters, in the order a first chunk is tried against them. */
export function providerAdapters(): readonly ProviderAdapter[] {
  return REGISTRY;
}

/**
 * Adds a provider API (a new adapter, or one an app wrote): its streams are then metered
 * like the built-in ones. Tried after the built-in adapters.
 *
 * @example
 * registerProvider({ name: 'acme', detect: (c) => 'acme_event' in c, translator: () => translateAcme });
 */
export function registerProvider(adapter: ProviderAdapter): void {
  if (REGISTRY.some((known) => known.name === adapter.name && known !== adapter)) {
    throw new TokenmeterError(
      'invalid_config',
      `A provider adapter named "${adapter.name}" is registered already: give yours another name.`,
    );
  }
  if (!REGISTRY.includes(adapter)) REGISTRY.push(adapter);
}

/**
 * How requests for `api` (an adapter's name, or a provider's) are read and forwarded: its
 * adapter's rules. An API with no adapter (or an adapter without request rules) is read by
 * the Anthropic Messages rules, the strictest reading of server tools and prompt caching
 * that tokenmeter has.
 */
export function requestRules(api: string): RequestRules {
  const adapter = REGISTRY.find((known) => known.name === api);
  return adapter?.requests ?? anthropicMessages.requests!;
}

/**
 * The provider (as the pricing catalog names it) whose API `api` is: `'openai'` for
 * `'openai-responses'`; undefined for an API no adapter has.
 */
export function providerOfApi(api: string): string | undefined {
  const adapter = REGISTRY.find((known) => known.name === api);
  return adapter ? (adapter.provider ?? adapter.name) : undefined;
}
