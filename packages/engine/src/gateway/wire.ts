/**
 * How a gateway answers what is not a relayed stream: our refusals in the provider's own
 * error shape, the provider's HTTP errors passed on (its refusal of the server's key
 * hidden), and `x-should-retry` on every answer.
 */
import { RELAY_STREAM, type WireProtocol } from '../protocols.js';
import type { Transport } from '../transport.js';
import type { Logger } from '../types.js';
import type { ProviderResponse, UpstreamFailure } from '../upstream-errors.js';
import { CODE_STATUS, type GatewayProvider, type MeteredRoute } from './provider.js';

/**
 * `x-should-retry`, which the official SDKs read before their own rule (retry 408, 409,
 * 429 and 5xx): said for every answer, so a client neither retries what cannot succeed (an
 * unknown key, a spent budget) nor gives up on what will.
 */
function shouldRetry(status: number, code: string): 'true' | 'false' {
  if (code === 'budget_exceeded' || code === 'upstream_auth_failed') return 'false';
  return status === 408 || status === 409 || status === 429 || status >= 500 ? 'true' : 'false';
}

/** The wire protocol of a gateway route: provider-shaped errors, the provider's answer relayed. */
export function gatewayWire(
  adapter: GatewayProvider,
  route: MeteredRoute,
  logger: Logger,
): WireProtocol {
  const reject: WireProtocol['reject'] = (transport, status, code, message, _d, headers = {}) => {
    const shaped = adapter.errorBody(status, code, message);
    transport.send(
      shaped.status,
      {
        'Content-Type': 'application/json',
        'x-should-retry': shouldRetry(shaped.status, code),
        ...headers,
      },
      shaped.body,
    );
  };
  return {
    reject,
    ...RELAY_STREAM,
    relay: (body) => (route.isStream((body ?? {}) as Record<string, unknown>) ? 'sse' : 'json'),
    endBeforeHeaders(transport, outcome, failure?: UpstreamFailure) {
      if (failure?.response) {
        relayProviderError(transport, failure.response, reject, logger);
        return;
      }
      if (outcome === 'client_disconnected' || outcome === 'client_stalled') return;
      reject(
        transport,
        CODE_STATUS[outcome] ?? 500,
        outcome,
        failure?.message ?? messageOf(outcome),
      );
    },
  };
}

/**
 * The provider's own HTTP error, passed on as it came (the SDKs raise their typed error) —
 * except a refusal of the server's key (401, 403): that is the operator's to fix, and its
 * text may quote part of the key, so the caller gets a fixed 502 and the log gets it whole.
 */
export function relayProviderError(
  transport: Transport,
  response: ProviderResponse,
  reject: WireProtocol['reject'],
  logger: Logger,
): void {
  if (response.status === 401 || response.status === 403) {
    logger.error("tokenmeter: the provider refused the gateway's API key; check apiKey", {
      status: response.status,
      body: response.body,
    });
    reject(
      transport,
      502,
      'upstream_auth_failed',
      "The model provider refused this gateway's credentials. The operator has been told; retrying will not help.",
    );
    return;
  }
  const headers = { ...response.headers };
  if (headers['x-should-retry'] === undefined) {
    headers['x-should-retry'] = shouldRetry(response.status, '');
  }
  transport.send(response.status, headers, response.body);
}

function messageOf(outcome: string): string {
  switch (outcome) {
    case 'upstream_error':
      return 'The model provider could not be reached.';
    case 'upstream_idle':
    case 'timeout':
      return 'The model provider did not answer in time.';
    case 'budget_exceeded':
      return 'The budget cannot cover this request.';
    default:
      return 'Internal error.';
  }
}
