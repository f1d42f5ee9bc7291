/** The normalised events every provider adapter and source translates its stream into. */
import type { Usage } from './usage.js';

/** A normalised stream event. `usage` values are cumulative totals: overwrite, never add. */
export type MeterEvent =
  | {
      type: 'start';
      provider: string;
      /** Provider response id (`msg_…`, `chatcmpl-…`). */
      id?: string;
      /** Model the provider says served the request. */
      model?: string;
      /** Usage known at the start (Anthropic `message_start`: input and cache tokens). */
      usage?: Usage;
    }
  | { type: 'text'; text: string }
  | { type: 'thinking'; text: string }
  | { type: 'tool_input'; json: string }
  /**
   * A complete call of a tool the app runs: its id, name and parsed input (the raw text
   * when it is not JSON), for protocols that show tool calls. Never counted: its input was
   * counted as `tool_input` while it streamed.
   */
  | { type: 'tool_call'; id: string; name: string; input: unknown }
  /**
   * The provider is writing output it does not stream (OpenAI reasoning): until the call's
   * final usage arrives, its output can only be bounded by its `max_tokens`.
   */
  | { type: 'unseen_output' }
  /** A server tool the provider runs (Anthropic `server_tool_use`: `web_search`, …): billed per use. */
  | { type: 'server_tool'; name: string }
  /**
   * The source made a provider request (the AI SDK says so at each step): its `max_tokens`
   * as sent and an upper bound of its prompt. The first is the request admitted; each
   * later one is another billed call, whose usage events count on their own (the meter
   * adds the calls up).
   */
  | { type: 'request'; maxTokens?: number; inputTokens?: number }
  /** Provider-reported cumulative usage (of the current call); `final` when it is the provider's last word. */
  | { type: 'usage'; usage: Usage; final: boolean }
  | { type: 'stop'; reason: string }
  | { type: 'error'; errorType: string; message: string };

export type MeterEventType = MeterEvent['type'];
