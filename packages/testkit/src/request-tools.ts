// What a request says about tools, read the way each API writes it: the function tools it
// offers (with their input schemas), which tool `tool_choice` names or forces, and how many
// tool results the conversation already carries (the tool loop knob counts them).
//
//                     Anthropic Messages          Chat Completions               Responses
//   function tool     {name, input_schema}        {type: function,               {type: function, name,
//                     (no type, or custom)         function: {name, parameters}}  parameters}
//   forced            {type: any | tool}          required | {type: function}    required | {type: function}
//   named             {type: tool, name}          {type: function,               {type: function, name}
//                                                  function: {name}}
//   none              {type: none}                none                           none
//   a tool result     tool_result block           role: tool message             function_call_output item

/** How a request body is read: Anthropic Messages, OpenAI Chat Completions, OpenAI Responses. */
export type Dialect = 'anthropic' | 'openai' | 'openai-responses';

/** A function tool a request offers. */
export interface OfferedTool {
  name: string;
  /** Its input schema; undefined when the tool has none. */
  schema: unknown;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function offered(dialect: Dialect, item: unknown): OfferedTool | undefined {
  const tool = asRecord(item);
  if (!tool) return undefined;
  let name: unknown;
  let schema: unknown;
  if (dialect === 'anthropic') {
    // Server and built-in client tools carry a versioned type (web_search_20250305, bash_…).
    if (tool.type !== undefined && tool.type !== 'custom') return undefined;
    name = tool.name;
    schema = tool.input_schema;
  } else if (dialect === 'openai') {
    const fn = asRecord(tool.function);
    if ((tool.type !== undefined && tool.type !== 'function') || !fn) return undefined;
    name = fn.name;
    schema = fn.parameters;
  } else {
    if (tool.type !== 'function') return undefined;
    name = tool.name;
    schema = tool.parameters;
  }
  if (typeof name !== 'string' || name === '') return undefined;
  // null parameters (allowed by the Responses API) is no schema, like an absent one.
  return { name, schema: schema ?? undefined };
}

/** The function tools the request offers, in order. */
export function functionTools(dialect: Dialect, body: Record<string, unknown>): OfferedTool[] {
  return list(body.tools).flatMap((tool) => offered(dialect, tool) ?? []);
}

/** The tool `tool_choice` names, if it names one. */
export function namedToolChoice(
  dialect: Dialect,
  body: Record<string, unknown>,
): string | undefined {
  const choice = asRecord(body.tool_choice);
  let name: unknown;
  if (dialect === 'anthropic') name = choice?.type === 'tool' ? choice.name : undefined;
  else if (choice?.type !== 'function') name = undefined;
  else name = dialect === 'openai' ? asRecord(choice.function)?.name : choice.name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** Whether `tool_choice` makes the model call a tool. */
export function toolForced(dialect: Dialect, body: Record<string, unknown>): boolean {
  const choice = body.tool_choice;
  const type = asRecord(choice)?.type;
  if (dialect === 'anthropic') return type === 'any' || type === 'tool';
  return choice === 'required' || type === 'function';
}

/** Whether `tool_choice` forbids tool calls. */
export function toolsDisabled(dialect: Dialect, body: Record<string, unknown>): boolean {
  const choice = body.tool_choice;
  return dialect === 'anthropic' ? asRecord(choice)?.type === 'none' : choice === 'none';
}

/** Tool results the conversation carries. */
export function toolResultCount(dialect: Dialect, body: Record<string, unknown>): number {
  let count = 0;
  if (dialect === 'anthropic') {
    for (const message of list(body.messages)) {
      for (const block of list(asRecord(message)?.content)) {
        if (asRecord(block)?.type === 'tool_result') count += 1;
      }
    }
  } else if (dialect === 'openai') {
    for (const message of list(body.messages)) {
      const role = asRecord(message)?.role;
      if (role === 'tool' || role === 'function') count += 1;
    }
  } else {
    for (const item of list(body.input)) {
      const type = asRecord(item)?.type;
      if (type === 'function_call_output' || type === 'custom_tool_call_output') count += 1;
    }
  }
  return count;
}
