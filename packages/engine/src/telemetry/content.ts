/**
 * Prompt and completion text in the shapes the GenAI conventions give for
 * `gen_ai.input.messages`, `gen_ai.system_instructions` and `gen_ai.output.messages`
 * (JSON strings on the span). Only used when the app opts in with `recordContent`: text is
 * never recorded by default.
 */

type Part = Record<string, unknown>;
interface Message {
  role: string;
  parts: Part[];
}

/**
 * The messages (and, for Anthropic, the separate `system`) of an Anthropic Messages or
 * OpenAI Chat Completions request body. Unknown shapes give nothing rather than a guess.
 */
export function inputContent(input: unknown): { messages?: string; system?: string } {
  if (!isObject(input)) return {};
  const out: { messages?: string; system?: string } = {};
  if (Array.isArray(input.messages)) {
    const messages: Message[] = [];
    for (const raw of input.messages) {
      if (!isObject(raw) || typeof raw.role !== 'string') continue;
      messages.push(toMessage(raw));
    }
    out.messages = JSON.stringify(messages);
  }
  const system = input.system;
  if (typeof system === 'string') out.system = JSON.stringify([textPart(system)]);
  else if (Array.isArray(system)) out.system = JSON.stringify(system.map(toPart));
  return out;
}

/** The streamed answer as one assistant message. */
export function outputContent(text: string, finishReason: string): string {
  return JSON.stringify([
    { role: 'assistant', parts: [textPart(text)], finish_reason: finishReason },
  ]);
}

function toMessage(raw: Record<string, unknown>): Message {
  const role = raw.role as string;
  const parts: Part[] = [];
  const content = raw.content;
  if (typeof content === 'string') parts.push(textPart(content));
  else if (Array.isArray(content)) for (const block of content) parts.push(toPart(block));
  // OpenAI: assistant tool calls and tool results live beside `content`.
  if (Array.isArray(raw.tool_calls)) {
    for (const call of raw.tool_calls) {
      if (!isObject(call)) continue;
      const fn = isObject(call.function) ? call.function : {};
      parts.push({ type: 'tool_call', id: call.id, name: fn.name, arguments: fn.arguments });
    }
  }
  if (role === 'tool') {
    return {
      role,
      parts: [{ type: 'tool_call_response', id: raw.tool_call_id, response: content }],
    };
  }
  return { role, parts };
}

function toPart(block: unknown): Part {
  if (typeof block === 'string') return textPart(block);
  if (!isObject(block)) return { type: 'unknown' };
  switch (block.type) {
    case 'text':
      return textPart(typeof block.text === 'string' ? block.text : '');
    case 'thinking':
      return { type: 'reasoning', content: block.thinking };
    case 'tool_use':
      return { type: 'tool_call', id: block.id, name: block.name, arguments: block.input };
    case 'tool_result':
      return { type: 'tool_call_response', id: block.tool_use_id, response: block.content };
    default:
      // Images, documents, audio: their type only, never their bytes.
      return { type: typeof block.type === 'string' ? block.type : 'unknown' };
  }
}

function textPart(content: string): Part {
  return { type: 'text', content };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
