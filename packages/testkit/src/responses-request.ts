// Validation of a Responses API request (`POST /v1/responses`) the way the real API answers
// it: a 400 `invalid_request_error` whose `param` names the field (`input[2].call_id`,
// `tools[0].name`, `max_output_tokens`) and whose `code` says what is wrong
// (`missing_required_parameter`, `invalid_type`, `invalid_value`, `unknown_parameter`…).
// It checks what clients get wrong in practice — Chat Completions shapes sent to the
// Responses route above all — and lets anything else through, so that a client sending a
// newer field or item type is not refused by the fake.

import type { ApiError } from './protocol.js';

/** Chat Completions parameters the Responses API does not know: a common mix-up. */
const CHAT_ONLY = [
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'response_format',
  'n',
  'stop',
  'functions',
  'function_call',
  'logit_bias',
];
const ROLES = ['assistant', 'system', 'developer', 'user'];
const INPUT_PARTS = ['input_text', 'input_image', 'input_file', 'input_audio'];
const OUTPUT_PARTS = ['output_text', 'refusal'];
const TOOL_CHOICES = ['none', 'auto', 'required'];
const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];
const SUMMARIES = ['auto', 'concise', 'detailed'];
const SERVICE_TIERS = ['auto', 'default', 'flex', 'scale', 'priority'];
const TRUNCATIONS = ['auto', 'disabled'];
/** The real API's minimum for max_output_tokens. */
const MIN_OUTPUT_TOKENS = 16;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,128}$/;

type Body = Record<string, unknown>;

function invalid(message: string, param: string | null, code: string | null): ApiError {
  return { status: 400, type: 'invalid_request_error', message, param, code };
}

function isObject(value: unknown): value is Body {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The type of a JSON value as OpenAI's messages name it. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal number';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

function wrongType(param: string, expected: string, value: unknown): ApiError {
  return invalid(
    `Invalid type for '${param}': expected ${expected}, but got ${typeName(value)} instead.`,
    param,
    'invalid_type',
  );
}

function missing(param: string): ApiError {
  return invalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
}

/** "'a', 'b', and 'c'" */
function choices(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  if (quoted.length < 2) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

function notOneOf(param: string, value: unknown, allowed: readonly string[]): ApiError {
  const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
  return invalid(
    `Invalid value: ${shown}. Supported values are: ${choices(allowed)}.`,
    param,
    'invalid_value',
  );
}

/** `value` must be absent, null or one of `allowed`. */
function oneOf(param: string, value: unknown, allowed: readonly string[]): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' && allowed.includes(value)
    ? undefined
    : notOneOf(param, value, allowed);
}

/** `value` must be absent, null or of JSON type `type`. */
function optional(
  param: string,
  value: unknown,
  type: 'boolean' | 'string' | 'object' | 'array',
): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  const ok =
    type === 'array'
      ? Array.isArray(value)
      : type === 'object'
        ? isObject(value)
        : typeof value === type;
  const expected = {
    boolean: 'a boolean',
    string: 'a string',
    object: 'an object',
    array: 'an array',
  };
  return ok ? undefined : wrongType(param, expected[type], value);
}

function range(param: string, value: unknown, max: number): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number') return wrongType(param, 'a decimal number', value);
  if (value < 0) {
    return invalid(
      `Invalid '${param}': decimal below minimum value. Expected a value >= 0, but got ${value} instead.`,
      param,
      'decimal_below_min_value',
    );
  }
  if (value > max) {
    return invalid(
      `Invalid '${param}': decimal above maximum value. Expected a value <= ${max}, but got ${value} instead.`,
      param,
      'decimal_above_max_value',
    );
  }
  return undefined;
}

function maxOutputTokens(value: unknown): ApiError | undefined {
  const param = 'max_output_tokens';
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return wrongType(param, 'an integer', value);
  }
  if (value < MIN_OUTPUT_TOKENS) {
    return invalid(
      `Invalid '${param}': integer below minimum value. Expected a value >= ${MIN_OUTPUT_TOKENS}, but got ${value} instead.`,
      param,
      'integer_below_min_value',
    );
  }
  return undefined;
}

function messageItem(item: Body, at: string): ApiError | undefined {
  if (item.role === undefined) return missing(`${at}.role`);
  if (typeof item.role !== 'string' || !ROLES.includes(item.role)) {
    return notOneOf(`${at}.role`, item.role, ROLES);
  }
  if (item.content === undefined) return missing(`${at}.content`);
  if (typeof item.content === 'string') return undefined;
  if (!Array.isArray(item.content)) {
    return wrongType(`${at}.content`, 'one of a string or array of input content', item.content);
  }
  const allowed = item.role === 'assistant' ? OUTPUT_PARTS : INPUT_PARTS;
  for (const [i, part] of item.content.entries()) {
    const where = `${at}.content[${i}]`;
    if (!isObject(part)) return wrongType(where, 'an object', part);
    if (typeof part.type !== 'string' || !allowed.includes(part.type)) {
      return notOneOf(`${where}.type`, part.type, allowed);
    }
    if (
      (part.type === 'input_text' || part.type === 'output_text') &&
      typeof part.text !== 'string'
    ) {
      return part.text === undefined
        ? missing(`${where}.text`)
        : wrongType(`${where}.text`, 'a string', part.text);
    }
  }
  return undefined;
}

/** Fields an item of `type` must carry as strings. */
const REQUIRED_STRINGS: Readonly<Record<string, readonly string[]>> = {
  function_call: ['call_id', 'name', 'arguments'],
  function_call_output: ['call_id'],
  custom_tool_call: ['call_id', 'name', 'input'],
  custom_tool_call_output: ['call_id'],
};

function inputItem(item: unknown, at: string): ApiError | undefined {
  if (!isObject(item)) return wrongType(at, 'an object', item);
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  if (type === undefined) return missing(`${at}.role`);
  if (typeof type !== 'string') return wrongType(`${at}.type`, 'a string', type);
  if (type === 'message') return messageItem(item, at);
  for (const field of REQUIRED_STRINGS[type] ?? []) {
    if (item[field] === undefined) return missing(`${at}.${field}`);
    if (typeof item[field] !== 'string')
      return wrongType(`${at}.${field}`, 'a string', item[field]);
  }
  if (
    (type === 'function_call_output' || type === 'custom_tool_call_output') &&
    item.output === undefined
  ) {
    return missing(`${at}.output`);
  }
  if (type === 'reasoning' && !Array.isArray(item.summary)) {
    return item.summary === undefined
      ? missing(`${at}.summary`)
      : wrongType(`${at}.summary`, 'an array', item.summary);
  }
  return undefined;
}

function input(value: unknown): ApiError | undefined {
  if (value === undefined || value === null || typeof value === 'string') return undefined;
  if (!Array.isArray(value)) {
    return wrongType('input', 'one of a string or array of input items', value);
  }
  for (const [i, item] of value.entries()) {
    const error = inputItem(item, `input[${i}]`);
    if (error) return error;
  }
  return undefined;
}

function tools(value: unknown): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) return wrongType('tools', 'an array', value);
  for (const [i, tool] of value.entries()) {
    const at = `tools[${i}]`;
    if (!isObject(tool)) return wrongType(at, 'an object', tool);
    if (tool.type === undefined) return missing(`${at}.type`);
    if (typeof tool.type !== 'string') return wrongType(`${at}.type`, 'a string', tool.type);
    if (tool.type !== 'function') continue;
    // A Chat Completions tool ({type, function: {name…}}) fails here, as on the real API.
    if (tool.name === undefined) return missing(`${at}.name`);
    if (typeof tool.name !== 'string' || !FUNCTION_NAME.test(tool.name)) {
      return invalid(
        `Invalid '${at}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
        `${at}.name`,
        'invalid_value',
      );
    }
    const schema = optional(`${at}.parameters`, tool.parameters, 'object');
    if (schema) return schema;
  }
  return undefined;
}

function toolChoice(value: unknown, offered: unknown): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return oneOf('tool_choice', value, TOOL_CHOICES);
  if (!isObject(value)) return wrongType('tool_choice', 'an object', value);
  if (value.type !== 'function') return undefined;
  if (typeof value.name !== 'string') return missing('tool_choice.name');
  const names = (Array.isArray(offered) ? offered : []).flatMap((tool) =>
    isObject(tool) && tool.type === 'function' ? [tool.name] : [],
  );
  return names.includes(value.name)
    ? undefined
    : invalid("Tool choice 'function' not found in 'tools' parameter.", 'tool_choice', null);
}

function reasoning(value: unknown): ApiError | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) return wrongType('reasoning', 'an object', value);
  return (
    oneOf('reasoning.effort', value.effort, EFFORTS) ??
    oneOf('reasoning.summary', value.summary, SUMMARIES) ??
    oneOf('reasoning.generate_summary', value.generate_summary, SUMMARIES)
  );
}

/** The real API's 400 for an invalid Responses request body, or undefined when it is valid. */
export function validateResponsesRequest(body: unknown): ApiError | undefined {
  if (!isObject(body)) {
    return invalid('We could not parse the JSON body of your request.', null, null);
  }
  if (body.model === undefined) return missing('model');
  if (typeof body.model !== 'string' || body.model === '') {
    return wrongType('model', 'a string', body.model);
  }
  for (const field of CHAT_ONLY) {
    if (body[field] !== undefined) {
      return invalid(`Unknown parameter: '${field}'.`, field, 'unknown_parameter');
    }
  }
  if (body.stream_options != null && body.stream !== true) {
    return invalid(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
      null,
    );
  }
  return (
    optional('stream', body.stream, 'boolean') ??
    input(body.input) ??
    // Instructions are a string, or (as the SDK types allow) a list of input items.
    (Array.isArray(body.instructions)
      ? undefined
      : optional('instructions', body.instructions, 'string')) ??
    maxOutputTokens(body.max_output_tokens) ??
    tools(body.tools) ??
    toolChoice(body.tool_choice, body.tools) ??
    reasoning(body.reasoning) ??
    range('temperature', body.temperature, 2) ??
    range('top_p', body.top_p, 1) ??
    optional('store', body.store, 'boolean') ??
    optional('parallel_tool_calls', body.parallel_tool_calls, 'boolean') ??
    optional('background', body.background, 'boolean') ??
    optional('previous_response_id', body.previous_response_id, 'string') ??
    optional('include', body.include, 'array') ??
    optional('metadata', body.metadata, 'object') ??
    optional('text', body.text, 'object') ??
    oneOf('service_tier', body.service_tier, SERVICE_TIERS) ??
    oneOf('truncation', body.truncation, TRUNCATIONS)
  );
}

/**
 * Checks an input_tokens request (`POST /v1/responses/input_tokens`): the prompt fields of a
 * Responses request, every one optional.
 */
export function validateInputTokensRequest(body: unknown): ApiError | undefined {
  if (!isObject(body)) {
    return invalid('We could not parse the JSON body of your request.', null, null);
  }
  if (body.model !== undefined && body.model !== null && typeof body.model !== 'string') {
    return wrongType('model', 'a string', body.model);
  }
  return undefined;
}
