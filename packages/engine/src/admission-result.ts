/**
 * What admission decided for one request, handed to its stream: who pays, what was
 * reserved and on which terms (the planned max_tokens, the lease, the cap, the bound the
 * input was measured with), and how the answer goes out.
 */
import type { BudgetState, ScopeRef } from '@tokenmeter/core';
import type { RequestBound } from '@tokenmeter/core/meter';
import type { RequestStart } from './events.js';
import type { StreamLimit } from './types.js';

export interface Admission {
  requestId: string;
  scopes: readonly ScopeRef[];
  /**
   * Empty when no budget or rate limit applies to the request (`metered: false`), or when
   * the store failed and the policy let it through unmetered.
   */
  reservationIds: readonly string[];
  /** The store's time of admission (the first reservation's), when one was made. */
  admittedAt?: number;
  /** True when some budget or rate limit applies: a settlement is owed to the store. */
  metered: boolean;
  reservedNanos: number;
  model: string;
  /** The max_tokens to send (lowered where the reservation covers less than asked). */
  maxTokens: number;
  /** The max_tokens the request asked for. */
  requestedMaxTokens: number;
  /** What lowered max_tokens, if anything. */
  fittedTo: 'budget' | 'max_cost_per_request' | null;
  /** The fields admission wrote into the body sent (max_tokens, bounded tools…). */
  forwarded: Record<string, unknown>;
  inputTokens: number;
  /** The prompt's upper bound (equal to `inputTokens` when counted exactly). */
  inputTokensBound: number;
  /** The tightest budget at admission, if any. */
  budget: BudgetState | null;
  /**
   * Output tokens the reservation covers before it must grow (incremental leases) or the
   * stream must stop (the cost cap). Infinity when it covers `max_tokens`.
   */
  leasedOutputTokens: number;
  /**
   * Output tokens after which the stream is stopped, where the body sent is not known to
   * carry the lowered max_tokens (Infinity: the provider stops itself).
   */
  capOutputTokens: number;
  /** The limit named when the stream stops there. */
  stopLimit: StreamLimit;
  /** What the reservation priced: the worst case of the request, for pricing lease steps. */
  bound: RequestBound;
  /** Output tokens the reservation covers at admission. */
  reservedOutputTokens: number;
  /** `gen_ai.provider.name`. */
  provider: string;
  /** The provider API whose rules read the request (`'openai-responses'`, …). */
  api: string;
  /** Budget alert thresholds (percent, ascending) by scope (`scopeKeyOf`). */
  alerts: ReadonlyMap<string, readonly number[]>;
  /** False when the unknown-model fallback priced the model. */
  modelPriced: boolean;
  /** The provider request body (for opt-in content recording). */
  input?: unknown;
  /** The parsed request body as admitted, when it is a JSON object (`meter.body`). */
  body: Record<string, unknown> | undefined;
  /**
   * Gateways: the provider's answer is relayed (`'sse'` event by event, `'json'` as one
   * body), and headers go out with its first byte. Undefined: tokenmeter's SSE protocol.
   */
  relay?: 'sse' | 'json';
  /** Headers for the response, beside the protocol's own (rate-limit headers, request id). */
  headers?: Record<string, string>;
  /** Parent context and start time, from the middleware's entry. */
  telemetry: RequestStart;
}
