/**
 * What tokenmeter needs of a provider's API to meter it: recognise its stream, translate
 * each chunk into normalised events (text, usage, stop, errors), read a whole answer, and
 * read and forward its requests. One adapter per API, one line in the registry
 * (`providers/registry.ts`).
 */
import type { MeterEvent } from '../meter-event.js';
import type { ForwardTerms, RequestTerms } from '../request-terms.js';
import type { TokenProvider } from '../token-estimate.js';

/** How one API's request bodies are read before the call, and sent after admission. */
export interface RequestRules {
  /**
   * Whose token-estimate rules apply where they differ (image sizes, text margins), and
   * what a `TokenCounter` is told: the closest of the APIs tokenmeter knows.
   */
  readonly tokens: TokenProvider;
  /**
   * Reads the body's fields that raise the bill into `terms` (the body has passed the
   * checks every API shares); sets `problem` or `unbounded` to refuse it.
   */
  terms(body: Record<string, unknown>, terms: RequestTerms): RequestTerms;
  /**
   * The body to send, carrying what the reservation priced (the output limit, server tools'
   * limits): `body` itself when nothing changes, never changed in place.
   */
  forward(body: Record<string, unknown>, terms: ForwardTerms): Record<string, unknown>;
  /**
   * `'optional'` when the API lets a request leave its output limit out (the Responses
   * API's `max_output_tokens`): such a request is admitted at the most the route allows and
   * sent with that limit written in. Otherwise a request without one is refused.
   */
  readonly outputLimit?: 'required' | 'optional';
  /** The least output limit the API accepts (the Responses API: 16). Defaults to 1. */
  readonly minOutputTokens?: number;
}

export interface ProviderAdapter {
  /**
   * The API's name in the registry (`'anthropic'`, `'openai'` for Chat Completions,
   * `'openai-responses'`): what `RequestParams.api` names.
   */
  readonly name: string;
  /**
   * The provider, as the pricing catalog has it, when it is not the API's name
   * (`'openai'` for `'openai-responses'`).
   */
  readonly provider?: string;
  /** True when a stream's first chunk is this API's. */
  detect(chunk: object): boolean;
  /** A translator for one stream (it may keep state from chunk to chunk). */
  translator(): (chunk: object) => MeterEvent[];
  /** A whole (non-streamed) answer's events; undefined when the body is not this API's. */
  response?(body: object): MeterEvent[] | undefined;
  /**
   * How this API's requests are read and forwarded. Without it, a request naming this
   * provider is read by the Anthropic Messages rules (see `requestRules`).
   */
  readonly requests?: RequestRules;
}
