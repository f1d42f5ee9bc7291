/**
 * A provider's stop reason as one of the finish reasons the OpenTelemetry GenAI conventions
 * and the AI SDK's UI message stream use.
 */

/**
 * The conventions' finish reason (`stop`, `length`, `content_filter`, `tool_call`, `error`)
 * for a provider stop reason. No stop reason means the stream did not finish.
 */
export function finishReason(stopReason: string | undefined): string {
  switch (stopReason) {
    case undefined:
      return 'error';
    case 'end_turn':
    case 'stop_sequence':
    case 'stop':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'length':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
    case 'tool_calls':
    case 'function_call':
      return 'tool_call';
    case 'refusal':
    case 'content_filter':
      return 'content_filter';
    default:
      return stopReason;
  }
}
