/**
 * What a gateway needs of one provider API: its routes, its request terms, its call, and
 * its error shapes (so the SDKs raise their own typed errors).
 */
import type { SseEncoder } from '@tokenmeter/core';
import type { RequestParams } from '../types.js';
import type { RelaySource } from './relay.js';

/** Where and how a gateway calls the provider: the server's key, never the caller's. */
export interface Endpoint {
  apiKey: string;
  /** Without a trailing slash. */
  baseURL: string;
  fetch: typeof fetch;
}

/** A call of the provider on the server's endpoint, with the caller's allowed headers. */
export type ProviderCall = (
  body: Record<string, unknown>,
  headers: Record<string, string>,
  endpoint: Endpoint,
  signal: AbortSignal,
) => Promise<RelaySource>;

/**
 * One metered route of a provider API (`POST /v1/messages`, `/v1/chat/completions`,
 * `/v1/responses`): each call admitted, metered, settled and relayed.
 */
export interface MeteredRoute {
  /** The path below the mount point. */
  path: string;
  /** Whether the body asks for a stream. */
  isStream(body: Record<string, unknown>): boolean;
  /** The model, output limit, API and input the request is admitted with. */
  params(body: Record<string, unknown>): RequestParams;
  /** The provider call for an admitted request, with the body admission bounded. */
  call: ProviderCall;
  /**
   * The provider's own count of a request's input tokens, where it is free (Anthropic's
   * count_tokens, the Responses API's input_tokens): asked where the bound cannot decide
   * (see `Config.countExactly`).
   */
  countTokens?(
    body: Record<string, unknown>,
    headers: Record<string, string>,
    endpoint: Endpoint,
    signal: AbortSignal,
  ): Promise<number>;
  /** In-stream events in the API's shape (an early end; keep-alive comments). */
  encoder: SseEncoder;
}

/** A route that costs nothing (a token count): rate-limited by requests, relayed, charged 0. */
export interface FreeRoute {
  path: string;
  call: ProviderCall;
}

/** One provider as a gateway serves it: its APIs' routes and its error shape. */
export interface GatewayProvider {
  name: 'anthropic' | 'openai';
  defaultBaseURL: string;
  /** The metered routes; a path served by none of these (or `free`) is not the gateway's. */
  metered: readonly MeteredRoute[];
  /** Routes that cost nothing. */
  free: readonly FreeRoute[];
  /** Forwarded request headers by default. */
  allowHeaders: readonly string[];
  /** A JSON error answer in the provider's own shape. */
  errorBody(status: number, code: string, message: string): { status: number; body: string };
}

/** Statuses of our rejection codes, where the code alone decides it. */
export const CODE_STATUS: Record<string, number> = {
  unauthenticated: 401,
  invalid_request: 400,
  invalid_json: 400,
  unbounded_request: 400,
  unknown_model: 400,
  input_too_large: 413,
  body_too_large: 413,
  rate_limited: 429,
  store_unavailable: 503,
  internal_error: 500,
  not_found: 404,
  method_not_allowed: 405,
  upstream_error: 502,
  upstream_auth_failed: 502,
  upstream_idle: 504,
  timeout: 504,
  handler_error: 500,
};
