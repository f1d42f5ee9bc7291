/** Tool calls streamed in pieces, kept until they are complete (Anthropic and OpenAI alike). */

export interface PendingToolCall {
  id: string;
  name: string;
  json: string;
}

/** Parsed tool input: JSON as an object, anything else as the text it is. */
export function toolInput(json: string): unknown {
  if (json === '') return {};
  try {
    return JSON.parse(json);
  } catch {
    return json;
  }
}
