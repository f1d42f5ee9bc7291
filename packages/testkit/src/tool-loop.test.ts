// The tool loop knob: an agent's loop runs end to end against the fake. While the
// conversation carries fewer tool results than `toolTurns`, the answer ends in a call of the
// named (or first) function tool with valid arguments; then it answers text. Each API counts
// its own kind of tool result.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLLM, startFakeLLM } from './server.js';
import { seededText } from './text-generator.js';
import {
  asChatTool,
  claudeCodeTool,
  claudeCodeTools,
  codexTool,
  codexTools,
  expectValid,
} from './tools.test-helper.js';

let fake: FakeLLM;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  // A server-level loop of 3 tool turns, as a test running Claude Code would configure it.
  fake = await startFakeLLM({ tokens: 4, seed: 5, toolTurns: 3, toolName: 'Glob' });
  anthropic = new Anthropic({ baseURL: fake.url, apiKey: 'test', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${fake.url}/v1`, apiKey: 'test', maxRetries: 0 });
});

afterAll(async () => {
  await fake.close();
});

const tools = claudeCodeTools as unknown as Anthropic.Tool[];

describe('Anthropic Messages', () => {
  it('runs tool, tool, tool, text with Claude Code tools (knobs set on the server)', async () => {
    const glob = claudeCodeTool('Glob');
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Find the tests.' }];
    const stops: Array<string | null> = [];
    for (let turn = 0; turn < 6; turn++) {
      const message = await anthropic.messages
        .stream({ model: 'claude-sonnet-4-6', max_tokens: 4096, messages, tools })
        .finalMessage();
      stops.push(message.stop_reason);
      if (message.stop_reason !== 'tool_use') {
        expect(message.content).toMatchObject([
          { type: 'text', text: seededText({ seed: 5, tokens: 4 }) },
        ]);
        break;
      }
      const call = message.content.find((block) => block.type === 'tool_use');
      expect(call?.name).toBe('Glob');
      expectValid(glob.input_schema, JSON.stringify(call?.input));
      messages.push({ role: 'assistant', content: message.content });
      messages.push({
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: call!.id, content: 'src/a.test.ts' }],
      });
    }
    expect(stops).toEqual(['tool_use', 'tool_use', 'tool_use', 'end_turn']);
    const records = fake.requests.slice(-4);
    expect(records.map((record) => record.stopReason)).toEqual(stops);
    expect(
      records.map((record) => record.blocks.map((block) => block.toolName ?? block.kind)),
    ).toEqual([['text', 'Glob'], ['text', 'Glob'], ['text', 'Glob'], ['text']]);
  });

  it('a request header sets the turns for one request; tool_choice none still answers text', async () => {
    const body = {
      model: 'claude-sonnet-4-6',
      max_tokens: 4096,
      tools,
      messages: [
        { role: 'user' as const, content: 'Go.' },
        {
          role: 'assistant' as const,
          content: [
            { type: 'tool_use' as const, id: 'toolu_1', name: 'Glob', input: { pattern: '*' } },
          ],
        },
        {
          role: 'user' as const,
          content: [{ type: 'tool_result' as const, tool_use_id: 'toolu_1', content: 'a.ts' }],
        },
      ],
    };
    const once = await anthropic.messages.create(body, {
      headers: { 'x-fake-llm-tool-turns': '1' },
    });
    expect(once.stop_reason).toBe('end_turn');
    const twice = await anthropic.messages.create(body, {
      headers: { 'x-fake-llm-tool-turns': '2' },
    });
    expect(twice.stop_reason).toBe('tool_use');
    const none = await anthropic.messages.create({ ...body, tool_choice: { type: 'none' } });
    expect(none.stop_reason).toBe('end_turn');
  });

  it('the knob picks the tool; tool_choice naming another wins; without function tools: text', async () => {
    const base = {
      model: 'claude-sonnet-4-6',
      max_tokens: 4096,
      messages: [{ role: 'user' as const, content: 'Go.' }],
    };
    const read = await anthropic.messages.create(
      { ...base, tools },
      { headers: { 'x-fake-llm-tool-name': 'Read' } },
    );
    const call = read.content.find((block) => block.type === 'tool_use');
    expect(call?.name).toBe('Read');
    expectValid(claudeCodeTool('Read').input_schema, JSON.stringify(call?.input));
    const forced = await anthropic.messages.create({
      ...base,
      tools,
      tool_choice: { type: 'tool', name: 'Bash' },
    });
    expect(forced.content.find((block) => block.type === 'tool_use')?.name).toBe('Bash');
    // Server tools are not function tools: nothing to call, so the answer is text.
    const searchOnly = await anthropic.messages.create(
      { ...base, tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
      { headers: { 'x-fake-llm-searches': '0' } },
    );
    expect(searchOnly.stop_reason).toBe('end_turn');
    expect(searchOnly.content.map((block) => block.type)).toEqual(['text']);
  });
});

describe('Chat Completions', () => {
  it('counts role "tool" messages; a name not offered calls the first function tool', async () => {
    const shell = codexTool('shell');
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Run it.' }];
    const reasons: string[] = [];
    for (let turn = 0; turn < 6; turn++) {
      // The server's toolName (Glob) is not among these tools: shell, the first, is called.
      const completion = await openai.chat.completions.create({
        model: 'gpt-4.1',
        messages,
        tools: codexTools.map(asChatTool),
      });
      const choice = completion.choices[0]!;
      reasons.push(choice.finish_reason);
      if (choice.finish_reason !== 'tool_calls') {
        expect(choice.message.content).toBe(seededText({ seed: 5, tokens: 4 }));
        break;
      }
      const call = choice.message.tool_calls?.[0];
      expect(call?.type === 'function' && call.function.name).toBe('shell');
      expectValid(shell.parameters, call?.type === 'function' ? call.function.arguments : '');
      messages.push(choice.message);
      messages.push({ role: 'tool', tool_call_id: call!.id, content: 'ok' });
    }
    expect(reasons).toEqual(['tool_calls', 'tool_calls', 'tool_calls', 'stop']);
  });
});

describe('Responses', () => {
  it('counts function_call_output items; streams a completed Response with a function_call', async () => {
    const applyPatch = codexTool('apply_patch');
    const input: OpenAI.Responses.ResponseInputItem[] = [
      { role: 'user', content: [{ type: 'input_text', text: 'Patch it.' }] },
    ];
    const kinds: string[][] = [];
    for (let turn = 0; turn < 6; turn++) {
      const response = await openai.responses
        .stream(
          { model: 'gpt-5-codex', input, tools: codexTools, store: false },
          { headers: { 'x-fake-llm-tool-name': 'apply_patch' } },
        )
        .finalResponse();
      expect(response.status).toBe('completed');
      kinds.push(response.output.map((item) => item.type));
      const call = response.output.find((item) => item.type === 'function_call');
      if (!call) {
        expect(response.output_text).toBe(seededText({ seed: 5, tokens: 4 }));
        break;
      }
      expect(call.name).toBe('apply_patch');
      expectValid(applyPatch.parameters, call.arguments);
      input.push(call, { type: 'function_call_output', call_id: call.call_id, output: 'Done!' });
    }
    expect(kinds).toEqual([
      ['message', 'function_call'],
      ['message', 'function_call'],
      ['message', 'function_call'],
      ['message'],
    ]);
  });
});
