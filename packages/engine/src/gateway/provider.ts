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

/** One provider API as a gateway serves it. */
export interface GatewayProvider {
  name: 'anthropic' | 'openai';
  defaultBaseURL: string;
  /** The metered route (`/v1/messages`) and, for Anthropic, count_tokens (admitted, charged nothing). */
  routes: { messages: string; countTokens?: string };
  /** Forwarded request headers by default. */
  allowHeaders: readonly string[];
  /** Whether the body asks for a stream. */
  isStream(body: Record<string, unknown>): boolean;
  /** The model, max_tokens and input the request is admitted with. */
  params(body: Record<string, unknown>): RequestParams;
  /** The provider call for an admitted request (`countTokens`: Anthropic's count_tokens). */
  call(
    route: 'messages' | 'countTokens',
    body: Record<string, unknown>,
    headers: Record<string, string>,
    endpoint: Endpoint,
    signal: AbortSignal,
  ): Promise<RelaySource>;
  /**
   * The provider's own count of a request's input tokens, where it is free (Anthropic's
   * count_tokens): asked where the bound cannot decide (see `Config.countExactly`).
   */
  countTokens?(
    body: Record<string, unknown>,
    headers: Record<string, string>,
    endpoint: Endpoint,
    signal: AbortSignal,
  ): Promise<number>;
  /** A JSON error answer in the provider's own shape. */
  errorBody(status: number, code: string, message: string): { status: number; body: string };
  /** In-stream events in the provider's shape (an error; keep-alive comments). */
  encoder: SseEncoder;
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
