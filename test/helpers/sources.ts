/**
 * Test helper: the same answer through each source a route can hand over — the official
 * Anthropic and OpenAI SDK streams, an AI SDK `streamText()` result (`@ai-sdk/anthropic`,
 * `@ai-sdk/openai`) and a LangChain.js chat model stream (`@langchain/anthropic`,
 * `@langchain/openai`) — all against the testkit, started with the meter's signal, with
 * the test request's `x-fake-llm-*` knobs forwarded.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatAnthropic } from '@langchain/anthropic';
import { ChatOpenAI } from '@langchain/openai';
import type { Tracer } from '@opentelemetry/api';
import type { MeteredRequest, MeteredStream } from '@tokenmeter/express';
import { type ModelMessage, streamText } from 'ai';
import OpenAI from 'openai';
import { anthropicClient } from './app.js';
import { knobHeaders } from './upstream.js';

export const SOURCES = ['raw', 'ai-sdk', 'langchain'] as const;
/**
 * The same sources on the OpenAI Responses API: the SDK's `responses.create()` stream, the
 * AI SDK's default OpenAI model (`openai(model)`), LangChain's `useResponsesApi`.
 */
export const RESPONSES_SOURCES = ['responses', 'ai-sdk-responses', 'langchain-responses'] as const;
export type SourceName = (typeof SOURCES)[number] | (typeof RESPONSES_SOURCES)[number];

/** The request body the test routes read (an Anthropic-shaped request, as the middleware does). */
export interface ChatBody {
  model: string;
  max_tokens: number;
  messages: Array<{ role: 'user' | 'assistant'; content: string }>;
  /** Anthropic extended thinking. */
  thinking?: { type: 'enabled'; budget_tokens: number };
}

/**
 * An `upstream` for costTrackedSSE(): the source named by the request's `x-source` header
 * (`raw`, `ai-sdk`, `langchain`), the provider from the model name.
 */
export function sourceUpstream(fakeUrl: string, options: { tracer?: Tracer } = {}) {
  const anthropic = anthropicClient(fakeUrl);
  const openai = new OpenAI({ baseURL: `${fakeUrl}/v1`, apiKey: 'test-key', maxRetries: 0 });
  const aiAnthropic = createAnthropic({ baseURL: `${fakeUrl}/v1`, apiKey: 'test-key' });
  const aiOpenAI = createOpenAI({ baseURL: `${fakeUrl}/v1`, apiKey: 'test-key' });
  return (req: MeteredRequest, meter: MeteredStream): unknown => {
    const body = req.body as ChatBody;
    const source = req.headers['x-source'] as SourceName | undefined;
    const headers = knobHeaders(req);
    const isClaude = meter.model.startsWith('claude');
    const thinking = body.thinking;
    switch (source ?? 'raw') {
      case 'raw':
        return isClaude
          ? anthropic.messages.create(
              {
                model: meter.model,
                max_tokens: meter.maxTokens,
                messages: body.messages,
                ...(thinking ? { thinking } : {}),
                stream: true,
              },
              { signal: meter.signal, headers },
            )
          : openai.chat.completions.create(
              {
                model: meter.model,
                max_completion_tokens: meter.maxTokens,
                messages: body.messages,
                stream: true,
                stream_options: { include_usage: true },
              },
              { signal: meter.signal, headers },
            );
      case 'ai-sdk':
        return streamText({
          model: isClaude ? aiAnthropic(meter.model) : aiOpenAI.chat(meter.model),
          messages: body.messages as ModelMessage[],
          // The AI SDK adds the thinking budget to max_tokens: the request stays within
          // what was admitted only when the answer's share leaves room for it.
          maxOutputTokens: meter.maxTokens - (thinking?.budget_tokens ?? 0),
          ...(thinking
            ? {
                providerOptions: {
                  anthropic: {
                    thinking: { type: 'enabled', budgetTokens: thinking.budget_tokens },
                  },
                },
              }
            : {}),
          headers,
          abortSignal: meter.signal,
          maxRetries: 0,
          // tokenmeter reports the failure; the AI SDK would also log it to the console.
          onError: () => {},
          ...(options.tracer
            ? { experimental_telemetry: { isEnabled: true, tracer: options.tracer } }
            : {}),
        });
      case 'langchain': {
        const model = isClaude
          ? new ChatAnthropic({
              model: meter.model,
              anthropicApiUrl: fakeUrl,
              apiKey: 'test-key',
              maxTokens: meter.maxTokens,
              maxRetries: 0,
              ...(thinking ? { thinking } : {}),
              clientOptions: { defaultHeaders: headers },
            })
          : new ChatOpenAI({
              model: meter.model,
              apiKey: 'test-key',
              maxTokens: meter.maxTokens,
              maxRetries: 0,
              configuration: { baseURL: `${fakeUrl}/v1`, defaultHeaders: headers },
            });
        return model.stream(body.messages, { signal: meter.signal });
      }
      case 'responses':
        return openai.responses.create(
          {
            model: meter.model,
            max_output_tokens: meter.maxTokens,
            input: body.messages,
            stream: true,
          },
          { signal: meter.signal, headers },
        );
      case 'ai-sdk-responses':
        return streamText({
          model: aiOpenAI(meter.model),
          messages: body.messages as ModelMessage[],
          maxOutputTokens: meter.maxTokens,
          headers,
          abortSignal: meter.signal,
          maxRetries: 0,
          onError: () => {},
        });
      case 'langchain-responses':
        return new ChatOpenAI({
          model: meter.model,
          apiKey: 'test-key',
          maxTokens: meter.maxTokens,
          maxRetries: 0,
          useResponsesApi: true,
          configuration: { baseURL: `${fakeUrl}/v1`, defaultHeaders: headers },
        }).stream(body.messages, { signal: meter.signal });
      default:
        throw new Error(`unknown x-source ${String(source)}`);
    }
  };
}
