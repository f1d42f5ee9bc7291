/**
 * The provider registry: every API whose streams and answers tokenmeter meters. A stream's
 * first chunk picks its adapter; a chunk no adapter (and no source: the AI SDK, LangChain.js,
 * normalised events) recognises is an error, never an empty translation.
 */
import { TokenmeterError } from '../errors.js';
import { anthropicMessages } from './anthropic.js';
import { openaiChat } from './openai-chat.js';
import type { ProviderAdapter, RequestRules } from './provider.js';

const REGISTRY: ProviderAdapter[] = [openaiChat, anthropicMessages];

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
 * How requests for `provider` are read and forwarded: its adapter's rules. A provider with
 * no adapter (or an adapter without request rules) is read by the Anthropic Messages rules,
 * the strictest reading of server tools and prompt caching that tokenmeter has.
 */
export function requestRules(provider: string): RequestRules {
  const adapter = REGISTRY.find((known) => known.name === provider);
  return adapter?.requests ?? anthropicMessages.requests!;
}
