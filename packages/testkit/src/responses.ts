// The OpenAI Responses API wire format (`POST /v1/responses`): request validation
// (responses-request.ts), the event stream (responses-stream.ts) and the complete Response
// (responses-object.ts). Errors, their headers and the request id are OpenAI's, as on the
// Chat Completions route.

import { openaiProtocol } from './openai.js';
import type { OutputPlan } from './plan.js';
import type { ProviderProtocol, ResponseContext, StreamEncoder } from './protocol.js';
import {
  finalOutput,
  finalStatus,
  outputTokens,
  reasoningTokens,
  responseObject,
  usageObject,
} from './responses-object.js';
import { validateInputTokensRequest, validateResponsesRequest } from './responses-request.js';
import { ResponsesStreamEncoder } from './responses-stream.js';
import type { ReportedUsage } from './types.js';

export const responsesProtocol: ProviderProtocol = {
  provider: 'openai',
  dialect: 'openai-responses',
  requestIdHeader: openaiProtocol.requestIdHeader,
  midStreamErrorStatus: openaiProtocol.midStreamErrorStatus,

  maxTokens(body: Readonly<Record<string, unknown>>): number | undefined {
    return typeof body.max_output_tokens === 'number' ? body.max_output_tokens : undefined;
  },

  validate(route, body: unknown) {
    return route === 'input_tokens'
      ? validateInputTokensRequest(body)
      : validateResponsesRequest(body);
  },

  statusError: openaiProtocol.statusError,
  errorBody: openaiProtocol.errorBody,
  errorHeaders: openaiProtocol.errorHeaders,
  baseHeaders: openaiProtocol.baseHeaders,

  streamEncoder(ctx: ResponseContext): StreamEncoder {
    return new ResponsesStreamEncoder(ctx);
  },

  completeBody(ctx: ResponseContext, texts: readonly string[], tokensSent: number): string {
    const status = finalStatus(ctx.plan);
    return JSON.stringify(
      responseObject(ctx, status, finalOutput(ctx, texts), usageObject(ctx, tokensSent)),
    );
  },

  /** The Response's final status: `completed`, or `incomplete` when max_output_tokens cut it. */
  stopReason(plan: OutputPlan): string {
    return finalStatus(plan);
  },

  usage(ctx: ResponseContext, tokensSent: number): ReportedUsage {
    return {
      inputTokens: ctx.inputTokens + ctx.cacheReadTokens,
      outputTokens: outputTokens(ctx, tokensSent),
      cacheReadTokens: ctx.cacheReadTokens,
      cacheWrite5mTokens: 0,
      cacheWrite1hTokens: 0,
      reasoningTokens: reasoningTokens(ctx.plan),
      webSearchRequests: 0,
    };
  },
};

/** The body of an input_tokens answer (`POST /v1/responses/input_tokens`). */
export function inputTokensBody(inputTokens: number): string {
  return JSON.stringify({ object: 'response.input_tokens', input_tokens: inputTokens });
}
