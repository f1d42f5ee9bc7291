/**
 * Test-only helpers for tool calls: real clients' tool definitions (`__fixtures__`) and a JSON
 * Schema validator (ajv, with formats) that says whether a tool input satisfies its schema.
 */

import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

/** A tool as Claude Code sends it to the Messages API. */
export interface AnthropicToolFixture {
  name: string;
  description: string;
  input_schema: { type: 'object'; [key: string]: unknown };
}

/** A function tool as Codex sends it to the Responses API. */
export interface ResponsesToolFixture {
  type: 'function';
  name: string;
  description: string;
  strict: boolean;
  parameters: Record<string, unknown>;
}

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8'));
}

/** Claude Code's Bash, Glob, Grep, Read, Edit, TodoWrite and WebFetch tools. */
export const claudeCodeTools = fixture<AnthropicToolFixture[]>('claude-code-tools.json');
/** Codex's shell, apply_patch, update_plan and view_image function tools. */
export const codexTools = fixture<ResponsesToolFixture[]>('codex-tools.json');

export function claudeCodeTool(name: string): AnthropicToolFixture {
  const tool = claudeCodeTools.find((t) => t.name === name);
  if (!tool) throw new Error(`no Claude Code tool ${name} in the fixtures`);
  return tool;
}

export function codexTool(name: string): ResponsesToolFixture {
  const tool = codexTools.find((t) => t.name === name);
  if (!tool) throw new Error(`no Codex tool ${name} in the fixtures`);
  return tool;
}

/** The same Codex tool as a Chat Completions tool. */
export function asChatTool(tool: ResponsesToolFixture) {
  return {
    type: 'function' as const,
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  };
}

// ajv-formats is CommonJS: its plugin is the module itself or its `default`.
const addFormats = ((formats as unknown as { default?: unknown }).default ?? formats) as (
  ajv: Ajv | Ajv2020,
) => unknown;
const draft7 = new Ajv({ strict: false, allErrors: true });
const draft2020 = new Ajv2020({ strict: false, allErrors: true });
addFormats(draft7);
addFormats(draft2020);

/** A validator for `schema`: draft 2020-12 when it says so (or uses prefixItems), else draft 7. */
export function validatorFor(schema: unknown): ValidateFunction {
  const text = JSON.stringify(schema);
  const modern = text.includes('2020-12') || text.includes('"prefixItems"');
  return (modern ? draft2020 : draft7).compile(schema as object);
}

/** Parses `json` and validates it against `schema`; throws with ajv's errors when invalid. */
export function expectValid(schema: unknown, json: string): unknown {
  const value: unknown = JSON.parse(json);
  const validate = validatorFor(schema);
  if (!validate(value)) {
    throw new Error(`${json} does not satisfy the schema: ${JSON.stringify(validate.errors)}`);
  }
  return value;
}
